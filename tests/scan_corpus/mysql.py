"""Scan corpus, MySQL/MariaDB: schema ``mysql.sql``, rows from :func:`generate`, labels in
``labels/mysql.yaml``.

A web shop (the shape of the usual e-commerce samples: countries, customers with addresses,
genres, products with a FULLTEXT-indexed generated column, orders with JSON line items and a JSON
array of CC addresses, payments by card or SEPA), HR (employees with national ids of four
countries, IBANs; staff_photos), users, an audit_log with JSON payloads and support notes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.scan_corpus.base import Table, digest_rows
from tests.scan_corpus.fake import COUNTRY_TABLE, SERVICES, Fake

ENGINE = "mysql"
DDL = Path(__file__).with_name("mysql.sql")

N_CUSTOMERS = 2000
N_PRODUCTS = 1200
N_ORDERS = 3000
N_EMPLOYEES = 800
N_USERS = 1500
N_AUDIT = 3000
N_NOTES = 1000

GENRES = ["Rock", "Jazz", "Blues", "Classical", "Hip-Hop", "Electronic", "Folk", "Metal", "Reggae", "Soul",
          "Board Games", "Outdoor", "Kitchen", "Garden", "Office", "Toys", "Sports", "Books", "Audio", "Lighting"]
DEPARTMENTS = ["Finance", "Logistics", "Marketing", "Engineering", "Customer Care", "Legal", "Purchasing"]
TITLES = ["Engineer", "Senior Engineer", "Staff", "Senior Staff", "Assistant Engineer", "Technique Leader",
          "Manager", "Clerk", "Buyer", "Analyst"]


def generate(seed: int) -> list[Table]:
    """Every row of the corpus database, in load order."""
    fake = Fake(seed)
    rng = fake.rng

    countries = Table("countries", ["iso2", "iso3", "name", "phone_prefix", "currency"])
    for row in COUNTRY_TABLE:
        countries.add(*row)

    customers = Table("customers", ["id", "first_name", "last_name", "email", "phone", "birth_date", "vat_number",
                                    "signup_ip", "country_code", "newsletter", "loyalty_points", "created_at"])
    addresses = Table("addresses", ["id", "customer_id", "street", "zip", "city", "district", "country_code",
                                    "is_default"])
    people = []
    for cid in range(1, N_CUSTOMERS + 1):
        p = fake.person()
        people.append(p)
        customers.add(cid, p.first_name, p.last_name, p.email, p.phone if fake.chance(0.92) else None,
                      p.birth_date if fake.chance(0.8) else None, fake.vat() if fake.chance(0.2) else None,
                      fake.ip(), p.country, int(fake.chance(0.4)), rng.randrange(0, 9000),
                      fake.timestamp(1400).replace(tzinfo=None))
        for n in range(1 if fake.chance(0.8) else 2):
            other = fake.person(p.country) if n else p
            district = other.city if fake.chance(0.15) else other.region
            addresses.add(len(addresses.rows) + 1, cid, other.street, other.postcode, other.city, district,
                          other.country, int(n == 0))

    genres = Table("genres", ["id", "name", "slug", "parent_id"])
    for i, name in enumerate(GENRES, 1):
        genres.add(i, name, re.sub(r"[^a-z]+", "-", name.lower()), None if i <= 10 else rng.randrange(1, 11))

    products = Table("products", ["id", "sku", "name", "description", "genre_id", "price", "currency",
                                  "weight_grams", "bin_quantity"])
    for pid in range(1, N_PRODUCTS + 1):
        products.add(pid, fake.sku(), fake.product_name(), fake.product_description(),
                     rng.randrange(1, len(GENRES) + 1), fake.money(2, 480), rng.choice(["EUR", "EUR", "USD", "GBP"]),
                     rng.randrange(40, 25000), rng.randrange(10000, 99999))

    orders = Table("orders", ["id", "order_number", "customer_id", "status", "approval", "ordered_at", "shipped_at",
                              "total", "currency", "shipping_name", "shipping_address", "cc_emails", "items"])
    payments = Table("payments", ["id", "order_id", "method", "amount", "card_number", "card_holder", "iban",
                                  "paid_at", "status", "http_status"])
    for oid in range(1, N_ORDERS + 1):
        cid = rng.randrange(1, N_CUSTOMERS + 1)
        p = people[cid - 1]
        at = fake.timestamp(700).replace(tzinfo=None)
        status = rng.choice(["new", "paid", "shipped", "shipped", "delivered", "cancelled"])
        shipped = at + timedelta(hours=rng.randrange(4, 96)) if status in ("shipped", "delivered") else None
        items = [{"sku": fake.sku(), "qty": rng.randrange(1, 5), "price": fake.money(2, 120)}
                 for _ in range(rng.randrange(1, 5))]
        total = str(sum((Decimal(str(i["price"])) * int(str(i["qty"])) for i in items), Decimal("0.00")))
        cc = None
        if fake.chance(0.3):
            cc = json.dumps([fake.email(p.first_name, p.last_name) if fake.chance(0.5) else fake.person(p.country).email
                             for _ in range(rng.randrange(1, 3))])
        name = p.full_name if fake.chance(0.85) else fake.person(p.country).full_name
        orders.add(oid, fake.order_number(), cid, status, rng.choice(["auto", "auto", "manual"]), at, shipped, total,
                   rng.choice(["EUR", "USD", "GBP"]), name, p.full_address, cc, json.dumps(items))
        method = rng.choices(["card", "sepa", "invoice", "voucher"], [55, 25, 15, 5])[0]
        payments.add(oid, oid, method, total, fake.card_number() if method == "card" else None,
                     (p.full_name.upper() if fake.chance(0.5) else p.full_name) if method == "card" else None,
                     fake.iban() if method == "sepa" else None, at + timedelta(minutes=rng.randrange(1, 300)),
                     rng.choice(["captured"] * 9 + ["declined"]), rng.choice([200] * 8 + [402, 409]))

    employees = Table("employees", ["emp_no", "first_name", "last_name", "email", "birth_date", "hire_date",
                                    "national_id", "tax_country", "iban", "phone", "phone_extension", "title", "salary",
                                    "manager_emp_no", "department"])
    staff_photos = Table("staff_photos", ["id", "emp_no", "photo", "mime_type", "sha256", "uploaded_at"])
    for i in range(1, N_EMPLOYEES + 1):
        emp_no = 10000 + i
        p = fake.person(rng.choice(["US", "US", "DE", "FR", "NL"]))
        employees.add(emp_no, p.first_name, p.last_name, f"{p.email.split('@')[0].lower()}@corp.example",
                      p.birth_date, fake.day(date(1999, 1, 1), date(2024, 5, 1)),
                      fake.national_id(p.country, p.birth_date) if fake.chance(0.95) else None,
                      p.country, fake.iban(p.country if p.country in ("DE", "FR", "NL") else None),
                      p.phone if fake.chance(0.85) else None, rng.randrange(100, 999) if fake.chance(0.5) else None,
                      rng.choice(TITLES), fake.money(30000, 140000), 10000 + rng.randrange(1, i) if i > 8 else None,
                      rng.choice(DEPARTMENTS))
        if fake.chance(0.75):
            photo = fake.photo()
            staff_photos.add(len(staff_photos.rows) + 1, emp_no, photo,
                             "image/png" if photo.startswith(b"\x89PNG") else "image/jpeg",
                             hashlib.sha256(photo).hexdigest(), fake.timestamp(900).replace(tzinfo=None))

    users = Table("users", ["id", "username", "password_hash", "last_login_ip", "last_login_at", "role",
                            "created_by", "api_client_id"])
    for uid in range(1, N_USERS + 1):
        p = people[uid - 1]
        seen = fake.chance(0.8)
        users.add(uid, fake.username(p.first_name, p.last_name), fake.password_hash(), fake.ip() if seen else None,
                  fake.timestamp(60).replace(tzinfo=None) if seen else None,
                  rng.choice(["customer", "customer", "support", "admin"]),
                  rng.choice(["api-gateway", "crm-connector", "ldap-import"]), fake.uuid())

    audit = Table("audit_log", ["id", "occurred_at", "actor_service", "action", "entity", "entity_id", "payload",
                                "context", "request_uuid"])
    for aid in range(1, N_AUDIT + 1):
        p = people[rng.randrange(N_CUSTOMERS)]
        action = rng.choices(["customer.update", "order.refund", "newsletter.subscribe", "cache.flush",
                              "price.update"], [25, 15, 15, 20, 25])[0]
        payload: dict[str, Any]
        if action == "customer.update":
            payload = {"changes": {"email": {"old": fake.email(p.first_name, p.last_name), "new": p.email}},
                       "by": rng.choice(["self", "support"])}
            if fake.chance(0.5):
                payload["changes"]["phone"] = {"old": None, "new": p.phone}
            entity = "customer"
        elif action == "order.refund":
            payload = {"amount": fake.money(5, 300), "reason": rng.choice(["damaged", "late", "wrong item"]),
                       "notify": {"email": p.email}}
            entity = "order"
        elif action == "newsletter.subscribe":
            payload = {"list": rng.choice(["weekly", "offers"]), "subscriber": {"email": p.email, "ip": fake.ip()}}
            entity = "customer"
        elif action == "cache.flush":
            payload = {"keys": rng.randrange(1, 5000), "took_ms": rng.randrange(1, 800)}
            entity = "system"
        else:
            payload = {"sku": fake.sku(), "old": fake.money(2, 400), "new": fake.money(2, 400), "currency": "EUR"}
            entity = "product"
        context = {"service_version": f"2.{rng.randrange(0, 30)}.{rng.randrange(0, 9)}",
                   "host": f"app-{rng.randrange(1, 12):02d}", "latency_ms": rng.randrange(1, 400)}
        audit.add(aid, fake.timestamp(90).replace(tzinfo=None), rng.choice(SERVICES), action, entity,
                  rng.randrange(1, 10**5), json.dumps(payload), json.dumps(context), fake.uuid())

    notes = Table("support_notes", ["id", "customer_id", "note", "escalate_to", "created_at", "channel"])
    leads = ["laura.schmidt@example.net"] * 12 + [fake.person("GB").email, fake.person("FR").email]
    for nid in range(1, N_NOTES + 1):
        cid = rng.randrange(1, N_CUSTOMERS + 1)
        text, _ = fake.ticket_text(people[cid - 1], pii_share=0.35)
        notes.add(nid, cid, text, rng.choice(leads), fake.timestamp(400).replace(tzinfo=None),
                  rng.choices(["email", "phone", "chat", "legal"], [40, 30, 27, 3])[0])

    return [countries, customers, addresses, genres, products, orders, payments, employees, staff_photos, users,
            audit, notes]


# -- databases ------------------------------------------------------------------------------------


def _params(url: str, database: str | None) -> dict[str, Any]:
    parts = urlsplit(url)
    kwargs: dict[str, Any] = {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
                              "user": unquote(parts.username or "root"), "charset": "utf8mb4", "autocommit": True}
    if parts.password is not None:
        kwargs["password"] = unquote(parts.password)
    if database:
        kwargs["database"] = database
    return kwargs


@contextmanager
def _connect(url: str, database: str | None = None) -> Iterator[Any]:
    import MySQLdb

    conn = MySQLdb.connect(**_params(url, database))
    try:
        yield conn
    finally:
        conn.close()


def statements(script: str) -> list[str]:
    """Split a script the way the mariadb client does (``DELIMITER`` lines change the terminator)."""
    out, buf, delim = [], [], ";"
    for line in script.splitlines():
        stripped = line.strip()
        if stripped.upper().startswith("DELIMITER "):
            delim = stripped.split(None, 1)[1]
            continue
        if not buf and (not stripped or stripped.startswith("--")):
            continue
        buf.append(line)
        if stripped.endswith(delim):
            text = "\n".join(buf).rstrip()
            out.append(text[: -len(delim)].rstrip())
            buf = []
    if "".join(buf).strip():
        out.append("\n".join(buf))
    return out


def database_url(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return f"{parts.scheme}://{parts.netloc}/{name}"


def create(server_url: str, name: str, seed: int) -> str:
    """Create database ``name`` on the server of ``server_url``, load the corpus; return its URL."""
    with _connect(server_url) as conn:
        cur = conn.cursor()
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    with _connect(server_url, name) as conn:
        cur = conn.cursor()
        cur.execute("SET SESSION time_zone = '+00:00', SESSION foreign_key_checks = 0")
        for statement in statements(DDL.read_text()):
            cur.execute(statement)
        for table in generate(seed):
            cols = ", ".join(f"`{c}`" for c in table.columns)
            marks = ", ".join(["%s"] * len(table.columns))
            sql = f"INSERT INTO `{table.name}` ({cols}) VALUES ({marks})"
            for start in range(0, len(table.rows), 500):
                cur.executemany(sql, table.rows[start:start + 500])
        cur.execute("SET SESSION foreign_key_checks = 1")
    return database_url(server_url, name)


def drop(server_url: str, name: str) -> None:
    with _connect(server_url) as conn:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")


def columns(url: str) -> list[tuple[str, str]]:
    """(table, column) of every column of every base table of the database in ``url``."""
    name = urlsplit(url).path.lstrip("/")
    with _connect(url, name) as conn:
        cur = conn.cursor()
        cur.execute("""SELECT c.TABLE_NAME, c.COLUMN_NAME FROM information_schema.COLUMNS c
                       JOIN information_schema.TABLES t USING (TABLE_SCHEMA, TABLE_NAME)
                       WHERE c.TABLE_SCHEMA = %s AND t.TABLE_TYPE = 'BASE TABLE'
                       ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION""", (name,))
        return [(str(t), str(c)) for t, c in cur.fetchall()]


def digest(url: str, tables: list[str]) -> str:
    """Content digest of ``tables`` as the server returns them (ordered by the first column)."""
    name = urlsplit(url).path.lstrip("/")
    out = []
    with _connect(url, name) as conn:
        cur = conn.cursor()
        cur.execute("SET SESSION time_zone = '+00:00'")
        for table in tables:
            cur.execute(f"SELECT * FROM `{table}` ORDER BY 1")
            out.append(digest_rows(cur.fetchall()))
    return digest_rows([out])
