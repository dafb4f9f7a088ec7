"""The three engines as the fault suite sees them: make databases, read them back, cut connections.

Each :class:`Engine` adapter creates the source database of the suite and restore targets, says
whether a target is absent, empty, marked as an interrupted restore or fully restored, and cuts
the database connections of one process (and its children) for the "connection reset" fault.
Connections are found by their client port, never by user or database name, so that other
sessions on the shared test servers are never touched.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datasafe.engines import get_engine
from datasafe.engines.restore_mark import TEMP_MARK, RestoreMark
from datasafe.snapshot.manifest import Manifest
from datasafe.urls import DatabaseURL

CUSTOMERS, ORDERS = 3000, 6000

PG_SCHEMA = [
    "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE)",
    "CREATE TABLE orders (id serial PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers, "
    "total numeric(10,2), note text)",
    "CREATE INDEX orders_customer ON orders (customer_id)",
    f"INSERT INTO customers (name, email) SELECT 'customer ' || i, 'c' || i || '@shop.example.org' "
    f"FROM generate_series(1, {CUSTOMERS}) i",
    f"INSERT INTO orders (customer_id, total, note) SELECT 1 + i % {CUSTOMERS}, i * 1.25, repeat('n', i % 40) "
    f"FROM generate_series(1, {ORDERS}) i",
]
MY_SCHEMA = [
    "CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(60) NOT NULL, "
    "email VARCHAR(80) NOT NULL UNIQUE)",
    "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(10,2), "
    "note VARCHAR(60), KEY orders_customer (customer_id), FOREIGN KEY (customer_id) REFERENCES customers (id))",
    f"INSERT INTO customers (name, email) SELECT CONCAT('customer ', seq), CONCAT('c', seq, '@shop.example.org') "
    f"FROM seq_1_to_{CUSTOMERS}",
    f"INSERT INTO orders (customer_id, total, note) SELECT 1 + seq % {CUSTOMERS}, seq * 1.25, REPEAT('n', seq % 40) "
    f"FROM seq_1_to_{ORDERS}",
]
SQLITE_SCHEMA = [
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), "
    "total REAL, note TEXT)",
    "CREATE INDEX orders_customer ON orders (customer_id)",
    f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {CUSTOMERS}) "
    "INSERT INTO customers (name, email) SELECT 'customer ' || i, 'c' || i || '@shop.example.org' FROM s",
    f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {ORDERS}) "
    f"INSERT INTO orders (customer_id, total, note) SELECT 1 + i % {CUSTOMERS}, i * 1.25, substr(hex(zeroblob(20)), "
    "1, i % 40) FROM s",
]
#: what a refresh target holds before it is refreshed
OLD_CONTENT = ["CREATE TABLE old_data (x INTEGER)", "INSERT INTO old_data VALUES (42)"]

RULES = """\
version: 1
tables:
  customers:
    columns:
      name: name
      email: {email: {unique: true}}
    keep: [id]
  orders:
    keep: [id, customer_id, total, note]
"""


def client_ports(pid: int) -> set[int]:
    """Local TCP ports of the sockets of ``pid`` and its child processes (pg_restore, workers)."""
    pids = {pid}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                pids.add(int(entry.name))
    inodes: set[str] = set()
    for p in pids:
        try:
            for fd in Path(f"/proc/{p}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


class Engine:
    """One engine's databases for the suite (subclasses per engine)."""

    name: str  # postgres, mysql, sqlite (as in the test ids)
    schema: list[str]

    def __init__(self, server: DatabaseURL | None, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.names: list[str] = []

    def new_name(self, prefix: str) -> str:
        name = f"dsflt_{prefix}_{secrets.token_hex(4)}"
        self.names.append(name)
        return name

    def url(self, name: str) -> DatabaseURL:
        assert self.server is not None
        return self.server.with_database(name)

    def create(self, prefix: str, statements: list[str]) -> DatabaseURL:
        raise NotImplementedError

    def state(self, url: DatabaseURL, manifest: Manifest) -> str:
        """``absent``, ``empty``, ``marked`` (an interrupted restore), ``complete`` (every table's
        content digest equals the snapshot's) or ``partial`` (anything else: the forbidden state)."""
        raise NotImplementedError

    def has_old_content(self, url: DatabaseURL) -> bool:
        raise NotImplementedError

    def leftovers(self, url: DatabaseURL) -> list[str]:
        """Temporary databases of restores into ``url`` still on the server."""
        return []

    def reset_connections(self, pid: int) -> int:
        """Cut the database connections of process ``pid``; returns how many."""
        return 0

    def drop_all(self) -> None:
        raise NotImplementedError

    def complete(self, url: DatabaseURL, manifest: Manifest) -> bool:
        expected = {t.name: t.content_blake3 for t in manifest.tables}
        digests = dict(get_engine(manifest.engine).table_digests(url, manifest))
        return digests == expected


class Postgres(Engine):
    name = "postgres"
    schema = PG_SCHEMA

    def conn(self, database: str = "postgres") -> Any:
        from datasafe.engines.postgres.connection import connect

        assert self.server is not None
        return connect(self.server, database=database, settings=False)

    def create(self, prefix: str, statements: list[str]) -> DatabaseURL:
        name = self.new_name(prefix)
        with self.conn() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        with self.conn(name) as conn:
            for statement in statements:
                conn.execute(statement)
        return self.url(name)

    def _row(self, sql: str, args: tuple[Any, ...] = (), database: str = "postgres") -> Any:
        with self.conn(database) as conn:
            return conn.execute(sql, args).fetchone()

    def state(self, url: DatabaseURL, manifest: Manifest) -> str:
        from datasafe.engines.postgres import staging

        if self._row("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,)) is None:
            return "absent"
        with self.conn() as conn:
            if staging.read_mark(conn, url.database) is not None:
                return "marked"
        tables = self._row("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', "
                           "'information_schema')", database=url.database)[0]
        if not tables:
            return "empty"
        return "complete" if self.complete(url, manifest) else "partial"

    def has_old_content(self, url: DatabaseURL) -> bool:
        rows = self._row("SELECT array_agg(tablename::text ORDER BY tablename) FROM pg_tables "
                         "WHERE schemaname = 'public'", database=url.database)[0]
        return list(rows or []) == ["old_data"] and self._row("SELECT x FROM old_data", database=url.database) == (42,)

    def leftovers(self, url: DatabaseURL) -> list[str]:
        with self.conn() as conn:
            rows = conn.execute("SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                                "WHERE strpos(datname, %s) > 0", (TEMP_MARK,)).fetchall()
        return [r[0] for r in rows if (m := RestoreMark.parse(r[1])) is not None and m.target == url.database]

    def reset_connections(self, pid: int) -> int:
        ports = client_ports(pid)
        if not ports:
            return 0
        with self.conn() as conn:
            rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY(%s) "
                                "AND pid <> pg_backend_pid()", (list(ports),)).fetchall()
        return len(rows)

    def drop_all(self) -> None:
        with self.conn() as conn:
            names = [r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()
                     if any(str(r[0]).startswith(n[:40]) for n in self.names)]
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class MySQL(Engine):
    name = "mysql"
    schema = MY_SCHEMA

    def _conn(self, database: str = "") -> Any:
        from datasafe.engines.mysql.connection import connect

        assert self.server is not None
        return connect(self.server, database=database)

    def query(self, sql: str, args: tuple[Any, ...] = (), database: str = "") -> list[tuple[Any, ...]]:
        from datasafe.engines.mysql.connection import query

        conn = self._conn(database)
        try:
            return query(conn, sql, args)
        finally:
            conn.close()

    def execute(self, statements: list[str], database: str = "") -> None:
        from datasafe.engines.mysql.connection import execute

        conn = self._conn(database)
        try:
            for statement in statements:
                execute(conn, statement)
        finally:
            conn.close()

    def create(self, prefix: str, statements: list[str]) -> DatabaseURL:
        name = self.new_name(prefix)
        self.execute([f"CREATE DATABASE `{name}`"])
        self.execute(statements, name)
        return self.url(name)

    def state(self, url: DatabaseURL, manifest: Manifest) -> str:
        from datasafe.engines.mysql.restore import MARK_TABLE

        if not self.query("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (url.database,)):
            return "absent"
        tables = [str(r[0]) for r in self.query("SELECT TABLE_NAME FROM information_schema.TABLES "
                                                "WHERE TABLE_SCHEMA = %s", (url.database,))]
        if MARK_TABLE in tables:
            return "marked"
        if not tables:
            return "empty"
        return "complete" if self.complete(url, manifest) else "partial"

    def has_old_content(self, url: DatabaseURL) -> bool:
        tables = self.query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                            (url.database,))
        return tables == [("old_data",)] and self.query("SELECT x FROM old_data", database=url.database) == [(42,)]

    def reset_connections(self, pid: int) -> int:
        ports = client_ports(pid)
        killed = 0
        for cid, host in self.query("SELECT ID, HOST FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()"):
            port = str(host).rpartition(":")[2]
            if port.isdigit() and int(port) in ports:
                self.execute([f"KILL {int(cid)}"])
                killed += 1
        return killed

    def drop_all(self) -> None:
        rows = self.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
        names = [str(r[0]) for r in rows if any(str(r[0]).startswith(n[:40]) for n in self.names)]
        self.execute([f"DROP DATABASE IF EXISTS `{name}`" for name in names])


class SQLite(Engine):
    name = "sqlite"
    schema = SQLITE_SCHEMA

    def url(self, name: str) -> DatabaseURL:
        return DatabaseURL.parse(f"sqlite:///{self.folder / (name + '.db')}")

    def create(self, prefix: str, statements: list[str]) -> DatabaseURL:
        url = self.url(self.new_name(prefix))
        with sqlite3.connect(url.database) as conn:
            for statement in statements:
                conn.execute(statement)
        conn.close()
        return url

    def state(self, url: DatabaseURL, manifest: Manifest) -> str:
        path = Path(url.database)
        if not path.exists():
            return "absent"
        with sqlite3.connect(path) as conn:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        conn.close()
        if not tables:
            return "empty"
        return "complete" if self.complete(url, manifest) else "partial"

    def has_old_content(self, url: DatabaseURL) -> bool:
        with sqlite3.connect(url.database) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            ok = names == ["old_data"] and conn.execute("SELECT x FROM old_data").fetchall() == [(42,)]
        conn.close()
        return ok

    def leftovers(self, url: DatabaseURL) -> list[str]:
        path = Path(url.database)
        return sorted(p.name for p in path.parent.glob(f".{path.name}.datasafe-*"))

    def drop_all(self) -> None:
        pass


def engines() -> Iterator[str]:
    yield from ("postgres", "mysql", "sqlite")
