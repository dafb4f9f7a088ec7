"""Hostile input: manifests rewritten by someone who can write the storage (digest recomputed,
provenance dropped), forged encrypted headers, YAML bombs, and what masked snapshots reveal.

Whoever can write the storage can rewrite a manifest and recompute its self-digest (it is no
signature), so every field a reader acts on must be checked when the manifest is read: a bad one
is an integrity error (exit 6) naming the field, before anything is written to a target.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard
from blake3 import blake3

from datasafe.errors import ExitCode
from datasafe.snapshot.manifest import DIGEST_FIELD, _digest
from datasafe.urls import DatabaseURL
from tests.test_pg_faults import assert_one_error_line, database_exists, run_cli, user_tables
from tests.test_sqlite import build_db, sqlite_url, table_contents

Body = dict[str, Any]


# -- helpers -------------------------------------------------------------------------------------
def snapshot_folder(storage: Path, sid: str) -> Path:
    (folder,) = storage.glob(f"*/{sid}")
    return folder


def edit_manifest(folder: Path, change: Callable[[Body], object]) -> None:
    """Rewrite ``manifest.json`` as an attacker with write access to the storage would: change it,
    drop the provenance HMAC (no policy key at hand) and recompute the self-digest."""
    path = folder / "manifest.json"
    body = json.loads(path.read_text())
    body.pop(DIGEST_FIELD)
    body.pop("provenance", None)
    change(body)
    body[DIGEST_FIELD] = _digest(body)
    path.write_text(json.dumps(body, indent=1))


def rewrite_chunk(folder: Path, body: Body, table: str, transform: Callable[[bytes], bytes]) -> None:
    """Replace the first chunk of ``table`` with ``transform`` of its rows, and make every digest,
    size and count of the manifest ``body`` agree with the new bytes."""
    entry = next(t for t in body["tables"] if t["name"] == table)
    chunk = entry["chunks"][0]
    path = folder / chunk["path"]
    raw = transform(zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes()))
    stored = zstandard.ZstdCompressor(write_checksum=True).compress(raw)
    path.write_bytes(stored)
    chunk.update(rows=raw.count(b"\n"), raw_size=len(raw), stored_size=len(stored),
                 sha256=hashlib.sha256(stored).hexdigest(), raw_blake3=blake3(raw).hexdigest())
    entry["rows"] = sum(c["rows"] for c in entry["chunks"])
    entry["raw_size"] = sum(c["raw_size"] for c in entry["chunks"])
    entry["stored_size"] = sum(c["stored_size"] for c in entry["chunks"])
    entry["content_blake3"] = blake3("".join(c["raw_blake3"] for c in entry["chunks"]).encode()).hexdigest()


def table_of(body: Body, name: str) -> Body:
    entry: Body = next(t for t in body["tables"] if t["name"] == name)
    return entry


# -- SQLite: paths, row counts ---------------------------------------------------------------------
@pytest.fixture
def lite(tmp_path: Path, storage_dir: Path) -> tuple[str, Path]:
    """A SQLite snapshot (64 KiB chunks: ``bulk`` has several) and its folder."""
    source = tmp_path / "source.db"
    build_db(source)
    cfg = tmp_path / "datasafe.yml"
    cfg.write_text('chunk_size: "64KiB"\n')
    result = run_cli(storage_dir, "backup", sqlite_url(source), "--name", "shop", config=cfg)
    assert result.exit_code == 0, result.output
    sid = result.stdout.strip()
    return sid, snapshot_folder(storage_dir, sid)


def restore_lite(storage: Path, sid: str, target: Path) -> Any:
    return run_cli(storage, "restore", sid, "--target", sqlite_url(target), "--confirm", target.name)


def test_chunk_path_outside_the_snapshot_is_an_integrity_error(tmp_path: Path, storage_dir: Path,
                                                               lite: tuple[str, Path]) -> None:
    sid, folder = lite
    edit_manifest(folder, lambda b: table_of(b, "bulk")["chunks"][0].__setitem__("path", "../../../elsewhere.zst"))
    target = tmp_path / "copy.db"
    for result in (restore_lite(storage_dir, sid, target), run_cli(storage_dir, "verify", sid),
                   run_cli(storage_dir, "show", sid)):
        assert_one_error_line(result, ExitCode.INTEGRITY, "table bulk", "'../../../elsewhere.zst'",
                              "not a path inside the snapshot folder")
    assert not target.exists()


def test_negative_row_count_is_refused(tmp_path: Path, storage_dir: Path, lite: tuple[str, Path]) -> None:
    sid, folder = lite

    def negative(b: Body) -> None:
        entry = table_of(b, "bulk")
        entry["chunks"][0]["rows"] = -5
        entry["rows"] = sum(c["rows"] for c in entry["chunks"])

    edit_manifest(folder, negative)
    target = tmp_path / "copy.db"
    assert_one_error_line(restore_lite(storage_dir, sid, target), ExitCode.INTEGRITY, "tables.", "chunks.0.rows",
                          "greater than or equal to 0")
    assert not target.exists()


def test_table_rows_must_add_up_when_the_manifest_is_read(tmp_path: Path, storage_dir: Path,
                                                          lite: tuple[str, Path]) -> None:
    sid, folder = lite
    edit_manifest(folder, lambda b: table_of(b, "bulk").__setitem__("rows", 7))
    target = tmp_path / "copy.db"
    assert_one_error_line(restore_lite(storage_dir, sid, target), ExitCode.INTEGRITY, "table bulk",
                          "the table entry says 7")
    assert not target.exists()


def test_restore_checks_the_rows_of_each_chunk(tmp_path: Path, storage_dir: Path, lite: tuple[str, Path]) -> None:
    """A manifest whose row counts agree with each other but not with the chunks' bytes."""
    sid, folder = lite
    body = json.loads((folder / "manifest.json").read_text())
    first = table_of(body, "bulk")["chunks"][0]
    path, real = first["path"], first["rows"]

    def fewer(b: Body) -> None:
        entry = table_of(b, "bulk")
        entry["chunks"][0]["rows"] -= 1
        entry["rows"] -= 1

    edit_manifest(folder, fewer)
    target = tmp_path / "copy.db"
    assert_one_error_line(restore_lite(storage_dir, sid, target), ExitCode.INTEGRITY,
                          f"chunk bulk {path} holds {real} rows, the manifest says {real - 1}")
    assert not target.exists()
    assert run_cli(storage_dir, "verify", sid).exit_code == ExitCode.INTEGRITY


def test_masking_section_of_the_wrong_shape_is_refused(storage_dir: Path, lite: tuple[str, Path]) -> None:
    """``masking.from`` is read by ``latest`` and ``masking.strict`` by the policy: a string where an
    object or a boolean belongs ("false" would be true) is an invalid manifest, not a crash or a claim."""
    sid, folder = lite
    edit_manifest(folder, lambda b: b.__setitem__("masking", {"masked": True, "strict": True, "from": "shop"}))
    assert_one_error_line(run_cli(storage_dir, "show", sid), ExitCode.INTEGRITY, "masking.from")
    edit_manifest(folder, lambda b: b.__setitem__("masking", {"masked": True, "strict": "false"}))
    assert_one_error_line(run_cli(storage_dir, "show", sid), ExitCode.INTEGRITY, "masking.strict")


# -- encrypted headers: the summary ---------------------------------------------------------------
@pytest.fixture
def sealed(tmp_path: Path, storage_dir: Path) -> tuple[str, Path, Path, Path]:
    """An encrypted SQLite snapshot: id, folder, identity file, config."""
    from datasafe.snapshot.crypto import generate_identity

    identity, recipient = generate_identity()
    key = tmp_path / "restore.key"
    key.write_text(f"{identity}\n")
    cfg = tmp_path / "datasafe.yml"
    cfg.write_text(json.dumps({"chunk_size": "64KiB", "encryption": {"recipients": [recipient]}}))
    source = tmp_path / "source.db"
    build_db(source)
    result = run_cli(storage_dir, "backup", sqlite_url(source), "--name", "shop", config=cfg)
    assert result.exit_code == 0, result.output
    sid = result.stdout.strip()
    return sid, snapshot_folder(storage_dir, sid), key, cfg


def test_forged_summary_fails_verify(storage_dir: Path, sealed: tuple[str, Path, Path, Path]) -> None:
    sid, folder, key, cfg = sealed
    genuine = json.loads((folder / "manifest.json").read_text())["summary"]

    def forge(b: Body) -> None:
        b["summary"].update(tables=99, rows=1)

    edit_manifest(folder, forge)
    verify = run_cli(storage_dir, "--identity", str(key), "verify", sid, config=cfg)
    assert_one_error_line(verify, ExitCode.INTEGRITY, "public header was edited", "summary.tables is 99",
                          f"the manifest says {genuine['tables']}")
    shown = run_cli(storage_dir, "--identity", str(key), "show", sid, config=cfg)
    assert_one_error_line(shown, ExitCode.INTEGRITY, "summary.tables")


def test_forged_stored_size_is_caught_without_a_key(storage_dir: Path, sealed: tuple[str, Path, Path, Path]) -> None:
    sid, folder, _key, cfg = sealed
    edit_manifest(folder, lambda b: b["summary"].__setitem__("stored_size", b["summary"]["stored_size"] * 10))
    verify = run_cli(storage_dir, "verify", sid, "--mode", "stored", config=cfg)
    assert_one_error_line(verify, ExitCode.INTEGRITY, "summary.stored_size")
    listed = run_cli(storage_dir, "list", "--all", "--json", config=cfg)
    (entry,) = json.loads(listed.stdout)
    assert entry["complete"] is False and "summary.stored_size" in entry["problem"]


def test_header_object_path_outside_the_snapshot_is_refused(storage_dir: Path,
                                                             sealed: tuple[str, Path, Path, Path]) -> None:
    sid, folder, _key, cfg = sealed
    edit_manifest(folder, lambda b: b["objects"][0].__setitem__("path", "../x.zst"))
    verify = run_cli(storage_dir, "verify", sid, "--mode", "stored", config=cfg)
    assert_one_error_line(verify, ExitCode.INTEGRITY, "objects.0.path", "not a path inside the snapshot folder")


def test_unforged_encrypted_snapshot_still_verifies(storage_dir: Path, sealed: tuple[str, Path, Path, Path]) -> None:
    sid, _folder, key, cfg = sealed
    result = run_cli(storage_dir, "--identity", str(key), "verify", sid, config=cfg)
    assert result.exit_code == 0, result.output


# -- YAML bombs --------------------------------------------------------------------------------------
def billion_laughs() -> str:
    text = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    return text


def test_config_alias_bomb_is_refused_quickly(tmp_path: Path, storage_dir: Path) -> None:
    cfg = tmp_path / "datasafe.yml"
    cfg.write_text(billion_laughs())
    started = time.monotonic()
    result = run_cli(storage_dir, "list", config=cfg)
    assert time.monotonic() - started < 5
    assert_one_error_line(result, ExitCode.CONFIG, str(cfg), "aliases expand to more than 10,000 nodes")


def test_rules_alias_bomb_is_refused_quickly(tmp_path: Path, storage_dir: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("version: 1\n" + billion_laughs())
    started = time.monotonic()
    result = run_cli(storage_dir, "rules", "check", str(rules))
    assert time.monotonic() - started < 5
    assert_one_error_line(result, ExitCode.CONFIG, "rules.yml", "aliases expand to more than 10,000 nodes")


@pytest.mark.parametrize(("name", "size", "limit"), [("datasafe.yml", (1 << 20) + 1, "1 MiB"),
                                                      ("rules.yml", (4 << 20) + 1, "4 MiB")])
def test_oversized_yaml_is_refused(tmp_path: Path, storage_dir: Path, name: str, size: int, limit: str) -> None:
    path = tmp_path / name
    path.write_text("# " + "x" * (size - 3) + "\n")
    if name == "datasafe.yml":
        result = run_cli(storage_dir, "list", config=path)
    else:
        result = run_cli(storage_dir, "rules", "check", str(path))
    assert_one_error_line(result, ExitCode.CONFIG, name, f"larger than {limit}")


@pytest.mark.parametrize(("text", "needle"), [
    ("a: &a [1, *a]\n", "an alias refers to a node that contains it"),
    ("x: " + "[" * 150 + "]" * 150 + "\n", "nested more than 100 levels deep"),
    ("x: " + "[" * 5000 + "\n", "nested more than 100 levels deep"),
], ids=["recursive", "deep", "very-deep"])
def test_yaml_shapes_that_would_explode_are_refused(text: str, needle: str) -> None:
    from datasafe.errors import ConfigError
    from datasafe.masking.errors import RulesError
    from datasafe.masking.rules import parse_rules
    from datasafe.yamlsafe import MAX_CONFIG_BYTES, safe_load

    with pytest.raises(ConfigError, match=needle) as info:
        safe_load(text, "datasafe.yml", max_bytes=MAX_CONFIG_BYTES, error=ConfigError)
    assert info.value.exit_code == ExitCode.CONFIG
    with pytest.raises(RulesError, match=needle):
        parse_rules("version: 1\n" + text, source="rules.yml")


def test_anchors_within_the_limit_still_work(tmp_path: Path, storage_dir: Path) -> None:
    """Sharing settings with an anchor and a merge key is ordinary YAML and stays allowed."""
    from datasafe.config import load_config

    cfg = tmp_path / "datasafe.yml"
    cfg.write_text("sources:\n  a: &d {url: 'sqlite:///a.db', jobs: 3}\n  b:\n    <<: *d\n    url: 'sqlite:///b.db'\n")
    loaded = load_config(str(cfg)).config
    assert loaded.sources["b"].jobs == 3 and loaded.sources["b"].url == "sqlite:///b.db"
    assert run_cli(storage_dir, "list", config=cfg).exit_code == 0


# -- masked snapshots do not say where production lives -------------------------------------------
def test_masked_manifest_keeps_only_the_scheme_of_the_source_url(tmp_path: Path, storage_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    hidden = tmp_path / "prod-host-secret-dir"
    hidden.mkdir()
    source = hidden / "customers-production.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT)")
        conn.executemany("INSERT INTO people (email) VALUES (?)", [(f"p{i}@example.com",) for i in range(50)])
    monkeypatch.setenv("DATASAFE_MASKING_KEY", "a masking key for the source_url test")
    backed = run_cli(storage_dir, "backup", sqlite_url(source), "--name", "shop")
    assert backed.exit_code == 0, backed.output
    sid = backed.stdout.strip()
    rules = tmp_path / "rules.yml"
    rules.write_text("version: 1\ntables:\n  people:\n    keep: [id]\n    columns:\n      email: email\n")
    masked = run_cli(storage_dir, "mask", sid, "--source", "shop", "--rules", str(rules))
    assert masked.exit_code == 0, masked.output
    mid = masked.stdout.strip()
    original = json.loads((storage_dir / "shop" / sid / "manifest.json").read_text())
    body = json.loads((storage_dir / "shop.masked" / mid / "manifest.json").read_text())
    assert hidden.name in original["source_url"]
    assert body["source_url"] == "sqlite://"
    assert body["origin"] == original["origin"]  # the policy's identity of the rows' origin stays
    shown = run_cli(storage_dir, "show", mid, "--source", "shop.masked")
    assert shown.exit_code == 0, shown.output
    assert hidden.name not in shown.stdout.split("origin")[0]
    restored = tmp_path / "masked.db"
    result = run_cli(storage_dir, "restore", mid, "--source", "shop.masked", "--target", sqlite_url(restored),
                     "--confirm", restored.name)
    assert result.exit_code == 0, result.output
    assert len(table_contents(restored)["people"]) == 50


# -- PostgreSQL: the fields the engine reads ---------------------------------------------------------
PG_SQL = """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers, total numeric);
INSERT INTO customers (name) SELECT 'customer ' || i FROM generate_series(1, 200) i;
INSERT INTO orders (customer_id, total) SELECT 1 + i % 200, i * 1.25 FROM generate_series(1, 1000) i;
CREATE MATERIALIZED VIEW order_totals AS SELECT customer_id, sum(total) AS total FROM orders GROUP BY 1;
"""


@pytest.fixture
def pg_snapshot(pg: Any, storage_dir: Path) -> tuple[str, Path]:
    source = pg.create("dshostile", PG_SQL)
    result = run_cli(storage_dir, "backup", str(source), "--name", "shop")
    assert result.exit_code == 0, result.output
    sid = result.stdout.strip()
    return sid, snapshot_folder(storage_dir, sid)


@pytest.fixture
def occupied(pg: Any) -> DatabaseURL:
    """A target holding data that a refused ``restore --clean`` must leave alone."""
    url: DatabaseURL = pg.create("dshostile_target", "CREATE TABLE keepme (id int); INSERT INTO keepme VALUES (1);")
    return url


def _set_extra(key: str, value: object) -> Callable[[Body], object]:
    return lambda b: b["extra"].__setitem__(key, value)


@pytest.mark.postgres
@pytest.mark.parametrize(("change", "needle"), [
    (_set_extra("matviews", ["nodot"]), "extra.matviews.0: 'nodot' is not a qualified name"),
    (_set_extra("pg_dump_version", "abc"), "extra.pg_dump_version: 'abc' is not a version number"),
    (_set_extra("encoding", "UTF8'; DROP"), "extra.encoding"),
    (_set_extra("sequence_owners", {"nodot": "public.orders"}), "extra.sequence_owners.nodot"),
    (_set_extra("toc", {"objects": {}, "fk_refs": {}, "parents": {}, "names": {"nodot": {"table": ["x"]}}}),
     "extra.toc.names.nodot"),
    (lambda b: b["sequences"][0].__setitem__("name", "nodot"), "sequences.0.name: 'nodot' is not a qualified name"),
], ids=["matview", "pg_dump_version", "encoding", "sequence_owner", "toc", "sequence"])
def test_hostile_pg_manifest_fields_are_refused_before_any_write(
        change: Callable[[Body], object], needle: str, storage_dir: Path, pg_snapshot: tuple[str, Path],
        occupied: DatabaseURL) -> None:
    sid, folder = pg_snapshot
    edit_manifest(folder, change)
    result = run_cli(storage_dir, "restore", sid, "--target", str(occupied), "--clean", "--confirm",
                     occupied.database)
    assert_one_error_line(result, ExitCode.INTEGRITY, f"manifest shop/{sid} is invalid", needle)
    assert user_tables(occupied) == ["public.keepme"]
    assert_one_error_line(run_cli(storage_dir, "verify", sid), ExitCode.INTEGRITY, needle)


@pytest.mark.postgres
def test_pg_restore_checks_the_rows_the_server_loaded(pg: Any, postgres_server: DatabaseURL, storage_dir: Path,
                                                      pg_snapshot: tuple[str, Path]) -> None:
    """A line "\\." ends COPY data: the rows after it would be dropped without a word. The chunk and
    the manifest agree (digests, line count), so only the server's own count tells."""
    sid, folder = pg_snapshot

    def end_marker_inside(b: Body) -> None:
        def cut(raw: bytes) -> bytes:
            lines = raw.splitlines(keepends=True)
            return b"".join(lines[:400]) + b"\\.\n" + b"".join(lines[400:])
        rewrite_chunk(folder, b, "public.orders", cut)

    edit_manifest(folder, end_marker_inside)
    assert run_cli(storage_dir, "verify", sid).exit_code == 0  # the bytes match the manifest
    name = pg.new_name("dshostile_copy")
    result = run_cli(storage_dir, "restore", sid, "--target", str(pg.url(name)), "--confirm", name)
    assert_one_error_line(result, ExitCode.INTEGRITY, "table public.orders: the server loaded 400 rows, "
                                                      "the manifest says 1001")
    assert not database_exists(postgres_server, name)


@pytest.mark.postgres
def test_pg_restore_checks_chunk_row_counts(pg: Any, postgres_server: DatabaseURL, storage_dir: Path,
                                            pg_snapshot: tuple[str, Path]) -> None:
    sid, folder = pg_snapshot

    def fewer(b: Body) -> None:
        entry = table_of(b, "public.orders")
        entry["chunks"][0]["rows"] -= 10
        entry["rows"] -= 10

    edit_manifest(folder, fewer)
    name = pg.new_name("dshostile_rows")
    result = run_cli(storage_dir, "restore", sid, "--target", str(pg.url(name)), "--confirm", name)
    assert_one_error_line(result, ExitCode.INTEGRITY, "chunk public.orders", "holds 1000 rows, the manifest says 990")
    assert not database_exists(postgres_server, name)


@pytest.mark.postgres
def test_masked_pg_snapshot_needs_a_named_scratch_server(storage_dir: Path, pg_snapshot: tuple[str, Path],
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its manifest no longer says which server it came from: verify --deep must not guess."""
    sid, _folder = pg_snapshot
    monkeypatch.setenv("DATASAFE_MASKING_KEY", "a masking key for the scratch test")
    rules = tmp_path / "rules.yml"
    rules.write_text("version: 1\ntables:\n  public.customers:\n    keep: [id]\n    columns:\n      name: last_name\n"
                     "  public.orders:\n    keep: [id, customer_id, total]\n")
    masked = run_cli(storage_dir, "mask", sid, "--source", "shop", "--rules", str(rules))
    assert masked.exit_code == 0, masked.output
    mid = masked.stdout.strip()
    body = json.loads((storage_dir / "shop.masked" / mid / "manifest.json").read_text())
    assert body["source_url"] == "postgresql://"
    result = run_cli(storage_dir, "verify", mid, "--source", "shop.masked", "--deep")
    assert_one_error_line(result, ExitCode.CONFIG, f"snapshot {mid} does not record the server it came from")


# -- MySQL/MariaDB: rows the server skipped ---------------------------------------------------------
@pytest.mark.mysql
def test_mysql_restore_checks_the_rows_the_server_loaded(my: Any, storage_dir: Path) -> None:
    """LOAD DATA LOCAL skips a row whose primary key is taken, with only a warning."""
    source = my.create("dshostile", "CREATE TABLE t (id int PRIMARY KEY, v varchar(20))",
                       "INSERT INTO t VALUES " + ", ".join(f"({i}, 'v{i}')" for i in range(1, 101)))
    backed = run_cli(storage_dir, "backup", str(source), "--name", "shop")
    assert backed.exit_code == 0, backed.output
    sid = backed.stdout.strip()
    folder = snapshot_folder(storage_dir, sid)
    name = next(t["name"] for t in json.loads((folder / "manifest.json").read_text())["tables"])
    edit_manifest(folder, lambda b: rewrite_chunk(folder, b, name, lambda raw: raw + raw.splitlines(True)[0]))
    target_name = my.new_name("dshostile_copy")
    result = run_cli(storage_dir, "restore", sid, "--target", str(my.url(target_name)), "--confirm", target_name)
    assert_one_error_line(result, ExitCode.INTEGRITY, "the server loaded 100 rows, the manifest says 101")
    assert not my.exists(target_name)
