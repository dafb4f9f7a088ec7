"""Reading a MySQL/MariaDB database into a snapshot.

One connection takes ``FLUSH TABLES WITH READ LOCK``; while it holds, the catalog and every
definition are read and each worker connection starts ``WITH CONSISTENT SNAPSHOT``, and the
binary log position is recorded; then the lock is released and the workers read the tables.
Without the RELOAD privilege a single connection's consistent snapshot is used instead. An InnoDB
table larger than the split threshold is read as primary-key ranges (:mod:`.ranges`), each by
whichever snapshot connection is free.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from typing import Any

from datasafe.engines.base import BackupOptions, BackupResult, write_table
from datasafe.engines.mysql import catalog, ranges
from datasafe.engines.mysql.connection import (
    ACCESS_DENIED,
    SESSION_SETTINGS,
    Connection,
    Error,
    connect,
    db_error,
    error_code,
    execute,
    q,
    query,
    stream_cursor,
)
from datasafe.engines.split import Part, RangeCollector, range_count
from datasafe.engines.workers import run_workers
from datasafe.errors import DatabaseError, Interrupted, NotFound
from datasafe.humanize import count as plural
from datasafe.snapshot.manifest import SchemaPart, TableEntry
from datasafe.snapshot.repository import SnapshotWriter
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

SCHEMA_FORMAT = "mysql-schema-json"
FETCH = 5000


def _start_snapshot(conn: Connection) -> None:
    execute(conn, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    execute(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT")


def _positions(conn: Connection) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        cur = conn.cursor()
        cur.execute("SHOW MASTER STATUS")
        row = cur.fetchone()
        cur.close()
        if row:
            out["binlog_file"] = row[0].decode() if isinstance(row[0], bytes) else row[0]
            out["binlog_position"] = int(row[1])
    except Error as exc:
        log.debug("SHOW MASTER STATUS failed: %s", exc)
    for var in ("gtid_binlog_pos", "gtid_executed"):
        try:
            value = query(conn, f"SELECT @@{var}")[0][0]
        except Error:
            continue
        if value is not None and str(value) != "":  # empty: no GTIDs (an empty field tells nothing)
            out[var] = str(value)
    return out


def backup(url: DatabaseURL, snapshot: SnapshotWriter, options: BackupOptions) -> BackupResult:
    if not url.database:
        raise NotFound(f"{url} names no database")
    db = url.database
    main = connect(url)
    workers: list[Connection] = []
    try:
        try:
            version = str(query(main, "SELECT VERSION()")[0][0])
            locked = True
            try:
                execute(main, "FLUSH TABLES WITH READ LOCK")
            except Error as exc:
                if error_code(exc) not in ACCESS_DENIED:
                    raise
                locked = False
                log.warning("no RELOAD privilege to lock %s: using one connection with a consistent snapshot "
                            "(--jobs ignored; the binary log position is not exact)", db)
            if locked:
                for _ in range(max(1, options.jobs)):
                    conn = connect(url)
                    workers.append(conn)
                    _start_snapshot(conn)
            else:
                _start_snapshot(main)
                workers.append(main)
            consistency: dict[str, Any] = {
                "method": "flush tables with read lock + consistent snapshot" if locked else "consistent snapshot",
                "isolation": "repeatable read", "connections": len(workers), **_positions(main)}
            found = catalog.tables(main, db)
            entries = [catalog.entry(main, db, name) for name, _engine, _size in found]
            schema = catalog.schema(main, db, [name for name, _engine, _size in found])
            nontx = catalog.non_transactional(main, db)
            skipped = catalog.skipped_tables(main, db)
            if locked:
                execute(main, "UNLOCK TABLES")
            parts = _parts(main, entries, found, options, len(workers))
        except Error as exc:
            raise db_error(f"reading the catalog of {url}", exc) from exc
        if nontx:
            log.warning("non-transactional tables are not read consistently with the others: %s", ", ".join(nontx))
        if skipped:
            log.warning("not backed up (not plain tables): %s", ", ".join(skipped))
        split = sorted({p.entry.name for p in parts if p.count > 1})
        log.info("reading %s of %s with %s%s", plural(len(entries), "table"), db, plural(len(workers), "connection"),
                 f" ({', '.join(split)} in ranges)" if split else "")
        _dump(workers, parts, snapshot, options)
        part = _store_schema(schema, snapshot, options)
    finally:
        for conn in {id(c): c for c in [main, *workers]}.values():
            with contextlib.suppress(Error):
                conn.close()
    return BackupResult(
        server_version=version, database=db, consistency=consistency, tables=entries, schema_parts=[part],
        settings=dict(SESSION_SETTINGS),
        extra={"charset": schema["charset"], "collation": schema["collation"], "non_transactional": nontx,
               "skipped": skipped},
    )


def _store_schema(schema: dict[str, Any], snapshot: SnapshotWriter, options: BackupOptions) -> SchemaPart:
    writer = snapshot.blob_writer("schema.json", options.compression)
    try:
        writer.write(json.dumps(schema, ensure_ascii=False, indent=1).encode())
        chunk = writer.close()[0]
    except BaseException:
        writer.abort()
        raise
    return SchemaPart(name="schema", format=SCHEMA_FORMAT, **chunk.model_dump())


def dump_rows(conn: Connection, entry: TableEntry, write: Any, stop: threading.Event | None = None,
              where: str = "", args: list[Any] | None = None) -> None:
    """Stream the rows of ``entry`` (only those ``where`` selects, if given) in mysql-tsv to
    ``write`` in blocks of whole lines, in key order."""
    if not entry.columns:
        return
    statement = catalog.select_sql(entry)
    if where:
        order = f" ORDER BY {', '.join(q(c) for c in entry.primary_key)}"
        if not entry.primary_key or not statement.endswith(order):
            raise ValueError(f"table {entry.name} has no primary key to read ranges of")
        # formatted with the arguments by the driver: a % in a name must be doubled
        statement = f"{statement[:-len(order)].replace('%', '%%')} WHERE {where}{order.replace('%', '%%')}"
    cur = stream_cursor(conn)
    try:
        cur.execute(statement, args or None)
        join = b"\n".join
        while True:
            rows = cur.fetchmany(FETCH)
            if not rows:
                break
            write(join([r[0] for r in rows]) + b"\n")
            if stop is not None and stop.is_set():
                raise Interrupted("backup stopped")
    finally:
        cur.close()


def _parts(conn: Connection, entries: list[TableEntry], found: list[tuple[str, str, int]], options: BackupOptions,
           connections: int) -> list[Part]:
    """The work items, largest table first: an InnoDB table above the split threshold with a usable
    primary key as key ranges (when more than one connection reads), every other table whole."""
    out: list[Part] = []
    size = {e.table: nbytes for e, (_name, _engine, nbytes) in zip(entries, found, strict=True)}
    for ordinal, (entry, (_name, engine, nbytes)) in enumerate(zip(entries, found, strict=True)):
        count = range_count(nbytes, options.split_larger_than) if connections > 1 else 1
        kinds = ranges.key_kinds(entry) if count > 1 and engine.lower() in ranges.TRANSACTIONAL else None
        cuts = ranges.boundaries(conn, entry, kinds, count) if kinds and entry.columns else []
        if not cuts:
            out.append(Part(ordinal, entry, estimate=nbytes))
            continue
        bounds: list[list[Any] | None] = [None, *cuts, None]
        count = len(bounds) - 1
        out += [Part(ordinal, entry, i, count, bounds[i], bounds[i + 1], nbytes // count) for i in range(count)]
        log.debug("%s: %d primary-key ranges", entry.name, count)
    return sorted(out, key=lambda p: (-size[p.entry.table], p.ordinal, p.index))


def _dump(workers: list[Connection], parts: list[Part], snapshot: SnapshotWriter, options: BackupOptions) -> None:
    """Read tables (and ranges of split tables), largest first, one thread per snapshot connection;
    the first error stops all."""
    free = list(workers)  # connections already inside the shared snapshot; handed out once each
    lock = threading.Lock()
    collected = RangeCollector()

    def take() -> Connection:
        with lock:
            return free.pop()

    def one(conn: Connection, part: Part, stop: threading.Event) -> None:
        entry = part.entry
        where, args = ("", []) if part.count == 1 else ranges.range_condition(
            entry, ranges.key_kinds(entry) or [], part.start, part.end)

        def fill(write: Any) -> None:
            try:
                dump_rows(conn, entry, write, stop, where, args)
            except Error as exc:
                raise db_error(f"reading table {part.label}", exc) from exc

        if part.count == 1:
            write_table(snapshot, part.ordinal, entry, options, fill, estimate=part.estimate, stop=stop)
        else:
            collected.write(snapshot, part, options, fill, stop)

    def map_error(exc: Exception) -> BaseException:
        return db_error("reading the database", exc) if isinstance(exc, Error) else exc

    try:
        run_workers(len(workers), parts, take, one,
                    close=lambda conn: None,  # closed by backup() with the others
                    finish=lambda conn: execute(conn, "COMMIT"), map_error=map_error)
    except DatabaseError as err:
        if "definition has changed" in str(err):
            raise DatabaseError(f"{err} (a table was altered during the backup; run it again)") from err
        raise
    collected.record(parts, ranges.SPLIT_BY)
