"""The soak's changing database: one small shop per engine, and its nightly inserts, updates and deletes.

The runner needs three things of an engine, and nothing more: create and drop databases, change
the source a little every night (so each snapshot differs from the last and the history grows),
and list the databases that datasafe's temporary names mark (see ``soak_model``), to prove that
no scratch or refresh copy outlives its run.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_DDL = {
    "postgres": [
        "CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE,"
        " phone text, created_at timestamptz NOT NULL DEFAULT now())",
        "CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id),"
        " amount numeric(10,2) NOT NULL, note text)",
    ],
    "mysql": [
        "CREATE TABLE customers (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(100) NOT NULL,"
        " email varchar(190) NOT NULL UNIQUE, phone varchar(40), created_at datetime(6) NOT NULL"
        " DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB",
        "CREATE TABLE orders (id bigint AUTO_INCREMENT PRIMARY KEY, customer_id bigint NOT NULL,"
        " amount decimal(10,2) NOT NULL, note text, FOREIGN KEY (customer_id) REFERENCES customers (id))"
        " ENGINE=InnoDB",
    ],
    "sqlite": [
        "CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE,"
        " phone text, created_at text NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        "CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers (id),"
        " amount decimal(10,2) NOT NULL, note text)",
    ],
}

#: masking rules for the shop: every column masked or kept (strict coverage), bare table names
RULES = """version: 1
tables:
  customers:
    columns:
      name: name
      email: email
      phone: phone
    keep: [id, created_at]
  orders:
    columns:
      note: {text: {}}
    keep: [id, customer_id, amount]
"""


class Database:
    """One engine's server (or folder, for SQLite): databases by name, as DB-API connections."""

    def __init__(self, engine: str, server: str, folder: Path) -> None:
        self.engine = engine
        self.server = server
        self.folder = folder
        self.mark = "?" if engine == "sqlite" else "%s"

    def url(self, name: str) -> str:
        if self.engine == "sqlite":
            return f"sqlite:///{self.folder / (name + '.db')}"
        base = self.server.rstrip("/")
        parts = urlsplit(base)
        return f"{parts.scheme}://{parts.netloc}/{name}"

    @contextlib.contextmanager
    def connect(self, name: str | None = None) -> Iterator[Any]:
        if self.engine == "sqlite":
            conn: Any = sqlite3.connect(self.folder / f"{name}.db")
        elif self.engine == "postgres":
            import psycopg

            conn = psycopg.connect(self.url(name or "postgres"), autocommit=name is None)
        else:
            import MySQLdb

            parts = urlsplit(self.server)
            conn = MySQLdb.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
                                   user=parts.username or "root", passwd=parts.password or "",
                                   database=name or "", autocommit=name is None)
        try:
            yield conn
        finally:
            conn.close()

    def create(self, name: str, *, shop: bool) -> None:
        """An empty database ``name`` (the refresh targets), or the shop with its first rows."""
        self.drop(name)
        if self.engine != "sqlite":
            with self.connect() as admin:
                admin.cursor().execute(f"CREATE DATABASE {name}")
        if not shop:
            if self.engine == "sqlite":
                sqlite3.connect(self.folder / f"{name}.db").close()
            return
        with self.connect(name) as conn:
            cur = conn.cursor()
            for statement in _DDL[self.engine]:
                cur.execute(statement)
            conn.commit()
        self.mutate(name, night=-1, rng=random.Random(0), customers=300, orders=1000)

    def drop(self, name: str) -> None:
        if self.engine == "sqlite":
            for path in self.folder.glob(f"{name}.db*"):
                path.unlink()
            return
        force = " WITH (FORCE)" if self.engine == "postgres" else ""
        with self.connect() as admin:
            admin.cursor().execute(f"DROP DATABASE IF EXISTS {name}{force}")

    def mutate(self, name: str, night: int, rng: random.Random, customers: int = 0, orders: int = 0) -> dict[str, int]:
        """One night of business: new customers and orders, changed orders, customers who leave."""
        customers = customers or rng.randint(20, 40)
        orders = orders or rng.randint(60, 120)
        m = self.mark
        with self.connect(name) as conn:
            cur = conn.cursor()
            cur.executemany(
                f"INSERT INTO customers (name, email, phone) VALUES ({m}, {m}, {m})",
                [(f"Customer {night}-{i}", f"c{night + 1}.{i}@example.com", f"+1 555 {rng.randint(0, 9999999):07d}")
                 for i in range(customers)])
            cur.execute("SELECT id FROM customers")
            ids = [int(r[0]) for r in cur.fetchall()]
            cur.executemany(f"INSERT INTO orders (customer_id, amount, note) VALUES ({m}, {m}, {m})",
                            [(rng.choice(ids), f"{rng.randint(100, 99999) / 100:.2f}", f"order of night {night}")
                             for _ in range(orders)])
            cur.execute("SELECT id FROM orders")
            order_ids = [int(r[0]) for r in cur.fetchall()]
            changed = rng.sample(order_ids, min(25, len(order_ids)))
            cur.executemany(f"UPDATE orders SET amount = amount + 1, note = {m} WHERE id = {m}",
                            [(f"changed on night {night}", i) for i in changed])
            gone = rng.sample(ids, min(rng.randint(5, 12), len(ids) // 10)) if night >= 0 else []
            cur.executemany(f"DELETE FROM orders WHERE customer_id = {m}", [(i,) for i in gone])
            cur.executemany(f"DELETE FROM customers WHERE id = {m}", [(i,) for i in gone])
            conn.commit()
        return {"inserted": customers + orders, "updated": len(changed), "deleted_customers": len(gone)}

    def counts(self, name: str) -> dict[str, int]:
        with self.connect(name) as conn:
            cur = conn.cursor()
            out = {}
            for table in ("customers", "orders"):
                cur.execute(f"SELECT count(*) FROM {table}")
                out[table] = int(cur.fetchone()[0])
            return out

    def emails(self, name: str) -> set[str]:
        with self.connect(name) as conn:
            cur = conn.cursor()
            cur.execute("SELECT email FROM customers")
            return {str(r[0]) for r in cur.fetchall()}

    def restore_marked(self, name: str) -> bool:
        """Whether ``name`` still carries the mark of an unfinished restore (a comment, or a table)."""
        from soak_model import MYSQL_RESTORE_TABLE, PG_RESTORE_COMMENT

        if self.engine == "sqlite":
            return False  # a SQLite restore never touches its target before the final rename
        with self.connect() as admin:
            cur = admin.cursor()
            if self.engine == "postgres":
                cur.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (name,))
                row = cur.fetchone()
                return bool(row and row[0] and PG_RESTORE_COMMENT in row[0])
            cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                        (name, MYSQL_RESTORE_TABLE))
            return bool(cur.fetchone()[0])

    def names(self) -> list[str]:
        """Every database on the server (SQLite: every file in the folder, sidecars included)."""
        if self.engine == "sqlite":
            return sorted(p.name for p in self.folder.iterdir())
        with self.connect() as admin:
            cur = admin.cursor()
            cur.execute("SELECT datname FROM pg_database" if self.engine == "postgres" else "SHOW DATABASES")
            return sorted(str(r[0]) for r in cur.fetchall())
