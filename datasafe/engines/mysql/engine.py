"""The MySQL/MariaDB engine object: ties backup, restore, scratch databases and digests together."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator

from datasafe.engines.base import (
    BackupOptions,
    BackupResult,
    Engine,
    RestoreOptions,
    RestorePlan,
    scratch_name,
    scratch_server,
)
from datasafe.engines.mysql import backup as my_backup
from datasafe.engines.mysql import catalog
from datasafe.engines.mysql import restore as my_restore
from datasafe.engines.mysql import rows as my_rows
from datasafe.engines.mysql.connection import ACCESS_DENIED, Error, connect, db_error, error_code, execute, q, query
from datasafe.engines.sampling import Consume, RowSample
from datasafe.engines.schema_sql import mysql_schema_texts
from datasafe.engines.schema_text import SchemaText
from datasafe.engines.split import TableDigester
from datasafe.errors import PrivilegeError
from datasafe.identity import DatabaseIdentity
from datasafe.snapshot.manifest import Manifest, TableEntry
from datasafe.snapshot.repository import SnapshotWriter
from datasafe.storage.base import StorageBackend
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)


class MySQLEngine(Engine):
    name = "mysql"

    def backup(self, url: DatabaseURL, snapshot: SnapshotWriter, options: BackupOptions) -> BackupResult:
        return my_backup.backup(url, snapshot, options)

    def plan_restore(self, manifest: Manifest, target: DatabaseURL, options: RestoreOptions) -> RestorePlan:
        return my_restore.plan(manifest, target, options)

    def restore(self, plan: RestorePlan, storage: StorageBackend) -> None:
        my_restore.restore(plan, storage)

    @contextlib.contextmanager
    def scratch(self, manifest: Manifest, server: DatabaseURL | None) -> Iterator[DatabaseURL]:
        """A database ``datasafe_verify_<hex>`` on ``server`` (else the snapshot's own server), dropped on exit."""
        server = scratch_server(manifest, server)
        name = scratch_name()
        _check_can_create_databases(server, name)
        target = server.with_database(name)
        try:
            yield target
        finally:
            try:
                conn = connect(server, database="")
                try:
                    execute(conn, f"DROP DATABASE IF EXISTS {q(name)}")
                finally:
                    conn.close()
            except Exception as exc:
                log.error("could not drop scratch database %s: %s", name, exc)

    def identity(self, url: DatabaseURL) -> DatabaseIdentity:
        """MySQL: ``@@server_uuid``; MariaDB (no server UUID): a digest of the server's own
        ``@@hostname``, ``@@datadir`` and ``@@port``. With the schema name as the server has it."""
        conn = connect(url, database="")
        try:
            version = str(query(conn, "SELECT VERSION()")[0][0])
            if "mariadb" in version.lower():
                host, datadir, port = query(conn, "SELECT @@hostname, @@datadir, @@port")[0]
                digest = hashlib.sha256(f"{host}\0{datadir}\0{port}".encode()).hexdigest()[:32]
                server = f"mariadb:{digest}"
            else:
                server = f"mysql:{query(conn, 'SELECT @@server_uuid')[0][0]}"
            found = query(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                          (url.database,)) if url.database else []
        except Error as exc:
            raise db_error(f"asking {url} for its identity", exc) from exc
        finally:
            conn.close()
        return DatabaseIdentity("mysql", server, str(found[0][0]) if found else url.database, bool(found))

    def describe(self, url: DatabaseURL) -> list[TableEntry]:
        conn = connect(url)
        try:
            names = [name for name, _engine, _size in catalog.tables(conn, url.database)]
            return [catalog.entry(conn, url.database, name) for name in names]
        except Error as exc:
            raise db_error(f"reading the catalog of {url}", exc) from exc
        finally:
            conn.close()

    def table_digests(self, url: DatabaseURL, manifest: Manifest) -> Iterator[tuple[str, str]]:
        conn = connect(url)
        try:
            for t in manifest.tables:
                rows = TableDigester(t, manifest.chunk_size)
                try:
                    my_backup.dump_rows(conn, t, rows.write)
                except Error as exc:
                    raise db_error(f"reading table {t.name}", exc) from exc
                yield t.name, rows.close()
        finally:
            conn.close()

    def sample(self, url: DatabaseURL, entries: list[TableEntry], *, rows: int, max_bytes: int, seed: int
               ) -> Iterator[RowSample]:
        return my_rows.sample(url, entries, rows, max_bytes, seed)

    def read_rows(self, url: DatabaseURL, entry: TableEntry, limit: int | None, consume: Consume) -> None:
        my_rows.read_rows(url, entry, limit, consume)

    def schema_text(self, url: DatabaseURL) -> list[SchemaText]:
        conn = connect(url)
        try:
            names = [name for name, _engine, _size in catalog.tables(conn, url.database)]
            return mysql_schema_texts(catalog.schema(conn, url.database, names))
        except Error as exc:
            raise db_error(f"reading the definitions of {url}", exc) from exc
        finally:
            conn.close()


#: "command denied to user" (a table-level privilege is missing)
_COMMAND_DENIED = 1142


def _check_can_create_databases(server: DatabaseURL, name: str) -> None:
    """``verify --deep`` creates the database ``name`` on ``server`` and drops it again: do both
    once first, so a user without those privileges gets one line naming the one it lacks, instead
    of a failed restore followed by a failed clean-up."""
    conn = connect(server, database="")
    try:
        name_host = str(query(conn, "SELECT CURRENT_USER()")[0][0]).rsplit("@", 1)
        user = "@".join(f"'{part}'" for part in name_host)
        for privilege, statement in (("CREATE", f"CREATE DATABASE {q(name)}"), ("DROP", f"DROP DATABASE {q(name)}")):
            try:
                execute(conn, statement)
            except Error as exc:
                if error_code(exc) in ACCESS_DENIED or error_code(exc) == _COMMAND_DENIED:
                    raise PrivilegeError(
                        f"verify --deep needs to create and drop a scratch database on {server.with_database('')}, "
                        f"and user {user} lacks the {privilege} privilege for it",
                        hint=f"GRANT ALL ON `datasafe\\_verify\\_%`.* TO {user}, or name a server and user "
                             "that may create databases with --scratch") from None
                raise db_error(f"creating the scratch database {name} on {server.with_database('')}", exc) from exc
    finally:
        conn.close()
