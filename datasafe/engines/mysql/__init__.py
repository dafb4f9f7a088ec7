"""MySQL and MariaDB: consistent snapshots read through the server's own text formatting."""

from __future__ import annotations

from datasafe.engines.mysql.engine import MySQLEngine

__all__ = ["MySQLEngine"]
