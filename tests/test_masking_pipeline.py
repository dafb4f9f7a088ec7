"""Masking end to end: stored snapshot -> masked snapshot -> restore, on SQLite, PostgreSQL and MariaDB.

What must hold: no original value of a masked column appears anywhere in the output; every
foreign-key join of the source still joins; unique constraints hold on restore; the same key
gives the same output, another key another; subsetting follows foreign keys.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from datasafe.commands.repository import open_repository
from datasafe.config import Config, LoadedConfig, resolve_source
from datasafe.demo import create_shop
from datasafe.errors import ExitCode
from datasafe.snapshot.chunks import read_chunk
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.transfer.backup import backup as take_backup
from tests.test_pg_faults import assert_fails, assert_one_error_line, run_cli

KEY = "fd160157201170eae2d82989a9e350b58cb3ee3afb20e459"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")

SHOP_RULES = """\
version: 1
tables:
  customers:
    columns:
      first_name: first_name
      last_name: last_name
      email: email
      phone: phone
      street: street
      city: city
      postcode: postcode
      birth_date: {date_of_birth: {keep: year}}
    keep: [id, country, created_at]
  orders:
    keep: [id, customer_id, ordered_at, status, total_cents]
  payments:
    columns:
      card_number: credit_card
      iban: iban
    keep: [id, order_id, method, amount_cents, paid_at]
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def all_raw(repo: Repository, manifest: Manifest) -> bytes:
    objects = repo.snapshot_storage(manifest)
    return b"".join(b for t in manifest.tables for c in t.chunks for b in read_chunk(objects, c))


def sqlite_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def shop(tmp_path: Path, storage_dir: Path) -> tuple[Path, Repository, Manifest]:
    db = tmp_path / "shop.db"
    create_shop(db, 300)
    repo = open_repository(str(storage_dir))
    source = resolve_source(LoadedConfig(Config(), None), f"sqlite:///{db}", "shop")
    return db, repo, take_backup(source, repo, chunk_size=64 << 10)


def mask_cli(storage: Path, *args: str, key: str | None = KEY, monkeypatch: pytest.MonkeyPatch) -> Any:
    if key is None:
        monkeypatch.delenv("DATASAFE_MASKING_KEY", raising=False)
    else:
        monkeypatch.setenv("DATASAFE_MASKING_KEY", key)
    return run_cli(storage, "mask", *args)


def test_sqlite_masked_copy_leaks_nothing_and_still_joins(
        tmp_path: Path, storage_dir: Path, shop: tuple[Path, Repository, Manifest],
        monkeypatch: pytest.MonkeyPatch) -> None:
    db, repo, manifest = shop
    rules = write(tmp_path / "shop.yml", SHOP_RULES)
    result = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), "--json", monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    masked = repo.resolve(info["snapshot"], "shop.masked")
    assert masked.masking is not None and masked.masking["masked"] is True
    assert masked.masking["strict"] is True and len(masked.masking["key_id"]) >= 8
    assert KEY not in json.dumps(masked.model_dump(mode="json"))
    assert masked.masking["tables"]["customers"]["columns"]["email"] == "email"
    assert masked.masking["tables"]["orders"]["action"] == "copy"

    raw = all_raw(repo, masked).decode()
    originals = sqlite_rows(db, "SELECT email, phone, street, first_name || ' ' || last_name FROM customers")
    for email, phone, street, _name in originals:
        assert email not in raw and street not in raw
        if phone:
            assert phone not in raw
    for card, iban in sqlite_rows(db, "SELECT card_number, iban FROM payments"):
        assert (card or "\0") not in raw and (iban or "\0") not in raw

    target = tmp_path / "masked.db"
    restored = run_cli(storage_dir, "restore", masked.snapshot_id, "--target", f"sqlite:///{target}")
    assert restored.exit_code == 0, restored.output
    # every join of the source still joins, row counts unchanged
    join = "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id"
    assert sqlite_rows(target, join) == sqlite_rows(db, join)
    pay = "SELECT count(*) FROM payments p JOIN orders o ON o.id = p.order_id"
    assert sqlite_rows(target, pay) == sqlite_rows(db, pay)
    emails = [r[0] for r in sqlite_rows(target, "SELECT email FROM customers")]
    assert len(set(emails)) == len(emails) == 300
    assert all(EMAIL.match(e) for e in emails)
    # birth dates keep their year
    years = sqlite_rows(db, "SELECT substr(birth_date, 1, 4) FROM customers ORDER BY id")
    assert sqlite_rows(target, "SELECT substr(birth_date, 1, 4) FROM customers ORDER BY id") == years
    # NULL stays NULL
    nulls = "SELECT count(*) FROM payments WHERE card_number IS NULL"
    assert sqlite_rows(target, nulls) == sqlite_rows(db, nulls)


def test_same_key_same_output_other_key_other_output(
        tmp_path: Path, storage_dir: Path, shop: tuple[Path, Repository, Manifest],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _db, repo, manifest = shop
    rules = write(tmp_path / "shop.yml", SHOP_RULES)
    ids = []
    for key in (KEY, KEY, "b7e2c94f1a60d83e5c2f9a7b4d1e06c8"):
        result = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), key=key, monkeypatch=monkeypatch)
        assert result.exit_code == 0, result.output
        ids.append(result.stdout.strip())
    digests = [{t.name: t.content_blake3 for t in repo.resolve(i, "shop.masked").tables} for i in ids]
    assert digests[0] == digests[1]
    assert digests[0]["customers"] != digests[2]["customers"]
    assert digests[0]["orders"] == digests[2]["orders"] == manifest.table("orders").content_blake3  # type: ignore[union-attr]


def test_strict_coverage_lists_unclassified_columns(
        tmp_path: Path, storage_dir: Path, shop: tuple[Path, Repository, Manifest],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _db, _repo, manifest = shop
    rules = write(tmp_path / "shop.yml", SHOP_RULES.replace("      city: city\n", ""))
    result = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), monkeypatch=monkeypatch)
    assert_one_error_line(result, ExitCode.CONFIG, "customers.city", "neither masked nor kept")
    assert not (storage_dir / "shop.masked").exists() or not any((storage_dir / "shop.masked").iterdir())
    # turning strict off is explicit and logged; the column is then copied
    loose = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), "--no-strict", "--json",
                     monkeypatch=monkeypatch)
    assert loose.exit_code == 0, loose.output
    assert json.loads(loose.stdout)["strict"] is False


def test_missing_key_refuses(tmp_path: Path, storage_dir: Path, shop: tuple[Path, Repository, Manifest],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    _db, _repo, manifest = shop
    rules = write(tmp_path / "shop.yml", SHOP_RULES)
    result = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), key=None, monkeypatch=monkeypatch)
    assert_fails(result, ExitCode.CONFIG, "DATASAFE_MASKING_KEY")
    ok = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), "--random-key", key=None,
                  monkeypatch=monkeypatch)
    assert ok.exit_code == 0, ok.output


def test_dry_run_shows_samples_and_writes_nothing(
        tmp_path: Path, storage_dir: Path, shop: tuple[Path, Repository, Manifest],
        monkeypatch: pytest.MonkeyPatch) -> None:
    db, _repo, manifest = shop
    rules = write(tmp_path / "shop.yml", SHOP_RULES)
    result = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), "--dry-run", "--json",
                      monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    samples = json.loads(result.stdout)["samples"]["customers"]
    first_email = sqlite_rows(db, "SELECT email FROM customers ORDER BY id LIMIT 1")[0][0]
    assert samples[0]["before"]["email"] == first_email
    assert samples[0]["after"]["email"] != first_email and EMAIL.match(samples[0]["after"]["email"])
    assert not (storage_dir / "shop.masked").exists()


def test_where_subsetting_follows_foreign_keys(
        tmp_path: Path, storage_dir: Path, shop: tuple[Path, Repository, Manifest],
        monkeypatch: pytest.MonkeyPatch) -> None:
    db, _repo, manifest = shop
    rules = write(tmp_path / "shop.yml", SHOP_RULES.replace("    keep: [id, country, created_at]\n",
                                                            "    keep: [id, country, created_at]\n"
                                                            "    where: \"id <= 50\"\n"))
    result = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    target = tmp_path / "subset.db"
    assert run_cli(storage_dir, "restore", result.stdout.strip(), "--target", f"sqlite:///{target}").exit_code == 0
    assert sqlite_rows(target, "SELECT count(*) FROM customers") == [(50,)]
    expected_orders = sqlite_rows(db, "SELECT count(*) FROM orders WHERE customer_id <= 50")
    assert sqlite_rows(target, "SELECT count(*) FROM orders") == expected_orders
    # grandchildren follow too: no payment of a dropped order remains
    assert sqlite_rows(target, "SELECT count(*) FROM payments p LEFT JOIN orders o ON o.id = p.order_id "
                               "WHERE o.id IS NULL") == [(0,)]
    assert sqlite_rows(target, "SELECT count(*) FROM payments")[0][0] > 0
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_rules_init_covers_every_column(storage_dir: Path, shop: tuple[Path, Repository, Manifest],
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _db, _repo, manifest = shop
    result = run_cli(storage_dir, "rules", "init", manifest.snapshot_id)
    assert result.exit_code == 0, result.output
    rules = write(tmp_path / "starter.yml", result.stdout)
    assert "email" in result.stdout
    masked = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), "--dry-run",
                      monkeypatch=monkeypatch)
    assert masked.exit_code == 0, masked.output


# -- PostgreSQL -------------------------------------------------------------------------------------
PG_SCHEMA = """
CREATE TABLE customers (id bigserial PRIMARY KEY, email varchar(40) UNIQUE NOT NULL, ssn char(11),
  name text NOT NULL, born date, prefs jsonb);
CREATE TABLE accounts (region text, num int, owner_email varchar(40) REFERENCES customers(email),
  iban text, PRIMARY KEY (region, num));
CREATE TABLE transfers (id serial PRIMARY KEY, region text, num int, amount numeric(12,2) NOT NULL,
  note text, FOREIGN KEY (region, num) REFERENCES accounts(region, num));
INSERT INTO customers (email, ssn, name, born, prefs)
  SELECT 'user' || i || '@corp.example.com', lpad((100 + i % 600)::text, 3, '0') || '-12-' || lpad(i::text, 4, '0'),
         'Person ' || i, date '1960-01-01' + i * 7, jsonb_build_object('email', 'user' || i || '@corp.example.com',
         'theme', 'dark')
  FROM generate_series(1, 400) i;
INSERT INTO accounts SELECT 'eu-' || (i % 3), i, 'user' || (1 + i % 400) || '@corp.example.com',
  'DE' || lpad(i::text, 20, '0') FROM generate_series(1, 600) i;
INSERT INTO transfers (region, num, amount, note)
  SELECT 'eu-' || (i % 3), i, (i * 3.17)::numeric(12,2), E'note\\twith tab ' || i FROM generate_series(1, 600) i;
"""

PG_RULES = """\
version: 1
tables:
  public.customers:
    columns:
      email: email
      ssn: {national_id: {country: US}}
      name: name
      prefs: {json: {paths: {"$.email": email}}}
    keep: [id, born]
  public.accounts:
    columns:
      region: {hash: {length: 8}}
      iban: iban
    keep: [num]
  public.transfers:
    columns:
      note: text
    keep: [id, amount, num]
"""


@pytest.mark.postgres
def test_postgres_foreign_keys_and_composite_keys_follow(
        tmp_path: Path, storage_dir: Path, pg: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_pg_roundtrip import query_all

    src = pg.create("dsmask", PG_SCHEMA)
    backup = run_cli(storage_dir, "backup", str(src), "--name", "bank")
    assert backup.exit_code == 0, backup.output
    rules = write(tmp_path / "bank.yml", PG_RULES)
    result = mask_cli(storage_dir, "latest", "--source", "bank", "--rules", str(rules), "--json",
                      monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    # owner_email follows customers.email; transfers.region/num follow the composite key
    assert "foreign key to public.customers.email" in info["tables"]["public.accounts"]["columns"]["owner_email"]
    assert "foreign key to public.accounts.region" in info["tables"]["public.transfers"]["columns"]["region"]
    target = pg.url(pg.new_name("dsmask_copy"))
    restored = run_cli(storage_dir, "restore", info["snapshot"], "--source", "bank.masked", "--target", str(target))
    assert restored.exit_code == 0, restored.output  # unique/PK/FK constraints were re-created on masked data
    joins = ("SELECT count(*) FROM accounts a JOIN customers c ON c.email = a.owner_email",
             "SELECT count(*) FROM transfers t JOIN accounts a USING (region, num)")
    for q in joins:
        assert query_all(target, q) == query_all(src, q)
    masked_text = " ".join(str(r) for t in ("customers", "accounts", "transfers")
                           for r in query_all(target, f"SELECT * FROM {t}"))
    for (email, ssn) in query_all(src, "SELECT email, ssn FROM customers"):
        assert email not in masked_text and ssn not in masked_text
    ssns = [r[0] for r in query_all(target, "SELECT ssn FROM customers")]
    assert all(re.fullmatch(r"\d{3}-\d{2}-\d{4}", s) for s in ssns)
    assert query_all(target, "SELECT count(*) FROM customers WHERE prefs->>'theme' = 'dark'") == [(400,)]
    assert query_all(target, "SELECT sum(amount) FROM transfers") == query_all(src, "SELECT sum(amount) FROM transfers")


# -- MariaDB ----------------------------------------------------------------------------------------
@pytest.mark.mysql
def test_mariadb_masked_restore_keeps_keys(tmp_path: Path, storage_dir: Path, my: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    src = my.create(
        "dsmask",
        "CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(60) NOT NULL UNIQUE, "
        "phone VARCHAR(30), name VARCHAR(80)) ENGINE=InnoDB",
        "CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, customer_email VARCHAR(60) NOT NULL, "
        "total DECIMAL(10,2), FOREIGN KEY (customer_email) REFERENCES customers(email)) ENGINE=InnoDB",
        "INSERT INTO customers (email, phone, name) SELECT CONCAT('m', seq, '@shop.example.org'), "
        "CONCAT('+1 555 01', LPAD(seq, 4, '0')), CONCAT('Name\\t', seq) FROM seq_1_to_300",
        "INSERT INTO orders (customer_email, total) SELECT CONCAT('m', 1 + seq % 300, '@shop.example.org'), "
        "seq * 1.5 FROM seq_1_to_900",
    )
    backup = run_cli(storage_dir, "backup", str(src), "--name", "myshop")
    assert backup.exit_code == 0, backup.output
    rules = write(tmp_path / "my.yml", "version: 1\ntables:\n  customers:\n    columns: {email: email, phone: phone, "
                                       "name: name}\n    keep: [id]\n  orders:\n    keep: [id, total]\n")
    result = mask_cli(storage_dir, "latest", "--source", "myshop", "--rules", str(rules), monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    target = my.url(my.new_name("dsmask_copy"))
    restored = run_cli(storage_dir, "restore", result.stdout.strip(), "--source", "myshop.masked",
                       "--target", str(target))
    assert restored.exit_code == 0, restored.output
    join = "SELECT count(*) FROM orders o JOIN customers c ON c.email = o.customer_email"
    assert my.query(target, join) == my.query(src, join) == [(900,)]
    emails = [r[0] for r in my.query(target, "SELECT email FROM customers")]
    assert len(set(emails)) == 300 and not any(e.endswith("@shop.example.org") and e.startswith("m") and
                                               e[1:].split("@")[0].isdigit() for e in emails)


def test_rules_init_from_a_database_url(tmp_path: Path, storage_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "live.db"
    create_shop(db, 20)
    result = run_cli(storage_dir, "rules", "init", f"sqlite:///{db}")
    assert result.exit_code == 0, result.output
    for column in ("first_name", "email", "card_number", "total_cents"):
        assert column in result.stdout
    rules = write(tmp_path / "live.yml", result.stdout)
    repo = open_repository(str(storage_dir))
    manifest = take_backup(resolve_source(LoadedConfig(Config(), None), f"sqlite:///{db}", "live"), repo)
    checked = run_cli(storage_dir, "rules", "check", str(rules), "--snapshot", manifest.snapshot_id)
    assert checked.exit_code == 0, checked.output  # the starter file covers every column


@pytest.mark.postgres
def test_rules_init_from_a_postgres_url(storage_dir: Path, pg: Any) -> None:
    src = pg.create("dsinit", PG_SCHEMA)
    result = run_cli(storage_dir, "rules", "init", str(src))
    assert result.exit_code == 0, result.output
    assert "public.customers:" in result.stdout and "ssn:" in result.stdout and "owner_email" in result.stdout


def test_a_damaged_chunk_of_a_copied_table_stops_the_run_and_leaves_nothing(
        tmp_path: Path, storage_dir: Path, shop: tuple[Path, Repository, Manifest],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # orders is copied chunk for chunk, by a helper thread while customers are masked
    _db, _repo, manifest = shop
    orders = next(t for t in manifest.tables if t.name == "orders")
    stored = storage_dir / "shop" / manifest.snapshot_id / orders.chunks[0].path
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    rules = write(tmp_path / "shop.yml", SHOP_RULES)
    result = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), monkeypatch=monkeypatch)
    assert result.exit_code == 6, result.output
    assert "orders" in result.output and "SHA-256" in result.output
    assert not list(storage_dir.glob("shop.masked/*/manifest.json"))
    assert not [p for p in storage_dir.glob("shop.masked/**/*") if p.is_file()]  # no link left behind


def test_a_copied_table_shares_the_stored_files_of_its_source(
        tmp_path: Path, storage_dir: Path, shop: tuple[Path, Repository, Manifest],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """In a local repository, a table copied chunk for chunk is a hard link per chunk, and each
    snapshot keeps its files when the other is deleted."""
    _db, repo, manifest = shop
    orders = next(t for t in manifest.tables if t.name == "orders")
    rules = write(tmp_path / "shop.yml", SHOP_RULES)
    result = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    (masked_manifest,) = storage_dir.glob("shop.masked/*/manifest.json")
    for chunk in orders.chunks:
        source = storage_dir / "shop" / manifest.snapshot_id / chunk.path
        copy = masked_manifest.parent / chunk.path
        assert source.stat().st_ino == copy.stat().st_ino and copy.stat().st_nlink == 2
    customers = next(t for t in manifest.tables if t.name == "customers")
    masked_file = masked_manifest.parent / customers.chunks[0].path
    assert masked_file.stat().st_nlink == 1  # masked: a file of its own
    repo.storage.delete_prefix(f"shop/{manifest.snapshot_id}")
    verify = run_cli(storage_dir, "verify", masked_manifest.parent.name, "--source", "shop.masked")
    assert verify.exit_code == 0, verify.output


def test_a_missing_chunk_of_a_copied_table_is_an_integrity_error(
        tmp_path: Path, storage_dir: Path, shop: tuple[Path, Repository, Manifest],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _db, _repo, manifest = shop
    orders = next(t for t in manifest.tables if t.name == "orders")
    (storage_dir / "shop" / manifest.snapshot_id / orders.chunks[0].path).unlink()
    rules = write(tmp_path / "shop.yml", SHOP_RULES)
    result = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), monkeypatch=monkeypatch)
    assert result.exit_code == 6, result.output
    assert "orders" in result.output and "missing" in result.output
    assert not list(storage_dir.glob("shop.masked/*/manifest.json"))
