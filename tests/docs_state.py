"""The state the examples of the docs start from: the PostgreSQL database ``docs_shop`` of
quickstart.md (a template copied for each page, with the read-only role ``docs_backup``) and the
SQLite file ``notes.db`` of sqlite.md. See tests/test_docs_examples.py."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

from datasafe.urls import DatabaseURL

#: the shop of quickstart.md: 4 tables in two schemas, an unlogged one, foreign keys, a sequence
DOCS_SHOP = """
CREATE SCHEMA sales;
CREATE TABLE public.customers (id serial PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE,
                               created_at timestamptz NOT NULL);
CREATE UNLOGGED TABLE public.sessions (id serial PRIMARY KEY, customer_id int NOT NULL, token text NOT NULL);
CREATE TABLE sales.orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES public.customers (id),
                           status text NOT NULL, total numeric(10, 2) NOT NULL, note text);
CREATE TABLE sales.order_items (id serial PRIMARY KEY, order_id int NOT NULL REFERENCES sales.orders (id),
                                sku text NOT NULL, quantity int NOT NULL, price numeric(10, 2) NOT NULL);
CREATE INDEX orders_customer ON sales.orders (customer_id);
CREATE INDEX order_items_order ON sales.order_items (order_id);
INSERT INTO public.customers (name, email, created_at)
  SELECT 'customer ' || g, 'c' || g || '@example.com', '2026-01-01'::timestamptz + g * interval '1 hour'
  FROM generate_series(1, 5000) g;
INSERT INTO public.sessions (customer_id, token) SELECT g, md5(g::text) FROM generate_series(1, 100) g;
INSERT INTO sales.orders (customer_id, status, total, note)
  SELECT 1 + g % 5000, (ARRAY['new', 'paid', 'shipped', 'cancelled'])[1 + g % 4], round((g % 997) * 1.37, 2),
         CASE WHEN g % 50 = 0 THEN E'gift\\twrap\\nplease' END
  FROM generate_series(1, 20000) g;
INSERT INTO sales.order_items (order_id, sku, quantity, price)
  SELECT 1 + g % 20000, 'SKU-' || (g % 500), 1 + g % 3, round((g % 89) * 0.99, 2) FROM generate_series(1, 60000) g;
"""


def make_notes(path: Path) -> None:
    """notes.db of sqlite.md: 1,000 notes and an FTS5 index over them (6 tables with its shadow tables)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT, created TEXT)")
        conn.execute("CREATE VIRTUAL TABLE notes_fts USING fts5(title, body)")
        rows = [(i, f"note {i}", f"remember item {i % 37} and item {i % 11}", f"2026-01-{1 + i % 28:02d}")
                for i in range(1, 1001)]
        conn.executemany("INSERT INTO notes VALUES (?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO notes_fts (rowid, title, body) VALUES (?, ?, ?)", [r[:3] for r in rows])


class Servers:
    """The docs databases and roles of this session (a template copied per page), dropped at the end."""

    def __init__(self, server: DatabaseURL) -> None:
        from datasafe.engines.postgres.connection import connect

        self.server = server
        self.template = f"docs_tpl_{secrets.token_hex(4)}"
        self.roles: list[str] = []
        self.tags: list[str] = []  #: of the pages run
        with connect(server, database="postgres") as conn:
            conn.execute(f'CREATE DATABASE "{self.template}"')
        with connect(server.with_database(self.template), settings=False) as conn:
            conn.execute(DOCS_SHOP)  # type: ignore[arg-type]

    def shop(self, tag: str) -> None:
        """``docs_shop`` of the page whose names have ``tag`` and its read-only backup role
        ``docs_backup`` (quickstart.md)."""
        from datasafe.engines.postgres.connection import connect

        name, role = f"docs_{tag}_shop", f"docs_{tag}_backup"
        with connect(self.server, database="postgres") as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            conn.execute(f'CREATE ROLE "{role}" LOGIN PASSWORD \'example-only\'')
            conn.execute(f'GRANT pg_read_all_data TO "{role}"')
        self.roles.append(role)

    def drop(self) -> None:
        from datasafe.engines.postgres.connection import connect

        with connect(self.server, database="postgres") as conn:
            names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'docs\\_%'")]
            for name in names:
                if name == self.template or any(name.startswith(f"docs_{t}_") for t in self.tags):
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for role in self.roles:
                conn.execute(f'DROP ROLE IF EXISTS "{role}"')
