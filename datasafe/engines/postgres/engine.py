"""The PostgreSQL engine object: ties backup, restore, scratch databases and digests together."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import psycopg
from psycopg import sql

from datasafe.engines.base import (
    BackupOptions,
    BackupResult,
    Engine,
    RestoreOptions,
    RestorePlan,
    scratch_name,
    scratch_server,
)
from datasafe.engines.postgres import backup as pg_backup
from datasafe.engines.postgres import catalog
from datasafe.engines.postgres import restore as pg_restore
from datasafe.engines.postgres import rows as pg_rows
from datasafe.engines.postgres.connection import column_list, connect, copy_out, db_error, params, qualified
from datasafe.engines.postgres.schema_catalog import catalog_schema_text
from datasafe.engines.sampling import Consume, RowSample
from datasafe.engines.schema_text import SchemaText
from datasafe.engines.split import TableDigester
from datasafe.errors import NotFound, PrivilegeError
from datasafe.identity import DatabaseIdentity
from datasafe.snapshot.manifest import Manifest, TableEntry
from datasafe.snapshot.repository import SnapshotWriter
from datasafe.storage.base import StorageBackend
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)


class PostgresEngine(Engine):
    name = "postgresql"

    def backup(self, url: DatabaseURL, snapshot: SnapshotWriter, options: BackupOptions) -> BackupResult:
        return pg_backup.backup(url, snapshot, options)

    def plan_restore(self, manifest: Manifest, target: DatabaseURL, options: RestoreOptions) -> RestorePlan:
        return pg_restore.plan(manifest, target, options)

    def restore(self, plan: RestorePlan, storage: StorageBackend) -> None:
        pg_restore.restore(plan, storage)

    @contextlib.contextmanager
    def scratch(self, manifest: Manifest, server: DatabaseURL | None) -> Iterator[DatabaseURL]:
        """A temporary database on ``server`` ($DATASAFE_SCRATCH_URL, else the snapshot's own server)."""
        server = scratch_server(manifest, server)
        _check_can_create_databases(server)
        name = scratch_name()
        target = server.with_database(name)
        try:
            yield target
        finally:
            try:
                with connect(server, database="postgres") as conn:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            except Exception as exc:
                log.error("could not drop scratch database %s: %s", name, exc)

    def identity(self, url: DatabaseURL) -> DatabaseIdentity:
        """``system_identifier`` of the cluster (any role may read it) and the database's name."""
        name = params(url)["dbname"]
        exists = True
        try:
            conn = connect(url, settings=False)
        except NotFound:
            exists = False
            try:
                conn = connect(url, database="postgres", settings=False)
            except NotFound:
                conn = connect(url, database="template1", settings=False)
        with conn:
            try:
                row = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
            except psycopg.Error as exc:
                raise db_error(f"asking {url} for its identity", exc) from exc
        assert row is not None
        return DatabaseIdentity("postgresql", f"pg:{row[0]}", name, exists)

    def describe(self, url: DatabaseURL) -> list[TableEntry]:
        with connect(url) as conn:
            try:
                return [t.entry for t in catalog.tables(conn.cursor())]
            except psycopg.Error as exc:
                raise db_error(f"reading the catalog of {url}", exc) from exc

    def table_digests(self, url: DatabaseURL, manifest: Manifest) -> Iterator[tuple[str, str]]:
        with connect(url) as conn:
            for t in manifest.tables:
                rows = TableDigester(t, manifest.chunk_size)
                name = qualified(t.schema_name or "public", t.table)
                try:
                    copy_out(conn, f"COPY {name}{column_list(t)} TO STDOUT", rows.write)
                except psycopg.Error as exc:
                    raise db_error(f"reading table {t.name}", exc) from exc
                yield t.name, rows.close()

    def sample(self, url: DatabaseURL, entries: list[TableEntry], *, rows: int, max_bytes: int, seed: int
               ) -> Iterator[RowSample]:
        return pg_rows.sample(url, entries, rows, max_bytes, seed)

    def read_rows(self, url: DatabaseURL, entry: TableEntry, limit: int | None, consume: Consume) -> None:
        pg_rows.read_rows(url, entry, limit, consume)

    def schema_text(self, url: DatabaseURL) -> list[SchemaText]:
        return catalog_schema_text(url)


def _check_can_create_databases(server: DatabaseURL) -> None:
    """``verify --deep`` creates its scratch database on ``server``: a role without CREATEDB gets one
    line naming the privilege, before anything is read, instead of a failed restore."""
    with connect(server, database="postgres") as conn:
        try:
            row = conn.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        except psycopg.Error as exc:
            raise db_error(f"asking {server} for the rights of its role", exc) from exc
        role = conn.info.user
    if not row or not row[0]:
        raise PrivilegeError(
            f"verify --deep needs to create a scratch database on {server.with_database('')}, and role {role!r} "
            "lacks the CREATEDB privilege",
            hint=f"ALTER ROLE {role} CREATEDB, or name a server and role that may create databases with --scratch")
