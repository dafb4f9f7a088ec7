"""The leak audit: every ``datasafe mask`` looks for original values of masked columns in its
output before committing it, and ``datasafe leaks`` audits any masked copy.

What must hold: a kept copy of a masked column, a derived ``tsvector``, original e-mail
addresses inside kept free text are found, the run fails with exit code 8 and leaves no masked
snapshot; an accepted leak is reported and passes; a clean masking records a passed audit; the
standalone command tells a copy that only changed case (a leak) from one that replaced the
values (clean), measures equality and k-anonymity. All data is generated.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import string
from pathlib import Path
from typing import Any

import pytest

from datasafe import audit
from datasafe.commands.repository import open_repository
from datasafe.config import Config, LoadedConfig, resolve_source
from datasafe.errors import ExitCode
from datasafe.masking import leaks, leaks_items, leaks_ledger
from datasafe.masking.leaks_compare import audit_urls
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.transfer.backup import backup as take_backup
from tests.test_masking_pipeline import SHOP_RULES, mask_cli, write
from tests.test_pg_faults import assert_fails, run_cli

KEY = "7a97a4583d4cac9a94761c795ccaee63b2b1d640d8808391"


def _word(rnd: random.Random, n: int = 8) -> str:
    return "".join(rnd.choice(string.ascii_lowercase) for _ in range(n)).capitalize()


def make_users(path: Path, rows: int = 120, seed: int = 7) -> None:
    """users (email masked in the rules below; login a kept copy of it), tickets whose kept notes
    quote some users' addresses in upper case, stores with a kept city list."""
    rnd = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, login TEXT, city TEXT,
                            score INTEGER);
        CREATE TABLE tickets (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), notes TEXT);
        CREATE TABLE stores (id INTEGER PRIMARY KEY, city TEXT);
    """)
    users = []
    for i in range(1, rows + 1):
        email = f"{_word(rnd).lower()}.{_word(rnd, 6).lower()}{i}@{_word(rnd, 5).lower()}.example.org"
        users.append((i, email, email, f"{_word(rnd, 9)}ville", rnd.randint(0, 99)))
    conn.executemany("INSERT INTO users VALUES (?,?,?,?,?)", users)
    conn.executemany("INSERT INTO tickets VALUES (?,?,?)", [
        (t, u[0], f"Customer wrote from {u[1].upper()} about parcel {t}." if t % 4 == 0 else "No details given.")
        for t, u in enumerate(users, start=1)])
    conn.executemany("INSERT INTO stores VALUES (?,?)", [(n, users[n * 10][3]) for n in range(1, 6)])
    conn.commit()
    conn.close()


USERS_RULES = """\
version: 1
tables:
  users:
    columns:
      email: email
      city: city
    keep: [id, login, score]
  tickets:
    keep: [id, user_id, notes]
  stores:
    keep: [id, city]
"""

CLEAN_USERS_RULES = """\
version: 1
tables:
  users:
    columns:
      email: email
      login: {hash: {length: 12}}
      city: city
    keep: [id, score]
    accept_leaks:
      city: store cities are public, and the same places as some users' cities
  tickets:
    columns:
      notes: text
    keep: [id, user_id]
  stores:
    keep: [id, city]
"""


@pytest.fixture
def users(tmp_path: Path, storage_dir: Path) -> tuple[Path, Repository, Manifest]:
    db = tmp_path / "users.db"
    make_users(db)
    repo = open_repository(str(storage_dir))
    source = resolve_source(LoadedConfig(Config(), None), f"sqlite:///{db}", "users")
    return db, repo, take_backup(source, repo)


def masked_manifests(storage: Path, name: str) -> list[Path]:
    return list(storage.glob(f"{name}/*/manifest.json"))


# -- every mask run ---------------------------------------------------------------------------------
def test_a_kept_copy_and_quotes_in_free_text_fail_the_run_and_store_nothing(
        tmp_path: Path, storage_dir: Path, users: tuple[Path, Repository, Manifest],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _db, repo, manifest = users
    rules = write(tmp_path / "users.yml", USERS_RULES)
    result = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), monkeypatch=monkeypatch)
    line = assert_fails(result, ExitCode.REFUSED, "users.email found in users.login", "in the same row",
                        "2 more leak", "not stored")
    assert "@" not in line  # counts and column names, never a value
    assert not masked_manifests(storage_dir, "users.masked")
    assert not [p for p in storage_dir.glob("users.masked/**/*") if p.is_file()]
    record = audit.read(repo.storage, operation="mask")[-1]
    assert record["outcome"] == "refused" and record["exit_code"] == ExitCode.REFUSED
    assert record["leak_audit"]["passed"] is False


def test_the_report_says_where_each_leak_is(tmp_path: Path, users: tuple[Path, Repository, Manifest]) -> None:
    from datasafe.masking.leaks_report import LeakFound
    from datasafe.masking.masked_snapshot import mask
    from datasafe.masking.masking_key import load_key
    from datasafe.masking.rules import load_rules

    _db, repo, manifest = users
    rules = write(tmp_path / "users.yml", USERS_RULES)
    key = load_key(load_rules(rules), env={"DATASAFE_MASKING_KEY": KEY})
    with pytest.raises(LeakFound) as caught:
        mask(repo, manifest, rules, key)
    found = {(f.original, f.found_in): f for f in caught.value.report.leaks}
    login = found[("users.email", "users.login")]
    assert (login.values, login.rows, login.same_row) == (120, 120, 120)
    assert login.as_dict()["where"] == "same row"
    notes = found[("users.email", "tickets.notes")]  # upper-cased inside text: still found
    assert notes.values == notes.rows == 30 and notes.same_row is None
    assert notes.as_dict()["where"] == "any row"
    # the generated city names of users are in stores.city too: a leak as well
    assert ("users.city", "stores.city") in found
    assert caught.value.report.record()["passed"] is False


def test_worker_processes_find_the_same(tmp_path: Path, users: tuple[Path, Repository, Manifest],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Scanning and testing in worker processes (as large tables are) finds what one process finds."""
    from datasafe.masking import parallel, pipeline
    from datasafe.masking.leaks_report import LeakFound
    from datasafe.masking.masked_snapshot import mask
    from datasafe.masking.masking_key import load_key
    from datasafe.masking.rules import load_rules

    if not parallel.can_fork():
        pytest.skip("no fork on this platform")
    _db, repo, manifest = users
    rules = write(tmp_path / "users.yml", USERS_RULES)
    key = load_key(load_rules(rules), env={"DATASAFE_MASKING_KEY": KEY})
    reports = []
    for workers in (1, 2):
        monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
        monkeypatch.setattr(pipeline, "BLOCK_SIZE", 2048)  # many blocks, spread over the workers
        with pytest.raises(LeakFound) as caught:
            mask(repo, manifest, rules, key, workers=workers)
        reports.append(caught.value.report.describe())
    for r in reports:
        r.pop("seconds")
    assert reports[0] == reports[1] and len(reports[0]["leaks"]) == 3


def test_false_positives_of_the_fingerprints_cost_a_read_never_a_verdict(
        tmp_path: Path, users: tuple[Path, Repository, Manifest], monkeypatch: pytest.MonkeyPatch) -> None:
    """A filter too small for its items takes most output items for originals: the tables are
    read again and counted exactly, and the verdict is the one a well-sized filter gives."""
    from datasafe.masking import fingerprints
    from datasafe.masking.leaks_report import LeakFound
    from datasafe.masking.masked_snapshot import mask
    from datasafe.masking.masking_key import load_key
    from datasafe.masking.rules import load_rules

    _db, repo, manifest = users
    key_env = {"DATASAFE_MASKING_KEY": KEY}
    reports = []
    for limit in (fingerprints.MAX_BYTES, 64):  # 64 bytes: one block for every table, soon full
        monkeypatch.setattr(fingerprints, "MAX_BYTES", limit)
        monkeypatch.setattr(fingerprints, "MIN_BYTES", 64)
        rules = write(tmp_path / "users.yml", USERS_RULES)
        with pytest.raises(LeakFound) as caught:
            mask(repo, manifest, rules, load_key(load_rules(rules), env=key_env))
        reports.append(caught.value.report.describe())
    well, tiny = (r.pop("fingerprints") for r in reports)
    for r in reports:
        r.pop("seconds")
    assert reports[0] == reports[1] and len(reports[0]["leaks"]) == 3
    assert tiny["candidates"] > well["candidates"] and tiny["false_positive_rate"] > 0.1
    assert well["reread"] == tiny["reread"] == ["users"]  # the table whose originals leak


def test_a_clean_run_reads_no_table_again(tmp_path: Path, users: tuple[Path, Repository, Manifest]) -> None:
    from datasafe.masking.masked_snapshot import mask
    from datasafe.masking.masking_key import load_key
    from datasafe.masking.rules import load_rules

    _db, repo, manifest = users
    rules = write(tmp_path / "clean.yml", CLEAN_USERS_RULES.replace(
        "    accept_leaks:\n      city: store cities are public, and the same places as some users' cities\n", "")
                  .replace("      city: city\n", "").replace("keep: [id, score]", "keep: [id, score, city]"))
    result = mask(repo, manifest, rules, load_key(load_rules(rules), env={"DATASAFE_MASKING_KEY": KEY}))
    assert result.leak_report is not None and result.leak_report.passed
    found = result.leak_report.describe()["fingerprints"]
    assert found["reread"] == [] and found["candidates"] == 0
    assert found["filter_bytes"] > 0 and found["false_positive_rate"] < 1e-6


def test_a_filtered_table_is_scanned_as_it_is_masked(tmp_path: Path, users: tuple[Path, Repository, Manifest]
                                                     ) -> None:
    """With a ``where`` filter, kept columns are read from the masked rows (some rows are gone),
    and the originals are looked for in them afterwards; notes of dropped users are gone too."""
    from datasafe.masking.leaks_report import LeakFound
    from datasafe.masking.masked_snapshot import mask
    from datasafe.masking.masking_key import load_key
    from datasafe.masking.rules import load_rules

    _db, repo, manifest = users
    rules = write(tmp_path / "users.yml", USERS_RULES.replace("    keep: [id, login, score]\n",
                                                              "    keep: [id, login, score]\n"
                                                              "    where: \"id <= 40\"\n"))
    key = load_key(load_rules(rules), env={"DATASAFE_MASKING_KEY": KEY})
    with pytest.raises(LeakFound) as caught:
        mask(repo, manifest, rules, key)
    found = {(f.original, f.found_in): f for f in caught.value.report.leaks}
    login = found[("users.email", "users.login")]
    assert (login.values, login.rows, login.same_row) == (40, 40, None)  # rows cannot be paired
    notes = found[("users.email", "tickets.notes")]
    assert notes.rows == 10  # the quotes of users 4, 8, ..., 40: the other tickets went with their users


def test_an_accepted_leak_is_reported_and_does_not_fail(
        tmp_path: Path, storage_dir: Path, users: tuple[Path, Repository, Manifest],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _db, repo, manifest = users
    rules = write(tmp_path / "clean.yml", CLEAN_USERS_RULES)
    result = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), "--json", monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    masked = repo.resolve(info["snapshot"], "users.masked")
    assert masked.masking is not None
    record = masked.masking["leak_audit"]
    assert record["passed"] is True and record["columns"] == 4
    (accepted,) = record["found"]
    assert accepted["original"] == "users.city" and accepted["found_in"] == "stores.city"
    assert accepted["values"] == 5 and "store cities are public" in accepted["accepted"]
    assert info["leak_audit"]["accepted"][0]["found_in"] == "stores.city" and not info["leak_audit"]["leaks"]
    assert audit.read(repo.storage, operation="mask")[-1]["leak_audit"]["passed"] is True


def test_a_clean_masking_of_the_shop_passes_and_records_it(
        tmp_path: Path, storage_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datasafe.demo import create_shop

    db = tmp_path / "shop.db"
    create_shop(db, 300)
    repo = open_repository(str(storage_dir))
    manifest = take_backup(resolve_source(LoadedConfig(Config(), None), f"sqlite:///{db}", "shop"), repo)
    rules = write(tmp_path / "shop.yml", SHOP_RULES)
    result = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    masked = repo.resolve(result.stdout.strip(), "shop.masked")
    assert masked.masking is not None
    assert masked.masking["leak_audit"] == {"passed": True, "columns": 10, "scanned": 6, "found": []}


def test_no_leak_audit_is_logged_and_recorded(
        tmp_path: Path, storage_dir: Path, users: tuple[Path, Repository, Manifest],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from datasafe.masking.masked_snapshot import mask
    from datasafe.masking.masking_key import load_key
    from datasafe.masking.rules import load_rules

    _db, repo, manifest = users
    rules = write(tmp_path / "users.yml", USERS_RULES)
    key = load_key(load_rules(rules), env={"DATASAFE_MASKING_KEY": KEY})
    with caplog.at_level(logging.WARNING, logger="datasafe"):
        result = mask(repo, manifest, rules, key, leak_audit=False)
    assert result.manifest is not None and result.manifest.masking is not None
    assert result.manifest.masking["leak_audit"] is False and result.leak_report is None
    assert any("leak audit turned off" in r.getMessage() for r in caplog.records)
    assert audit.read(repo.storage, operation="mask")[-1]["leak_audit"] is False
    cli = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), "--no-leak-audit",
                   monkeypatch=monkeypatch)
    assert cli.exit_code == 0, cli.output


@pytest.mark.parametrize(("accept", "needle"), [
    ("{nickname: typo}", "no column 'nickname'"),
    ("{score: kept anyway}", "is not masked"),
    ("{city: ''}", "give the reason"),
    ("[city]", "must be a mapping"),
])
def test_accept_leaks_is_checked_before_anything_is_written(
        tmp_path: Path, storage_dir: Path, users: tuple[Path, Repository, Manifest],
        monkeypatch: pytest.MonkeyPatch, accept: str, needle: str) -> None:
    _db, _repo, manifest = users
    rules = write(tmp_path / "bad.yml", CLEAN_USERS_RULES.replace(
        "    accept_leaks:\n      city: store cities are public, and the same places as some users' cities\n",
        f"    accept_leaks: {accept}\n"))
    result = mask_cli(storage_dir, manifest.snapshot_id, "--rules", str(rules), monkeypatch=monkeypatch)
    assert_fails(result, ExitCode.CONFIG, needle)
    assert not (storage_dir / "users.masked").exists()


# -- PostgreSQL: a tsvector derived from a masked column -----------------------------------------------
PG_PRODUCTS = """
CREATE TABLE products (id serial PRIMARY KEY, sku text NOT NULL, description text NOT NULL,
                       fulltext tsvector, tags text[], attrs jsonb);
"""


def _pg_rows(rnd: random.Random, n: int) -> list[tuple[str, str]]:
    rows = []
    for i in range(1, n + 1):
        maker = f"{_word(rnd, 9)} {_word(rnd, 10)}"
        rows.append((f"SKU-{i:05d}", f"Handmade by {maker}, contact {_word(rnd).lower()}{i}@workshop.example.net"))
    return rows


@pytest.mark.postgres
def test_postgres_a_kept_tsvector_of_a_masked_column_fails_the_run(
        tmp_path: Path, storage_dir: Path, pg: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from datasafe.engines.postgres.connection import connect

    src = pg.create("dsleak", PG_PRODUCTS)
    rows = _pg_rows(random.Random(3), 80)
    with connect(src) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO products (sku, description, tags, attrs) VALUES (%s, %s, %s, %s)",
                        [(sku, d, ["handmade", sku.lower()], json.dumps({"origin": "workshop"})) for sku, d in rows])
        cur.execute("UPDATE products SET fulltext = to_tsvector('english', description)")
    assert run_cli(storage_dir, "backup", str(src), "--name", "catalog").exit_code == 0
    rules = write(tmp_path / "catalog.yml", "version: 1\ntables:\n  public.products:\n"
                                            "    columns: {description: text}\n"
                                            "    keep: [id, sku, fulltext, tags, attrs]\n")
    result = mask_cli(storage_dir, "latest", "--source", "catalog", "--rules", str(rules), monkeypatch=monkeypatch)
    assert_fails(result, ExitCode.REFUSED, "public.products.description found in public.products.fulltext",
                 "80 rows", "80 in the same row")
    assert not masked_manifests(storage_dir, "catalog.masked")
    # the same rules with the tsvector masked too: clean
    fixed = write(tmp_path / "fixed.yml", "version: 1\ntables:\n  public.products:\n"
                                          "    columns: {description: text, fulltext: 'null'}\n"
                                          "    keep: [id, sku, tags, attrs]\n")
    ok = mask_cli(storage_dir, "latest", "--source", "catalog", "--rules", str(fixed), monkeypatch=monkeypatch)
    assert ok.exit_code == 0, ok.output
    assert len(masked_manifests(storage_dir, "catalog.masked")) == 1


@pytest.mark.postgres
def test_leaks_between_two_postgres_databases(pg: Any, storage_dir: Path) -> None:
    from datasafe.engines.postgres.connection import connect

    rows = _pg_rows(random.Random(5), 60)
    original = pg.create("dsleak_orig", PG_PRODUCTS)
    copy = pg.create("dsleak_copy", PG_PRODUCTS)
    for url, describe in ((original, True), (copy, False)):
        with connect(url) as conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO products (sku, description, tags) VALUES (%s, %s, %s)",
                            [(sku, d if describe else f"Item {sku}", ["x"]) for sku, d in rows])
    with connect(copy) as conn:  # a hand-masked copy that forgot the search column
        conn.execute(f"UPDATE products SET fulltext = to_tsvector('english', d.description) FROM "
                     f"(VALUES {', '.join(f'({i}, %s)' for i in range(1, len(rows) + 1))}) AS d(id, description) "
                     "WHERE products.id = d.id", [d for _sku, d in rows])
    result = run_cli(storage_dir, "leaks", str(original), str(copy), "--columns", "products.description", "--json")
    assert result.exit_code == ExitCode.REFUSED, result.output
    report = json.loads(result.stdout)
    (leak,) = report["leaks"]
    assert leak["found_in"] == "public.products.fulltext" and leak["rows"] == 60 and leak["same_row"] == 60
    equal = {e["column"]: e["share"] for e in report["equality"]}
    assert equal["public.products.sku"] == 1.0 and equal["public.products.description"] == 0.0


# -- datasafe leaks ----------------------------------------------------------------------------------
def make_people(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, zip TEXT, birth_year INTEGER, "
                       "gender TEXT, bio TEXT);")
    rnd = random.Random(11)
    people = []
    for i in range(1, 101):
        # zip x gender classes: zip 10001 has a single woman (the smallest class, k = 1)
        zip_code, gender = ("10001", "f") if i == 1 else (f"1000{2 + i % 3}", "fm"[i % 2])
        people.append((i, f"{_word(rnd).lower()}.{i}@mailbox.example.com", zip_code, 1950 + i % 40, gender,
                       f"Likes {_word(rnd, 7).lower()} and {_word(rnd, 9).lower()}"))
    conn.executemany("INSERT INTO people VALUES (?,?,?,?,?,?)", people)
    conn.commit()
    conn.close()


def hand_masked(original: Path, target: Path, sql: str) -> Path:
    target.write_bytes(original.read_bytes())
    with sqlite3.connect(target) as conn:
        conn.executescript(sql)
    return target


def test_leaks_tells_an_upper_cased_copy_from_a_replaced_one(tmp_path: Path, storage_dir: Path) -> None:
    original = tmp_path / "people.db"
    make_people(original)
    upper = hand_masked(original, tmp_path / "upper.db", "UPDATE people SET email = upper(email);")
    replaced = hand_masked(original, tmp_path / "replaced.db",
                           "UPDATE people SET email = 'person' || id || '@example.invalid', bio = 'redacted';")
    leak = run_cli(storage_dir, "leaks", f"sqlite:///{original}", f"sqlite:///{upper}", "--json")
    assert leak.exit_code == ExitCode.REFUSED, leak.output
    report = json.loads(leak.stdout)
    assert report["passed"] is False and report["columns"] == 4 and report["scanned"] == 4  # the TEXT columns
    found = {(f["original"], f["found_in"]): f for f in report["leaks"]}
    email = found[("people.email", "people.email")]
    assert email["same_row"] == email["rows"] == email["values"] == 100 and email["same_column"] is True
    assert ("people.bio", "people.bio") in found  # kept as it was
    equal = {e["column"]: e for e in report["equality"]}
    assert equal["people.email"]["share"] == 0.0  # not one value equal, and yet every one leaks
    assert equal["people.zip"]["share"] == 1.0 and equal["people.zip"]["rows"] == 100
    assert "leak audit: values of people." in leak.stderr
    clean = run_cli(storage_dir, "leaks", f"sqlite:///{original}", f"sqlite:///{replaced}", "--columns",
                    "people.email,people.bio", "--json")
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.stdout)["passed"] is True and not json.loads(clean.stdout)["leaks"]


def test_leaks_measures_k_anonymity_of_quasi_identifiers(tmp_path: Path, storage_dir: Path) -> None:
    original = tmp_path / "people.db"
    make_people(original)
    copy = hand_masked(original, tmp_path / "copy.db", "UPDATE people SET email = 'p' || id || '@x.invalid', "
                                                        "bio = NULL;")
    report = audit_urls(f"sqlite:///{original}", f"sqlite:///{copy}", quasi=[("people", ["zip", "gender"])], k=5)
    assert report.passed
    (kanon,) = report.k_anonymity
    assert (kanon.smallest, kanon.rows, kanon.classes) == (1, 100, 7)
    assert kanon.rows_below_k == 1
    text = run_cli(storage_dir, "leaks", f"sqlite:///{original}", f"sqlite:///{copy}", "--quasi",
                   "people:zip,gender", "--k", "20")
    assert text.exit_code == 0, text.output
    assert "smallest class 1" in text.stdout and "in classes smaller than 20" in text.stdout


def test_leaks_over_two_snapshots(tmp_path: Path, storage_dir: Path) -> None:
    original = tmp_path / "people.db"
    make_people(original)
    copy = hand_masked(original, tmp_path / "copy.db", "UPDATE people SET bio = 'Likes ' || email;")
    cfg = LoadedConfig(Config(), None)
    repo = open_repository(str(storage_dir))
    first = take_backup(resolve_source(cfg, f"sqlite:///{original}", "people"), repo)
    take_backup(resolve_source(cfg, f"sqlite:///{copy}", "people.masked"), repo)
    result = run_cli(storage_dir, "leaks", first.snapshot_id, "latest", "--source", "people",
                     "--columns", "people.email")
    assert result.exit_code == ExitCode.REFUSED, result.output
    assert "LEAK" in result.stdout and "people.email found in people.bio (100 value(s), 100 row(s)" in result.stdout
    mixed = run_cli(storage_dir, "leaks", first.snapshot_id, f"sqlite:///{copy}")
    assert_fails(mixed, ExitCode.CONFIG, "two snapshots or two database URLs")
    bad = run_cli(storage_dir, "leaks", f"sqlite:///{original}", f"sqlite:///{copy}", "--columns", "people.nope")
    assert_fails(bad, ExitCode.CONFIG, "no column 'nope'")


@pytest.mark.mysql
def test_leaks_between_two_mariadb_databases(my: Any, storage_dir: Path) -> None:
    schema = ("CREATE TABLE customers (id INT PRIMARY KEY, email VARCHAR(80), phone VARCHAR(30), "
              "notes TEXT) ENGINE=InnoDB")
    fill = ("INSERT INTO customers SELECT seq, CONCAT('buyer', seq, '.q', seq * 31, '@shop.example.org'), "
            "CONCAT('+1 555 ', LPAD(seq, 3, '0'), ' ', LPAD(seq * 7, 4, '0')), 'regular' FROM seq_1_to_50")
    original = my.create("dsleak", schema, fill)
    copy = my.create("dsleak_copy", schema, fill,
                     "UPDATE customers SET email = CONCAT('c', id, '@example.invalid'), "
                     "notes = CONCAT('phone on file: ', REPLACE(phone, ' ', '')), phone = NULL")
    result = run_cli(storage_dir, "leaks", str(original), str(copy), "--columns", "customers.email,customers.phone",
                     "--json")
    assert result.exit_code == ExitCode.REFUSED, result.output
    (leak,) = json.loads(result.stdout)["leaks"]
    # the number written without its spaces is still the same number
    assert (leak["original"], leak["found_in"], leak["same_row"]) == ("customers.phone", "customers.notes", 50)


# -- what counts as a fingerprint ----------------------------------------------------------------------
W = leaks_items.WORD


def _exposed(cells: list[str], kind: str = "text") -> set[bytes]:
    return set(leaks_items.exposed_items([c.lower().encode() for c in cells], kind))


def test_short_values_small_numbers_and_common_words_never_count() -> None:
    assert _exposed(["abc", "12345", "2024", "with", "null", "n/a"]) == set()
    assert _exposed(["123456"]) == {b"123456", W + b"123456"}  # a number: a value, and a word of text
    assert leaks_items.significant(b"12-34-56") and not leaks_items.significant(b"12-34")


def test_items_of_text_json_arrays_and_tsvectors() -> None:
    assert {b"ann.lee@example.org", W + b"mcallister"} <= _exposed(["Mail ANN.LEE@example.org or McAllister"])
    assert W + b"example" not in _exposed(["ann.lee@example.org"])  # an address is one item, not its words
    assert {b"+1 (555) 010-0199", b"15550100199"} <= _exposed(["call +1 (555) 010-0199 today"])
    json_items = _exposed(['{"contact": {"name": "Zoe Quill", "city": "Lyon"}}'], "json")
    assert {b"zoe quill", W + b"quill"} <= json_items and W + b"contact" not in json_items  # keys are structure
    assert {b"ivy green", W + b"green"} <= _exposed(['{red,"ivy green"}'], "array")
    assert {W + b"quorbel", W + b"zyxwik"} <= _exposed(["'quorbel':3 'zyxwik':1,4"])
    # the original side cuts text the same way
    originals = leaks_items.original_set(b"mail ann.lee@example.org\\nor mcallister", "text")
    assert {b"ann.lee@example.org", W + b"mcallister"} <= originals
    # a name is a value: it is found where it stands whole, not as a word of other text
    assert W + b"michael" in _exposed(["Lake Michael"]) and b"michael" not in _exposed(["Lake Michael"])
    assert b"15550100199" in leaks_items.original_set(b"+1 (555) 010-0199", "digits")
    # digits inside a word (a hex digest) are no number: a national id's digits never meet them
    digest = _exposed(["note 5f3a123456789e0c tel 123-45-6789."])
    assert b"123456789" in digest and b"123-45-6789" in digest
    assert _exposed(["5f3a123456789e0c"]) == {W + b"5f3a123456789e0c", b"5f3a123456789e0c"}  # no 123456789


def test_a_common_original_item_is_not_a_finding() -> None:
    """An item in at least COMMON_ROWS rows (and COMMON_SHARE of them) identifies no one."""
    from datasafe.snapshot.manifest import Column, TableEntry

    o = leaks_items.Original(0, "t", "addr", 0, "text")
    s = leaks_items.Scanned(0, "u", "city", 0, "text")
    entry = TableEntry(name="t", table="t", encoding="jsonl", columns=[Column(name="addr", type="TEXT")],
                       content_blake3="")
    other = TableEntry(name="u", table="u", encoding="jsonl", columns=[Column(name="city", type="TEXT")],
                       content_blake3="")
    ledger = leaks_ledger.Ledger([o], [s])
    scan, test = leaks.TableProbe(other, [], [s]), leaks.TableProbe(entry, [o], [])
    ledger.expose(scan.early, scan.expose(b'["Springfield"]\n["Quorbelton"]\n'))
    lines = [json.dumps([f"{n} Elm Street, Springfield, {'Quorbelton' if n == 7 else 'OR'}"]) for n in range(60)]
    ledger.hits(test, test.test(("\n".join(lines) + "\n").encode(), None, leaks_items.Known(ledger.where)))
    ((finding, found_o, found_s, shared),) = ledger.findings({})
    assert (found_o.name, found_s.name, shared) == ("t.addr", "u.city", {W + b"quorbelton"})  # not Springfield
    assert finding.values == 1 and finding.identifying == 0 and finding.share == 0.5


def test_words_of_free_text_are_a_leak_only_where_derived_row_by_row() -> None:
    """A product named in a ticket and in the catalogue is no leak; a tsvector of the row's text is."""
    from datasafe.masking.leaks_report import Finding

    catalogue = Finding("tickets.body", "products.name", 40, rows=40, same_row=None, share=0.9, words=40)
    leaks_items.judge(catalogue)
    assert catalogue.leak is False
    derived = Finding("tickets.body", "tickets.body_tsv", 300, rows=120, same_row=118, share=0.9, words=300)
    leaks_items.judge(derived)
    assert derived.leak is True
    chance = Finding("customers.search_name", "customers.company", 12, rows=30, same_row=1, share=0.2, words=12)
    leaks_items.judge(chance)
    assert chance.leak is False
    # whole values keep their rule: a copy of a column elsewhere is a leak by its share
    cities = Finding("users.city", "stores.city", 5, rows=5, same_row=None, share=0.5, words=0)
    leaks_items.judge(cities)
    assert cities.leak is True
    mail = Finding("users.email", "tickets.notes", 3, rows=3, same_row=None, share=0.01, words=2, identifying=1)
    leaks_items.judge(mail)
    assert mail.leak is True
