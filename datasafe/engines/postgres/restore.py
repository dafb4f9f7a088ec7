"""Restoring a snapshot into PostgreSQL: pre-data, parallel COPY, post-data, sequences.

Everything that can be checked is checked in :func:`plan` before the target is touched. When a
restore fails after that, the target is put back to the empty state it was found in (a database
this restore would have created never appears: it is built under a temporary name, see
:mod:`.staging`), so a failed restore never passes for a good one.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import threading
from typing import Any

import psycopg
from psycopg import sql

from datasafe import faultpoints
from datasafe.engines.base import RestoreOptions, RestorePlan
from datasafe.engines.postgres import catalog, staging, usercode
from datasafe.engines.postgres.backup import SCHEMA_FORMAT
from datasafe.engines.postgres.connection import column_list, connect, db_error, qualified, quote_ident
from datasafe.engines.postgres.options import PostgresOptions
from datasafe.engines.postgres.schema import SchemaRestorer
from datasafe.engines.postgres.toc import skipped_foreign_keys
from datasafe.engines.postgres.tools import PgTool, find_tool, run_tool
from datasafe.engines.split import Piece, PieceCounter, in_ranges, pieces
from datasafe.engines.workers import run_workers
from datasafe.errors import ConfigError, DatasafeError, IntegrityError, Interrupted, NotFound, Refused
from datasafe.humanize import count as plural
from datasafe.snapshot.chunks import check_stored, read_chunk
from datasafe.snapshot.manifest import Manifest, TableEntry
from datasafe.storage.base import StorageBackend
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

#: How long --clean waits for other sessions' locks before giving up (nothing dropped then).
CLEAN_LOCK_TIMEOUT = "30s"


def plan(manifest: Manifest, target: DatabaseURL, options: RestoreOptions,
         storage: StorageBackend | None = None) -> RestorePlan:
    """Decide and check a restore without changing anything.

    With ``storage`` (the snapshot's objects) the schema archive is read too, so the plan can say
    which materialized views will be left unpopulated because of their owners (see
    :mod:`.usercode`); without it only ``--no-owner`` decides that here, and the restore decides
    the rest once the schema is in.
    """
    if not target.database:
        raise ConfigError(f"target {target} names no database")
    tables = manifest.select_tables(options.tables)
    dump_major = int(str(manifest.extra.get("pg_dump_version", "0")).split(".")[0])
    tool = find_tool("pg_restore", PostgresOptions.of(options).pg_bin, dump_major or None)
    steps: list[str] = []
    exists, objects = True, 0
    try:
        conn = connect(target)
    except NotFound:
        if options.data_only:
            raise
        exists = False
        with connect(target, database="postgres") as conn:  # the server must take us, to create it
            _check_can_create_database(conn, target)
        steps.append(f"create database {target.database}")
    if exists:
        with conn, conn.cursor() as cur:
            objects = catalog.user_object_count(cur)
            mark = staging.read_mark(conn, target.database)
            if mark is not None and (mark.running() or (objects and not options.clean)):
                raise mark.refusal(target.database)
            if options.data_only:
                steps += _check_data_only_targets(cur, tables, options)
            elif objects and not options.clean:
                raise Refused(
                    f"target {target} is not empty ({plural(objects, 'object')}); use --clean to replace its contents"
                )
            elif objects:
                schemas = ", ".join(catalog.user_schemas(cur))
                steps.append(f"drop everything in schemas {schemas} of {target.database}")
    if not options.data_only:
        steps.append(f"create the schema (pg_restore {tool.version}, pre-data)")
    if not options.schema_only:
        steps.append(f"load {plural(len(tables), 'table')}, {plural(sum(t.rows for t in tables), 'row')} with "
                     f"{plural(options.jobs, 'job')}"
                     + in_ranges(tables, 1 if options.keep_row_order else options.jobs))
    refresh: list[usercode.Decision] | None = None
    if not options.data_only:
        steps.append("create indexes, constraints and triggers (post-data)")
        matviews = _refreshed_matviews(manifest, options)
        if matviews and PostgresOptions.of(options).no_owner:
            refresh = usercode.decide(matviews, None, no_owner=True)
        elif matviews and storage is not None:
            refresh = _predict_refresh(manifest, target, exists, tool, storage, matviews)
        steps.append(usercode.plan_step(matviews, refresh))
    result = RestorePlan(manifest, target, tables, steps, options, exists, objects)
    result.notes += [d.note for d in refresh or [] if d.owner is None]
    result.state["pg_restore"] = tool.path
    if options.tables:
        result.notes += skipped_foreign_keys(manifest, tables)
    if target.database == manifest.database and str(target).split("/")[2:3] == manifest.source_url.split("/")[2:3]:
        result.notes.append("the target is the database this snapshot was taken from")
    return result


def _refreshed_matviews(manifest: Manifest, options: RestoreOptions) -> list[str]:
    """The materialized views a restore refreshes: those populated at backup time, on a full restore."""
    if options.tables or options.schema_only or options.data_only:
        return []
    return list(manifest.extra.get("matviews", []))


def _predict_refresh(manifest: Manifest, target: DatabaseURL, exists: bool, tool: PgTool,
                     storage: StorageBackend, matviews: list[str]) -> list[usercode.Decision]:
    """Which materialized views the restore will refresh, as whom: owners from the archive, roles
    from the target server."""
    with tempfile.TemporaryDirectory(prefix="datasafe-plan-") as folder:
        listing = run_tool([tool.path, "--list", _schema_file(manifest, storage, folder)], None, "pg_restore --list")
    try:
        with connect(target, database=None if exists else "postgres") as conn, conn.cursor() as cur:
            return usercode.predict(listing, matviews, cur)
    except psycopg.Error as exc:
        raise db_error(f"reading the roles of {target}", exc) from exc


def _check_data_only_targets(cur: psycopg.Cursor[Any], tables: list[TableEntry], options: RestoreOptions
                             ) -> list[str]:
    steps = []
    for t in tables:
        cur.execute("SELECT to_regclass(%s)", (qualified(t.schema_name or "public", t.table),))
        row = cur.fetchone()
        if row is None or row[0] is None:
            raise NotFound(f"--data-only: table {t.name} does not exist in the target")
        cur.execute(f"SELECT EXISTS (SELECT 1 FROM {qualified(t.schema_name or 'public', t.table)})")
        non_empty = cur.fetchone()
        if non_empty and non_empty[0]:
            if not options.clean:
                raise Refused(f"table {t.name} in the target is not empty; use --clean to replace its rows")
            steps.append(f"empty table {t.name}")
    return steps


def restore(p: RestorePlan, storage: StorageBackend) -> None:
    """Carry out ``p``. A new target is built under a temporary name and renamed at the end; an
    existing one is marked meanwhile (see :mod:`.staging`): a killed restore never leaves a
    database that passes for a restored or an empty one."""
    target, opts, manifest = p.target, p.options, p.manifest
    created = False
    mark = None
    tmp = tempfile.TemporaryDirectory(prefix="datasafe-restore-")
    try:
        schema_file = _schema_file(manifest, storage, tmp.name)
        if opts.clean and p.target_exists:
            # --clean destroys what the target holds: first make sure every stored byte is intact.
            for t in p.tables:
                for chunk in t.chunks:
                    check_stored(storage, chunk, label=f"{t.name} {chunk.path}")
        work = p
        if not p.target_exists:
            staging.drop_leftovers(target)
            work = dataclasses.replace(p, target=staging.create_temporary(target, manifest))
            created = True
        else:
            mark = staging.mark_target(target, manifest)
            if opts.clean and not opts.data_only and p.target_objects:
                _empty_database(target)
            elif opts.clean and opts.data_only:
                _truncate(target, p.tables)
        faultpoints.reach("restore.created")
        schema = None if opts.data_only else SchemaRestorer(work, schema_file, tmp.name)
        try:
            if schema is not None:
                schema.pre_data()
                faultpoints.reach("restore.schema")
            if not opts.schema_only:
                _load_data(work, storage, schema)
            if schema is not None:
                schema.post_data()
            _finish(work)
            faultpoints.reach("restore.finish")
            if created:
                staging.rename_into_place(work.target, target)
            else:
                staging.unmark_target(target, mark)
        except BaseException:
            log.info("restore into %s failed; removing what it created", target)
            if schema is not None:
                schema.close()
            _undo(work, created)
            if mark is not None:
                try:
                    staging.unmark_target(target, mark)
                except DatasafeError as exc:
                    log.error("could not remove the restore mark of %s: %s", target.database, exc)
            raise
        finally:
            if schema is not None:
                schema.close()
    finally:
        tmp.cleanup()


def _schema_file(manifest: Manifest, storage: StorageBackend, folder: str) -> str:
    part = next((s for s in manifest.schema_parts if s.format == SCHEMA_FORMAT), None)
    if part is None:
        raise IntegrityError(f"snapshot {manifest.snapshot_id} has no pg_dump schema")
    path = os.path.join(folder, "schema.pgdump")
    with open(path, "wb") as fh:
        for block in read_chunk(storage, part, label="schema"):
            fh.write(block)
    return path


def _check_can_create_database(conn: psycopg.Connection[Any], target: DatabaseURL) -> None:
    row = conn.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    if not row or not row[0]:
        raise Refused(
            f"database {target.database!r} does not exist and {conn.info.user!r} may not create databases",
            hint="create it first (createdb) or connect as a role with CREATEDB",
        )


def _truncate(target: DatabaseURL, tables: list[TableEntry]) -> None:
    """One TRUNCATE for all tables, so foreign keys among them do not block it."""
    names = ", ".join(qualified(t.schema_name or "public", t.table) for t in tables)
    try:
        with connect(target) as conn:
            conn.execute(f"SET lock_timeout = {CLEAN_LOCK_TIMEOUT!r}")
            conn.execute(f"TRUNCATE ONLY {names}")
    except psycopg.Error as exc:
        raise db_error(f"emptying the tables of {target}", exc) from exc


def _empty_database(target: DatabaseURL) -> None:
    """Drop every user schema and extension in one transaction: all of it goes, or none."""
    try:
        with connect(target) as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute(f"SET LOCAL lock_timeout = {CLEAN_LOCK_TIMEOUT!r}")
            schemas = _drop_user_objects(cur)
    except psycopg.Error as exc:
        raise db_error(f"emptying {target} for --clean", exc) from exc
    log.info("emptied %s (schemas %s)", target, ", ".join(schemas))


def _drop_user_objects(cur: psycopg.Cursor[Any]) -> list[str]:
    schemas = catalog.user_schemas(cur)
    cur.execute("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'")
    for (ext,) in cur.fetchall():
        cur.execute(f"DROP EXTENSION IF EXISTS {quote_ident(ext)} CASCADE")
    for schema in schemas:
        cur.execute(f"DROP SCHEMA {quote_ident(schema)} CASCADE")
    cur.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
    cur.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
    cur.execute("COMMENT ON SCHEMA public IS 'standard public schema'")
    return schemas


def _undo(p: RestorePlan, created: bool) -> None:
    try:
        if created:
            with connect(p.target, database="postgres") as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(p.target.database)))
        elif p.options.data_only:
            _truncate(p.target, p.tables)
        else:
            _empty_database(p.target)
    except Exception as exc:  # the original error matters more; say that cleanup failed too
        log.error("could not clean up %s after the failed restore: %s", p.target, exc)


def _load_data(p: RestorePlan, storage: StorageBackend, schema: SchemaRestorer | None) -> None:
    """Load the tables with ``jobs`` connections; a split table's ranges over several of them, its
    indexes and keys built once its last range is in."""
    fresh = not p.options.data_only
    done = PieceCounter()

    def work(conn: psycopg.Connection[Any], piece: Piece, stop: threading.Event) -> None:
        _copy_in(conn, piece, storage, p, fresh, stop)
        if done.finished(piece) and schema is not None:
            schema.table_loaded(piece.table)
        faultpoints.reach("restore.load")

    what = f"loading into {p.target}"
    run_workers(p.options.jobs, pieces(load_order(p.tables), p.options.jobs, whole=p.options.keep_row_order),
                lambda: connect(p.target), work, close=lambda conn: conn.close(),
                map_error=lambda exc: db_error(what, exc) if isinstance(exc, psycopg.Error) else exc)


def load_order(tables: list[TableEntry]) -> list[TableEntry]:
    """The largest table first (it is the longest job), then the tables other tables' foreign keys
    reference, then the rest; largest first within each group. Referenced tables early let their
    keys be built, and the foreign keys pointing at them validated, while other tables load."""
    by_size = sorted(tables, key=lambda t: -t.raw_size)
    referenced = {fk.ref_table for t in tables for fk in t.foreign_keys}
    first, rest = by_size[:1], by_size[1:]
    return first + [t for t in rest if t.name in referenced] + [t for t in rest if t.name not in referenced]


def _copy_in(conn: psycopg.Connection[Any], piece: Piece, storage: StorageBackend, p: RestorePlan,
             fresh: bool, stop: threading.Event) -> None:
    t = piece.table
    if t.encoding != catalog.ENCODING:
        raise IntegrityError(f"table {t.name} uses encoding {t.encoding!r}, which PostgreSQL cannot load")
    name = qualified(t.schema_name or "public", t.table)
    progress, key = p.options.progress, piece.label
    progress.start(key, key, piece.raw_size)
    with conn.transaction(), conn.cursor() as cur:
        # TRUNCATE in the loading transaction lets COPY FREEZE write frozen rows (no later rewrite).
        # A table loaded in ranges over several connections cannot: each would wait for the
        # others' TRUNCATE lock; it was created empty moments ago by the pre-data step.
        freeze = ""
        if fresh and piece.count == 1:
            cur.execute(f"TRUNCATE ONLY {name}")
            freeze = " (FREEZE)"
        if not fresh:
            _relax_foreign_keys(cur)
        # A digest or row count mismatch is raised after a chunk's last block, inside this
        # transaction: the table's rows are rolled back, never committed from a damaged chunk.
        with cur.copy(f"COPY {name}{column_list(t)} FROM STDIN{freeze}") as copy:
            for chunk in piece.chunks:
                for block in read_chunk(storage, chunk, label=f"{t.name} {chunk.path}", count_rows=True):
                    if stop.is_set():
                        raise Interrupted("restore stopped")
                    copy.write(block)
                    progress.advance(key, rows=0, nbytes=len(block))
                progress.advance(key, rows=chunk.rows, nbytes=0)
        # what the server took: a line "\." ends COPY data early, and the rows after it are dropped
        if cur.rowcount != piece.rows:
            raise IntegrityError(f"table {piece.label}: the server loaded {cur.rowcount} rows, the manifest says "
                                 f"{piece.rows}")
    progress.finish(key)


def _relax_foreign_keys(cur: psycopg.Cursor[Any]) -> None:
    """--data-only loads tables in parallel, in any order: skip FK triggers where allowed (superuser)."""
    try:
        with cur.connection.transaction():
            cur.execute("SET LOCAL session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        log.warning("not a superuser: foreign keys are checked while loading, tables may need order")


def _finish(p: RestorePlan) -> None:
    chosen = {t.name for t in p.tables}
    owners: dict[str, str] = p.manifest.extra.get("sequence_owners", {})
    with connect(p.target) as conn, conn.cursor() as cur:
        for seq in p.manifest.sequences:
            owner = owners.get(seq.name)
            if p.options.tables and owner is not None and owner not in chosen:
                continue
            nsp, rel = seq.name.split(".", 1)
            cur.execute("SELECT to_regclass(%s)", (qualified(nsp, rel),))
            found = cur.fetchone()
            if found is None or found[0] is None:  # --data-only into a schema without it
                continue
            cur.execute("SELECT setval(%s::regclass, %s, %s)", (qualified(nsp, rel), seq.value, seq.is_called))
        matviews = _refreshed_matviews(p.manifest, p.options)
        if matviews:
            # each as its owner, decided again from the restored catalogs (the plan only predicted)
            notes = usercode.refresh(cur, matviews, no_owner=PostgresOptions.of(p.options).no_owner)
            p.notes += [n for n in notes if n not in p.notes]
