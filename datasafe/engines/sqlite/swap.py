"""SQLite: the new copy is a file beside the target, renamed over it.

``os.replace`` is atomic on POSIX: whoever opens the path gets either the old or the new file, never
a missing or half-written one. A connection opened before the switch keeps reading the old file
until it is reopened.

A connection that *writes* to the old file after the switch would damage the new one: SQLite finds
its rollback journal and write-ahead log by the file's name, so the old file's journal or log
would be applied to the new file. The swap therefore refuses while the target shows signs of use
in that direction: a write transaction in progress (the write lock stays taken), a write-ahead log
(``-wal``) that remains after datasafe has checkpointed and closed the file (another process has it
open in WAL mode), or a rollback journal with a live header. An idle connection in rollback-journal
mode leaves no trace and cannot be detected: applications that write to the database must be
stopped for a refresh; readers need not be.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from pathlib import Path

from datasafe.durable import sync_folder
from datasafe.engines.swap import Swapper, suffix
from datasafe.errors import ConfigError, DatabaseError, NotFound, Refused
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

NEW_MARK = ".ds-new-"
OLD_MARK = ".ds-old-"
SIDECARS = ("-journal", "-wal", "-shm")
#: The first bytes of a rollback journal that still matters (SQLite zeroes them when it is done).
JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")
#: Seconds the swap waits for another connection's write transaction to end before refusing.
WRITER_WAIT = 2.0


def _side(path: Path, suffix_: str) -> Path:
    return path.with_name(path.name + suffix_)


class SqliteSwapper(Swapper):
    engine = "sqlite"

    def __init__(self, target: DatabaseURL) -> None:
        super().__init__(target)
        if target.database == ":memory:":
            raise ConfigError("an in-memory SQLite database cannot be refreshed")
        self.path = Path(target.database)

    def _check(self, temp: DatabaseURL) -> Path:
        path = Path(temp.database)
        if NEW_MARK not in path.name or path.parent.resolve() != self.path.parent.resolve():
            raise ConfigError(f"{temp} is not a temporary database of {self.target}")
        return path

    def target_exists(self) -> bool:
        return self.path.is_file()

    def temporary(self) -> DatabaseURL:
        for _ in range(20):
            path = self.path.with_name(f".{self.path.name}{NEW_MARK}{suffix()}")
            if not any(p.exists() for p in (path, *(_side(path, s) for s in SIDECARS))):
                return self.target.with_database(str(path))
        raise DatabaseError(f"cannot find an unused file name next to {self.path}")

    def prepare(self, temp: DatabaseURL) -> None:
        """Nothing to create (a restore builds the file); the folder must take new files."""
        self._check(temp)
        folder = self.path.parent
        if not folder.is_dir():
            raise NotFound(f"folder {folder} of {self.path} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise Refused(f"cannot create files in {folder}, where the new copy of {self.path.name} is built")

    def run_sql(self, temp: DatabaseURL, sql: str, name: str) -> None:
        path = self._check(temp)
        if not path.is_file():
            raise NotFound(f"temporary database {path} does not exist")
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            # executescript runs the text as it is: the transaction has to be part of it. The ";"
            # ends a last statement that has none.
            conn.executescript(f"BEGIN;\n{sql}\n;\nCOMMIT;")
            if conn.in_transaction:
                raise DatabaseError(f"post-restore script {name} failed: it ends inside a comment or a string")
        except sqlite3.Error as exc:
            raise DatabaseError(f"post-restore script {name} failed: {exc}") from exc
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()

    def swap(self, temp: DatabaseURL, *, keep_previous: bool) -> str | None:
        new = self._check(temp)
        if not new.is_file():
            raise NotFound(f"temporary database {new} does not exist")
        _settle(new)
        previous = None
        if self.path.exists():
            _settle(self.path)
            if keep_previous:
                previous = self._keep()
        try:
            with open(new, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(new, self.path)
        except OSError as exc:
            if previous is not None:
                previous.unlink(missing_ok=True)
            raise DatabaseError(f"cannot rename {new} to {self.path}: {exc.strerror or exc}") from exc
        sync_folder(self.path.parent)
        log.info("renamed %s to %s%s", new, self.path, f"; the previous file is {previous}" if previous else "")
        return str(previous) if previous is not None else None

    def _keep(self) -> Path:
        """The current file under a new name: a hard link where possible, else a consistent copy."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        previous = self.path.with_name(f"{self.path.name}{OLD_MARK}{stamp}")
        while previous.exists():
            previous = self.path.with_name(f"{self.path.name}{OLD_MARK}{stamp}-{suffix()}")
        try:
            os.link(self.path, previous)
            return previous
        except OSError as exc:
            log.info("cannot hard-link %s (%s): copying it", self.path, exc.strerror or exc)
        try:
            src = sqlite3.connect(self.path)
            dst = sqlite3.connect(previous)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
        except sqlite3.Error as exc:
            previous.unlink(missing_ok=True)
            raise DatabaseError(f"cannot keep a copy of {self.path} as {previous}: {exc}") from exc
        return previous

    def discard(self, temp: DatabaseURL) -> None:
        path = self._check(temp)
        for p in (path, *(_side(path, s) for s in SIDECARS)):
            try:
                p.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove %s: %s", p, exc.strerror or exc)


def _settle(path: Path) -> None:
    """Open and close ``path`` so its log is checkpointed and a crashed transaction rolled back, then
    refuse if another process still writes to it (see the module's docstring)."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=10)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # rolls back a crashed transaction
            wal = conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            conn.execute(f"PRAGMA busy_timeout = {int(WRITER_WAIT * 1000)}")
            try:
                conn.execute("BEGIN IMMEDIATE")  # the write lock: free unless a write transaction is open
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                raise Refused(f"another connection is writing to {path.name} ({exc}); stop the applications "
                              "writing to it before the refresh") from exc
            conn.execute("ROLLBACK")
            if wal:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.close()  # the last connection to close removes -wal and -shm
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot read SQLite database {path}: {exc}") from exc
    wal, shm, journal = (_side(path, s) for s in ("-wal", "-shm", "-journal"))
    if wal.exists():
        size = wal.stat().st_size
        state = f"holds {size} bytes not yet written to the database" if size else "is in use"
        raise Refused(f"{wal} {state}: another process has {path.name} open in WAL mode; "
                      "stop the applications using it before the refresh")
    if shm.exists():  # no connection in WAL mode without a -wal file: left over from a crash
        log.info("removing the stale %s", shm)
        with contextlib.suppress(FileNotFoundError):
            shm.unlink()
    if journal.exists():
        with open(journal, "rb") as fh:
            if fh.read(len(JOURNAL_MAGIC)) == JOURNAL_MAGIC:
                raise Refused(f"{journal} shows a write transaction in progress on {path.name}; "
                              "stop the applications writing to it before the refresh")


