"""Reading a PostgreSQL database into a snapshot.

One REPEATABLE READ, READ ONLY transaction exports its snapshot; every worker connection and
pg_dump import it, so schema and all tables come from the same instant. Data leaves the server
through ``COPY ... TO STDOUT`` and flows, unparsed, into the chunk writer. A table larger than
the split threshold is read as ranges of heap pages (TID range scans, PostgreSQL 14 and later),
each by whichever worker is free, under the same snapshot (see :mod:`datasafe.engines.split`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from datasafe.engines.base import BackupOptions, BackupResult, write_table
from datasafe.engines.postgres import catalog
from datasafe.engines.postgres.catalog import CatalogTable
from datasafe.engines.postgres.connection import (
    SESSION_SETTINGS,
    column_list,
    connect,
    conninfo,
    copy_out,
    db_error,
    qualified,
    quote_ident,
    tool_env,
)
from datasafe.engines.postgres.options import PostgresOptions
from datasafe.engines.postgres.tools import find_tool, finish_tool, start_tool
from datasafe.engines.split import Part, RangeCollector, range_count
from datasafe.engines.workers import run_workers
from datasafe.errors import DatabaseError
from datasafe.humanize import count as plural
from datasafe.snapshot.manifest import SchemaPart, TableEntry
from datasafe.snapshot.repository import SnapshotWriter
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

SCHEMA_FORMAT = "pg_dump-custom"
LOCK_TIMEOUT = "60s"
#: the first server version with TID range scans (``WHERE ctid >= ... AND ctid < ...`` reads only those pages)
TID_RANGE_SCANS = 140000
#: how the manifest names the ranges of a table split by heap pages
SPLIT_BY = "ctid"


def backup(url: DatabaseURL, snapshot: SnapshotWriter, options: BackupOptions) -> BackupResult:
    main = connect(url)
    tmpdir = tempfile.TemporaryDirectory(prefix="datasafe-pg-")
    proc = None
    try:
        cur = main.cursor()
        try:
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.execute("""SELECT pg_export_snapshot(), current_setting('server_version'),
                current_setting('server_version_num')::int, pg_is_in_recovery(), current_database(),
                txid_current_snapshot()::text,
                (SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database())""")
            snap_id, version, version_num, recovery, dbname, txsnap, encoding = cur.fetchone()  # type: ignore[misc]
            cur.execute("SELECT pg_last_wal_replay_lsn()::text" if recovery else "SELECT pg_current_wal_lsn()::text")
            lsn = cur.fetchone()[0]  # type: ignore[index]
            tool = find_tool("pg_dump", PostgresOptions.of(options).pg_bin, version_num // 10000)
            tables = catalog.tables(cur)
            _lock(cur, tables)
            cur.execute("SELECT current_setting('block_size')::int")
            block_size = int(cur.fetchone()[0])  # type: ignore[index]
            sequences = catalog.sequences(cur)
            sequence_owners = _sequence_owners(cur)
            toc = catalog.toc_map(cur)
            matviews = catalog.populated_matviews(cur)
        except psycopg.Error as exc:
            raise db_error(f"reading the catalog of {url}", exc) from exc
        schema_file = os.path.join(tmpdir.name, "schema.pgdump")
        proc = start_tool(
            [tool.path, "--schema-only", "--format=custom", "--compress=0", f"--snapshot={snap_id}",
             f"--file={schema_file}", f"--dbname={conninfo(url)}"],
            None, env=tool_env(url, tmpdir.name),
        )
        parts = _parts(tables, options, version_num, block_size)
        split = sorted({p.entry.name for p in parts if p.count > 1})
        log.info("reading %s of %s with %s under snapshot %s%s", plural(len(tables), "table"), dbname,
                 plural(min(options.jobs, max(1, len(parts))), "job"), snap_id,
                 f" ({', '.join(split)} in ranges)" if split else "")
        _dump_tables(url, snap_id, parts, snapshot, options)
        finish_tool(proc, "pg_dump --schema-only")
        proc = None
        part = _store_schema(schema_file, snapshot, options)
        main.execute("COMMIT")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        main.close()
        tmpdir.cleanup()
    return BackupResult(
        server_version=version,
        database=dbname,
        consistency={"snapshot": snap_id, "lsn": lsn, "txid_snapshot": txsnap, "isolation": "repeatable read"},
        tables=[t.entry for t in tables],
        schema_parts=[part],
        sequences=sequences,
        settings=dict(SESSION_SETTINGS),
        extra={"pg_dump_version": tool.version, "encoding": encoding, "matviews": matviews,
               "sequence_owners": sequence_owners, "server_version_num": version_num, "toc": toc},
    )


def _lock(cur: psycopg.Cursor[Any], tables: list[CatalogTable]) -> None:
    """ACCESS SHARE locks (as pg_dump takes) so no table is dropped or altered mid-backup."""
    cur.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
    for t in tables:
        try:
            cur.execute(f"LOCK TABLE {t.sql_name} IN ACCESS SHARE MODE")
        except psycopg.errors.LockNotAvailable as exc:
            raise DatabaseError(
                f"could not lock table {t.entry.name} within {LOCK_TIMEOUT}: a schema change holds it"
            ) from exc


def _sequence_owners(cur: psycopg.Cursor[Any]) -> dict[str, str]:
    cur.execute("""
        SELECT sn.nspname || '.' || s.relname, tn.nspname || '.' || t.relname
        FROM pg_depend d
        JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        JOIN pg_namespace sn ON sn.oid = s.relnamespace
        JOIN pg_class t ON t.oid = d.refobjid
        JOIN pg_namespace tn ON tn.oid = t.relnamespace
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
          AND d.deptype IN ('a', 'i')""")
    return {s: t for s, t in cur.fetchall()}


def _store_schema(path: str, snapshot: SnapshotWriter, options: BackupOptions) -> SchemaPart:
    writer = snapshot.blob_writer("schema.pgdump", options.compression)
    try:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                writer.write(block)
        chunk = writer.close()[0]
    except BaseException:
        writer.abort()
        raise
    return SchemaPart(name="schema", format=SCHEMA_FORMAT, **chunk.model_dump())


def _parts(tables: list[CatalogTable], options: BackupOptions, version_num: int, block_size: int) -> list[Part]:
    """The work items, largest table first: a table above the split threshold as ranges of its heap
    pages (the last range open-ended, so rows on pages added since the size was read are not
    missed), every other table whole."""
    out: list[Part] = []
    for ordinal, t in enumerate(tables):
        pages = t.est_bytes // block_size
        count = range_count(t.est_bytes, options.split_larger_than) if version_num >= TID_RANGE_SCANS else 1
        count = min(count, pages) if t.entry.columns else 1
        if count <= 1:
            out.append(Part(ordinal, t.entry, estimate=t.est_bytes))
            continue
        step = -(-pages // count)
        bounds: list[list[Any] | None] = [None, *([f"({page},0)"] for page in range(step, pages, step)), None]
        count = len(bounds) - 1
        out += [Part(ordinal, t.entry, i, count, bounds[i], bounds[i + 1], t.est_bytes // count)
                for i in range(count)]
    size = {id(t.entry): t.est_bytes for t in tables}
    return sorted(out, key=lambda p: (-size[id(p.entry)], p.ordinal, p.index))


def _dump_tables(url: DatabaseURL, snap_id: str, parts: list[Part], snapshot: SnapshotWriter,
                 options: BackupOptions) -> None:
    """Copy tables (and ranges of split tables) out with ``jobs`` connections sharing the exported
    snapshot, largest table first."""
    ranges = RangeCollector()

    def open_connection() -> psycopg.Connection[Any]:
        conn = connect(url)
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snap_id)))
        except BaseException:
            conn.close()
            raise
        return conn

    def work(conn: psycopg.Connection[Any], part: Part, stop: threading.Event) -> None:
        _copy_out(conn, part, snapshot, options, ranges, stop)

    run_workers(options.jobs, parts, open_connection, work,
                close=lambda conn: conn.close(), finish=lambda conn: conn.execute("COMMIT"),
                map_error=_mapper(f"reading {url}"))
    ranges.record(parts, SPLIT_BY)


def _mapper(what: str) -> Callable[[Exception], BaseException]:
    def map_error(exc: Exception) -> BaseException:
        return db_error(what, exc) if isinstance(exc, psycopg.Error) else exc

    return map_error


def copy_statement(entry: TableEntry, start: list[Any] | None = None, end: list[Any] | None = None) -> str:
    """The COPY that reads ``entry``, or only the rows on the heap pages from ``start`` up to ``end``
    (CTIDs ``(page,0)``; None: open), in heap order either way."""
    name = qualified(entry.schema_name or "public", entry.table)
    if start is None and end is None:
        return f"COPY {name}{column_list(entry)} TO STDOUT"
    cols = ", ".join(quote_ident(c.name) for c in entry.columns)
    where = [f"ctid {op} '{_ctid(bound)}'::tid" for op, bound in ((">=", start), ("<", end)) if bound is not None]
    return f"COPY (SELECT {cols} FROM ONLY {name} WHERE {' AND '.join(where)}) TO STDOUT"


def _ctid(bound: list[Any]) -> str:
    """A range bound as this module writes it, ``["(<page>,0)"]``, checked before it reaches SQL."""
    text = str(bound[0]) if len(bound) == 1 else ""
    page = text.removeprefix("(").removesuffix(",0)")
    if not page.isdigit() or text != f"({page},0)":
        raise ValueError(f"not a page bound: {bound!r}")
    return text


def _copy_out(conn: psycopg.Connection[Any], part: Part, snapshot: SnapshotWriter, options: BackupOptions,
              ranges: RangeCollector, stop: threading.Event) -> None:
    entry = part.entry
    statement = copy_statement(entry, part.start, part.end)

    def fill(write: Callable[[bytes], None]) -> None:
        try:
            copy_out(conn, statement, write, stop.is_set)
        except psycopg.Error as exc:
            raise db_error(f"reading table {part.label}", exc) from exc

    if part.count == 1:
        write_table(snapshot, part.ordinal, entry, options, fill, estimate=part.estimate, stop=stop)
    else:
        ranges.write(snapshot, part, options, fill, stop)
