"""PostgreSQL engine: consistent parallel COPY plus pg_dump's schema, restored with pg_restore and COPY."""

from __future__ import annotations

from datasafe.engines.postgres.engine import PostgresEngine

__all__ = ["PostgresEngine"]
