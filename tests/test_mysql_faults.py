"""MySQL/MariaDB bad input and faults through the CLI: documented exit codes, one clear error line,
nothing left behind; and a backup taken under concurrent writes is consistent."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path

import pytest
from click.testing import Result

from datasafe.commands.repository import open_repository
from datasafe.config import Config, LoadedConfig, resolve_source
from datasafe.engines.mysql.connection import connect, execute
from datasafe.errors import ConnectionFailed, DatabaseError, ExitCode
from datasafe.transfer.backup import backup as take_snapshot
from datasafe.urls import DatabaseURL
from tests.conftest import MyDatabases
from tests.test_pg_faults import assert_fails, assert_one_error_line, corrupt_a_chunk, load_manifest, run_cli

pytestmark = pytest.mark.mysql

SHOP = [
    "CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40) NOT NULL)",
    "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(10,2), "
    "FOREIGN KEY (customer_id) REFERENCES customers (id))",
    "INSERT INTO customers (name) VALUES " + ", ".join(f"('customer {i}')" for i in range(1, 501)),
    "INSERT INTO orders (customer_id, total) VALUES " + ", ".join(f"({1 + i % 500}, {i}.25)" for i in range(3000)),
]


@pytest.fixture
def shop(my: MyDatabases) -> str:
    return str(my.create("dsmyfault", *SHOP))


@pytest.fixture
def snapshot_id(shop: str, storage_dir: Path) -> str:
    result = run_cli(storage_dir, "backup", shop, "--name", "shop")
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def restore(storage: Path, snapshot_id: str, target: str, *options: str) -> Result:
    """``datasafe restore`` into ``target``, which is no configured environment: the (unmasked, so
    production) snapshot goes there only with ``--confirm <database name>``."""
    confirm = DatabaseURL.parse(target).database
    return run_cli(storage, "restore", snapshot_id, "--target", target, *options, "--confirm", confirm)


def test_unreachable_server(storage_dir: Path) -> None:
    result = run_cli(storage_dir, "backup", "mysql://root@127.0.0.1:1/shop")
    assert_one_error_line(result, ExitCode.CONNECTION, "cannot connect", "127.0.0.1:1")


def test_wrong_credentials(mysql_server: object, shop: str, storage_dir: Path) -> None:
    url = shop.replace("mysql://root@", "mysql://no_such_user_datasafe:wrong-pw-123@")
    result = run_cli(storage_dir, "backup", url)
    line = assert_one_error_line(result, ExitCode.CONNECTION, "cannot connect", "Access denied")
    assert "wrong-pw-123" not in result.output and "***" in line


def test_missing_database(my: MyDatabases, storage_dir: Path) -> None:
    result = run_cli(storage_dir, "backup", str(my.url("no_such_db_datasafe")))
    assert_one_error_line(result, ExitCode.NOT_FOUND, "no_such_db_datasafe", "does not exist")


# (refused without --clean, and a failed restore leaving nothing: tests/test_engine_contract.py)
def test_clean_replaces_tables_and_views(my: MyDatabases, shop: str, snapshot_id: str, storage_dir: Path) -> None:
    target = my.create("dsmyfault_busy", "CREATE TABLE keep_me (id INT PRIMARY KEY)", "CREATE VIEW v AS SELECT 1")
    dry = restore(storage_dir, snapshot_id, str(target), "--clean", "--dry-run")
    assert dry.exit_code == 0 and "drop" in dry.output
    ok = restore(storage_dir, snapshot_id, str(target), "--clean")
    assert ok.exit_code == 0, ok.output
    assert my.query(target, "SHOW TABLES") == [("customers",), ("orders",)]
    query = "SELECT COUNT(*), SUM(total), MAX(id) FROM orders"
    assert my.query(target, query) == my.query(my.url(shop.rsplit("/", 1)[1]), query)


def test_unknown_table_is_not_found(my: MyDatabases, snapshot_id: str, storage_dir: Path) -> None:
    target = my.url(my.new_name("dsmyfault_tbl"))
    result = restore(storage_dir, snapshot_id, str(target), "--tables", "nope")
    assert_one_error_line(result, ExitCode.NOT_FOUND, "nope")
    assert not my.exists(target.database)


def test_clean_checks_chunks_before_dropping(my: MyDatabases, snapshot_id: str, storage_dir: Path) -> None:
    corrupt_a_chunk(storage_dir, snapshot_id, "orders")
    target = my.create("dsmyfault_keep", "CREATE TABLE precious (id INT PRIMARY KEY)")
    result = restore(storage_dir, snapshot_id, str(target), "--clean")
    assert_fails(result, ExitCode.INTEGRITY)
    assert my.query(target, "SHOW TABLES") == [("precious",)]


def test_manifest_records_consistency(snapshot_id: str, storage_dir: Path) -> None:
    manifest = load_manifest(storage_dir, snapshot_id)
    assert manifest.consistency["isolation"] == "repeatable read"
    assert "flush tables" in manifest.consistency["method"]
    assert manifest.settings["sql_mode"] == "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"
    assert json.loads(manifest.to_json())["engine"] == "mysql"


def test_backup_under_concurrent_transfers_is_consistent(my: MyDatabases, storage_dir: Path) -> None:
    """Money moves between accounts in another thread while a jobs=2 backup runs. Each transfer pays
    a fee of 1 into account 0 and logs a row in ``transfers``: the restored total is unchanged and
    account 0 equals the number of logged transfers, so both tables come from the same instant."""
    accounts = ", ".join(f"({i}, 1000)" for i in range(201))
    source = my.create("dsmyfault_bank",
                       "CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB",
                       "CREATE TABLE transfers (id INT AUTO_INCREMENT PRIMARY KEY, amount BIGINT NOT NULL) "
                       "ENGINE=InnoDB",
                       f"INSERT INTO accounts VALUES {accounts}",
                       "CREATE TABLE filler (id INT PRIMARY KEY, pad VARCHAR(200))",
                       "INSERT INTO filler VALUES " + ", ".join(f"({i}, REPEAT('x', 200))" for i in range(5000)))
    stop = threading.Event()
    done = [0]
    errors: list[BaseException] = []

    def transfers() -> None:
        conn = connect(source)
        rnd = random.Random(7)
        try:
            while not stop.is_set():
                a, b = rnd.sample(range(1, 201), 2)
                execute(conn, "START TRANSACTION")
                execute(conn, "UPDATE accounts SET balance = balance - 6 WHERE id = %s", (a,))
                execute(conn, "INSERT INTO transfers (amount) VALUES (5)")
                execute(conn, "UPDATE accounts SET balance = balance + 5 WHERE id = %s", (b,))
                execute(conn, "UPDATE accounts SET balance = balance + 1 WHERE id = 0")
                execute(conn, "COMMIT")
                done[0] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    th = threading.Thread(target=transfers, daemon=True)
    th.start()
    try:
        while done[0] < 20:
            threading.Event().wait(0.01)
        result = run_cli(storage_dir, "backup", str(source), "--name", "bank", "--jobs", "2")
    finally:
        stop.set()
        th.join()
    assert not errors, errors
    assert result.exit_code == 0, result.output
    target = my.url(my.new_name("dsmyfault_bank_copy"))
    assert restore(storage_dir, result.stdout.strip(), str(target)).exit_code == 0
    assert my.query(target, "SELECT SUM(balance) FROM accounts") == [(201 * 1000,)]
    (fees,) = my.query(target, "SELECT balance - 1000 FROM accounts WHERE id = 0")[0]
    assert my.query(target, "SELECT COUNT(*) FROM transfers") == [(fees,)]
    assert fees >= 20  # type: ignore[operator]


def test_without_reload_privilege_falls_back(my: MyDatabases, shop: str, storage_dir: Path) -> None:
    """A user without RELOAD cannot FLUSH TABLES WITH READ LOCK: one consistent-snapshot connection."""
    user = f"dsnoreload_{my.new_name('u')[-10:]}"
    db = shop.rsplit("/", 1)[1]
    my.execute(None, f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-Noreload-1'",
               f"GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `{db}`.* TO '{user}'@'%'")
    try:
        url = shop.replace("mysql://root@", f"mysql://{user}:pw-Noreload-1@")
        result = run_cli(storage_dir, "backup", url, "--name", "noreload")
        assert result.exit_code == 0, result.output
        assert "RELOAD" in result.stderr
        manifest = load_manifest(storage_dir, result.stdout.strip())
        assert manifest.consistency["method"] == "consistent snapshot"
        assert {t.name: t.rows for t in manifest.tables} == {"customers": 500, "orders": 3000}
    finally:
        my.execute(None, f"DROP USER IF EXISTS '{user}'@'%'")


class _AlterAfterFirstTable:
    """A Progress that rebuilds another table (ALTER TABLE ... ENGINE) once the first one is read."""

    def __init__(self, my: MyDatabases, url: str, table: str) -> None:
        self.my, self.url, self.table, self.done = my, url, table, False

    def start(self, key: str, description: str, total_bytes: int | None = None) -> None:
        return None

    def advance(self, key: str, *, rows: int = 0, nbytes: int = 0) -> None:
        return None

    def finish(self, key: str) -> None:
        if not self.done:
            self.done = True
            self.my.execute(DatabaseURL.parse(self.url), f"ALTER TABLE {self.table} ENGINE = InnoDB")


def test_table_altered_during_backup_fails_cleanly(my: MyDatabases, shop: str, storage_dir: Path) -> None:
    repo = open_repository(str(storage_dir))
    source = resolve_source(LoadedConfig(Config(), None), shop, "shop")
    # jobs=1 reads customers, then orders; orders is rebuilt in between, after the snapshot began
    with pytest.raises(DatabaseError) as info:
        take_snapshot(source, repo, jobs=1, progress=_AlterAfterFirstTable(my, shop, "orders"))
    assert info.value.exit_code == ExitCode.DATABASE
    assert "altered during the backup" in str(info.value)
    assert repo.list(include_incomplete=True) == []  # nothing left that looks complete


def test_connection_killed_mid_read(my: MyDatabases, storage_dir: Path) -> None:
    source = my.create(
        "dsmykill",
        "CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(200))",
        "INSERT INTO big SELECT seq, REPEAT('x', 200) FROM seq_1_to_300000",
    )
    repo = open_repository(str(storage_dir))
    src = resolve_source(LoadedConfig(Config(), None), str(source), "big")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            take_snapshot(src, repo, jobs=1, chunk_size=64 << 10)
        except BaseException as exc:
            errors.append(exc)

    th = threading.Thread(target=run)
    th.start()
    killed = False
    deadline = time.monotonic() + 20
    while th.is_alive() and not killed and time.monotonic() < deadline:
        rows = my.query(source, "SELECT ID FROM information_schema.PROCESSLIST "
                                "WHERE INFO LIKE 'SELECT CONCAT_WS%' AND ID <> CONNECTION_ID()")
        for (pid,) in rows:
            my.execute(None, f"KILL {int(pid)}")  # type: ignore[call-overload]
            killed = True
        time.sleep(0.01)
    th.join(30)
    if not killed:
        pytest.skip("the backup finished before its connection could be killed")
    assert len(errors) == 1, errors
    assert isinstance(errors[0], (ConnectionFailed, DatabaseError)), repr(errors[0])
    assert repo.list(include_incomplete=True) == []
