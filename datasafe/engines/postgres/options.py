"""PostgreSQL's own backup and restore options."""

from __future__ import annotations

from dataclasses import dataclass

from datasafe.engines.options import EngineOptions


@dataclass(frozen=True)
class PostgresOptions(EngineOptions):
    """Attributes:
    pg_bin: folder holding the ``pg_dump`` and ``pg_restore`` to run (configuration key ``pg_bin``);
        None: the newest on ``PATH`` or in ``/usr/lib/postgresql/*/bin``.
    no_owner: restore without ownership and grants (``restore --no-owner``; scratch and refresh
        restores set it).
    """

    pg_bin: str | None = None
    no_owner: bool = False
