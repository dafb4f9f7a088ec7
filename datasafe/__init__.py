"""datasafe: verified, compressed database snapshots and anonymized copies."""

from __future__ import annotations

__version__ = "0.1.0"
