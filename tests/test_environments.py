"""Environments and policy: unmasked production data never reaches dev/test; refresh; audit trail."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from datasafe.demo import create_shop
from datasafe.errors import ExitCode
from tests.test_masking_pipeline import SHOP_RULES
from tests.test_pg_faults import assert_fails, assert_one_error_line, run_cli

KEY = "77d9f3e383b85e5f2aa87890267a21f3ef900edafcca6f16"


def write_config(tmp_path: Path, source_url: str, envs: dict[str, Any], **extra: Any) -> Path:
    (tmp_path / "shop-rules.yml").write_text(SHOP_RULES)
    cfg = tmp_path / "datasafe.yml"
    cfg.write_text(json.dumps({"chunk_size": "64KiB", "sources": {"shop": {"url": source_url}},
                               "environments": envs, **extra}))
    return cfg


@pytest.fixture
def shop_db(tmp_path: Path) -> Path:
    db = tmp_path / "shop.db"
    create_shop(db, 200)
    return db


@pytest.fixture
def setup(tmp_path: Path, storage_dir: Path, shop_db: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("DATASAFE_MASKING_KEY", KEY)
    envs = {
        "qa": {"url": f"sqlite:///{tmp_path / 'qa.db'}", "class": "testing", "source": "shop",
               "rules": "shop-rules.yml"},
        "prod": {"url": f"sqlite:///{shop_db}", "class": "production"},
        "lab": {"url": f"sqlite:///{tmp_path / 'lab.db'}", "class": "development", "allow_unmasked": True},
    }
    cfg = write_config(tmp_path, f"sqlite:///{shop_db}", envs)
    backup = run_cli(storage_dir, "backup", "shop", config=cfg)
    assert backup.exit_code == 0, backup.output
    return {"cfg": cfg, "snapshot": backup.stdout.strip()}


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_unmasked_production_snapshot_is_refused_for_a_test_environment(
        tmp_path: Path, storage_dir: Path, setup: dict[str, Any]) -> None:
    cfg = setup["cfg"]
    for target in ("qa", f"sqlite:///{tmp_path / 'qa.db'}"):  # by name, and by a URL that is that environment
        result = run_cli(storage_dir, "restore", "latest", "--source", "shop", "--target", target, config=cfg)
        line = assert_one_error_line(result, ExitCode.REFUSED, "holds production data (not masked)",
                                     "testing environment 'qa'")
        assert "allow_unmasked" in line
        assert not (tmp_path / "qa.db").exists()
    # a masked snapshot goes in
    masked = run_cli(storage_dir, "mask", "latest", "--source", "shop", "--rules", str(tmp_path / "shop-rules.yml"),
                     "--target", "qa", config=cfg)
    assert masked.exit_code == 0, masked.output
    assert rows(tmp_path / "qa.db", "SELECT count(*) FROM customers") == [(200,)]


def test_masked_with_strict_off_counts_as_unmasked(tmp_path: Path, storage_dir: Path,
                                                    setup: dict[str, Any]) -> None:
    cfg = setup["cfg"]
    loose_rules = tmp_path / "loose.yml"
    loose_rules.write_text(SHOP_RULES.replace("      city: city\n", ""))
    masked = run_cli(storage_dir, "mask", "latest", "--source", "shop", "--rules", str(loose_rules), "--no-strict",
                     config=cfg)
    assert masked.exit_code == 0, masked.output
    result = run_cli(storage_dir, "restore", masked.stdout.strip(), "--source", "shop.masked", "--target", "qa",
                     config=cfg)
    assert_one_error_line(result, ExitCode.REFUSED, "strict coverage turned off")


def test_override_is_config_only_and_logged(tmp_path: Path, storage_dir: Path, setup: dict[str, Any]) -> None:
    result = run_cli(storage_dir, "--log-format", "human", "restore", "latest", "--source", "shop",
                     "--target", "lab", config=setup["cfg"])
    assert result.exit_code == 0, result.output
    assert "POLICY OVERRIDE" in result.stderr and "allow_unmasked" in result.stderr
    records = [json.loads(line) for line in run_cli(storage_dir, "audit", "--json", "--operation", "restore",
                                                    config=setup["cfg"]).stdout.splitlines()]
    assert records[-1]["outcome"] == "ok" and records[-1]["masked"] is False


def test_production_target_and_source_database_need_confirmation(
        tmp_path: Path, storage_dir: Path, shop_db: Path, setup: dict[str, Any]) -> None:
    cfg = setup["cfg"]
    before = shop_db.read_bytes()
    refused = run_cli(storage_dir, "restore", "latest", "--source", "shop", "--target", "prod", "--clean",
                      config=cfg)
    assert_one_error_line(refused, ExitCode.REFUSED, "production", "--confirm prod")
    wrong = run_cli(storage_dir, "restore", "latest", "--source", "shop", "--target", "prod", "--clean",
                    "--confirm", "qa", config=cfg)
    assert wrong.exit_code == ExitCode.REFUSED
    # an unconfigured URL that is the source database itself
    (tmp_path / "x").mkdir()
    other_cfg = write_config(tmp_path / "x", f"sqlite:///{shop_db}", {})
    own = run_cli(storage_dir, "restore", "latest", "--source", "shop", "--target", f"sqlite:///{shop_db}",
                  "--clean", config=other_cfg)
    assert_one_error_line(own, ExitCode.REFUSED, "was taken from")
    assert shop_db.read_bytes() == before
    ok = run_cli(storage_dir, "restore", "latest", "--source", "shop", "--target", "prod", "--clean",
                 "--confirm", "prod", config=cfg)
    assert ok.exit_code == 0, ok.output


def test_restore_by_tag_for_a_pre_deploy_rollback(tmp_path: Path, storage_dir: Path, setup: dict[str, Any],
                                                  shop_db: Path) -> None:
    cfg = setup["cfg"]
    tagged = run_cli(storage_dir, "backup", "shop", "--tag", "pre-deploy-1.4.0", config=cfg)
    assert tagged.exit_code == 0
    with sqlite3.connect(shop_db) as conn:  # the "deploy" damages data
        conn.execute("DELETE FROM payments")
    target = tmp_path / "rollback.db"
    result = run_cli(storage_dir, "restore", "--tag", "pre-deploy-1.4.0", "--target", f"sqlite:///{target}",
                     "--confirm", "rollback.db", config=cfg)
    assert result.exit_code == 0, result.output
    assert rows(target, "SELECT count(*) FROM payments")[0][0] > 0
    both = run_cli(storage_dir, "restore", "latest", "--tag", "x", "--target", f"sqlite:///{target}", config=cfg)
    assert both.exit_code == ExitCode.USAGE


def test_audit_trail_records_every_operation(tmp_path: Path, storage_dir: Path, setup: dict[str, Any]) -> None:
    cfg = setup["cfg"]
    refused = run_cli(storage_dir, "restore", "latest", "--source", "shop", "--target", "qa", config=cfg)
    assert refused.exit_code == ExitCode.REFUSED, refused.output  # refused: recorded as refused
    assert not (tmp_path / "qa.db").exists()
    ok = run_cli(storage_dir, "restore", "latest", "--source", "shop", "--target", f"sqlite:///{tmp_path / 'c.db'}",
                 "--confirm", "c.db", config=cfg)
    assert ok.exit_code == 0, ok.output
    out = run_cli(storage_dir, "audit", "--json", config=cfg)
    records = [json.loads(line) for line in out.stdout.splitlines()]
    ops = [(r["operation"], r["outcome"]) for r in records]
    assert ops == [("backup", "ok"), ("restore", "refused"), ("restore", "ok")]
    assert records[0]["snapshot"] == setup["snapshot"] and records[0]["user"] and records[0]["host"]
    assert records[1]["target"].endswith("qa.db") and records[1]["exit_code"] == ExitCode.REFUSED
    assert "holds production data" in records[1]["error"] and records[1]["user"] and records[1]["host"]
    assert records[1]["decision"]["refused"] == records[1]["error"]
    assert records[2]["target"].endswith("c.db")
    assert records[2]["decision"]["confirmed"] == "c.db" and records[2]["decision"]["refused"] is None
    table = run_cli(storage_dir, "audit", config=cfg)
    assert table.exit_code == 0 and "restore" in table.stdout


# -- refresh ------------------------------------------------------------------------------------------
def test_refresh_sqlite_environment(tmp_path: Path, storage_dir: Path, setup: dict[str, Any]) -> None:
    cfg_path = setup["cfg"]
    cfg = json.loads(cfg_path.read_text())
    (tmp_path / "post.sql").write_text("UPDATE customers SET email = 'qa+' || id || '@example.test';\n"
                                       "CREATE TABLE refresh_marker (done INTEGER);\n")
    cfg["environments"]["qa"]["post_restore_sql"] = ["post.sql"]
    cfg_path.write_text(json.dumps(cfg))
    dry = run_cli(storage_dir, "refresh", "qa", "--dry-run", "--json", config=cfg_path)
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["snapshot"] == setup["snapshot"]
    assert not (tmp_path / "qa.db").exists()
    result = run_cli(storage_dir, "refresh", "qa", "--json", config=cfg_path)
    assert result.exit_code == 0, result.output
    qa = tmp_path / "qa.db"
    assert rows(qa, "SELECT count(*) FROM customers") == [(200,)]
    assert rows(qa, "SELECT email FROM customers ORDER BY id LIMIT 1") == [("qa+1@example.test",)]
    assert rows(qa, "SELECT count(*) FROM refresh_marker") == [(0,)]
    records = [json.loads(line) for line in run_cli(storage_dir, "audit", "--json", "--operation", "refresh",
                                                    config=cfg_path).stdout.splitlines()]
    assert records[-1]["outcome"] == "ok" and records[-1]["environment"] == "qa"
    assert records[-1]["rules_sha256"]


def test_refresh_failure_leaves_the_old_database_untouched(tmp_path: Path, storage_dir: Path,
                                                           setup: dict[str, Any]) -> None:
    cfg_path = setup["cfg"]
    qa = tmp_path / "qa.db"
    with sqlite3.connect(qa) as conn:
        conn.execute("CREATE TABLE old_data (x INTEGER)")
        conn.execute("INSERT INTO old_data VALUES (42)")
    before = qa.read_bytes()
    cfg = json.loads(cfg_path.read_text())
    (tmp_path / "broken.sql").write_text("UPDATE no_such_table SET x = 1;\n")
    cfg["environments"]["qa"]["post_restore_sql"] = ["broken.sql"]
    cfg_path.write_text(json.dumps(cfg))
    result = run_cli(storage_dir, "refresh", "qa", config=cfg_path)
    assert_fails(result, ExitCode.DATABASE, "broken.sql")
    assert qa.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if "ds-new" in p.name] == []
    # bad input: no rules, production environment, unknown environment
    cfg["environments"]["qa"].pop("rules")
    cfg_path.write_text(json.dumps(cfg))
    assert_one_error_line(run_cli(storage_dir, "refresh", "qa", config=cfg_path), ExitCode.CONFIG, "rules")
    assert_one_error_line(run_cli(storage_dir, "refresh", "prod", config=cfg_path), ExitCode.REFUSED, "production")
    assert_one_error_line(run_cli(storage_dir, "refresh", "nope", config=cfg_path), ExitCode.CONFIG,
                          "unknown environment")
    assert qa.read_bytes() == before


def test_refresh_swaps_while_a_client_reads(tmp_path: Path, storage_dir: Path, setup: dict[str, Any]) -> None:
    qa = tmp_path / "qa.db"
    with sqlite3.connect(qa) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
        conn.executemany("INSERT INTO customers VALUES (?)", [(i,) for i in range(7)])
    seen: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                with sqlite3.connect(qa) as conn:
                    seen.append(conn.execute("SELECT count(*) FROM customers").fetchone()[0])
            except sqlite3.Error as exc:
                errors.append(str(exc))
            time.sleep(0.001)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        result = run_cli(storage_dir, "refresh", "qa", config=setup["cfg"])
        time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.output
    assert errors == []
    assert set(seen) <= {7, 200} and seen[0] == 7 and seen[-1] == 200


# -- PostgreSQL and MariaDB ----------------------------------------------------------------------------
def _server_config(tmp_path: Path, source_url: str, target_url: str, rules: str) -> Path:
    (tmp_path / "rules.yml").write_text(rules)
    (tmp_path / "post.sql").write_text("CREATE TABLE refreshed_marker (at int);\n")
    cfg = tmp_path / "datasafe.yml"
    cfg.write_text(json.dumps({"sources": {"bank": {"url": source_url}}, "environments": {"qa": {
        "url": target_url, "class": "testing", "source": "bank", "rules": "rules.yml",
        "post_restore_sql": ["post.sql"]}}}))
    return cfg


def _refresh_then_kill(cfg: Path, storage_dir: Path, temporary_exists: Any, settle: float) -> Any:
    """Start `datasafe refresh qa` in a process and SIGKILL it once its temporary database exists."""
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "DATASAFE_MASKING_KEY": KEY}
    proc = subprocess.Popen([sys.executable, "-m", "datasafe.cli", "--quiet", "--config", str(cfg), "refresh", "qa",
                             "--storage", str(storage_dir)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not temporary_exists():
            if proc.poll() is not None:
                pytest.fail(f"refresh ended before it could be killed: {proc.stderr.read() if proc.stderr else ''}")
            assert time.monotonic() < deadline, "the temporary database never appeared"
            time.sleep(0.01)
        time.sleep(settle)
        assert proc.poll() is None, "the refresh finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc


@pytest.mark.postgres
def test_postgres_policy_refresh_and_reader(tmp_path: Path, storage_dir: Path, pg: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    from tests.test_masking_pipeline import PG_RULES, PG_SCHEMA
    from tests.test_pg_roundtrip import query_all

    monkeypatch.setenv("DATASAFE_MASKING_KEY", KEY)
    src = pg.create("dsenv_src", PG_SCHEMA)
    target = pg.create("dsenv_qa", "CREATE TABLE customers (id int); INSERT INTO customers VALUES (1), (2), (3);")
    cfg = _server_config(tmp_path, str(src), str(target), PG_RULES)
    assert run_cli(storage_dir, "backup", "bank", config=cfg).exit_code == 0
    refused = run_cli(storage_dir, "restore", "latest", "--source", "bank", "--target", "qa", "--clean", config=cfg)
    assert_one_error_line(refused, ExitCode.REFUSED, "not masked", "testing environment 'qa'")
    assert query_all(target, "SELECT count(*) FROM customers") == [(3,)]

    seen: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                with psycopg.connect(target.render(hide_password=False).replace("postgresql", "postgres", 1),
                                     connect_timeout=2) as conn:
                    seen.append(conn.execute("SELECT count(*) FROM customers").fetchone()[0])  # type: ignore[index]
            except psycopg.Error as exc:
                failures.append(type(exc).__name__)
            time.sleep(0.005)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        result = run_cli(storage_dir, "refresh", "qa", config=cfg)
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.output
    assert set(seen) <= {3, 400} and seen[0] == 3 and seen[-1] == 400  # old or new, never a mix or empty
    assert query_all(target, "SELECT count(*) FROM refreshed_marker") == [(0,)]
    leftovers = query_all(pg.url("postgres"), "SELECT datname FROM pg_database WHERE datname LIKE 'dsenv_qa%__ds_%'")
    assert leftovers == []


@pytest.mark.postgres
def test_postgres_refresh_killed_midway_leaves_the_old_database(tmp_path: Path, storage_dir: Path, pg: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:

    from tests.test_masking_pipeline import PG_RULES
    from tests.test_pg_roundtrip import query_all

    big = ("CREATE TABLE customers (id bigserial PRIMARY KEY, email varchar(40) UNIQUE NOT NULL, ssn char(11), "
           "name text NOT NULL, born date, prefs jsonb); "
           "INSERT INTO customers (email, name) SELECT 'u' || i || '@x.example.com', 'P ' || i "
           "FROM generate_series(1, 60000) i; "
           "CREATE TABLE accounts (region text, num int, owner_email varchar(40) REFERENCES customers(email), "
           "iban text, PRIMARY KEY (region, num)); "
           "CREATE TABLE transfers (id serial PRIMARY KEY, region text, num int, amount numeric(12,2), note text, "
           "FOREIGN KEY (region, num) REFERENCES accounts);")
    src = pg.create("dsenv_src", big)
    target = pg.create("dsenv_qa", "CREATE TABLE customers (id int); INSERT INTO customers VALUES (1), (2), (3);")
    cfg = _server_config(tmp_path, str(src), str(target), PG_RULES)
    assert run_cli(storage_dir, "backup", "bank", config=cfg).exit_code == 0
    maint = pg.url("postgres")
    _refresh_then_kill(cfg, storage_dir, lambda: query_all(
        maint, "SELECT 1 FROM pg_database WHERE datname LIKE 'dsenv_qa%__ds_new_%'"), settle=0.3)
    try:
        assert query_all(target, "SELECT count(*) FROM customers") == [(3,)]  # untouched
    finally:
        for (name,) in query_all(maint, "SELECT datname FROM pg_database WHERE datname LIKE 'dsenv_qa%__ds_%'"):
            pg.names.append(name)  # dropped with the test's databases


@pytest.mark.mysql
def test_mariadb_policy_and_refresh(tmp_path: Path, storage_dir: Path, my: Any,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASAFE_MASKING_KEY", KEY)
    src = my.create(
        "dsenv_src",
        "CREATE TABLE customers (id INT PRIMARY KEY, email VARCHAR(60) NOT NULL UNIQUE, name VARCHAR(80))",
        "INSERT INTO customers SELECT seq, CONCAT('m', seq, '@shop.example.org'), CONCAT('N ', seq) FROM seq_1_to_250",
    )
    target = my.create("dsenv_qa", "CREATE TABLE customers (id INT PRIMARY KEY)", "INSERT INTO customers VALUES (1)")
    rules = "version: 1\ntables:\n  customers:\n    columns: {email: {email: {unique: true}}, name: name}\n" \
            "    keep: [id]\n"
    cfg = _server_config(tmp_path, str(src), str(target), rules)
    assert run_cli(storage_dir, "backup", "bank", config=cfg).exit_code == 0
    refused = run_cli(storage_dir, "restore", "latest", "--source", "bank", "--target", str(target), "--clean",
                      config=cfg)
    assert_one_error_line(refused, ExitCode.REFUSED, "not masked")
    assert my.query(target, "SELECT count(*) FROM customers") == [(1,)]
    result = run_cli(storage_dir, "refresh", "qa", config=cfg)
    assert result.exit_code == 0, result.output
    assert my.query(target, "SELECT count(*) FROM customers") == [(250,)]
    emails = [r[0] for r in my.query(target, "SELECT email FROM customers")]
    assert not any(str(e).endswith("@shop.example.org") and str(e).startswith("m") for e in emails)
    assert my.query(target, "SELECT count(*) FROM refreshed_marker") == [(0,)]


@pytest.mark.mysql
def test_mariadb_refresh_killed_midway_leaves_the_old_database(tmp_path: Path, storage_dir: Path, my: Any) -> None:

    src = my.create(
        "dsenv_src",
        "CREATE TABLE customers (id INT PRIMARY KEY, email VARCHAR(60) NOT NULL UNIQUE, name VARCHAR(80))",
        "INSERT INTO customers SELECT seq, CONCAT('m', seq, '@shop.example.org'), CONCAT('N ', seq) "
        "FROM seq_1_to_150000",
    )
    target = my.create("dsenv_qa", "CREATE TABLE customers (id INT PRIMARY KEY)", "INSERT INTO customers VALUES (7)")
    rules = "version: 1\ntables:\n  customers:\n    columns: {email: {email: {unique: true}}, name: name}\n" \
            "    keep: [id]\n"
    cfg = _server_config(tmp_path, str(src), str(target), rules)
    assert run_cli(storage_dir, "backup", "bank", config=cfg).exit_code == 0
    temp_like = f"{target.database}__ds_new_%"
    try:
        _refresh_then_kill(cfg, storage_dir, lambda: my.query(
            my.url(""), f"SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{temp_like}'"), settle=0.2)
        assert my.query(target, "SELECT id FROM customers") == [(7,)]  # untouched
    finally:
        for (name,) in my.query(my.url(""), f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE "
                                            f"SCHEMA_NAME LIKE '{target.database}__ds_%'"):
            my.names.append(name)
