"""The three kinds of target of a cross-engine restore: what each checks before anything is written,
how it loads rows in bulk, and how a failed restore leaves it.

* SQLite: a new file beside the target, one transaction, multi-row ``INSERT``s; renamed into
  place when complete (a failure or a kill leaves the old file, or none).
* PostgreSQL: one transaction for all of it (``--clean``'s drop, tables, ``COPY``, keys, identity
  values): a failure or a kill rolls back to the target as it was. A database the restore
  created is dropped again on failure.
* MySQL/MariaDB: DDL commits by itself there, so the target carries the restore mark of
  :mod:`datasafe.engines.restore_mark` (table ``_datasafe_restore``) from the first change to
  the last; a failure drops what the restore created.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sqlite3
import sys
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.dialects import mysql as sa_mysql

from datasafe.durable import sync_folder
from datasafe.engines.base import RestoreOptions
from datasafe.engines.mysql.codec import MysqlTsv
from datasafe.engines.postgres.codec import PgCopyText
from datasafe.engines.restore_mark import RestoreMark
from datasafe.errors import ConfigError, DatabaseError, NotFound, Refused
from datasafe.humanize import count as plural
from datasafe.snapshot.manifest import Manifest
from datasafe.transfer.cross.ddl import TargetSchema, TargetTable
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

#: the table that marks a restore in progress in a MySQL target (as the MySQL engine's restores)
MARK_TABLE = "_datasafe_restore"
#: MySQL: strict, so that a value the column cannot hold fails instead of being cut or zeroed
MYSQL_SQL_MODE = "STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"
_PG_TEXT = PgCopyText()
_TSV = MysqlTsv()
#: MySQL: load with LOAD DATA LOCAL INFILE where the server allows it (local_infile ON); else multi-row INSERTs
USE_LOAD_DATA = True
#: SQLite: rows per INSERT statement, at most
SQLITE_ROWS = 500


class Target(ABC):
    """One cross-engine target; :meth:`check` at planning time, the rest when the restore runs."""

    def __init__(self, url: DatabaseURL, schema: TargetSchema, manifest: Manifest, options: RestoreOptions) -> None:
        self.url, self.schema, self.manifest, self.options = url, schema, manifest, options
        self.exists, self.objects = True, 0

    @abstractmethod
    def check(self) -> list[str]:
        """Raise if the target cannot be restored into (not empty without --clean, marked, unreachable);
        the steps the restore will take there."""

    @abstractmethod
    def open(self) -> None:
        """Start: the connection, the database or file, --clean's drop, the mark."""

    @abstractmethod
    def execute(self, statements: list[str]) -> None: ...

    @abstractmethod
    def load(self, table: TargetTable, columns: list[Sequence[Any]]) -> None:
        """Insert one block of rows, given as its columns (the target's values, one per row; columns in
        the table entry's order)."""

    def loaded(self, table: TargetTable) -> None:
        """After the last block of ``table``: put in what :meth:`load` may have held back."""
        return None  # PostgreSQL and MySQL hold nothing back

    @abstractmethod
    def set_identity(self, table: TargetTable) -> None:
        """The identity column's next value: the recorded one, or one past the largest loaded."""

    @abstractmethod
    def finish(self) -> None:
        """Commit, and put the result in place."""

    @abstractmethod
    def abort(self) -> None:
        """Undo what :meth:`open` and the rest did (best effort; errors are logged)."""

    def _next(self, table: TargetTable, largest: Any) -> int:
        assert table.identity is not None
        recorded = table.identity[1] or 1
        return max(recorded, int(largest) + 1 if largest is not None else 1)


def make_target(url: DatabaseURL, schema: TargetSchema, manifest: Manifest, options: RestoreOptions) -> Target:
    kinds: dict[str, type[SqliteTarget | PostgresTarget | MysqlTarget]] = {
        "sqlite": SqliteTarget, "postgresql": PostgresTarget, "mysql": MysqlTarget}
    return kinds[url.engine](url, schema, manifest, options)


# -- SQLite -------------------------------------------------------------------------------------------
class SqliteTarget(Target):
    conn: sqlite3.Connection | None = None
    tmp: Path | None = None
    #: the most parameters a statement may have (SQLite's limit; 999 before SQLite 3.32)
    variables = 999

    def __init__(self, url: DatabaseURL, schema: TargetSchema, manifest: Manifest, options: RestoreOptions) -> None:
        super().__init__(url, schema, manifest, options)
        self.inserts: dict[tuple[str, int], str] = {}
        self.pending: list[Any] = []  #: parameters of the rows :meth:`load` held back

    @property
    def path(self) -> Path:
        if not self.url.database:
            raise ConfigError(f"target {self.url} names no file")
        return Path(self.url.database)

    def check(self) -> list[str]:
        path = self.path
        if not path.parent.is_dir():
            raise NotFound(f"folder {path.parent} of the target does not exist")
        self.exists = path.exists()
        if self.exists:
            try:
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                try:
                    self.objects = int(conn.execute(
                        "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchone()[0])
                finally:
                    conn.close()
            except sqlite3.DatabaseError as exc:
                raise DatabaseError(f"cannot read {path}: {exc}") from exc
        for suffix in ("-wal", "-journal"):
            side = path.with_name(path.name + suffix)
            if side.exists() and side.stat().st_size > 0:
                raise Refused(f"{side} exists: the target is open or was not closed cleanly; close the applications "
                              "using it before replacing it")
        if self.objects and not self.options.clean:
            raise Refused(f"target {path} is not empty ({plural(self.objects, 'object')}); use --clean to replace it")
        return [f"build a new SQLite file beside {path}, in one transaction"]

    def open(self) -> None:
        path = self.path
        self.tmp = path.with_name(f".{path.name}.datasafe-cross-{os.getpid()}-{secrets.token_hex(4)}")
        self.conn = sqlite3.connect(self.tmp, isolation_level=None)
        if sys.version_info >= (3, 11):
            self.variables = self.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self.conn.execute("PRAGMA journal_mode=OFF")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("BEGIN")

    def execute(self, statements: list[str]) -> None:
        assert self.conn is not None
        for s in statements:
            self.conn.execute(s)

    def load(self, table: TargetTable, columns: list[Sequence[Any]]) -> None:
        """INSERTs of :data:`SQLITE_ROWS` rows each: a statement per row (``executemany``) costs more
        than the insert itself (and, with AUTOINCREMENT, an update of ``sqlite_sequence``). The rows
        that do not fill a statement wait for the next block, or :meth:`loaded`."""
        assert self.conn is not None
        width = len(columns)
        rows = len(columns[0]) if columns else 0
        if not rows:
            return
        values: list[Any] = [None] * (rows * width)  # row by row, as the statements' parameters
        for i, column in enumerate(columns):
            values[i::width] = column
        if self.pending:
            values[:0] = self.pending
        per = max(1, min(SQLITE_ROWS, self.variables // width))
        step = per * width
        whole = len(values) // step * step
        if whole:
            insert = self._insert(table, per)
            for start in range(0, whole, step):
                self.conn.execute(insert, values[start:start + step])
        self.pending = values[whole:]

    def loaded(self, table: TargetTable) -> None:
        assert self.conn is not None
        if self.pending:
            self.conn.execute(self._insert(table, len(self.pending) // len(table.table.columns)), self.pending)
            self.pending = []

    def _insert(self, table: TargetTable, rows: int) -> str:
        key = (table.table.name, rows)
        if key not in self.inserts:
            t = table.table
            marks = "(" + ", ".join("?" for _ in t.columns) + ")"
            cols = ", ".join(self.schema.quote(c.name) for c in t.columns)
            self.inserts[key] = f"INSERT INTO {self.schema.quote(t.name)} ({cols}) VALUES " + ", ".join([marks] * rows)
        return self.inserts[key]

    def set_identity(self, table: TargetTable) -> None:
        assert self.conn is not None and table.identity is not None
        if len(table.entry.primary_key) != 1:
            return
        q = self.schema.quote
        largest = self.conn.execute(f"SELECT max({q(table.identity[0])}) FROM {q(table.table.name)}").fetchone()[0]
        self.conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table.table.name,))
        self.conn.execute("INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)",
                          (table.table.name, self._next(table, largest) - 1))

    def finish(self) -> None:
        assert self.conn is not None and self.tmp is not None
        self.conn.execute("COMMIT")
        self.conn.close()
        self.conn = None
        with open(self.tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self.tmp, self.path)
        sync_folder(self.path.parent)
        self.tmp = None

    def abort(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self.conn.close()
        if self.tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                self.tmp.unlink()


# -- PostgreSQL -----------------------------------------------------------------------------------------
class PostgresTarget(Target):
    conn: Any = None
    created = False

    def check(self) -> list[str]:
        from datasafe.engines.postgres import catalog, staging  # deferred: start-up time
        from datasafe.engines.postgres.connection import connect  # deferred: start-up time

        if not self.url.database:
            raise ConfigError(f"target {self.url} names no database")
        steps = []
        try:
            conn = connect(self.url)
        except NotFound:
            self.exists = False
            with connect(self.url, database="postgres") as conn:
                row = conn.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
                                   ).fetchone()
                if not row or not row[0]:
                    raise Refused(f"database {self.url.database!r} does not exist and {conn.info.user!r} may not "
                                  "create databases", hint="create it first (createdb)") from None
            return [f"create database {self.url.database}", "one transaction: create tables, COPY the rows, "
                    "create indexes and foreign keys, set identity values"]
        with conn, conn.cursor() as cur:
            self.objects = catalog.user_object_count(cur)
            mark = staging.read_mark(conn, self.url.database)
            if mark is not None and (mark.running() or (self.objects and not self.options.clean)):
                raise mark.refusal(self.url.database)
            if self.objects and not self.options.clean:
                raise Refused(f"target {self.url} is not empty ({plural(self.objects, 'object')}); use --clean to "
                              "replace its contents")
            if self.objects:
                steps.append(f"drop everything in schemas {', '.join(catalog.user_schemas(cur))}")
        return [*steps, "one transaction: create tables, COPY the rows, create indexes and foreign keys, "
                "set identity values"]

    def open(self) -> None:
        from psycopg import sql  # deferred: start-up time

        from datasafe.engines.postgres import catalog  # deferred: start-up time
        from datasafe.engines.postgres.connection import connect  # deferred: start-up time

        if not self.exists:
            with connect(self.url, database="postgres") as admin:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.url.database)))
            self.created = True
        self.conn = connect(self.url)
        self.conn.autocommit = False
        if self.options.clean:
            with self.conn.cursor() as cur:
                for schema in catalog.user_schemas(cur):
                    cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
                cur.execute("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'")
                for (ext,) in cur.fetchall():
                    cur.execute(sql.SQL("DROP EXTENSION IF EXISTS {} CASCADE").format(sql.Identifier(ext)))
                cur.execute("CREATE SCHEMA IF NOT EXISTS public")

    def execute(self, statements: list[str]) -> None:
        with self.conn.cursor() as cur:
            for s in statements:
                cur.execute(s)

    def load(self, table: TargetTable, columns: list[Sequence[Any]]) -> None:
        t = table.table
        cols = ", ".join(self.schema.quote(c.name) for c in t.columns)
        enc = _PG_TEXT.encode_cell
        data = b"".join(b"\t".join([enc(v) for v in row]) + b"\n" for row in zip(*columns, strict=True))
        with self.conn.cursor() as cur, cur.copy(f"COPY {self.schema.quote(t.name)} ({cols}) FROM STDIN") as cp:
            cp.write(data)

    def set_identity(self, table: TargetTable) -> None:
        assert table.identity is not None
        q = self.schema.quote
        col = table.identity[0]
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT max({q(col)}) FROM {q(table.table.name)}")
            largest = cur.fetchone()[0]
            cur.execute("SELECT setval(pg_get_serial_sequence(%s, %s), %s, false)",
                        (q(table.table.name), col, self._next(table, largest)))

    def finish(self) -> None:
        self.conn.commit()
        self.conn.close()
        self.conn = None

    def abort(self) -> None:
        from psycopg import sql  # deferred: start-up time

        from datasafe.engines.postgres.connection import connect  # deferred: start-up time

        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.rollback()
                self.conn.close()
        if self.created:
            try:
                with connect(self.url, database="postgres") as admin:
                    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.url.database)))
            except Exception as exc:  # the original error matters more
                log.error("could not drop %s after the failed restore: %s", self.url, exc)


# -- MySQL / MariaDB ------------------------------------------------------------------------------------
class MysqlTarget(Target):
    conn: Any = None
    created_db = False
    local_infile = False

    def _objects(self, conn: Any) -> tuple[bool, list[tuple[str, str]]]:
        from datasafe.engines.mysql.connection import query  # deferred: start-up time

        db = self.url.database
        exists = bool(query(conn, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (db,)))
        found = [(_text(n), "VIEW" if _text(k).endswith("VIEW") else "TABLE")
                 for n, k in query(conn, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                                         "WHERE TABLE_SCHEMA = %s", (db,))]
        for n, k in query(conn, "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
                                "WHERE ROUTINE_SCHEMA = %s", (db,)):
            found.append((_text(n), _text(k)))
        for (n,) in query(conn, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s", (db,)):
            found.append((_text(n), "EVENT"))
        return exists, found

    def check(self) -> list[str]:
        from datasafe.engines.mysql.connection import connect, query  # deferred: start-up time

        db = self.url.database
        if not db:
            raise ConfigError(f"target {self.url} names no database")
        conn = connect(self.url, database="")
        try:
            self.exists, found = self._objects(conn)
            mark_row = query(conn, "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                                   "AND TABLE_NAME = %s", (db, MARK_TABLE))
            self.objects = len([f for f in found if f[0] != MARK_TABLE])
            if mark_row:
                mark = RestoreMark.parse(_text(mark_row[0][0])) or \
                    RestoreMark("(unknown)", "?", db, "?", "?", 0)
                if mark.running() or (self.objects and not self.options.clean):
                    raise mark.refusal(db)
            self.local_infile = bool(int(query(conn, "SELECT @@local_infile")[0][0] or 0))
        finally:
            conn.close()
        if self.objects and not self.options.clean:
            raise Refused(f"target database {db} is not empty ({plural(self.objects, 'object')}); use --clean to "
                          "replace it")
        steps = [f"create database {db}"] if not self.exists else []
        if self.objects:
            steps.append(f"drop the {plural(self.objects, 'object')} of {db}")
        if self.local_infile and USE_LOAD_DATA:
            how = "LOAD DATA LOCAL INFILE (any warning fails the load)"
        else:
            how = "multi-row INSERTs in strict SQL mode" + ("" if self.local_infile else " (local_infile is OFF)")
        steps.append(f"create tables, then load the rows with {how}")
        return steps

    def open(self) -> None:
        from datasafe.engines.mysql.connection import connect, execute, q  # deferred: start-up time

        db = self.url.database
        if not self.exists:
            admin = connect(self.url, database="")
            try:
                execute(admin, f"CREATE DATABASE {q(db)} CHARACTER SET utf8mb4")
            finally:
                admin.close()
            self.created_db = True
        self.conn = connect(self.url, load=True, local_infile=self.local_infile and USE_LOAD_DATA)
        execute(self.conn, "SET SESSION sql_mode = %s", (MYSQL_SQL_MODE,))
        text = RestoreMark.new(self.manifest, db).text()
        execute(self.conn, f"CREATE TABLE IF NOT EXISTS {q(MARK_TABLE)} (id INT PRIMARY KEY) COMMENT = %s", (text,))
        execute(self.conn, f"ALTER TABLE {q(MARK_TABLE)} COMMENT = %s", (text,))
        if self.options.clean:
            self._drop_all()

    def _drop_all(self) -> None:
        from datasafe.engines.mysql.connection import execute, q  # deferred: start-up time

        _, found = self._objects(self.conn)
        for name, kind in found:
            if name != MARK_TABLE:
                execute(self.conn, f"DROP {kind} IF EXISTS {q(name)}")

    def execute(self, statements: list[str]) -> None:
        from datasafe.engines.mysql.connection import execute  # deferred: start-up time

        for s in statements:
            execute(self.conn, s)

    def load(self, table: TargetTable, columns: list[Sequence[Any]]) -> None:
        rows = list(zip(*columns, strict=True))
        if self.local_infile and USE_LOAD_DATA:
            self._load_data(table, rows)
            return
        t = table.table
        cols = ", ".join(self.schema.quote(c.name) for c in t.columns)
        marks = ", ".join("%s" for _ in t.columns)
        cur = self.conn.cursor()
        try:  # MySQLdb sends these as multi-row INSERTs, each up to max_allowed_packet
            cur.executemany(f"INSERT INTO {self.schema.quote(t.name)} ({cols}) VALUES ({marks})", rows)
        finally:
            cur.close()

    def _load_data(self, table: TargetTable, rows: list[tuple[Any, ...]]) -> None:
        """``LOAD DATA LOCAL INFILE`` of one block, written as mysql-tsv into a private temporary file.

        With LOCAL the server turns a value it cannot take into a warning rather than an error (it
        cannot stop the client's upload): any warning fails the load, as strict mode would."""
        from datasafe.engines.mysql.connection import execute, query  # deferred: start-up time

        q = self.schema.quote
        fields, sets, binary = [], [], []
        for i, (c, ct) in enumerate(zip(table.table.columns, table.types, strict=True)):
            if ct.kind in ("bytes", "geometry") or isinstance(c.type, sa_mysql.BIT):
                fields.append(f"@v{i}")
                sets.append(f"{q(c.name)} = " + (f"UNHEX(@v{i})" if ct.kind in ("bytes", "geometry")
                                                  else f"CAST(@v{i} AS UNSIGNED)"))
                binary.append(i)
            else:
                fields.append(q(c.name))
        with tempfile.NamedTemporaryFile(prefix="datasafe-cross-", suffix=".tsv") as fh:
            fh.write(b"".join(b"\t".join([_tsv(v) for v in row]) + b"\n" for row in rows))
            fh.flush()
            execute(self.conn, f"LOAD DATA LOCAL INFILE %s INTO TABLE {q(table.table.name)} CHARACTER SET utf8mb4 "
                               f"({', '.join(fields)})" + (f" SET {', '.join(sets)}" if sets else ""), (fh.name,))
        if self.conn.warning_count():
            first = query(self.conn, "SHOW WARNINGS LIMIT 1")[0]
            raise DatabaseError(f"loading {table.entry.name}: {_text(first[2])}")

    def set_identity(self, table: TargetTable) -> None:
        from datasafe.engines.mysql.connection import execute, query  # deferred: start-up time

        assert table.identity is not None
        q = self.schema.quote
        largest = query(self.conn, f"SELECT max({q(table.identity[0])}) FROM {q(table.table.name)}")[0][0]
        execute(self.conn, f"ALTER TABLE {q(table.table.name)} AUTO_INCREMENT = {self._next(table, largest):d}")

    def finish(self) -> None:
        from datasafe.engines.mysql.connection import execute, q  # deferred: start-up time

        execute(self.conn, f"DROP TABLE {q(MARK_TABLE)}")
        self.conn.close()
        self.conn = None

    def abort(self) -> None:
        from datasafe.engines.mysql.connection import execute, q  # deferred: start-up time

        try:
            if self.conn is None:
                return
            if self.created_db:
                execute(self.conn, f"DROP DATABASE {q(self.url.database)}")
            else:
                self._drop_all()  # what this restore created; the mark goes last
                execute(self.conn, f"DROP TABLE IF EXISTS {q(MARK_TABLE)}")
        except Exception as exc:  # the original error matters more; the mark stays if this fails
            log.error("could not clean up %s after the failed restore: %s", self.url, exc)
        finally:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


def _tsv(value: Any) -> bytes:
    """A value in mysql-tsv (bytes and BIT values as hexadecimal or digits, turned back by the SET clause)."""
    if value is None:
        return b"\\N"
    if isinstance(value, bytes):
        return value.hex().encode("ascii")
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, (int, float)):
        return repr(value).encode("ascii")
    return _TSV.encode_cell(str(value))


def _text(value: Any) -> str:
    """A MySQL result field as text (the connection returns bytes)."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
