"""Restores that must not lose data: --clean checks before it drops, --data-only keeps keys and
sequences right, missing privileges are refused before anything changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from datasafe.engines.postgres.connection import connect
from datasafe.errors import ExitCode
from datasafe.urls import DatabaseURL
from tests.test_pg_faults import SHOP_SQL, assert_fails, restore, run_cli

pytestmark = pytest.mark.postgres


def _backup(storage: Path, url: DatabaseURL, *extra: str) -> str:
    result = run_cli(storage, "backup", str(url), *extra)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def _tables(url: DatabaseURL) -> set[str]:
    with connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def _scalar(url: DatabaseURL, query: str) -> Any:
    with connect(url) as conn:
        row = conn.execute(query).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def test_clean_restore_of_a_corrupt_snapshot_leaves_the_target_untouched(pg: Any, storage_dir: Path) -> None:
    source = pg.create("dssafe_src", SHOP_SQL)
    sid = _backup(storage_dir, source)
    chunk = next(storage_dir.glob(f"*/{sid}/data/*/*.zst"))
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    target = pg.create("dssafe_tgt", "CREATE TABLE precious (id int); INSERT INTO precious VALUES (42);")

    assert_fails(restore(storage_dir, sid, target, "--clean"), ExitCode.INTEGRITY,
                 "does not match its SHA-256")
    assert _tables(target) == {"precious"}  # nothing was dropped
    assert _scalar(target, "SELECT id FROM precious") == 42


def test_data_only_sets_sequences_and_clean_handles_foreign_keys(pg: Any, storage_dir: Path) -> None:
    source = pg.create("dssafe_seq", SHOP_SQL)
    sid = _backup(storage_dir, source)
    target = pg.url(pg.new_name("dssafe_seq_tgt"))
    assert restore(storage_dir, sid, target, "--schema-only").exit_code == 0
    first = restore(storage_dir, sid, target, "--data-only")
    assert first.exit_code == 0, first.output
    # sequences follow the data: new rows get fresh ids
    assert _scalar(target, "SELECT last_value FROM orders_id_seq") == 5000
    with connect(target) as conn:
        conn.execute("INSERT INTO orders (customer_id, total) VALUES (1, 1)")
    # orders references customers: --clean empties both in one TRUNCATE and loads again
    again = restore(storage_dir, sid, target, "--data-only", "--clean")
    assert again.exit_code == 0, again.output
    assert _scalar(target, "SELECT count(*) FROM orders") == 5000
    assert _scalar(target, "SELECT count(*) FROM customers") == 2000


def test_role_without_createdb_is_refused_before_anything_changes(pg: Any, storage_dir: Path,
                                                                  postgres_server: DatabaseURL) -> None:
    source = pg.create("dssafe_role", SHOP_SQL)
    sid = _backup(storage_dir, source)
    role = pg.new_name("dssafe_norole")
    with connect(postgres_server, database="postgres") as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    try:
        target = postgres_server.replace(username=role, database=pg.new_name("dssafe_new"))
        for extra in (["--dry-run"], []):
            assert_fails(restore(storage_dir, sid, target, *extra), ExitCode.REFUSED,
                         "may not create databases")
    finally:
        with connect(postgres_server, database="postgres") as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_url_parameters_reach_libpq(pg: Any, storage_dir: Path) -> None:
    source = pg.create("dssafe_params", SHOP_SQL)
    result = run_cli(storage_dir, "backup", f"{source}?connect_timeout=5&application_name=nightly")
    assert result.exit_code == 0, result.output


def test_verify_all_fails_on_a_damaged_manifest(pg: Any, storage_dir: Path) -> None:
    source = pg.create("dssafe_manifest", SHOP_SQL)
    _backup(storage_dir, source)
    sid = _backup(storage_dir, source)
    manifest = next(storage_dir.glob(f"*/{sid}/manifest.json"))
    manifest.write_text(manifest.read_text().replace('"rows": 5000', '"rows": 5001', 1))
    result = run_cli(storage_dir, "verify", "--all")
    assert_fails(result, ExitCode.INTEGRITY, sid)


def test_a_snapshot_in_a_missing_storage_is_a_storage_error(tmp_path: Path) -> None:
    # (`list` shows a local storage that does not exist yet as empty: see tests/test_cli.py)
    assert_fails(run_cli(tmp_path / "typo", "show", "latest"), ExitCode.STORAGE, "does not exist")
