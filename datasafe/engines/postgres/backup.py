"""Reading a PostgreSQL database into a snapshot.

One REPEATABLE READ, READ ONLY transaction exports its snapshot; every worker connection and
pg_dump import it, so schema and all tables come from the same instant. Data leaves the server
through ``COPY ... TO STDOUT`` and flows, unparsed, into the chunk writer.
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
    tool_env,
)
from datasafe.engines.postgres.options import PostgresOptions
from datasafe.engines.postgres.tools import find_tool, finish_tool, start_tool
from datasafe.engines.workers import run_workers
from datasafe.errors import DatabaseError
from datasafe.humanize import count as plural
from datasafe.snapshot.manifest import SchemaPart
from datasafe.snapshot.repository import SnapshotWriter
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

SCHEMA_FORMAT = "pg_dump-custom"
LOCK_TIMEOUT = "60s"


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
        log.info("reading %s of %s with %s under snapshot %s", plural(len(tables), "table"), dbname,
                 plural(min(options.jobs, max(1, len(tables))), "job"), snap_id)
        _dump_tables(url, snap_id, tables, snapshot, options)
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


def _dump_tables(url: DatabaseURL, snap_id: str, tables: list[CatalogTable], snapshot: SnapshotWriter,
                 options: BackupOptions) -> None:
    """Copy tables out with ``jobs`` connections sharing the exported snapshot, largest first."""
    ordinal = {t.oid: i for i, t in enumerate(tables)}

    def open_connection() -> psycopg.Connection[Any]:
        conn = connect(url)
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snap_id)))
        except BaseException:
            conn.close()
            raise
        return conn

    def work(conn: psycopg.Connection[Any], table: CatalogTable, stop: threading.Event) -> None:
        _copy_out(conn, table, ordinal[table.oid], snapshot, options, stop)

    run_workers(options.jobs, sorted(tables, key=lambda t: -t.est_bytes), open_connection, work,
                close=lambda conn: conn.close(), finish=lambda conn: conn.execute("COMMIT"),
                map_error=_mapper(f"reading {url}"))


def _mapper(what: str) -> Callable[[Exception], BaseException]:
    def map_error(exc: Exception) -> BaseException:
        return db_error(what, exc) if isinstance(exc, psycopg.Error) else exc

    return map_error


def _copy_out(conn: psycopg.Connection[Any], table: CatalogTable, ordinal: int, snapshot: SnapshotWriter,
              options: BackupOptions, stop: threading.Event) -> None:
    entry = table.entry

    def fill(write: Callable[[bytes], None]) -> None:
        try:
            copy_out(conn, f"COPY {table.sql_name}{column_list(entry)} TO STDOUT", write, stop.is_set)
        except psycopg.Error as exc:
            raise db_error(f"reading table {entry.name}", exc) from exc

    write_table(snapshot, ordinal, entry, options, fill, estimate=table.est_bytes, stop=stop)
