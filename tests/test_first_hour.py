"""What a new user meets first: exit codes that mean what the table in docs/cli.md says, one clear
line for a privilege the role lacks, and no warning that does not apply."""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from datasafe.errors import DatabaseError, ExitCode, PrivilegeError, UsageError
from datasafe.snapshot.crypto import generate_identity
from datasafe.urls import DatabaseURL
from tests.conftest import MyDatabases, PgDatabases
from tests.test_pg_faults import assert_one_error_line, run_cli
from tests.test_sqlite import build_db, sqlite_url

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def lite(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    build_db(path)
    return path


def backup(storage: Path, db: Path, *args: str, config: Path | None = None) -> str:
    result = run_cli(storage, "backup", sqlite_url(db), *args, config=config)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


# -- the table ---------------------------------------------------------------------------------------
def exit_table() -> dict[int, str]:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8").split("## Exit codes", 1)[1]
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \| `\w+` \| ([^|]*) \|", text, re.M)}


def test_the_table_says_what_each_error_class_is_for() -> None:
    table = exit_table()
    assert set(table) == {int(c) for c in ExitCode}
    assert "missing or ambiguous argument" in table[ExitCode.USAGE]
    assert "a key" in table[ExitCode.CONFIG]
    assert "privilege" in table[ExitCode.DATABASE]
    assert UsageError("x").exit_code == ExitCode.USAGE
    assert PrivilegeError("x").exit_code == ExitCode.DATABASE and issubclass(PrivilegeError, DatabaseError)


# -- usage (2): the command line is wrong ---------------------------------------------------------------
def test_a_missing_source_argument_is_a_usage_error(tmp_path: Path, storage_dir: Path, lite: Path) -> None:
    assert_one_error_line(run_cli(storage_dir, "backup"), ExitCode.USAGE, "no source given")
    cfg = tmp_path / "datasafe.yml"
    cfg.write_text(json.dumps({"sources": {"shop": {"url": sqlite_url(lite)}, "notes": {"url": sqlite_url(lite)}}}))
    assert_one_error_line(run_cli(storage_dir, "backup", config=cfg), ExitCode.USAGE,
                          "several sources are configured (shop, notes): name one")
    parser = run_cli(storage_dir, "show")  # the option parser's own: Usage: and Error: lines
    assert parser.exit_code == ExitCode.USAGE and "Missing argument 'SNAPSHOT'" in parser.stderr


def test_an_ambiguous_reference_is_a_usage_error(storage_dir: Path, lite: Path) -> None:
    first = backup(storage_dir, lite, "--name", "shop")
    second = backup(storage_dir, lite, "--name", "crm")
    assert_one_error_line(run_cli(storage_dir, "show", "latest"), ExitCode.USAGE,
                          "'latest' is ambiguous: several sources (crm, shop)")
    prefix = next(first[:i] for i in range(len(first)) if first[i] != second[i])  # ids differ at the end
    assert len(prefix) >= 8  # the same day: ids start with the date
    assert_one_error_line(run_cli(storage_dir, "show", prefix), ExitCode.USAGE,
                          f"snapshot id prefix {prefix!r} is ambiguous")


def test_data_only_into_another_engine_is_a_usage_error(tmp_path: Path, storage_dir: Path, lite: Path) -> None:
    backup(storage_dir, lite)  # a restore across engines needs an empty target (docs/cross-engine.md)
    result = run_cli(storage_dir, "restore", "latest", "--target", "postgresql://nobody@127.0.0.1:1/x", "--data-only")
    assert_one_error_line(result, ExitCode.USAGE,
                          "is a sqlite snapshot: --data-only is not available into a postgresql target")
    both = run_cli(storage_dir, "restore", "latest", "--target", sqlite_url(tmp_path / "c.db"), "--schema-only",
                   "--data-only")
    assert_one_error_line(both, ExitCode.USAGE, "--schema-only and --data-only exclude each other")


# -- config (3): a setting or a key is missing ---------------------------------------------------------
def test_a_missing_key_is_a_config_error(tmp_path: Path, storage_dir: Path, lite: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _identity, recipient = generate_identity()
    cfg = tmp_path / "datasafe.yml"
    cfg.write_text(json.dumps({"encryption": {"recipients": [recipient]}}))
    sid = backup(storage_dir, lite, "--name", "shop", config=cfg)
    assert_one_error_line(run_cli(storage_dir, "show", sid, config=cfg), ExitCode.CONFIG, "is encrypted")

    plain = backup(storage_dir, lite, "--name", "plain")
    rules = tmp_path / "rules.yml"
    rules.write_text("version: 1\ntables: {}\n")
    monkeypatch.delenv("DATASAFE_MASKING_KEY", raising=False)
    result = run_cli(storage_dir, "mask", plain, "--rules", str(rules), "--no-strict")
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "DATASAFE_MASKING_KEY" in result.stderr.splitlines()[-1]
    monkeypatch.setenv("DATASAFE_POLICY_KEY_FILE", str(tmp_path / "absent.key"))
    assert_one_error_line(run_cli(storage_dir, "list"), ExitCode.CONFIG, "absent.key does not exist")


# -- database (11): a privilege the role lacks ------------------------------------------------------------
@pytest.fixture
def pg_role_without_createdb(postgres_server: DatabaseURL) -> Iterator[str]:
    from datasafe.engines.postgres.connection import connect

    role = f"dsnocreate_{secrets.token_hex(4)}"
    with connect(postgres_server, database="postgres") as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    yield role
    with connect(postgres_server, database="postgres") as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def pg_scratch_databases(server: DatabaseURL) -> set[str]:
    from datasafe.engines.postgres.connection import connect

    with connect(server, database="postgres") as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'datasafe_verify_%'").fetchall()
    return {r[0] for r in rows}


@pytest.mark.postgres
def test_verify_deep_names_the_missing_createdb(pg: PgDatabases, postgres_server: DatabaseURL, storage_dir: Path,
                                                pg_role_without_createdb: str) -> None:
    url = pg.create("dsfirsthour", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
    result = run_cli(storage_dir, "backup", str(url), "--name", "shop")
    assert result.exit_code == 0, result.output
    before = pg_scratch_databases(postgres_server)
    scratch = postgres_server.replace(username=pg_role_without_createdb, password=None).with_database("postgres")
    deep = run_cli(storage_dir, "verify", "latest", "--deep", "--scratch", str(scratch))
    line = assert_one_error_line(deep, ExitCode.DATABASE, f"role '{pg_role_without_createdb}' lacks the CREATEDB "
                                                          "privilege", "--scratch")
    assert line.startswith("datasafe: error: verify --deep needs to create a scratch database on ")
    assert pg_scratch_databases(postgres_server) == before


@pytest.fixture
def my_user_without_create(mysql_server: DatabaseURL, my: MyDatabases) -> Iterator[str]:
    user = f"dsnocreate_{secrets.token_hex(4)}"
    my.execute(None, f"CREATE USER '{user}'@'%'", f"GRANT SELECT ON *.* TO '{user}'@'%'")
    yield user
    my.execute(None, f"DROP USER IF EXISTS '{user}'@'%'")


@pytest.mark.mysql
def test_verify_deep_names_the_missing_create_privilege(my: MyDatabases, mysql_server: DatabaseURL,
                                                        storage_dir: Path, my_user_without_create: str) -> None:
    url = my.create("dsfirsthour", "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)")
    result = run_cli(storage_dir, "backup", str(url), "--name", "shop")
    assert result.exit_code == 0, result.output
    scratch = mysql_server.replace(username=my_user_without_create, password=None)
    deep = run_cli(storage_dir, "verify", "latest", "--deep", "--scratch", str(scratch))
    assert_one_error_line(deep, ExitCode.DATABASE, "verify --deep needs to create and drop a scratch database",
                          f"user '{my_user_without_create}'@'%' lacks the CREATE privilege", "GRANT ALL ON")
    from datasafe.engines.mysql.connection import connect, query

    conn = connect(mysql_server, database="")
    try:
        left = query(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE "
                           "'datasafe\\_verify\\_%'")
    finally:
        conn.close()
    assert left == []


# -- warnings that apply ---------------------------------------------------------------------------------
CYCLE = """
CREATE TABLE store (id INTEGER PRIMARY KEY, manager_id INTEGER REFERENCES staff(id), name TEXT);
CREATE TABLE staff (id INTEGER PRIMARY KEY, store_id INTEGER REFERENCES store(id), email TEXT);
INSERT INTO store VALUES (1, 1, 'north'), (2, 2, 'south');
INSERT INTO staff VALUES (1, 1, 'ann@example.org'), (2, 2, 'bob@example.org');
"""
CYCLE_RULES = """\
version: 1
tables:
  store:
    keep: [id, manager_id, name]{where}
  staff:
    columns:
      email: email
    keep: [id, store_id]
"""


def test_a_foreign_key_cycle_warns_only_when_subsetting(tmp_path: Path, storage_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Sakila's store and staff point at each other: masking it without a ``where`` filter has
    nothing to warn about; the cycle matters only to subsetting, which cannot follow it."""
    db = tmp_path / "cycle.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(CYCLE)
    sid = backup(storage_dir, db, "--name", "shop")
    monkeypatch.setenv("DATASAFE_MASKING_KEY", "a masking key for the cycle test")
    rules = tmp_path / "rules.yml"
    rules.write_text(CYCLE_RULES.format(where=""))
    plain = run_cli(storage_dir, "--log-format", "human", "mask", sid, "--rules", str(rules))
    assert plain.exit_code == 0, plain.output
    assert "cycle" not in plain.stderr
    rules.write_text(CYCLE_RULES.format(where="\n    where: \"id = 1\""))
    subset = run_cli(storage_dir, "--log-format", "human", "mask", sid, "--rules", str(rules))
    assert subset.exit_code == 0, subset.output
    assert "datasafe: warning: foreign keys form a cycle between store, staff: subsetting does not follow those " \
           "keys" in subset.stderr.splitlines()
