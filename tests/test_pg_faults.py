"""Bad input and faults, through the CLI: the documented exit code and one clear error line.

Every failure must end with exactly one line on stderr, ``datasafe: error: <what went wrong>``, and
no traceback. Commands run with ``--quiet --log-format human`` (what a cron job would use) so that
informational log lines do not hide the error line.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from datasafe.cli.main import cli
from datasafe.engines.postgres.connection import connect
from datasafe.errors import ExitCode
from datasafe.snapshot.manifest import Manifest
from datasafe.urls import DatabaseURL

pytestmark = pytest.mark.postgres

PASSWORD = "s3cr3t-pw"
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/shop"

SHOP_SQL = """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers, total numeric);
INSERT INTO customers (name) SELECT 'customer ' || i FROM generate_series(1, 2000) i;
INSERT INTO orders (customer_id, total) SELECT 1 + i % 2000, i * 1.25 FROM generate_series(1, 5000) i;
"""


# -- helpers -------------------------------------------------------------------------------------
def run_cli(storage: Path | str, *args: str, config: Path | None = None) -> Result:
    """Run the CLI in-process with an explicit storage; the logging setup it installs is undone."""
    logger = logging.getLogger("datasafe")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    head = ["--quiet", "--log-format", "human", "--storage", str(storage)]
    if config is not None:
        head += ["--config", str(config)]
    try:
        return CliRunner().invoke(cli, [*head, *args])
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


def restore(storage: Path, snapshot_id: str, target: DatabaseURL | str, *options: str) -> Result:
    """``datasafe restore`` into ``target``, which is no configured environment: the (unmasked, so
    production) snapshot goes there only with ``--confirm <database name>``."""
    confirm = DatabaseURL.parse(str(target)).database
    return run_cli(storage, "restore", snapshot_id, "--target", str(target), *options, "--confirm", confirm)


def stderr_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_fails(result: Result, code: ExitCode, *needles: str) -> str:
    """Exit ``code``; the last stderr line is the error naming the problem; no traceback anywhere."""
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}: {result.output}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = stderr_lines(result)
    assert lines, "no error message"
    line = lines[-1]
    assert line.startswith("datasafe: error: "), line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def assert_one_error_line(result: Result, code: ExitCode, *needles: str) -> str:
    """:func:`assert_fails`, and the error line is all there is on stderr."""
    line = assert_fails(result, code, *needles)
    assert stderr_lines(result) == [line], f"stderr is not one line: {result.stderr!r}"
    return line


def list_json(storage: Path, *extra: str) -> list[dict[str, Any]]:
    result = run_cli(storage, "list", "--json", *extra)
    assert result.exit_code == 0, result.output
    listed: list[dict[str, Any]] = json.loads(result.stdout)
    return listed


def database_exists(server: DatabaseURL, name: str) -> bool:
    with connect(server, database="postgres") as conn:
        row = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return bool(row and row[0])


def user_tables(url: DatabaseURL) -> list[str]:
    with connect(url) as conn:
        rows = conn.execute("""SELECT schemaname || '.' || tablename FROM pg_tables
                               WHERE schemaname NOT IN ('pg_catalog', 'information_schema')""").fetchall()
    return sorted(r[0] for r in rows)


def load_manifest(storage: Path, snapshot_id: str) -> Manifest:
    (path,) = storage.glob(f"*/{snapshot_id}/manifest.json")
    return Manifest.from_json(path.read_bytes(), str(path))


@pytest.fixture
def shop(pg: Any) -> DatabaseURL:
    url: DatabaseURL = pg.create("dsfault", SHOP_SQL)
    return url


@pytest.fixture
def snapshot_id(shop: DatabaseURL, storage_dir: Path) -> str:
    result = run_cli(storage_dir, "backup", str(shop), "--name", "shop")
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


# -- connections ---------------------------------------------------------------------------------
def test_unreachable_server(storage_dir: Path) -> None:
    result = run_cli(storage_dir, "backup", UNREACHABLE)
    assert_one_error_line(result, ExitCode.CONNECTION, "cannot connect", "127.0.0.1:1")
    assert list_json(storage_dir, "--all") == []


def test_unreachable_restore_target(snapshot_id: str, storage_dir: Path) -> None:
    # the policy must ask the target who it is: one it cannot reach gets nothing, confirmed or not
    for confirm in ((), ("--confirm", "copy")):
        result = run_cli(storage_dir, "restore", snapshot_id, "--target", "postgresql://postgres@127.0.0.1:1/copy",
                         *confirm)
        assert_one_error_line(result, ExitCode.REFUSED, "cannot tell which database", "cannot connect",
                              "127.0.0.1:1")


def test_unreachable_server_names_the_cause(storage_dir: Path) -> None:
    line = assert_one_error_line(run_cli(storage_dir, "backup", UNREACHABLE), ExitCode.CONNECTION)
    assert "Connection refused" in line
    assert "\t" not in line


def test_unknown_role(postgres_server: DatabaseURL, storage_dir: Path) -> None:
    url = postgres_server.replace(username="no_such_role_datasafe")
    result = run_cli(storage_dir, "backup", str(url))
    assert_one_error_line(result, ExitCode.CONNECTION, "cannot connect", 'role "no_such_role_datasafe" does not exist')


def test_missing_database(postgres_server: DatabaseURL, storage_dir: Path) -> None:
    url = postgres_server.with_database("no_such_db_datasafe")
    result = run_cli(storage_dir, "backup", str(url))
    assert_one_error_line(result, ExitCode.NOT_FOUND, "no_such_db_datasafe", "does not exist")
    assert list_json(storage_dir, "--all") == []
    # nothing that looks like a source is left behind, so monitoring does not fail for the typo forever
    assert not (storage_dir / "no_such_db_datasafe").exists()
    assert_one_error_line(run_cli(storage_dir, "check", "--max-age", "26h"), ExitCode.NOT_FOUND,
                          "no sources configured and no snapshots")


def test_password_is_never_printed(postgres_server: DatabaseURL, shop: DatabaseURL, storage_dir: Path) -> None:
    unreachable = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/shop"
    failed = run_cli(storage_dir, "backup", unreachable)
    line = assert_one_error_line(failed, ExitCode.CONNECTION, "cannot connect")
    assert PASSWORD not in failed.output
    assert "***" in line or "postgres@" in line

    # the server trusts every password: a backup through a URL carrying one succeeds, and neither
    # its log lines, its output nor the manifest on disk show the password
    with_password = shop.replace(password=PASSWORD)
    logger = logging.getLogger("datasafe")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        ok = CliRunner().invoke(cli, ["--log-format", "json", "--storage", str(storage_dir), "backup",
                                      with_password.render(hide_password=False), "--json"])
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
    assert ok.exit_code == 0, ok.output
    assert PASSWORD not in ok.output
    assert "started as snapshot" in ok.stderr  # the log lines were there, redacted
    snapshot = json.loads(ok.stdout)["snapshot"]
    shown = run_cli(storage_dir, "show", snapshot, "--json")
    assert shown.exit_code == 0 and PASSWORD not in shown.output
    files = [p for p in storage_dir.rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in files)
    for path in files:
        assert PASSWORD.encode() not in path.read_bytes(), f"password stored in {path}"


def _recording_tools(folder: Path) -> Path:
    """pg_dump and pg_restore wrappers that record their command line and what their environment
    hands them (PGPASSWORD, a service file's sslpassword), then run the real tool."""
    from datasafe.engines.postgres.tools import find_tool

    folder.mkdir()
    for name in ("pg_dump", "pg_restore"):
        real = find_tool(name, None).path
        wrapper = folder / name
        wrapper.write_text(f"""#!/bin/sh
printf 'argv %s %s\\n' "$(basename "$0")" "$*" >> "{folder}/calls.log"
printf 'env PGPASSWORD=%s\\n' "${{PGPASSWORD:-}}" >> "{folder}/calls.log"
[ -n "${{PGSERVICEFILE:-}}" ] && sed 's/^/service /' "$PGSERVICEFILE" >> "{folder}/calls.log"
exec {real} "$@"
""")
        wrapper.chmod(0o755)
    return folder / "calls.log"


def test_query_parameter_passwords_reach_tools_only_through_the_environment(
        pg: Any, shop: DatabaseURL, storage_dir: Path, tmp_path: Path) -> None:
    calls = _recording_tools(tmp_path / "tools")
    config = tmp_path / "datasafe.yml"
    config.write_text(f"pg_bin: {tmp_path / 'tools'}\n")
    ssl_secret = "ssl-" + PASSWORD
    source = f"{shop}?sslmode=disable&password={PASSWORD}&sslpassword={ssl_secret}"
    done = run_cli(storage_dir, "backup", source, "--name", "shop", "--json", config=config)
    assert done.exit_code == 0, done.output
    snapshot = json.loads(done.stdout)["snapshot"]

    target = pg.url(pg.new_name("dsqpw"))
    target_url = f"{target}?password={PASSWORD}"
    plans = [run_cli(storage_dir, "restore", snapshot, "--target", target_url, "--confirm", target.database,
                     "--dry-run", *json_flag, config=config) for json_flag in ([], ["--json"])]
    for plan in plans:
        assert plan.exit_code == 0, plan.output
        assert "password=***" in plan.stdout
    assert json.loads(plans[1].stdout)["target"] == f"{target}?password=***"
    restored = run_cli(storage_dir, "restore", snapshot, "--target", target_url, "--confirm", target.database,
                       config=config)
    assert restored.exit_code == 0, restored.output
    assert user_tables(target) == ["public.customers", "public.orders"]
    shown = run_cli(storage_dir, "show", snapshot)
    assert "password=***" in shown.stdout and "sslpassword=***" in shown.stdout

    log = calls.read_text().splitlines()
    argv = [line for line in log if line.startswith("argv ")]
    assert any(line.startswith("argv pg_dump ") for line in argv)
    assert any(line.startswith("argv pg_restore ") and "--section=" in line for line in argv)
    for line in argv:
        assert PASSWORD not in line, line  # ps shows every user the command line
    assert "env PGPASSWORD=" + PASSWORD in log  # the password came through the environment instead
    assert f"service sslpassword={ssl_secret}" in log
    for result in [done, *plans, restored, shown]:
        assert PASSWORD not in result.output
    for path in storage_dir.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), f"password stored in {path}"
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("datasafe-*/pg_service-*.conf"))


# -- tools ---------------------------------------------------------------------------------------
def test_missing_pg_dump(shop: DatabaseURL, storage_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    config = tmp_path / "datasafe.yml"
    config.write_text(f"pg_bin: {empty}\n")
    result = run_cli(storage_dir, "backup", str(shop), config=config)
    assert_one_error_line(result, ExitCode.DEPENDENCY, "pg_dump not found", str(empty))
    assert list_json(storage_dir, "--all") == []
    assert not any(storage_dir.rglob("*.zst")), "a failed backup left chunks behind"


def test_too_old_pg_dump(shop: DatabaseURL, storage_dir: Path, tmp_path: Path) -> None:
    old = tmp_path / "old-tools"
    old.mkdir()
    fake = old / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.0'\n")
    fake.chmod(0o755)
    config = tmp_path / "datasafe.yml"
    config.write_text(f"pg_bin: {old}\n")
    result = run_cli(storage_dir, "backup", str(shop), config=config)
    assert_one_error_line(result, ExitCode.DEPENDENCY, "pg_dump 9.6", "older")
    assert list_json(storage_dir, "--all") == []


# -- damaged snapshots ---------------------------------------------------------------------------
def corrupt_a_chunk(storage: Path, snapshot_id: str, table: str) -> str:
    """Flip one byte in the middle of the first data chunk of ``table``; returns its path."""
    manifest = load_manifest(storage, snapshot_id)
    entry = manifest.table(table)
    assert entry is not None and entry.chunks
    chunk = entry.chunks[0].path
    path = storage / manifest.source / snapshot_id / chunk
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return chunk


def test_corrupt_chunk_fails_verify(snapshot_id: str, storage_dir: Path) -> None:
    chunk = corrupt_a_chunk(storage_dir, snapshot_id, "public.orders")
    result = run_cli(storage_dir, "verify", snapshot_id)
    assert_fails(result, ExitCode.INTEGRITY, "failed verification")
    assert chunk in result.stdout and "FAILED" in result.stdout

    as_json = run_cli(storage_dir, "verify", snapshot_id, "--json")
    assert as_json.exit_code == ExitCode.INTEGRITY
    (report,) = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert len(report["problems"]) == 1 and chunk in report["problems"][0]


@pytest.mark.parametrize("target_kind", ["new database", "existing empty database"])
def test_corrupt_chunk_restore_leaves_nothing(target_kind: str, pg: Any, postgres_server: DatabaseURL,
                                              snapshot_id: str, storage_dir: Path) -> None:
    chunk = corrupt_a_chunk(storage_dir, snapshot_id, "public.orders")
    if target_kind == "new database":
        name = pg.new_name("dsfault_restore")
        target = pg.url(name)
    else:
        target = pg.create("dsfault_empty")
        name = target.database
    result = restore(storage_dir, snapshot_id, target)
    assert_fails(result, ExitCode.INTEGRITY, chunk)
    if target_kind == "new database":
        assert not database_exists(postgres_server, name), "the database the restore created was not dropped"
    else:
        assert database_exists(postgres_server, name)
        assert user_tables(target) == [], "a failed restore left tables behind"


@pytest.mark.parametrize("command", ["verify", "restore"])
def test_corrupt_chunk_error_is_one_line(command: str, pg: Any, snapshot_id: str, storage_dir: Path) -> None:
    chunk = corrupt_a_chunk(storage_dir, snapshot_id, "public.orders")
    if command == "verify":
        result = run_cli(storage_dir, "verify", snapshot_id)
        assert_one_error_line(result, ExitCode.INTEGRITY, "failed verification")
    else:
        target = pg.url(pg.new_name("dsfault_oneline"))
        result = restore(storage_dir, snapshot_id, target)
        assert_one_error_line(result, ExitCode.INTEGRITY, chunk)


def test_truncated_manifest(snapshot_id: str, storage_dir: Path, pg: Any, postgres_server: DatabaseURL) -> None:
    (manifest_path,) = storage_dir.glob(f"*/{snapshot_id}/manifest.json")
    data = manifest_path.read_bytes()
    manifest_path.write_bytes(data[: len(data) // 2])

    assert_one_error_line(run_cli(storage_dir, "show", snapshot_id), ExitCode.INTEGRITY, snapshot_id, "truncated")
    name = pg.new_name("dsfault_trunc")
    restored = run_cli(storage_dir, "restore", snapshot_id, "--target", str(pg.url(name)))
    assert_one_error_line(restored, ExitCode.INTEGRITY, snapshot_id, "truncated")
    assert not database_exists(postgres_server, name)
    assert_one_error_line(run_cli(storage_dir, "verify", snapshot_id), ExitCode.INTEGRITY, "truncated")

    assert list_json(storage_dir) == []
    (entry,) = list_json(storage_dir, "--all")
    assert entry["snapshot"] == snapshot_id
    assert entry["complete"] is False and "truncated" in entry["problem"]
    # 'latest' does not fall back to the damaged snapshot
    assert_one_error_line(run_cli(storage_dir, "show", "latest"), ExitCode.NOT_FOUND, "no complete snapshot")


@pytest.mark.parametrize("command", ["show", "verify", "restore"])
def test_unknown_snapshot(command: str, snapshot_id: str, storage_dir: Path, pg: Any) -> None:
    unknown = "20200101T000000Z-abcdef"
    args = [command, unknown]
    if command == "restore":
        args += ["--target", str(pg.url(pg.new_name("dsfault_unknown")))]
    assert_one_error_line(run_cli(storage_dir, *args), ExitCode.NOT_FOUND, unknown)


def test_restore_into_non_empty_target(snapshot_id: str, storage_dir: Path, pg: Any) -> None:
    target = pg.create("dsfault_busy", "CREATE TABLE keep_me (x int); INSERT INTO keep_me VALUES (42);")
    result = restore(storage_dir, snapshot_id, target)
    assert_one_error_line(result, ExitCode.REFUSED, "not empty", "--clean")
    assert user_tables(target) == ["public.keep_me"]


# -- storage -------------------------------------------------------------------------------------
def test_storage_below_a_regular_file(shop: DatabaseURL, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the storage folder should be\n")
    storage = blocker / "backups"
    result = run_cli(storage, "backup", str(shop))
    assert_one_error_line(result, ExitCode.STORAGE, str(blocker))
    assert blocker.read_text() == "a file where the storage folder should be\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_storage(shop: DatabaseURL, tmp_path: Path) -> None:
    storage = tmp_path / "read-only"
    storage.mkdir()
    storage.chmod(0o555)
    try:
        result = run_cli(storage, "backup", str(shop))
        assert_one_error_line(result, ExitCode.STORAGE, str(storage))
    finally:
        storage.chmod(0o755)
    assert list(storage.iterdir()) == []


# -- a backup killed by a signal ------------------------------------------------------------------
BIG_SQL = """
CREATE TABLE big (id integer PRIMARY KEY, pad text NOT NULL);
INSERT INTO big SELECT i, repeat(md5(i::text), 5) FROM generate_series(1, 300000) i;
"""


def backup_and_signal(source: DatabaseURL, storage: Path, config: Path, log_file: Path,
                      sig: signal.Signals) -> subprocess.Popen[bytes]:
    """Start a backup in a child process and send it ``sig`` once chunks are on disk."""
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from datasafe.cli.main import main; main()", "--log-format", "human",
             "--config", str(config), "--storage", str(storage), "backup", str(source), "--name", "big"],
            stdout=subprocess.DEVNULL, stderr=log,
        )
        try:
            deadline = time.monotonic() + 30
            while len(list(storage.glob("big/*/data/*/*.zst"))) < 2:
                assert proc.poll() is None, f"backup ended before the signal: {log_file.read_text()}"
                assert time.monotonic() < deadline, "no chunks appeared within 30s"
                time.sleep(0.005)
            proc.send_signal(sig)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    return proc


def test_sigkill_during_backup(pg: Any, tmp_path: Path, storage_dir: Path) -> None:
    source = pg.create("dsfault_big", BIG_SQL)
    config = tmp_path / "datasafe.yml"
    config.write_text("chunk_size: 64KiB\n")
    log_file = tmp_path / "killed-backup.log"
    proc = backup_and_signal(source, storage_dir, config, log_file, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL, f"the backup finished first: {log_file.read_text()}"

    (folder,) = (storage_dir / "big").iterdir()
    assert not (folder / "manifest.json").exists()
    assert (folder / ".in-progress").exists()

    assert list_json(storage_dir) == []
    (entry,) = list_json(storage_dir, "--all")
    assert entry["snapshot"] == folder.name
    assert entry["complete"] is False and "incomplete" in entry["problem"]
    assert_one_error_line(run_cli(storage_dir, "show", folder.name), ExitCode.INTEGRITY, "incomplete")
    assert_one_error_line(run_cli(storage_dir, "show", "latest"), ExitCode.NOT_FOUND, "no complete snapshot")

    again = run_cli(storage_dir, "backup", str(source), "--name", "big", config=config)
    assert again.exit_code == 0, again.output
    new_id = again.stdout.strip()
    assert not folder.exists(), "the incomplete snapshot of the killed backup was not removed"
    assert [p.name for p in (storage_dir / "big").iterdir()] == [new_id]
    (listed,) = list_json(storage_dir, "--all")
    assert listed["snapshot"] == new_id and listed["rows"] == 300000


def test_sigterm_during_backup(pg: Any, tmp_path: Path, storage_dir: Path) -> None:
    source = pg.create("dsfault_term", BIG_SQL)
    config = tmp_path / "datasafe.yml"
    config.write_text("chunk_size: 64KiB\n")
    log_file = tmp_path / "stopped-backup.log"
    proc = backup_and_signal(source, storage_dir, config, log_file, signal.SIGTERM)
    stderr = log_file.read_text()
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1] == "datasafe: error: stopped by SIGTERM"
    # the interrupted backup removed its own folder
    assert list(storage_dir.glob("big/*")) == []
    assert list_json(storage_dir, "--all") == []


def test_copy_out_stops_while_the_server_sends_nothing(postgres_server: DatabaseURL) -> None:
    """A stop (Ctrl-C, a failed worker) is noticed within about a second even when no row comes."""
    from datasafe.engines.postgres.connection import copy_out
    from datasafe.errors import Interrupted

    # rows, then 30 s of silence (the first rows fill the server's send buffer, so they do arrive)
    stall = ("COPY (SELECT CASE WHEN i = 50000 THEN pg_sleep(30)::text ELSE i::text END "
             "FROM generate_series(1, 60000) i) TO STDOUT")
    received: list[bytes] = []
    conn = connect(postgres_server)
    try:
        started = time.monotonic()
        with pytest.raises(Interrupted):
            copy_out(conn, stall, received.append, lambda: True)
        assert time.monotonic() - started < 10
    finally:
        conn.close()  # left mid-COPY, as documented: closing ends the server's query too


def test_copy_out_hands_over_every_row_in_whole_row_blocks(postgres_server: DatabaseURL) -> None:
    from datasafe.engines.postgres.connection import copy_out

    blocks: list[bytes] = []
    with connect(postgres_server) as conn:
        copy_out(conn, "COPY (SELECT i, repeat('x', i % 500) FROM generate_series(1, 20000) i) TO STDOUT",
                 blocks.append)
    data = b"".join(blocks)
    assert all(block.endswith(b"\n") for block in blocks) and len(blocks) > 1
    assert data.splitlines() == [f"{i}\t{'x' * (i % 500)}".encode() for i in range(1, 20001)]
