"""The swap seam of ``datasafe refresh``: a fresh copy beside a database, then put in its place.

A refresh restores into a temporary database next to the environment's database, runs the
post-restore scripts in it and then swaps it into place. Each engine does the database-specific
parts behind :class:`Swapper` (``engines/<engine>/swap.py``, declared in the engine's ``SPEC`` and
found with :func:`datasafe.engines.registry.swapper_for`); the orchestration (masking, restoring,
the policy) lives above.

Names of the databases a refresh creates carry a marker, so leftovers of a killed refresh can be
recognised and :meth:`Swapper.discard` never drops anything else:

* PostgreSQL and MySQL: ``<db>__ds_new_<hex6>`` (temporary) and ``<db>__ds_old_<hex6>`` (previous);
* SQLite: ``.<file>.ds-new-<hex6>`` (temporary) and ``<file>.ds-old-<UTC time>`` (previous).
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from typing import ClassVar

from datasafe.errors import ConfigError
from datasafe.urls import DatabaseURL

#: Marks in the names of the temporary database and of the previous copy (server engines).
NEW_MARK = "__ds_new_"
OLD_MARK = "__ds_old_"


class Swapper(ABC):
    """Puts a freshly built database in the place of ``target``, atomically where the engine can.

    The life of one refresh: :meth:`temporary` names a database beside the target,
    :meth:`prepare` creates it empty, the caller restores a snapshot into it and calls
    :meth:`run_sql` for each post-restore script, then :meth:`swap` makes it the target. On any
    failure before the swap the caller calls :meth:`discard`; the target is never touched until
    :meth:`swap`, and :meth:`swap` leaves it as it was if it fails before the switch.
    """

    engine: ClassVar[str]

    def __init__(self, target: DatabaseURL) -> None:
        """``target`` is the environment's database; it need not exist yet."""
        if not target.database:
            raise ConfigError(f"{target} names no database to refresh")
        self.target = target

    @abstractmethod
    def target_exists(self) -> bool:
        """Whether the target database (file) exists now."""

    @abstractmethod
    def temporary(self) -> DatabaseURL:
        """A new, unique database next to the target that does not exist yet."""

    @abstractmethod
    def prepare(self, temp: DatabaseURL) -> None:
        """Create ``temp`` empty, with the target's encoding and collation where it exists.

        Raises:
            Refused: the user may not create it (missing privilege).
            ConnectionFailed: the server cannot be reached.
            DatabaseError: the server refused for another reason.
        """

    @abstractmethod
    def run_sql(self, temp: DatabaseURL, sql: str, name: str) -> None:
        """Run one post-restore script (any number of statements) in ``temp``.

        The script runs in one transaction where the engine allows it (PostgreSQL, SQLite; on
        MySQL statements that commit implicitly, such as DDL, cannot be rolled back).

        Raises:
            DatabaseError: the script failed; the message names ``name`` and the server's error.
        """

    @abstractmethod
    def swap(self, temp: DatabaseURL, *, keep_previous: bool) -> str | None:
        """Make ``temp`` the target; drop the previous target unless ``keep_previous``.

        Returns:
            The name (SQLite: path) of the previous copy when it still exists: kept on request,
            or left behind because dropping it failed (logged as a warning). None otherwise,
            and when there was no previous target.

        Raises:
            DatasafeError: the swap failed. Before the switch the target is as it was (and, on
            PostgreSQL, accepts connections again); ``temp`` is left for :meth:`discard`.
        """

    @abstractmethod
    def discard(self, temp: DatabaseURL) -> None:
        """Drop ``temp``; best effort (failures are logged) and a no-op when it is gone."""


def suffix() -> str:
    """Six random hex digits that make a refresh's database names unique."""
    return secrets.token_hex(3)


def fit(base: str, tail: str, limit: int, *, in_bytes: bool) -> str:
    """``base + tail`` with ``base`` shortened so the whole fits ``limit`` characters (UTF-8 bytes)."""

    def size(text: str) -> int:
        return len(text.encode()) if in_bytes else len(text)

    while base and size(base + tail) > limit:
        base = base[:-1]
    return base + tail


def first_line(text: str) -> str:
    """The first non-empty line of a server message."""
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), text.strip())
