"""Scan corpus, SQLite: schema ``sqlite.sql``, rows from :func:`generate`, labels in
``labels/sqlite.yaml``.

Shapes follow chinook (genres, media_types, albums, tracks, customers with a trigger-maintained
search name, employees with SSN, IBAN and photo, invoices that copy the billing address,
invoice_items), plus an application's users (a generated lower(email), a JSON array of aliases),
events with JSON payloads in TEXT, support tickets with PDF attachments and stored files.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import date, datetime
from pathlib import Path
from typing import Any

from tests.scan_corpus.base import Table, digest_rows
from tests.scan_corpus.fake import COUNTRY_TABLE, SERVICES, Fake

ENGINE = "sqlite"
DDL = Path(__file__).with_name("sqlite.sql")

N_ALBUMS = 600
N_TRACKS = 3000
N_CUSTOMERS = 1500
N_EMPLOYEES = 600
N_INVOICES = 2500
N_ITEMS = 3000
N_USERS = 2000
N_EVENTS = 3000
N_TICKETS = 900
N_FILES = 500

GENRES = ["Rock", "Jazz", "Metal", "Alternative & Punk", "Rock And Roll", "Blues", "Latin", "Reggae", "Pop",
          "Soundtrack", "Bossa Nova", "Easy Listening", "Heavy Metal", "R&B/Soul", "Electronica/Dance", "World",
          "Hip Hop/Rap", "Science Fiction", "TV Shows", "Sci Fi & Fantasy", "Drama", "Comedy", "Alternative",
          "Classical", "Opera"]
MEDIA_TYPES = ["MPEG audio file", "Protected AAC audio file", "Protected MPEG-4 video file",
               "Purchased AAC audio file", "AAC audio file"]
LABELS = ["Harbor Records", "Northern Sound", "Velvet Tapes", "Cosmic Vinyl", "Lunar Music Group"]
COUNTRY_NAMES = {iso: name for iso, _iso3, name, _p, _c in COUNTRY_TABLE}
TITLES = ["Sales Support Agent", "Sales Manager", "IT Staff", "IT Manager", "General Manager", "Accountant"]


def _isrc(fake: Fake) -> str:
    """An ISRC recording code: country, registrant, year, designation (USRC17607839)."""
    rng = fake.rng
    registrant = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(3))
    return f"{rng.choice(['US', 'GB', 'FR', 'DE'])}{registrant}{rng.randrange(60, 99)}{rng.randrange(100000):05d}"


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def generate(seed: int) -> list[Table]:
    """Every row of the corpus database, in load order."""
    fake = Fake(seed)
    rng = fake.rng

    genres = Table("genres", ["GenreId", "Name"])
    for i, name in enumerate(GENRES, 1):
        genres.add(i, name)
    media = Table("media_types", ["MediaTypeId", "Name"])
    for i, name in enumerate(MEDIA_TYPES, 1):
        media.add(i, name)
    albums = Table("albums", ["AlbumId", "Title", "ReleaseYear", "Label"])
    for i in range(1, N_ALBUMS + 1):
        albums.add(i, fake.title() if fake.chance(0.7) else f"{fake.title()} (Live)", rng.randrange(1962, 2024),
                   rng.choice(LABELS))
    tracks = Table("tracks", ["TrackId", "Name", "AlbumId", "MediaTypeId", "GenreId", "Milliseconds", "Bytes",
                              "UnitPrice", "Isrc"])
    for i in range(1, N_TRACKS + 1):
        ms = rng.randrange(90_000, 600_000)
        tracks.add(i, fake.title() if fake.chance(0.6) else f"{rng.choice(['The ', ''])}{fake.title()} Blues",
                   rng.randrange(1, N_ALBUMS + 1), rng.randrange(1, len(MEDIA_TYPES) + 1),
                   rng.randrange(1, len(GENRES) + 1), ms, ms * rng.randrange(28, 34), rng.choice([0.99, 1.99]),
                   _isrc(fake))

    employees = Table("employees", ["EmployeeId", "LastName", "FirstName", "Title", "ReportsTo", "BirthDate",
                                    "HireDate", "Address", "City", "State", "Country", "PostalCode", "Phone",
                                    "Extension", "Email", "Ssn", "Iban", "Photo"])
    for i in range(1, N_EMPLOYEES + 1):
        p = fake.person(rng.choice(["US", "US", "CA"]))
        employees.add(i, p.last_name, p.first_name, rng.choice(TITLES), rng.randrange(1, i) if i > 3 else None,
                      p.birth_date.isoformat(), fake.day(date(2002, 1, 1), date(2024, 1, 1)).isoformat(), p.street,
                      p.city, p.region, COUNTRY_NAMES[p.country], p.postcode, p.phone,
                      rng.randrange(100, 999) if fake.chance(0.7) else None,
                      f"{p.email.split('@')[0].lower()}@corp.example", fake.ssn(dashes=fake.chance(0.7)),
                      fake.iban(rng.choice(["DE", "FR", "GB", "NL"])) if fake.chance(0.9) else None,
                      fake.photo() if fake.chance(0.8) else None)

    customers = Table("customers", ["CustomerId", "FirstName", "LastName", "Company", "Address", "City", "State",
                                    "Country", "PostalCode", "Phone", "Fax", "Email", "SupportRepId"])
    people = []
    for i in range(1, N_CUSTOMERS + 1):
        p = fake.person()
        people.append(p)
        customers.add(i, p.first_name, p.last_name,
                      str(fake.faker["en_US"].company()) if fake.chance(0.2) else None, p.street, p.city,
                      p.region if p.country in ("US", "CA", "AU") else None, COUNTRY_NAMES[p.country], p.postcode,
                      p.phone if fake.chance(0.95) else None, fake.phone(p.country)[1] if fake.chance(0.35) else None,
                      p.email, rng.randrange(1, 40))

    invoices = Table("invoices", ["InvoiceId", "CustomerId", "InvoiceNumber", "InvoiceDate", "BillingAddress",
                                  "BillingCity", "BillingState", "BillingCountry", "BillingPostalCode", "Total",
                                  "Currency"])
    for i in range(1, N_INVOICES + 1):
        cid = rng.randrange(1, N_CUSTOMERS + 1)
        p = people[cid - 1]
        invoices.add(i, cid, fake.order_number(), _ts(fake.timestamp(1200)), p.street, p.city,
                     p.region if p.country in ("US", "CA", "AU") else None, COUNTRY_NAMES[p.country], p.postcode,
                     round(rng.uniform(0.99, 25.0), 2), rng.choice(["USD", "EUR", "GBP"]))
    items = Table("invoice_items", ["InvoiceLineId", "InvoiceId", "TrackId", "UnitPrice", "Quantity"])
    for i in range(1, N_ITEMS + 1):
        items.add(i, rng.randrange(1, N_INVOICES + 1), rng.randrange(1, N_TRACKS + 1), rng.choice([0.99, 1.99]),
                  rng.choice([1, 1, 1, 2]))

    users = Table("users", ["id", "username", "password_hash", "email", "alias_emails", "last_login_ip",
                            "last_login_at", "created_at", "external_id"])
    for i in range(1, N_USERS + 1):
        p = people[i - 1] if i <= N_CUSTOMERS else fake.person()
        aliases = None
        if fake.chance(0.4):
            aliases = json.dumps([fake.email(p.first_name, p.last_name) for _ in range(rng.randrange(1, 4))])
        elif fake.chance(0.3):
            aliases = "[]"
        seen = fake.chance(0.8)
        users.add(i, fake.username(p.first_name, p.last_name), fake.password_hash(), p.email, aliases,
                  fake.ip() if seen else None, _ts(fake.timestamp(60)) if seen else None, _ts(fake.timestamp(1500)),
                  fake.uuid())

    events = Table("events", ["id", "ts", "kind", "source", "payload", "data_json"])
    usernames = [str(row[1]) for row in users.rows]
    for i in range(1, N_EVENTS + 1):
        kind = rng.choices(["login", "profile.update", "purchase", "export"], [35, 15, 25, 25])[0]
        p = people[rng.randrange(N_CUSTOMERS)]
        payload: dict[str, Any]
        if kind == "login":
            payload = {"user": {"username": rng.choice(usernames), "ip": fake.ip()}, "mfa": fake.chance(0.3)}
        elif kind == "profile.update":
            field = rng.choice(["email", "phone"])
            payload = {"field": field, "value": p.email if field == "email" else p.phone}
        elif kind == "purchase":
            payload = {"invoice": rng.randrange(1, N_INVOICES + 1), "total": f"{rng.uniform(0.99, 25):.2f}",
                       "tracks": rng.randrange(1, 12)}
        else:
            payload = {"rows": rng.randrange(1, 10**5), "format": rng.choice(["csv", "parquet"]),
                       "took_ms": rng.randrange(10, 90000)}
        data = {"ua": rng.choice(["Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4)",
                                  "okhttp/4.12.0"]), "locale": rng.choice(["en", "fr", "de"]),
                "screen": rng.choice(["1920x1080", "390x844", "2560x1440"])}
        events.add(i, _ts(fake.timestamp(120)), kind, rng.choice(SERVICES[:4]), json.dumps(payload),
                   json.dumps(data))

    tickets = Table("tickets", ["id", "customer_id", "body", "status", "created_at", "escalate_to", "attachment"])
    leads = ["laura.schmidt@example.net"] * 15 + [fake.person("US").email]
    for i in range(1, N_TICKETS + 1):
        cid = rng.randrange(1, N_CUSTOMERS + 1)
        body, _ = fake.ticket_text(people[cid - 1], pii_share=0.4)
        tickets.add(i, cid, body, rng.choices(["open", "closed", "legal"], [40, 57, 3])[0], _ts(fake.timestamp(400)),
                    rng.choice(leads), fake.pdf(people[cid - 1]) if fake.chance(0.4) else None)

    files = Table("files", ["id", "name", "sha256", "size", "generator_version", "data"])
    for i in range(1, N_FILES + 1):
        data = fake.gzip_csv(rng.randrange(5, 30))
        at = fake.timestamp(500)
        files.add(i, f"stock-{at:%Y%m%d}-{i:04d}.csv.gz", hashlib.sha256(data).hexdigest(), len(data),
                  f"{rng.randrange(1, 4)}.{rng.randrange(10, 46)}.{rng.randrange(0, 9)}.{rng.randrange(0, 30)}", data)

    return [genres, media, albums, tracks, employees, customers, invoices, items, users, events, tickets, files]


def create(path: Path | str, seed: int) -> str:
    """Write the corpus database to ``path`` (replaced if present); return its ``sqlite:///`` URL."""
    path = Path(path)
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(DDL.read_text())
        for table in generate(seed):
            cols = ", ".join(f'"{c}"' for c in table.columns)
            marks = ", ".join("?" * len(table.columns))
            conn.executemany(f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})', table.rows)
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()
    finally:
        conn.close()
    return f"sqlite:///{path.resolve()}"


def _path(url_or_path: Path | str) -> str:
    text = str(url_or_path)
    return text[len("sqlite:///"):] if text.startswith("sqlite:///") else text


def columns(url_or_path: Path | str) -> list[tuple[str, str]]:
    """(table, column) of every column of every table, generated (hidden) columns included."""
    conn = sqlite3.connect(f"file:{_path(url_or_path)}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        out = []
        for t in tables:
            out += [(t, str(r[1])) for r in conn.execute(f'PRAGMA table_xinfo("{t}")')]
        return out
    finally:
        conn.close()


def digest(url_or_path: Path | str, tables: list[str]) -> str:
    conn = sqlite3.connect(f"file:{_path(url_or_path)}?mode=ro", uri=True)
    try:
        return digest_rows([[digest_rows(conn.execute(f'SELECT * FROM "{t}" ORDER BY 1')) for t in tables]])
    finally:
        conn.close()

