"""``datasafe demo``: the whole cycle on a generated SQLite shop, no server needed."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

from faker import Faker

from datasafe import api
from datasafe.config import Config, LoadedConfig, resolve_source
from datasafe.engines import RestoreOptions, get_engine
from datasafe.progress import Progress
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.urls import DatabaseURL

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


def run_demo(workdir: Path, *, customers: int = 2000, progress: Progress | None = None) -> dict[str, Any]:
    """Create, back up, verify, restore and compare; returns what happened."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "shop.db"
    restored = workdir / "shop-restored.db"
    storage = workdir / "backups"
    counts = create_shop(db, customers)
    repo = api.open_repository(str(storage))
    source = resolve_source(LoadedConfig(Config(), None), f"sqlite:///{db.absolute()}", "shop")
    manifest = api.backup(source, repo, tags=["demo"], progress=progress)
    report = api.verify(repo, manifest, progress=progress)
    restored.unlink(missing_ok=True)
    # an unconfigured target: the demo's (generated) data counts as production, so say which file
    api.restore(repo, manifest.snapshot_id, f"sqlite:///{restored.absolute()}",
                RestoreOptions(progress=progress) if progress else None, confirm=restored.name)
    engine = get_engine("sqlite")
    digests = dict(engine.table_digests(DatabaseURL.parse(f"sqlite:///{restored.absolute()}"), manifest))
    identical = all(digests.get(t.name) == t.content_blake3 for t in manifest.tables)
    masking = _mask_step(repo, manifest, db, workdir, progress)
    st = f"--storage {storage}"
    return {
        "database": str(db),
        "source_tables": counts,
        "snapshot": manifest.snapshot_id,
        "storage": str(storage),
        "raw_bytes": manifest.raw_size,
        "stored_bytes": manifest.stored_size,
        "verify": report.as_dict(),
        "restored": str(restored),
        "identical": identical,
        "masking": masking,
        "next": [
            f"datasafe list {st}",
            # 'latest' is shop's newest: shop.masked is only a masked copy of it
            f"datasafe show latest {st}",
            f"datasafe verify latest --deep {st}",
            f"datasafe restore latest --target sqlite:///{workdir}/copy.db --confirm copy.db --dry-run {st}",
            f"datasafe mask latest --rules {masking['rules']} --random-key --dry-run {st}",
        ],
    }


#: the example rules for this database, when datasafe runs from a source checkout
DEMO_RULES = Path(__file__).resolve().parents[1] / "masking_rules" / "demo.yml"


def _mask_step(repo: Repository, manifest: Manifest, db: Path, workdir: Path,
               progress: Progress | None) -> dict[str, Any]:
    """Mask the demo snapshot, restore the masked copy and check that nothing real is left in it."""
    from datasafe.masking.api import mask, rules_init
    from datasafe.masking.keys import load_key
    from datasafe.masking.rules import load_rules

    rules_path = DEMO_RULES
    if not rules_path.is_file():  # an installed package: start from the suggested rules
        rules_path = workdir / "demo-rules.yml"
        rules_path.write_text(rules_init(manifest), encoding="utf-8")
    rules = load_rules(rules_path)
    key = load_key(rules, allow_random=True)
    result = mask(repo, manifest, rules_path, key, tags=["demo"], progress=progress)
    masked = result.manifest
    assert masked is not None
    target = workdir / "shop-masked.db"
    target.unlink(missing_ok=True)
    api.restore(repo, masked.snapshot_id, f"sqlite:///{target.absolute()}",
                RestoreOptions(progress=progress) if progress else None, source=masked.source)
    join = "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id"
    columns = "id, first_name, last_name, email, phone"
    with sqlite3.connect(db) as before, sqlite3.connect(target) as after:
        real = {r[0] for r in before.execute("SELECT email FROM customers")}
        leaked = sum(1 for r in after.execute("SELECT email FROM customers") if r[0] in real)
        joins = (before.execute(join).fetchone()[0], after.execute(join).fetchone()[0])
        sample = [{"before": list(b), "after": list(a)} for b, a in zip(
            before.execute(f"SELECT {columns} FROM customers ORDER BY id LIMIT 3"),
            after.execute(f"SELECT {columns} FROM customers ORDER BY id LIMIT 3"), strict=True)]
    return {"snapshot": masked.snapshot_id, "source": masked.source, "rules": str(rules_path),
            "key": "random per-run key" if key.is_random else f"key {key.key_id}", "restored": str(target),
            "real_emails_left": leaked, "joins": {"before": joins[0], "after": joins[1]}, "sample": sample}
