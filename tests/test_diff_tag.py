"""``datasafe diff`` (two snapshots compared from their manifests and schema parts) and
``datasafe tag`` (tags changed after the fact, authenticated like the rest of the manifest)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from datasafe.commands.repository import open_repository
from datasafe.errors import ExitCode
from datasafe.ops.lease import Lease
from datasafe.snapshot.crypto import generate_identity
from datasafe.snapshot.manifest import DIGEST_FIELD, _digest
from datasafe.storage.local import LocalStorage
from tests.conftest import MyDatabases, PgDatabases
from tests.test_pg_faults import assert_fails, assert_one_error_line, run_cli
from tests.test_sqlite import sqlite_url

SHOP = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), note TEXT);
CREATE TABLE old_log (id INTEGER PRIMARY KEY, line TEXT);
CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT NOT NULL);
"""


def make_shop(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(SHOP)
        conn.executemany("INSERT INTO customers VALUES (?, ?)", [(i, f"customer {i}") for i in range(1, 201)])
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(i, 1 + i % 200, f"n{i}") for i in range(1, 501)])
        conn.executemany("INSERT INTO old_log VALUES (?, ?)", [(i, f"line {i}") for i in range(30)])
        conn.executemany("INSERT INTO big VALUES (?, ?)", [(i, f"row {i} " + "p" * 150) for i in range(3000)])


def config(tmp_path: Path, **settings: Any) -> Path:
    path = tmp_path / "datasafe.yml"
    path.write_text(json.dumps({"chunk_size": "64KiB", **settings}))
    return path


def backup(storage: Path, db: Path, *args: str, cfg: Path | None = None) -> str:
    result = run_cli(storage, "backup", sqlite_url(db), "--name", "shop", *args, config=cfg)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def json_of(storage: Path, *args: str, cfg: Path | None = None) -> Any:
    result = run_cli(storage, *args, "--json", config=cfg)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def two(tmp_path: Path, storage_dir: Path) -> tuple[Path, Path, str, str]:
    """Snapshot A of a small shop, then B after: 7 orders more and 2 fewer, a customer renamed, a
    table dropped and one created, a column and an index added, 100 rows appended to ``big``."""
    db, cfg = tmp_path / "shop.db", config(tmp_path)
    make_shop(db)
    first = backup(storage_dir, db, "--tag", "before", cfg=cfg)
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(i, 1, "late") for i in range(501, 508)])
        conn.execute("DELETE FROM orders WHERE id IN (3, 4)")
        conn.execute("UPDATE customers SET name = 'renamed' WHERE id = 5")
        conn.execute("DROP TABLE old_log")
        conn.execute("CREATE TABLE coupons (code TEXT PRIMARY KEY, percent INTEGER)")
        conn.execute("INSERT INTO coupons VALUES ('X', 5)")
        conn.execute("ALTER TABLE orders ADD COLUMN shipped INTEGER")
        conn.execute("CREATE INDEX orders_customer ON orders(customer_id)")
        conn.executemany("INSERT INTO big VALUES (?, ?)", [(i, f"row {i} " + "p" * 150) for i in range(3000, 3100)])
    second = backup(storage_dir, db, cfg=cfg)
    return db, cfg, first, second


# -- diff ---------------------------------------------------------------------------------------------
def test_diff_reports_each_table_from_the_manifests(storage_dir: Path, two: tuple[Path, Path, str, str]) -> None:
    _db, cfg, first, second = two
    report = json_of(storage_dir, "diff", "shop/before", "shop/latest", cfg=cfg)
    assert (report["a"]["snapshot"], report["b"]["snapshot"]) == (first, second)
    assert report["same_source"] is True and report["identical"] is False
    tables = {t["table"]: t for t in report["tables"]}
    assert {n: t["change"] for n, t in tables.items()} == {
        "customers": "changed", "orders": "changed", "old_log": "removed", "big": "changed", "coupons": "added"}
    a = {t.name: t for t in open_repository(str(storage_dir)).resolve(first).tables}
    b = {t.name: t for t in open_repository(str(storage_dir)).resolve(second).tables}
    # counts say how many rows there are, not which: the net change, nothing more
    assert (tables["orders"]["rows_a"], tables["orders"]["rows_b"], tables["orders"]["net_rows"]) == (500, 505, 5)
    assert tables["customers"]["net_rows"] == 0 and tables["customers"]["content"] == "different"
    assert tables["old_log"]["net_rows"] == -30 and tables["old_log"]["rows_b"] is None
    assert tables["coupons"]["net_rows"] == 1 and tables["coupons"]["rows_a"] is None
    for name in ("customers", "orders", "big"):
        t = tables[name]
        assert (t["raw_bytes_a"], t["raw_bytes_b"]) == (a[name].raw_size, b[name].raw_size)
        assert (t["stored_bytes_a"], t["stored_bytes_b"]) == (a[name].stored_size, b[name].stored_size)
    # 100 rows appended to a table of several 64 KiB chunks leave its first chunks identical
    big = tables["big"]
    same = [c for c in b["big"].chunks if c.raw_blake3 in {x.raw_blake3 for x in a["big"].chunks}]
    assert big["chunks_a"] >= 3 and 1 <= big["same_chunks"] == len(same) < big["chunks_b"]
    assert big["rows_in_same_chunks"] == sum(c.rows for c in same) and big["net_rows"] == 100
    assert "column shipped added (INTEGER)" in tables["orders"]["schema"]
    assert "index orders_customer added" in tables["orders"]["schema"]
    assert "table coupons added" in tables["coupons"]["schema"]
    assert "table old_log removed" in tables["old_log"]["schema"]
    assert report["totals"]["net_rows"] == 5 - 30 + 1 + 100
    assert report["totals"] | {"net_rows": 0, "raw_bytes_delta": 0, "stored_bytes_delta": 0} == {
        "tables_added": 1, "tables_removed": 1, "tables_changed": 3, "tables_unchanged": 0, "tables_unknown": 0,
        "net_rows": 0, "raw_bytes_delta": 0, "stored_bytes_delta": 0}


def test_diff_human_output_says_net_rows(storage_dir: Path, two: tuple[Path, Path, str, str]) -> None:
    _db, cfg, first, second = two
    result = run_cli(storage_dir, "diff", first, "latest", config=cfg)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["A", first, "shop"] and lines[1].split()[:3] == ["B", second, "shop"]
    header = next(line for line in lines if line.startswith("TABLE"))
    assert "NET ROWS" in header and "SAME CHUNKS" in header
    orders = next(line for line in lines if line.startswith("orders "))
    assert orders.split()[:5] == ["orders", "changed", "500", "505", "+5"]
    assert "  orders: column shipped added (INTEGER)" in lines
    assert lines[-1] == "tables: 1 added, 1 removed, 3 changed, 0 unchanged; net rows +76"


def test_diff_of_unchanged_data_is_identical(tmp_path: Path, storage_dir: Path) -> None:
    db, cfg = tmp_path / "shop.db", config(tmp_path)
    make_shop(db)
    first, second = backup(storage_dir, db, cfg=cfg), backup(storage_dir, db, cfg=cfg)
    report = json_of(storage_dir, "diff", first, second, cfg=cfg)
    assert report["identical"] is True and report["schema"]["differences"] == []
    assert {t["change"] for t in report["tables"]} == {"unchanged"}
    assert all(t["same_chunks"] == t["chunks_b"] for t in report["tables"])
    human = run_cli(storage_dir, "diff", first, second, config=cfg)
    assert human.stdout.splitlines()[-1].startswith("identical: ")


def test_diff_cannot_compare_contents_cut_at_other_chunk_sizes(tmp_path: Path, storage_dir: Path) -> None:
    db = tmp_path / "shop.db"
    make_shop(db)
    first = backup(storage_dir, db, cfg=config(tmp_path))
    second = backup(storage_dir, db, cfg=config(tmp_path, chunk_size="128KiB"))
    report = json_of(storage_dir, "diff", first, second)
    tables = {t["table"]: t for t in report["tables"]}
    assert tables["big"]["change"] == "unknown" and tables["big"]["same_chunks"] is None  # several chunks
    assert tables["orders"]["change"] == "unchanged"  # one chunk on each side: comparable all the same
    assert any("chunks of different sizes" in n for n in report["notes"])


def test_diff_of_two_sources_warns_and_of_two_engines_refuses(tmp_path: Path, storage_dir: Path) -> None:
    db = tmp_path / "shop.db"
    make_shop(db)
    mine = backup(storage_dir, db)
    other = run_cli(storage_dir, "backup", sqlite_url(db), "--name", "shop-copy").stdout.strip()
    result = run_cli(storage_dir, "--log-format", "human", "diff", mine, other, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["same_source"] is False and report["identical"] is True
    assert "datasafe: warning: comparing snapshots of different sources: shop and shop-copy" in result.stderr
    missing = run_cli(storage_dir, "diff", mine, "nope")
    assert_one_error_line(missing, ExitCode.NOT_FOUND, "'nope'")


@pytest.mark.postgres
def test_diff_of_postgres_snapshots_names_schema_objects(pg: PgDatabases, tmp_path: Path, storage_dir: Path) -> None:
    """pg_dump archives differ byte for byte on every run (they record when they were written): only
    the objects that changed are reported, with the table they belong to."""
    url = pg.create("dsdiff", """
        CREATE SCHEMA sales;
        CREATE TABLE sales.orders (id int PRIMARY KEY, total numeric);
        CREATE TABLE public.customers (id int PRIMARY KEY, name text);
        CREATE FUNCTION public.answer() RETURNS int LANGUAGE sql AS 'SELECT 41';
        INSERT INTO sales.orders SELECT g, g * 1.5 FROM generate_series(1, 300) g;
        INSERT INTO public.customers SELECT g, 'c' || g FROM generate_series(1, 50) g;
    """)
    first = run_cli(storage_dir, "backup", str(url), "--name", "shop")
    assert first.exit_code == 0, first.output
    from datasafe.engines.postgres.connection import connect

    with connect(url, settings=False) as conn:
        conn.execute("CREATE INDEX orders_total ON sales.orders (total)")
        conn.execute("CREATE OR REPLACE FUNCTION public.answer() RETURNS int LANGUAGE sql AS 'SELECT 42'")
        conn.execute("INSERT INTO sales.orders VALUES (301, 1)")
    second = run_cli(storage_dir, "backup", str(url), "--name", "shop")
    assert second.exit_code == 0, second.output
    report = json_of(storage_dir, "diff", first.stdout.strip(), second.stdout.strip())
    tables = {t["table"]: t for t in report["tables"]}
    assert tables["public.customers"]["change"] == "unchanged" and tables["public.customers"]["schema"] == []
    assert tables["sales.orders"]["change"] == "changed" and tables["sales.orders"]["net_rows"] == 1
    assert tables["sales.orders"]["schema"] == ["index sales.orders_total added"]
    assert report["schema"] == {"compared": "objects", "differences": ["function public.answer() changed"]}
    lite = tmp_path / "shop.db"
    make_shop(lite)
    sid = backup(storage_dir, lite)
    assert_one_error_line(run_cli(storage_dir, "diff", sid, second.stdout.strip()), ExitCode.USAGE,
                          "different engines cannot be compared")


@pytest.mark.mysql
def test_diff_of_mysql_snapshots_ignores_the_next_auto_increment(my: MyDatabases, storage_dir: Path) -> None:
    """SHOW CREATE TABLE says AUTO_INCREMENT=N: every insert moves it, which is data, not schema."""
    url = my.create("dsdiff", "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20))",
                    "INSERT INTO items (name) VALUES ('a'), ('b')")
    first = run_cli(storage_dir, "backup", str(url), "--name", "shop").stdout.strip()
    my.execute(url, "INSERT INTO items (name) VALUES ('c')")
    second = run_cli(storage_dir, "backup", str(url), "--name", "shop").stdout.strip()
    report = json_of(storage_dir, "diff", first, second)
    (items,) = report["tables"]
    assert (items["change"], items["net_rows"], items["schema"]) == ("changed", 1, [])
    assert report["schema"]["differences"] == []


# -- tag ----------------------------------------------------------------------------------------------
def manifest_path(storage: Path, sid: str) -> Path:
    return storage / "shop" / sid / "manifest.json"


def test_tag_add_and_remove_round_trip(tmp_path: Path, storage_dir: Path) -> None:
    db = tmp_path / "shop.db"
    make_shop(db)
    sid = backup(storage_dir, db, "--tag", "nightly")
    before = manifest_path(storage_dir, sid).read_bytes()
    dry = json_of(storage_dir, "tag", sid, "--add", "known-good", "--dry-run")
    assert (dry["dry_run"], dry["tags"], dry["added"]) == (True, ["nightly", "known-good"], ["known-good"])
    assert manifest_path(storage_dir, sid).read_bytes() == before  # a dry run writes nothing

    added = run_cli(storage_dir, "tag", sid, "--add", "known-good")
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == f"tagged shop/{sid}: nightly, known-good (added known-good)"
    listed = json_of(storage_dir, "list")
    assert listed[0]["tags"] == ["nightly", "known-good"]
    assert "nightly,known-good" in run_cli(storage_dir, "list").stdout.splitlines()[1]
    shown = json_of(storage_dir, "show", "shop/known-good")  # the new tag selects the snapshot
    assert shown["snapshot_id"] == sid and shown["tags"] == ["nightly", "known-good"]
    assert shown["provenance"]["key_id"]  # signed again with the policy key
    assert "tags         nightly, known-good" in run_cli(storage_dir, "show", sid).stdout
    assert run_cli(storage_dir, "verify", "known-good").exit_code == 0

    swapped = json_of(storage_dir, "tag", "known-good", "--remove", "nightly", "--add", "pre-deploy")
    assert (swapped["tags"], swapped["added"], swapped["removed"]) == (
        ["known-good", "pre-deploy"], ["pre-deploy"], ["nightly"])
    again = run_cli(storage_dir, "tag", sid, "--add", "pre-deploy")
    assert again.stdout.strip() == f"shop/{sid}: known-good, pre-deploy (nothing to change)"
    assert json.loads(manifest_path(storage_dir, sid).read_text())["tags"] == ["known-good", "pre-deploy"]
    assert run_cli(storage_dir, "show", "nightly").exit_code == ExitCode.NOT_FOUND


def test_tag_checks_its_arguments(tmp_path: Path, storage_dir: Path) -> None:
    db = tmp_path / "shop.db"
    make_shop(db)
    sid = backup(storage_dir, db)
    assert_one_error_line(run_cli(storage_dir, "tag", sid), ExitCode.USAGE, "give --add TAG or --remove TAG")
    assert_one_error_line(run_cli(storage_dir, "tag", sid, "--add", "x", "--remove", "x"), ExitCode.USAGE,
                          "'x' is both added and removed")
    assert_one_error_line(run_cli(storage_dir, "tag", sid, "--add", "latest"), ExitCode.CONFIG, "invalid tag")
    assert_one_error_line(run_cli(storage_dir, "tag", sid, "--add", "a/b"), ExitCode.CONFIG, "invalid tag")
    assert_one_error_line(run_cli(storage_dir, "tag", "nope", "--add", "x"), ExitCode.NOT_FOUND, "'nope'")


def test_tag_holds_the_source_lock(tmp_path: Path, storage_dir: Path) -> None:
    db = tmp_path / "shop.db"
    make_shop(db)
    sid = backup(storage_dir, db)
    before = manifest_path(storage_dir, sid).read_bytes()
    lease = Lease(LocalStorage(str(storage_dir)), "shop", operation="backup").acquire()
    try:
        held = run_cli(storage_dir, "tag", sid, "--add", "x")
        assert_one_error_line(held, ExitCode.LOCKED, "source shop is locked by backup")
        assert run_cli(storage_dir, "tag", sid, "--add", "x", "--dry-run").exit_code == 0  # reads only
    finally:
        lease.release()
    assert manifest_path(storage_dir, sid).read_bytes() == before


def forge(path: Path, tags: list[str], *, keep_hmac: bool = True) -> None:
    """Edit the tags as someone who can write the storage but has no policy key: the self-digest
    can be recomputed, the HMAC cannot (kept as it was, or stripped)."""
    body = json.loads(path.read_text())
    body.pop(DIGEST_FIELD)
    body["tags"] = tags
    if not keep_hmac:
        body["provenance"] = None
    body[DIGEST_FIELD] = _digest(body)
    path.write_text(json.dumps(body, indent=1))


def test_a_forged_tag_is_detected_like_any_manifest_edit(tmp_path: Path, storage_dir: Path) -> None:
    db = tmp_path / "shop.db"
    make_shop(db)
    old = backup(storage_dir, db)
    backup(storage_dir, db, "--tag", "known-good")
    forge(manifest_path(storage_dir, old), ["known-good-forged"])
    needle = f"manifest of snapshot {old} of shop fails its provenance check"
    assert_fails(run_cli(storage_dir, "verify", old), ExitCode.INTEGRITY, needle)
    assert_one_error_line(run_cli(storage_dir, "show", "known-good-forged"), ExitCode.INTEGRITY, needle)
    assert_one_error_line(run_cli(storage_dir, "diff", old, "latest"), ExitCode.INTEGRITY, needle)
    target = tmp_path / "copy.db"
    restored = run_cli(storage_dir, "restore", "known-good-forged", "--target", sqlite_url(target),
                       "--confirm", "copy.db")
    assert_fails(restored, ExitCode.INTEGRITY, needle)
    assert not target.exists()
    assert_one_error_line(run_cli(storage_dir, "tag", old, "--add", "x"), ExitCode.INTEGRITY, needle)


def test_tag_keeps_an_unsigned_manifest_unsigned_and_refuses_another_key(
        tmp_path: Path, storage_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "shop.db"
    make_shop(db)
    sid = backup(storage_dir, db)
    forge(manifest_path(storage_dir, sid), [], keep_hmac=False)  # as written without a policy key
    done = json_of(storage_dir, "tag", sid, "--add", "x")
    assert done["provenance"] == "unsigned"
    assert json.loads(manifest_path(storage_dir, sid).read_text())["provenance"] is None  # not vouched for now

    signed = backup(storage_dir, db)
    other = tmp_path / "other.key"
    other.write_text("another policy key, 32 bytes or more\n")
    other.chmod(0o600)
    monkeypatch.setenv("DATASAFE_POLICY_KEY_FILE", str(other))
    before = manifest_path(storage_dir, signed).read_bytes()
    assert_one_error_line(run_cli(storage_dir, "tag", signed, "--add", "x"), ExitCode.CONFIG,
                          "signed with policy key", "which this host does not hold")
    assert manifest_path(storage_dir, signed).read_bytes() == before


@pytest.fixture
def sealed(tmp_path: Path, storage_dir: Path) -> tuple[Path, Path, str]:
    """An encrypted snapshot: its config (recipient), the identity file, its id."""
    identity, recipient = generate_identity()
    key = tmp_path / "restore.key"
    key.write_text(f"{identity}\n")
    cfg = config(tmp_path, encryption={"recipients": [recipient]})
    db = tmp_path / "shop.db"
    make_shop(db)
    return cfg, key, backup(storage_dir, db, "--tag", "nightly", cfg=cfg)


def test_tags_of_an_encrypted_snapshot_are_sealed_again(storage_dir: Path, sealed: tuple[Path, Path, str]) -> None:
    cfg, key, sid = sealed
    folder = storage_dir / "shop" / sid
    age_before = (folder / "manifest.age").read_bytes()
    no_key = run_cli(storage_dir, "tag", sid, "--add", "good", config=cfg)
    assert_one_error_line(no_key, ExitCode.CONFIG, "is encrypted")
    done = run_cli(storage_dir, "--identity", str(key), "tag", sid, "--add", "good", config=cfg)
    assert done.exit_code == 0, done.output
    assert (folder / "manifest.age").read_bytes() != age_before
    header = json.loads((folder / "manifest.json").read_text())
    assert header["tags"] == ["nightly", "good"]
    assert header["sealed"]["sha256"] == hashlib.sha256((folder / "manifest.age").read_bytes()).hexdigest()
    shown = json_of(storage_dir, "--identity", str(key), "show", "good", cfg=cfg)
    assert shown["tags"] == ["nightly", "good"] and shown["tables"]
    assert run_cli(storage_dir, "--identity", str(key), "verify", sid, config=cfg).exit_code == 0

    forge(folder / "manifest.json", ["nightly", "good", "forged"])  # the public header only
    edited = run_cli(storage_dir, "--identity", str(key), "show", sid, config=cfg)
    assert_one_error_line(edited, ExitCode.INTEGRITY, "the public header was edited (tags differs)")


def test_a_reader_racing_a_tag_change_reads_the_new_header(
        storage_dir: Path, sealed: tuple[Path, Path, str]) -> None:
    """A tag change writes the sealed manifest, then the header: a reader that meets the new sealed
    manifest with the old header reads the header again instead of calling the snapshot edited."""
    cfg, key, sid = sealed
    header = storage_dir / "shop" / sid / "manifest.json"
    old_header = header.read_bytes()
    assert run_cli(storage_dir, "--identity", str(key), "tag", sid, "--add", "good", config=cfg).exit_code == 0
    new_header = header.read_bytes()
    header.write_bytes(old_header)  # the moment between the two writes
    from datasafe.config import keyring, load_config

    repo = open_repository(str(storage_dir))
    repo.keyring = keyring(load_config(str(cfg)), str(key))
    stale = repo.load_manifest("shop", sid)
    threading.Timer(0.1, header.write_bytes, (new_header,)).start()
    assert repo.open(stale).tags == ["nightly", "good"]
