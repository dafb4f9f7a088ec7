"""Scan corpus, PostgreSQL: schema ``postgresql.sql``, rows from :func:`generate`, labels in
``labels/postgresql.yaml``.

Shapes follow pagila (country, city, address, customer, staff, language, category, film with a
trigger-maintained tsvector, rental, payment), plus a support desk with free text, an HR schema
(``hr.departments``, ``hr.employees`` with national ids, IBANs, a text[] of e-mail addresses and
contract PDFs) and an application's ``users``, ``events`` (jsonb) and ``documents`` (exports).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tests.scan_corpus.base import Table, digest_rows
from tests.scan_corpus.fake import CITIES, COUNTRY_TABLE, EPOCH, SERVICES, Fake, Person

ENGINE = "postgresql"
DDL = Path(__file__).with_name("postgresql.sql")
#: schemas the corpus creates (the catalog listing looks only there)
SCHEMAS = ("public", "hr")

N_CUSTOMERS = 1500
N_STAFF = 500
N_FILMS = 1000
N_RENTALS = 3000
N_PAYMENTS = 3000
N_TICKETS = 900
N_EMPLOYEES = 1200
N_USERS = 2000
N_EVENTS = 3000
N_DOCUMENTS = 600

LANGUAGES = ["English", "Italian", "Japanese", "Mandarin", "French", "German"]
CATEGORIES = ["Action", "Animation", "Children", "Classics", "Comedy", "Documentary", "Drama", "Family",
              "Foreign", "Games", "Horror", "Music", "New", "Sci-Fi", "Sports", "Travel"]
DEPARTMENTS = ["Finance", "Human Resources", "Legal", "Logistics", "Marketing", "Procurement", "Engineering",
               "Customer Care", "Security", "Facilities", "Data Platform", "Sales EMEA", "Sales APAC",
               "Sales Americas", "Quality", "Research", "Design", "Compliance", "Internal Audit", "Treasury",
               "Payroll", "Recruiting", "IT Operations", "Store Operations"]
JOB_TITLES = ["Accountant", "Analyst", "Engineer", "Senior Engineer", "Team Lead", "Manager", "Director",
              "Specialist", "Coordinator", "Consultant", "Clerk", "Administrator"]
#: jsonb columns (the loader wraps their values)
JSON_COLUMNS = {"public.events": ("payload", "meta")}
#: (table, serial column): sequences moved past the loaded ids
SERIALS = [("public.country", "country_id"), ("public.city", "city_id"), ("public.address", "address_id"),
           ("public.customer", "customer_id"), ("public.staff", "staff_id"), ("public.language", "language_id"),
           ("public.category", "category_id"), ("public.film", "film_id"), ("public.rental", "rental_id"),
           ("public.payment", "payment_id"), ("public.support_ticket", "ticket_id"),
           ("hr.departments", "department_id"), ("hr.employees", "employee_id"), ("public.users", "user_id"),
           ("public.events", "event_id"), ("public.documents", "document_id")]
SUBJECTS = ["Delivery question", "Refund request", "Damaged item", "Invoice correction", "Account access",
            "Change of delivery slot", "Feedback", "Complaint", "Order status"]


def _title_upper(fake: Fake) -> str:
    return fake.title().upper()


def generate(seed: int) -> list[Table]:
    """Every row of the corpus database, in load order (parents first)."""
    fake = Fake(seed)
    rng = fake.rng
    t_last = EPOCH - timedelta(days=3)

    country = Table("public.country", ["country_id", "country", "iso_code", "city_count", "last_update"])
    city = Table("public.city", ["city_id", "city", "country_id", "last_update"])
    country_ids = {iso: i for i, (iso, *_rest) in enumerate(COUNTRY_TABLE, 1)}
    city_rows: list[tuple[int, str, str]] = []  # (city_id, name, iso)
    for iso, names in CITIES.items():
        for name in names:
            city_rows.append((len(city_rows) + 1, name, iso))
    for i, (iso, _iso3, name, _prefix, _cur) in enumerate(COUNTRY_TABLE, 1):
        country.add(i, name, iso, sum(1 for c in city_rows if c[2] == iso), t_last)
    for cid, name, iso in city_rows:
        city.add(cid, name, country_ids[iso], t_last)
    city_of = {(iso, name): cid for cid, name, iso in city_rows}

    address = Table("public.address", ["address_id", "address", "address2", "district", "city_id", "postal_code",
                                       "phone", "last_update"])

    def add_address(p: Person) -> int:
        aid = len(address.rows) + 1
        address2 = None
        if fake.chance(0.2):
            address2 = rng.choice(["Apt ", "Suite ", "Flat ", "Unit "]) + f"{rng.randrange(1, 60)}{rng.choice('ABCD ')}"
        # district is the region, but in 15 % of the rows somebody typed the city again
        district = p.city if fake.chance(0.15) else p.region
        address.add(aid, p.street, address2 and address2.strip(), district, city_of[(p.country, p.city)], p.postcode,
                    p.phone, t_last)
        return aid

    customer = Table("public.customer", ["customer_id", "store_id", "first_name", "last_name", "email", "address_id",
                                         "activebool", "create_date", "last_update", "active"])
    customers: list[Person] = []
    for cid in range(1, N_CUSTOMERS + 1):
        p = fake.person()
        customers.append(p)
        active = fake.chance(0.93)
        customer.add(cid, rng.choice([1, 2]), p.first_name, p.last_name, p.email if fake.chance(0.97) else None,
                     add_address(p), active, fake.day(date(2019, 1, 1), date(2024, 6, 1)), t_last, int(active))

    staff = Table("public.staff", ["staff_id", "first_name", "last_name", "address_id", "email", "store_id", "active",
                                   "username", "password", "picture", "phone_extension", "last_update"])
    for sid in range(1, N_STAFF + 1):
        p = fake.person()
        staff.add(sid, p.first_name, p.last_name, add_address(p), p.email, rng.choice([1, 2]), fake.chance(0.9),
                  fake.username(p.first_name, p.last_name), fake.password_hash(),
                  fake.photo() if fake.chance(0.85) else None, rng.randrange(100, 990) if fake.chance(0.7) else None,
                  t_last)

    language = Table("public.language", ["language_id", "name", "last_update"])
    for i, name in enumerate(LANGUAGES, 1):
        language.add(i, name, t_last)
    category = Table("public.category", ["category_id", "name", "last_update"])
    for i, name in enumerate(CATEGORIES, 1):
        category.add(i, name, t_last)

    film = Table("public.film", ["film_id", "title", "description", "release_year", "language_id", "category_id",
                                 "rental_duration", "rental_rate", "length", "replacement_cost", "rating",
                                 "special_features", "sku", "last_update"])
    features = ["Trailers", "Commentaries", "Deleted Scenes", "Behind the Scenes"]
    for fid in range(1, N_FILMS + 1):
        film.add(fid, _title_upper(fake), fake.film_description(), rng.randrange(1990, 2024), rng.randrange(1, 7),
                 rng.randrange(1, 17), rng.randrange(3, 8), rng.choice(["0.99", "2.99", "4.99"]),
                 rng.randrange(46, 186), fake.money(9.99, 29.99), rng.choice(["G", "PG", "PG-13", "R", "NC-17"]),
                 sorted(rng.sample(features, rng.randrange(1, 4)), key=features.index), fake.sku(), t_last)

    rental = Table("public.rental", ["rental_id", "rental_date", "inventory_id", "customer_id", "return_date",
                                     "staff_id", "rental_ref", "last_update"])
    for rid in range(1, N_RENTALS + 1):
        at = fake.timestamp(700)
        returned = at + timedelta(hours=rng.randrange(20, 240)) if fake.chance(0.92) else None
        rental.add(rid, at, rng.randrange(1, 4582), rng.randrange(1, N_CUSTOMERS + 1), returned,
                   rng.randrange(1, N_STAFF + 1), f"R-{at.year}-{rid:06d}", t_last)

    payment = Table("public.payment", ["payment_id", "customer_id", "staff_id", "rental_id", "amount", "currency",
                                       "payment_date", "card_number", "card_last4", "status"])
    for pid in range(1, N_PAYMENTS + 1):
        card = fake.card_number() if fake.chance(0.8) else None
        payment.add(pid, rng.randrange(1, N_CUSTOMERS + 1), rng.randrange(1, N_STAFF + 1),
                    rng.randrange(1, N_RENTALS + 1) if fake.chance(0.95) else None, fake.money(0.99, 11.99),
                    rng.choice(["USD", "EUR", "GBP"]), fake.timestamp(700), card,
                    card[-4:] if card else None, rng.choice(["settled"] * 8 + ["refunded", "failed"]))

    ticket = Table("public.support_ticket", ["ticket_id", "customer_id", "subject", "body", "status", "created_by",
                                             "escalation_contact", "created_at"])
    leads = ["laura.schmidt@example.net"] * 17 + [fake.person("GB").email, fake.person("US").email]
    for tid in range(1, N_TICKETS + 1):
        cid = rng.randrange(1, N_CUSTOMERS + 1)
        body, _ = fake.ticket_text(customers[cid - 1], pii_share=0.4)
        ticket.add(tid, cid, rng.choice(SUBJECTS), body, rng.choice(["open", "pending", "closed", "closed"]),
                   rng.choice(["crm-connector", "mailer-worker", "api-gateway"]), rng.choice(leads),
                   fake.timestamp(400))

    departments = Table("hr.departments", ["department_id", "name", "cost_center", "approval", "created_by",
                                           "created_at"])
    for i, name in enumerate(DEPARTMENTS, 1):
        departments.add(i, name, f"{rng.randrange(10000, 99999)}", rng.choice(["auto", "manager"]),
                        rng.choice(["hr-sync", "ldap-import"]), fake.timestamp(2000))

    employees = Table("hr.employees", ["employee_id", "first_name", "last_name", "display_name", "work_email",
                                       "private_emails", "national_id", "iban", "date_of_birth", "phone",
                                       "phone_extension", "hire_date", "job_title", "salary", "department_id",
                                       "manager_id", "contract_pdf"])
    for eid in range(1, N_EMPLOYEES + 1):
        p = fake.person("US") if fake.chance(0.7) else fake.person()
        work = f"{p.email.split('@')[0].lower()}@corp.example"
        private: list[str] | None = None
        if fake.chance(0.7):
            private = [p.email.lower()] + [fake.email(p.first_name, p.last_name) for _ in range(rng.randrange(0, 3))]
        elif fake.chance(0.5):
            private = []
        display = f"{p.last_name}, {p.first_name}" if fake.chance(0.3) else p.full_name
        employees.add(eid, p.first_name, p.last_name, display, work, private,
                      fake.ssn(dashes=fake.chance(0.8)) if fake.chance(0.95) else None,
                      fake.iban() if fake.chance(0.9) else None, p.birth_date, p.phone if fake.chance(0.9) else None,
                      rng.randrange(1000, 9999) if fake.chance(0.6) else None,
                      fake.day(date(2001, 1, 1), date(2024, 5, 1)), rng.choice(JOB_TITLES),
                      fake.money(38000, 160000), rng.randrange(1, len(DEPARTMENTS) + 1),
                      rng.randrange(1, eid) if eid > 10 else None, fake.pdf(p) if fake.chance(0.6) else None)

    users = Table("public.users", ["user_id", "username", "password_hash", "reset_token", "last_login_ip",
                                   "last_login_at", "external_id", "roles", "locale", "created_at"])
    for uid in range(1, N_USERS + 1):
        p = customers[uid - 1] if uid <= N_CUSTOMERS else fake.person()
        created = fake.timestamp(1500)
        seen = fake.chance(0.85)
        users.add(uid, fake.username(p.first_name, p.last_name), fake.password_hash(),
                  fake.hex(16) if fake.chance(0.12) else None, fake.ip() if seen else None,
                  fake.timestamp(90) if seen else None, fake.uuid(),
                  rng.choice([["reader"], ["reader"], ["editor", "reader"], ["admin"]]),
                  rng.choice(["en_US", "en_GB", "fr_FR", "de_DE"]), created)

    events = Table("public.events", ["event_id", "occurred_at", "event_type", "actor", "client_ip", "payload", "meta",
                                     "request_id"])
    for eid in range(1, N_EVENTS + 1):
        kind = rng.choices(["user.signup", "order.placed", "password.reset", "job.finished"], [25, 30, 10, 35])[0]
        p = customers[rng.randrange(N_CUSTOMERS)]
        ip = None
        payload: dict[str, Any]
        if kind == "user.signup":
            payload = {"user": {"id": rng.randrange(1, N_USERS), "email": p.email, "name": p.full_name,
                                "locale": rng.choice(["en_US", "fr_FR"])}, "source": rng.choice(["web", "app"])}
            ip = fake.ip()
        elif kind == "order.placed":
            payload = {"order": {"id": rng.randrange(1, 10**6), "total": fake.money(5, 400),
                                 "currency": rng.choice(["EUR", "USD"]), "items": rng.randrange(1, 9)}}
            if fake.chance(0.6):
                payload["contact"] = {"phone": p.phone, "preferred": rng.choice(["sms", "call"])}
            ip = fake.ip()
        elif kind == "password.reset":
            payload = {"user_id": rng.randrange(1, N_USERS), "channel": "email", "to": p.email}
            ip = fake.ip()
        else:
            payload = {"job": rng.choice(["nightly-export", "reindex", "vacuum-report"]),
                       "duration_ms": rng.randrange(200, 900000), "rows": rng.randrange(0, 10**6),
                       "status": rng.choice(["ok", "ok", "ok", "retry"])}
        meta = {"app_version": f"3.{rng.randrange(0, 14)}.{rng.randrange(0, 9)}",
                "region": rng.choice(["eu-west-1", "eu-central-1", "us-east-1"]), "trace_id": fake.hex(8),
                "duration_ms": rng.randrange(1, 900)}
        events.add(eid, fake.timestamp(120), kind,
                   rng.choice(SERVICES[:3]) if kind != "job.finished" else "scheduler", ip, payload, meta, fake.uuid())

    documents = Table("public.documents", ["document_id", "file_name", "mime_type", "sha256", "size_bytes",
                                           "content", "created_by", "created_at"])
    for did in range(1, N_DOCUMENTS + 1):
        at = fake.timestamp(600)
        content = fake.gzip_csv(rng.randrange(5, 40))
        documents.add(did, f"stock-export-{at:%Y-%m-%d}-{did:04d}.csv.gz", "application/gzip",
                      hashlib.sha256(content).hexdigest(), len(content), content, rng.choice(SERVICES[:2]), at)

    return [country, city, address, customer, staff, language, category, film, rental, payment, ticket,
            departments, employees, users, events, documents]


# -- databases ------------------------------------------------------------------------------------


@contextmanager
def _connect(url: str) -> Iterator[Any]:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


def _with_db(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def create(server_url: str, name: str, seed: int) -> str:
    """Create database ``name`` on the server of ``server_url``, load the corpus; return its URL."""
    from psycopg.types.json import Jsonb

    with _connect(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING UTF8')
    url = _with_db(server_url, name)
    with _connect(url) as conn:
        conn.execute(DDL.read_text())
        for table in generate(seed):
            cols = ", ".join(table.columns)
            json_at = [i for i, c in enumerate(table.columns) if c in JSON_COLUMNS.get(table.name, ())]
            with conn.cursor() as cur, cur.copy(f"COPY {table.name} ({cols}) FROM STDIN") as copy:
                for row in table.rows:
                    if json_at:
                        row = tuple(Jsonb(v) if i in json_at else v for i, v in enumerate(row))
                    copy.write_row(row)
        for name, column in SERIALS:
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{name}', '{column}'), "
                         f"(SELECT max({column}) FROM {name}))")
        conn.execute("ANALYZE")
    return url


def drop(server_url: str, name: str) -> None:
    with _connect(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def columns(url: str) -> list[tuple[str, str]]:
    """(schema.table, column) of every column of every base table in the corpus schemas."""
    with _connect(url) as conn:
        rows = conn.execute(
            """SELECT n.nspname || '.' || c.relname, a.attname
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid
               WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
               ORDER BY 1, a.attnum""", (list(SCHEMAS),)).fetchall()
    return [(str(t), str(c)) for t, c in rows]


def digest(url: str, tables: list[str]) -> str:
    """Content digest of ``tables`` as the server returns them (ordered by the first column)."""
    out = []
    with _connect(url) as conn:
        for name in tables:
            rows = conn.execute(f"SELECT * FROM {name} ORDER BY 1").fetchall()
            out.append(digest_rows(rows))
    return digest_rows([out])
