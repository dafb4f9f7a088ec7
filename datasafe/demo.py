"""The sample shop of ``datasafe demo``: its schema and a generated (not real) SQLite database of it."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from faker import Faker

SCHEMA = """
CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  first_name TEXT NOT NULL, last_name TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE, phone TEXT,
  street TEXT, city TEXT, postcode TEXT, country TEXT,
  birth_date TEXT, created_at TEXT NOT NULL
);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers(id),
  ordered_at TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('new','paid','shipped','cancelled','refunded')),
  total_cents INTEGER NOT NULL
);
CREATE TABLE payments (
  id INTEGER PRIMARY KEY,
  order_id INTEGER NOT NULL REFERENCES orders(id),
  method TEXT NOT NULL, card_number TEXT, iban TEXT,
  amount_cents INTEGER NOT NULL, paid_at TEXT NOT NULL
);
CREATE INDEX orders_customer ON orders(customer_id);
CREATE INDEX payments_order ON payments(order_id);
CREATE VIEW customer_totals AS
  SELECT c.id, c.email, count(o.id) AS orders, coalesce(sum(o.total_cents), 0) AS total_cents
  FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id;
"""

STATUSES = ["new", "paid", "shipped", "cancelled", "refunded"]


def create_shop(path: Path, customers: int, seed: int = 42) -> dict[str, int]:
    """Write a realistic-looking (entirely generated) shop database to ``path``."""
    fake = Faker(["en_US", "en_GB", "de_DE", "fr_FR"])
    Faker.seed(seed)
    rnd = random.Random(seed)
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA)
        people = []
        for i in range(1, customers + 1):
            first, last = fake.first_name(), fake.last_name()
            email = f"{first}.{last}.{i}@{fake.free_email_domain()}".lower().replace(" ", "")
            people.append((i, first, last, email, fake.phone_number(), fake.street_address(), fake.city(),
                           fake.postcode(), fake.current_country_code(),
                           fake.date_of_birth(minimum_age=18, maximum_age=90).isoformat(),
                           fake.date_time_between("-5y").isoformat(timespec="seconds")))
        conn.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?,?,?)", people)
        orders: list[tuple[object, ...]] = []
        payments: list[tuple[object, ...]] = []
        for oid in range(1, customers * 3 + 1):
            total = rnd.randint(199, 49_999)
            when = fake.date_time_between("-3y").isoformat(timespec="seconds")
            status = rnd.choice(STATUSES)
            orders.append((oid, rnd.randint(1, customers), when, status, total))
            if status != "new":
                card = fake.credit_card_number() if rnd.random() < 0.7 else None
                iban = None if card else fake.iban()
                payments.append((len(payments) + 1, oid, "card" if card else "transfer", card, iban, total, when))
        conn.executemany("INSERT INTO orders VALUES (?,?,?,?,?)", orders)
        conn.executemany("INSERT INTO payments VALUES (?,?,?,?,?,?,?)", payments)
        conn.commit()
        return {"customers": len(people), "orders": len(orders), "payments": len(payments)}
    finally:
        conn.close()
