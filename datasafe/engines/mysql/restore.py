"""Restoring a snapshot into a MySQL/MariaDB database.

Order: database (created if missing) -> tables -> rows -> views -> routines -> triggers -> events.
Rows are loaded with ``LOAD DATA LOCAL INFILE`` fed through a named pipe from the chunk being
verified, one transaction per chunk, or, where the server forbids local infile, with multi-row
INSERTs. On failure whatever the restore created is dropped again. While it runs, the target holds
a table ``_datasafe_restore`` that marks it as being restored (created first, dropped last), so a
restore killed with ``kill -9`` leaves a database that says what it is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import threading
from typing import Any

from datasafe import faultpoints
from datasafe.engines.base import RestoreOptions, RestorePlan
from datasafe.engines.mysql import catalog
from datasafe.engines.mysql.backup import SCHEMA_FORMAT
from datasafe.engines.mysql.connection import (
    CONNECT_FAILURE,
    Connection,
    Error,
    connect,
    db_error,
    error_code,
    execute,
    q,
    query,
)
from datasafe.engines.mysql.keys import DeferredKeys, split_keys
from datasafe.engines.restore_mark import RestoreMark
from datasafe.engines.split import Piece, PieceCounter, in_ranges, pieces
from datasafe.engines.workers import run_workers
from datasafe.errors import ConfigError, IntegrityError, NotFound, Refused
from datasafe.humanize import count as plural
from datasafe.snapshot.chunks import check_stored, read_chunk, read_whole
from datasafe.snapshot.manifest import Chunk, Manifest, TableEntry
from datasafe.storage.base import StorageBackend
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

#: "Incorrect table definition; there can be only one auto column and it must be defined as a key"
ER_WRONG_AUTO_KEY = 1075

INSERT_BATCH = 1000
#: the table that marks a restore in progress (see datasafe.engines.restore_mark)
MARK_TABLE = "_datasafe_restore"


def _objects(conn: Connection, db: str) -> dict[str, list[str]]:
    """Names of what ``db`` holds, by kind."""
    found: dict[str, list[str]] = {"table": [], "view": [], "procedure": [], "function": [], "event": []}
    for name, kind in query(conn, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                                  "WHERE TABLE_SCHEMA = %s", (db,)):
        found["view" if kind == "VIEW" else "table"].append(str(name))
    for name, kind in query(conn, "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
                                  "WHERE ROUTINE_SCHEMA = %s", (db,)):
        found[str(kind).lower()].append(str(name))
    for (name,) in query(conn, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s", (db,)):
        found["event"].append(str(name))
    return found


def plan(manifest: Manifest, target: DatabaseURL, options: RestoreOptions) -> RestorePlan:
    db = target.database
    if not db:
        raise ConfigError(f"target {target} names no database")
    tables = manifest.select_tables(options.tables)
    for t in tables:
        if t.encoding != catalog.ENCODING:
            raise IntegrityError(f"table {t.name} uses encoding {t.encoding!r}, which MySQL cannot load")
    conn = connect(target, database="")
    try:
        exists = bool(query(conn, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (db,)))
        objects = _objects(conn, db) if exists else {}
        mark = _read_mark(conn, db) if MARK_TABLE in objects.get("table", []) else None
        if mark is not None:
            objects["table"].remove(MARK_TABLE)
        count = sum(len(v) for v in objects.values())
        if mark is not None and (mark.running() or (count and not options.clean)):
            raise mark.refusal(db)
        local_infile = bool(int(query(conn, "SELECT @@local_infile")[0][0] or 0))
        steps: list[str] = []
        notes: list[str] = []
        if options.data_only:
            if not exists:
                raise NotFound(f"--data-only needs an existing database; {db} does not exist on {target}")
            for t in tables:
                if t.table not in objects["table"]:
                    raise NotFound(f"table {t.name} does not exist in {db}")
                if query(conn, f"SELECT 1 FROM {q(db)}.{q(t.table)} LIMIT 1"):
                    if not options.clean:
                        raise Refused(f"table {t.name} in {db} is not empty; use --clean to replace its rows")
                    steps.append(f"delete the rows of {t.name}")
        else:
            if count and not options.clean:
                raise Refused(f"target database {db} is not empty ({plural(count, 'object')}); use --clean to "
                              "replace it")
            if count:
                steps.append(f"check every stored chunk, then drop the {plural(count, 'object')} of {db}")
            if not exists:
                steps.append(f"create database {db}")
            steps.append(f"create {plural(len(tables), 'table')}")
    except Error as exc:
        raise db_error(f"inspecting target {target}", exc) from exc
    finally:
        conn.close()
    if not options.schema_only:
        how = "LOAD DATA LOCAL INFILE" if local_infile else "multi-row INSERT (the server disallows local_infile)"
        steps.append(f"load {plural(len(tables), 'table')}, {plural(sum(t.rows for t in tables), 'row')} with {how}"
                     + in_ranges(tables, options.jobs))
    if not options.data_only:
        if options.tables:
            steps.append("create the triggers of these tables")
            notes.append("--tables: views, routines and events are not restored")
        else:
            steps.append("create views, routines, triggers and events (definers replaced by the restoring user)")
    return RestorePlan(manifest, target, tables, steps, options, exists, count, notes,
                       state={"local_infile": local_infile, "objects": objects})


def _load_schema(manifest: Manifest, storage: StorageBackend) -> dict[str, Any]:
    part = next((p for p in manifest.schema_parts if p.format == SCHEMA_FORMAT), None)
    if part is None:
        raise IntegrityError(f"snapshot {manifest.snapshot_id} has no MySQL schema")
    data: dict[str, Any] = json.loads(read_whole(storage, part, label="schema"))
    return data


class _Undo:
    """What the restore created, to drop again if it fails."""

    def __init__(self, conn: Connection, target: DatabaseURL) -> None:
        self.conn, self.target, self.db = conn, target, target.database
        self.database = False
        self.marked = False
        self.items: list[tuple[str, str]] = []

    def run(self) -> None:
        try:
            try:
                self._drop(self.conn)
            except Error as exc:
                if error_code(exc) not in CONNECT_FAILURE:
                    raise
                # the failure was a lost connection (a server restart, a killed session): a new one
                conn = connect(self.target, database="")
                try:
                    self._drop(conn)
                finally:
                    conn.close()
        except Exception as exc:
            log.error("could not remove what the failed restore created in %s: %s", self.db, exc)

    def _drop(self, conn: Connection) -> None:
        if self.database:
            execute(conn, f"DROP DATABASE IF EXISTS {q(self.db)}")
            return
        execute(conn, "SET foreign_key_checks = 0")
        for kind, name in reversed(self.items):
            execute(conn, f"DROP {kind} IF EXISTS {q(self.db)}.{q(name)}")
        if self.marked:  # only once the rest is gone: a target left half-undone stays marked
            execute(conn, f"DROP TABLE IF EXISTS {q(self.db)}.{q(MARK_TABLE)}")


def _read_mark(conn: Connection, db: str) -> RestoreMark | None:
    rows = query(conn, "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                       "AND TABLE_NAME = %s", (db, MARK_TABLE))
    # a mark whose comment cannot be read (cut short) still marks an unfinished restore
    return (RestoreMark.parse(str(rows[0][0])) or RestoreMark("(unknown)", "?", db, "?", "?", 0)) if rows else None


def _mark(conn: Connection, db: str, manifest: Manifest) -> None:
    """Record the restore in progress in ``db`` before anything else changes there (see
    :mod:`datasafe.engines.restore_mark`); the last step of a restore drops the table."""
    text = RestoreMark.new(manifest, db).text()
    execute(conn, f"CREATE TABLE IF NOT EXISTS {q(db)}.{q(MARK_TABLE)} (id INT PRIMARY KEY) COMMENT = %s", (text,))
    execute(conn, f"ALTER TABLE {q(db)}.{q(MARK_TABLE)} COMMENT = %s", (text,))


def _create(conn: Connection, item: dict[str, Any]) -> None:
    """Run a stored definition under the sql_mode and character set it was created with."""
    settings = ["sql_mode = %s"]
    args: list[Any] = [item.get("sql_mode", "")]
    if "character_set_client" in item:
        settings += ["character_set_client = %s", "collation_connection = %s"]
        args += [item["character_set_client"], item["collation_connection"]]
    if "time_zone" in item:
        settings.append("time_zone = %s")
        args.append(item["time_zone"])
    execute(conn, "SET " + ", ".join(f"SESSION {s}" for s in settings), tuple(args))
    try:
        execute(conn, item["sql"])
    finally:
        execute(conn, "SET NAMES utf8mb4")
        execute(conn, "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', "
                      "SESSION time_zone = '+00:00'")


def restore(p: RestorePlan, storage: StorageBackend) -> None:
    options, db = p.options, p.target.database
    schema = _load_schema(p.manifest, storage)
    chosen = {t.table for t in p.tables}
    if options.clean and not options.schema_only:
        for t in p.tables:
            for chunk in t.chunks:
                check_stored(storage, chunk, label=f"{t.name} {chunk.path}")
    conn = connect(p.target, database="", load=True, local_infile=True)
    undo = _Undo(conn, p.target)
    step = "preparing"
    try:
        if not p.target_exists:
            step = "creating the database"
            execute(conn, f"CREATE DATABASE {q(db)} CHARACTER SET {schema['charset']} COLLATE {schema['collation']}")
            undo.database = True
        step = "marking the target as being restored"
        _mark(conn, db, p.manifest)
        undo.marked = True
        faultpoints.reach("restore.created")
        if options.data_only:
            step = "loading rows"
            undo.marked = False  # chunks already committed stay: the mark says the rows are incomplete
            _data_only(conn, p, storage)
            _unmark(conn, db)
            return
        if p.target_exists and p.target_objects:
            step = "dropping the objects of the target"
            _drop_all(conn, db, p.state["objects"])
        execute(conn, f"USE {q(db)}")
        deferred: dict[str, DeferredKeys] = {}
        for item in schema["tables"]:
            if item["name"] in chosen or not options.tables:
                step = f"creating table {item['name']}"
                deferred[item["name"]] = _create_table(conn, item["sql"], defer=not options.schema_only)
                undo.items.append(("TABLE", item["name"]))
        if not options.schema_only:
            step = "loading rows"
            _load_tables(p, storage, deferred, _serial_tables(conn, schema))
        step = "adding foreign keys"
        for name, keys in deferred.items():
            if keys.foreign:
                execute(conn, f"ALTER TABLE {q(name)} " + ", ".join(f"ADD {k}" for k in keys.foreign))
        if not options.tables:
            _views(conn, schema["views"], undo)
            for item in schema["routines"]:
                step = f"creating {item['kind'].lower()} {item['name']}"
                _create(conn, item)
                undo.items.append((item["kind"], item["name"]))
        for item in schema["triggers"]:
            if item["table"] in chosen:
                step = f"creating trigger {item['name']}"
                _create(conn, item)
        if not options.tables:
            for item in schema["events"]:
                step = f"creating event {item['name']}"
                _create(conn, item)
                undo.items.append(("EVENT", item["name"]))
        faultpoints.reach("restore.finish")
        step = "removing the restore mark"
        _unmark(conn, db)
    except Error as exc:
        undo.run()
        raise db_error(f"restoring into {p.target} failed while {step}", exc) from exc
    except BaseException:
        undo.run()
        raise
    finally:
        conn.close()


def _unmark(conn: Connection, db: str) -> None:
    execute(conn, f"DROP TABLE IF EXISTS {q(db)}.{q(MARK_TABLE)}")


def _create_table(conn: Connection, sql: str, *, defer: bool) -> DeferredKeys:
    """Create a table; with ``defer``, without its secondary keys, which are added after the load."""
    keys = split_keys(sql) if defer else DeferredKeys(sql)
    try:
        execute(conn, keys.create)
    except Error as exc:
        if keys.create == sql or error_code(exc) != ER_WRONG_AUTO_KEY:
            raise
        # the AUTO_INCREMENT column's only key was a secondary one: create the table as it was
        execute(conn, sql)
        return DeferredKeys(sql)
    return keys


#: a column definition with AUTO_INCREMENT (not the table option ``AUTO_INCREMENT=<n>``)
_AUTO_COLUMN = re.compile(r"^\s*`.*\sAUTO_INCREMENT\b(?!=)", re.M)


def _serial_tables(conn: Connection, schema: dict[str, Any]) -> set[str]:
    """Tables whose key ranges are loaded one after the other: with ``innodb_autoinc_lock_mode``
    below 2 every LOAD DATA into a table with an AUTO_INCREMENT column holds the table's AUTO-INC
    lock to its end, so parallel loads would only queue (and could time out) behind each other."""
    try:
        mode = int(query(conn, "SELECT @@innodb_autoinc_lock_mode")[0][0])
    except Error:
        mode = 1
    if mode >= 2:
        return set()
    return {str(item["name"]) for item in schema["tables"] if _AUTO_COLUMN.search(str(item["sql"]))}


def _load_tables(p: RestorePlan, storage: StorageBackend, deferred: dict[str, DeferredKeys],
                 serial: set[str]) -> None:
    """Load tables with ``--jobs`` connections, largest first, a split table's key ranges over
    several of them; the connection that loads a table's last piece builds its keys after."""
    done = PieceCounter()

    def work(conn: Connection, piece: Piece, stop: threading.Event) -> None:
        if stop.is_set():
            return
        _load_table(conn, piece, storage, p)
        keys = deferred.get(piece.table.table)
        if keys is not None and done.finished(piece):
            for clause in keys.alter_clauses():
                execute(conn, f"ALTER TABLE {q(piece.table.table)} {clause}")
        faultpoints.reach("restore.load")

    def map_error(exc: Exception) -> BaseException:
        return db_error(f"loading into {p.target}", exc) if isinstance(exc, Error) else exc

    # the key ranges of a table hold rows in key order: the re-read of verify --deep needs no load order
    ordered = sorted(p.tables, key=lambda t: -t.raw_size)
    run_workers(p.options.jobs, pieces(ordered, p.options.jobs, whole_tables={t.name for t in ordered
                                                                             if t.table in serial}),
                lambda: connect(p.target, load=True, local_infile=True), work,
                close=lambda conn: conn.close(), map_error=map_error)


def _drop_all(conn: Connection, db: str, objects: dict[str, list[str]]) -> None:
    execute(conn, "SET foreign_key_checks = 0")
    for kind, names in objects.items():
        for name in names:
            execute(conn, f"DROP {kind.upper()} IF EXISTS {q(db)}.{q(name)}")


def _views(conn: Connection, views: list[dict[str, Any]], undo: _Undo) -> None:
    """Create views, retrying those that depend on a view not created yet."""
    pending = list(views)
    while pending:
        failed: list[dict[str, Any]] = []
        last: Exception | None = None
        for item in pending:
            try:
                _create(conn, item)
                undo.items.append(("VIEW", item["name"]))
            except Error as exc:
                failed.append(item)
                last = exc
        if len(failed) == len(pending):
            assert last is not None
            raise db_error(f"creating view {failed[0]['name']} failed", last) from last
        pending = failed


def _data_only(conn: Connection, p: RestorePlan, storage: StorageBackend) -> None:
    """Rows into existing tables; their triggers are dropped meanwhile and re-created afterwards."""
    db = p.target.database
    execute(conn, f"USE {q(db)}")
    names = [t.table for t in p.tables]
    triggers: list[dict[str, Any]] = []
    for (name,) in query(conn, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s "
                               f"AND EVENT_OBJECT_TABLE IN ({', '.join(['%s'] * len(names))}) "
                               "ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER", (db, *names)):
        row = query(conn, f"SHOW CREATE TRIGGER {q(str(name))}")[0]
        triggers.append({"name": str(name), "sql": str(row[2]), "sql_mode": str(row[1]),
                         "character_set_client": str(row[3]), "collation_connection": str(row[4])})
    for item in triggers:
        execute(conn, f"DROP TRIGGER {q(item['name'])}")
    try:
        for t in p.tables:
            if p.options.clean:
                execute(conn, f"DELETE FROM {q(t.table)}")
            _load_table(conn, Piece(t, list(t.chunks)), storage, p)
    finally:
        for item in triggers:
            _create(conn, item)


_UNESCAPE = re.compile(rb"\\(.)", re.S)
_UNESCAPED = {b"t": b"\t", b"n": b"\n", b"r": b"\r", b"0": b"\0", b"\\": b"\\", b"N": b"\\N"}


def _field(value: bytes) -> bytes | None:
    if value == b"\\N":
        return None
    if b"\\" in value:
        return _UNESCAPE.sub(lambda m: _UNESCAPED.get(m.group(1), m.group(1)), value)
    return value


def _load_table(conn: Connection, piece: Piece, storage: StorageBackend, p: RestorePlan) -> None:
    """Load the chunks of ``piece``, one transaction per chunk."""
    t, progress, key = piece.table, p.options.progress, piece.label
    progress.start(key, key, piece.raw_size)
    targets = [catalog.load_target(c, f"@v{i}") for i, c in enumerate(t.columns)]
    for chunk in piece.chunks:
        label = f"{t.name} {chunk.path}"
        execute(conn, "START TRANSACTION")
        try:
            if p.state["local_infile"]:
                loaded = _load_infile(conn, t, targets, storage, chunk, label)
            else:
                loaded = _load_insert(conn, t, targets, storage, chunk, label)
            # LOAD DATA LOCAL skips a row whose key is taken (with a warning), rather than failing
            if loaded != chunk.rows:
                raise IntegrityError(f"chunk {label}: the server loaded {loaded} rows, the manifest says {chunk.rows}")
        except BaseException:
            with contextlib.suppress(Error):
                execute(conn, "ROLLBACK")
            raise
        execute(conn, "COMMIT")
        progress.advance(key, rows=chunk.rows, nbytes=chunk.raw_size)
    progress.finish(key)


def _load_infile(conn: Connection, t: TableEntry, targets: list[tuple[str, str | None]], storage: StorageBackend,
                 chunk: Chunk, label: str) -> int:
    """LOAD DATA LOCAL INFILE from a named pipe a thread fills with the verified chunk; returns
    the rows the server loaded."""
    sets = [s for _, s in targets if s]
    sql_text = (f"LOAD DATA LOCAL INFILE %s INTO TABLE {q(t.table)} CHARACTER SET utf8mb4 "
                "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
                f"({', '.join(target for target, _ in targets)})" + (f" SET {', '.join(sets)}" if sets else ""))
    with tempfile.TemporaryDirectory(prefix="datasafe-mysql-") as tmp:
        fifo = os.path.join(tmp, "rows")
        os.mkfifo(fifo, 0o600)
        errors: list[BaseException] = []

        def feed() -> None:
            try:
                with open(fifo, "wb") as out:
                    for block in read_chunk(storage, chunk, label=label, count_rows=True):
                        out.write(block)
            except BaseException as exc:
                errors.append(exc)

        th = threading.Thread(target=feed, name="datasafe-mysql-feed", daemon=True)
        th.start()
        cur = conn.cursor()
        try:
            cur.execute(sql_text, (fifo,))
            loaded = int(cur.rowcount)  # the rows the server took (read before the cursor closes)
        except BaseException:
            # unblock the feeder if the server stopped reading
            with contextlib.suppress(OSError):
                fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
                os.close(fd)
            th.join(5)
            if errors and isinstance(errors[0], IntegrityError):
                raise errors[0] from None
            raise
        finally:
            cur.close()
        th.join()
    if errors:
        raise errors[0]
    return loaded


def _load_insert(conn: Connection, t: TableEntry, targets: list[tuple[str, str | None]], storage: StorageBackend,
                 chunk: Chunk, label: str) -> int:
    values: list[str] = []
    for _target, setter in targets:
        values.append(setter.split(" = ", 1)[1].replace(f"@v{len(values)}", "%s") if setter else "%s")
    sql_text = (f"INSERT INTO {q(t.table)} ({', '.join(q(c.name) for c in t.columns)}) "
                f"VALUES ({', '.join(values)})")
    blocks = read_chunk(storage, chunk, label=label, count_rows=True)
    rest = b""
    loaded = 0
    cur = conn.cursor()
    try:
        for block in blocks:
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            rows = [[_field(v) for v in line.split(b"\t")] for line in lines]
            for i in range(0, len(rows), INSERT_BATCH):
                cur.executemany(sql_text, rows[i: i + INSERT_BATCH])
                loaded += max(cur.rowcount, 0)
    except Error:
        for _ in blocks:  # a damaged chunk's integrity error names the chunk: let it win
            pass
        raise
    finally:
        cur.close()
    if rest:
        raise IntegrityError(f"chunk {label} ends inside a row")
    return loaded
