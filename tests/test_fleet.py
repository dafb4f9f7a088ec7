"""Runs over every configured source: ``backup --all``, ``verify --all-sources``, ``prune --all``,
``check``: limits, leases, failures that do not stop the others, the summary and the exit code."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

import pytest

from datasafe.cli.fleet import EXIT_ORDER_HELP
from datasafe.commands.fleet import SEVERITY, run_each, server_of
from datasafe.config import Source
from datasafe.engines.postgres.connection import connect
from datasafe.errors import ConnectionFailed, ExitCode, Interrupted
from datasafe.ops import nightly
from datasafe.ops.lease import LeaseInfo, holder
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.storage.local import LocalStorage
from datasafe.transfer.backup import backup as transfer_backup
from datasafe.urls import DatabaseURL
from tests.conftest import PgDatabases
from tests.test_pg_faults import assert_fails, run_cli
from tests.test_sqlite import build_db, sqlite_url

ROOT = Path(__file__).resolve().parent.parent


def write_config(tmp_path: Path, sources: dict[str, str], **extra: Any) -> Path:
    path = tmp_path / "datasafe.yml"
    path.write_text(json.dumps({"chunk_size": "64KiB", **extra,
                                "sources": {name: {"url": url} for name, url in sources.items()}}))
    return path


def sqlite_sources(tmp_path: Path, n: int) -> dict[str, str]:
    sources = {}
    for i in range(n):
        path = tmp_path / f"lite{i:02d}.db"
        build_db(path)
        sources[f"lite{i:02d}"] = sqlite_url(path)
    return sources


# -- the runner, without databases ---------------------------------------------------------------
def test_the_limits_hold_and_a_busy_server_does_not_hold_up_the_others() -> None:
    servers = {f"a{i}": "db1:5432" for i in range(6)} | {f"b{i}": "db2:5432" for i in range(3)} | {"c": "file:c"}
    lock = threading.Lock()
    active: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    started: list[str] = []

    def work(name: str) -> tuple[dict[str, Any], str]:
        with lock:
            started.append(name)
            active[servers[name]] += 1
            active["*"] += 1
            for key in (servers[name], "*"):
                peak[key] = max(peak[key], active[key])
        time.sleep(0.05)
        with lock:
            active[servers[name]] -= 1
            active["*"] -= 1
        if name == "a3":
            raise ConnectionFailed("cannot connect to db1")
        if name == "b1":
            raise ValueError("unexpected")
        return {"name": name}, f"did {name}"

    result = run_each(list(servers), work, operation="backup", servers=servers, concurrency=4, per_server=2)
    assert peak["*"] == 4
    assert peak["db1:5432"] == 2 and peak["db2:5432"] == 2
    # with two of db1's sources running, db2's start instead of waiting behind db1's
    assert started.index("b0") < started.index("a2")
    by_name = {r.source: r for r in result.runs}
    assert [r.source for r in result.runs] == list(servers)  # the configuration's order
    assert (by_name["a3"].status, by_name["a3"].exit_code) == ("failed", ExitCode.CONNECTION)
    assert (by_name["b1"].status, by_name["b1"].exit_code) == ("failed", ExitCode.ERROR)
    assert by_name["b1"].summary == "internal error: ValueError: unexpected"
    assert sum(r.status == "ok" for r in result.runs) == 8
    assert result.exit_code == ExitCode.ERROR  # 1 is worse than 4
    with pytest.raises(Exception) as raised:
        result.check()
    assert getattr(raised.value, "exit_code", None) == ExitCode.ERROR
    assert "2 of 10 sources did not succeed" in str(raised.value)


def test_a_signal_stops_the_running_sources_and_starts_no_other() -> None:
    def on_term(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted("stopped by SIGTERM")

    def work(name: str) -> tuple[dict[str, Any], str]:
        if name == "s0":
            time.sleep(0.1)  # s1 is running too by now
            os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # a long backup, in Python between its C calls
            time.sleep(0.01)
        return {}, "finished"

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        began = time.monotonic()
        result = run_each([f"s{i}" for i in range(6)], work, operation="backup",
                          servers={f"s{i}": f"h{i}:1" for i in range(6)}, concurrency=2, per_server=1)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert time.monotonic() - began < 5, "the running sources were not stopped"
    statuses = {r.source: (r.status, r.exit_code) for r in result.runs}
    assert statuses["s0"] == ("failed", ExitCode.INTERRUPTED)
    assert statuses["s1"] == ("failed", ExitCode.INTERRUPTED)
    assert all(statuses[f"s{i}"] == ("not run", ExitCode.INTERRUPTED) for i in range(2, 6))
    assert result.exit_code == ExitCode.INTERRUPTED


def test_the_documented_order_of_exit_codes_is_the_one_applied() -> None:
    assert set(SEVERITY) == set(ExitCode) - {ExitCode.BROKEN_PIPE}
    order = ", ".join(str(int(c)) for c in SEVERITY)
    assert f"in this order: {order} " in EXIT_ORDER_HELP
    assert f"`{order.replace(', ', ' > ')}`" in (ROOT / "docs" / "operations.md").read_text()


def test_servers_are_host_and_port() -> None:
    assert server_of(DatabaseURL.parse("postgresql://u@DB1.internal/shop")) == "db1.internal:5432"
    assert server_of(DatabaseURL.parse("mysql://u@db1.internal/shop")) == "db1.internal:3306"
    assert server_of(DatabaseURL.parse("postgresql://u@db1.internal:6432/shop")) == "db1.internal:6432"
    assert server_of(DatabaseURL.parse("sqlite:///tmp/a.db")).startswith("file:")


# -- backup --all over 20 sources ----------------------------------------------------------------
@pytest.fixture
def leases_seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Each backup's lease as the storage shows it while the backup runs, and how many ran at once."""
    real = transfer_backup
    lock = threading.Lock()
    seen: dict[str, Any] = {"lease": {}, "active": Counter(), "peak": Counter()}

    def observed(source: Source, repo: Repository, **options: Any) -> Manifest:
        server = server_of(source.url)
        with lock:
            seen["lease"][source.name] = holder(repo.storage, source.name)
            for key in ("*", server):
                seen["active"][key] += 1
                seen["peak"][key] = max(seen["peak"][key], seen["active"][key])
        try:
            time.sleep(0.2)  # long enough for the others to start meanwhile
            return real(source, repo, **options)
        finally:
            with lock:
                for key in ("*", server):
                    seen["active"][key] -= 1

    monkeypatch.setattr(nightly, "backup", observed)  # what backup_job calls under the lease
    yield seen


@pytest.mark.postgres
@pytest.mark.slow
def test_backup_all_of_twenty_sources(tmp_path: Path, storage_dir: Path, pg: PgDatabases,
                                      leases_seen: dict[str, Any]) -> None:
    sources = sqlite_sources(tmp_path, 15)
    table = ("CREATE TABLE t (id int PRIMARY KEY, v text); "
             "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g")
    for i in range(3):
        sources[f"pg{i}"] = str(pg.create("dsfleet", table))
    gone = pg.create("dsfleet", table)
    sources["pggone"] = str(gone)
    sources["pgbad"] = str(pg.server.replace(port=1, database="nothing"))
    cfg = write_config(tmp_path, sources)
    with connect(pg.server, database="postgres") as conn:
        conn.execute(f'DROP DATABASE "{gone.database}" WITH (FORCE)')
    metrics = tmp_path / "datasafe.prom"

    result = run_cli(storage_dir, "backup", "--all", "--concurrency", "4", "--per-server", "2", "--json",
                     "--metrics-file", str(metrics), config=cfg)

    summary = json.loads(result.stdout)
    runs = {r["source"]: r for r in summary["sources"]}
    assert list(runs) == list(sources)
    failed = {name: r["exit_code"] for name, r in runs.items() if r["status"] != "ok"}
    assert failed == {"pggone": ExitCode.NOT_FOUND, "pgbad": ExitCode.CONNECTION}, failed
    assert (summary["ok"], summary["failed"], summary["not_run"]) == (18, 2, 0)
    assert summary["exit_code"] == result.exit_code == ExitCode.CONNECTION  # 4 is worse than 7
    assert "nothing" in runs["pgbad"]["summary"] or "127.0.0.1" in runs["pgbad"]["summary"]
    # the one error line names the failed sources
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("datasafe: error: backup: 2 of 20 sources did not succeed") and "pgbad" in line
    # every snapshot of the sources that succeeded is there, complete; none of the failed ones
    listed = json.loads(run_cli(storage_dir, "list", "--json").stdout)
    assert sorted(s["source"] for s in listed) == sorted(n for n in sources if n not in failed)
    for name, run in runs.items():
        if name not in failed:
            assert run["result"]["snapshot"] == run["summary"]
    # each backup ran under its own live lease, held by this process, released afterwards
    storage = LocalStorage(str(storage_dir))
    for name in sources:
        if name == "pgbad":
            continue  # no connection: it never reached its backup
        info = leases_seen["lease"][name]
        assert isinstance(info, LeaseInfo), name
        assert (info.source, info.operation, info.pid) == (name, "backup", os.getpid())
        assert holder(storage, name) is None, f"lease of {name} not released"
    # at most 4 at once, at most 2 of the PostgreSQL server's, and they did run side by side
    assert leases_seen["peak"]["*"] == 4
    assert leases_seen["peak"][server_of(pg.server.with_database("x"))] == 2
    # the metrics of every source, failed ones included
    text = metrics.read_text()
    for name in sources:
        value = "0" if name in failed else "1"
        assert f'datasafe_last_run_success{{source="{name}",operation="backup"}} {value}' in text


# -- the other runs over every source ---------------------------------------------------------------
def test_verify_prune_and_check_over_every_source(tmp_path: Path, storage_dir: Path) -> None:
    sources = sqlite_sources(tmp_path, 5)
    cfg = write_config(tmp_path, sources, fleet={"concurrency": 3})
    for _ in range(2):
        done = run_cli(storage_dir, "backup", "--all", "--json", config=cfg)
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout)["ok"] == 5
        time.sleep(1.1)  # snapshot ids are per second

    verified = run_cli(storage_dir, "verify", "--all-sources", "--latest", "--json", config=cfg)
    assert verified.exit_code == 0, verified.output
    summary = json.loads(verified.stdout)
    assert (summary["operation"], summary["ok"], summary["concurrency"]) == ("verify", 5, 3)
    assert all(len(r["result"]["reports"]) == 1 and r["result"]["reports"][0]["ok"] for r in summary["sources"])

    text = run_cli(storage_dir, "prune", "--all", "--keep-last", "1", config=cfg)
    assert text.exit_code == 0, text.output
    assert re.search(r"^lite03\s+storage\s+ok\s+0\s+[\d.]+\s+kept 1, removed 1$", text.stdout, re.M), text.stdout
    assert "prune: 5 ok, 0 failed, 0 not run; exit code 0" in text.stdout
    listed = json.loads(run_cli(storage_dir, "list", "--json").stdout)
    assert Counter(s["source"] for s in listed) == {name: 1 for name in sources}

    fresh = run_cli(storage_dir, "check", "--max-age", "1h", "--concurrency", "2", "--json", config=cfg)
    assert fresh.exit_code == 0, fresh.output
    assert sorted(r["source"] for r in json.loads(fresh.stdout)) == sorted(sources)

    # a damaged snapshot makes its source fail, and only it; the worst exit code is 6
    victim = next((storage_dir / "lite02").iterdir())
    chunk = next(p for p in victim.rglob("*") if p.is_file() and p.suffix == ".zst")
    chunk.write_bytes(b"not what was stored")
    damaged = run_cli(storage_dir, "verify", "--all-sources", "--latest", "--mode", "stored", "--json", config=cfg)
    summary = json.loads(damaged.stdout)
    assert damaged.exit_code == ExitCode.INTEGRITY
    assert [r["source"] for r in summary["sources"] if r["status"] != "ok"] == ["lite02"]


def test_usage_errors_are_one_line(tmp_path: Path, storage_dir: Path) -> None:
    empty = tmp_path / "empty.yml"
    empty.write_text("chunk_size: 64KiB\n")
    assert_fails(run_cli(storage_dir, "backup", "--all", config=empty), ExitCode.USAGE,
                 "runs every configured source, and there are none")
    cfg = write_config(tmp_path, sqlite_sources(tmp_path, 1))
    assert_fails(run_cli(storage_dir, "backup", "lite00", "--all", config=cfg), ExitCode.USAGE, "give no SOURCE")
    assert_fails(run_cli(storage_dir, "backup", "lite00", "--concurrency", "2", config=cfg), ExitCode.USAGE,
                 "--concurrency and --per-server go with --all")
    assert_fails(run_cli(storage_dir, "verify", "--all-sources", "--latest", "--source", "x", config=cfg),
                 ExitCode.USAGE, "--all-sources goes with")
    bad = tmp_path / "bad.yml"
    bad.write_text("fleet:\n  start: '25:00'\n")
    assert_fails(run_cli(storage_dir, "list", config=bad), ExitCode.CONFIG, "fleet.start", "no time of day")


# -- metrics to a Pushgateway ---------------------------------------------------------------------
class _Gateway(http.server.BaseHTTPRequestHandler):
    pushes: ClassVar[list[tuple[str, str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.pushes.append((self.command, self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_each_source_pushes_its_metrics(tmp_path: Path, storage_dir: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    _Gateway.pushes = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sources = sqlite_sources(tmp_path, 2) | {"lost": sqlite_url(tmp_path / "missing.db")}
        url = f"http://127.0.0.1:{server.server_address[1]}"
        cfg = write_config(tmp_path, sources, fleet={"pushgateway_url": url})
        done = run_cli(storage_dir, "backup", "--all", config=cfg)
        assert done.exit_code == ExitCode.NOT_FOUND, done.output
    finally:
        server.shutdown()
    pushed = {path: body for _method, path, body in _Gateway.pushes}
    assert set(pushed) == {f"/metrics/job/datasafe/source/{n}/operation/backup" for n in sources}
    assert all(method == "POST" for method, _p, _b in _Gateway.pushes)
    ok = pushed["/metrics/job/datasafe/source/lite00/operation/backup"]
    assert 'datasafe_last_run_success{source="lite00",operation="backup"} 1' in ok
    assert 'datasafe_backup_rows{source="lite00"}' in ok and "lite01" not in ok
    failed = pushed["/metrics/job/datasafe/source/lost/operation/backup"]
    assert 'datasafe_last_run_success{source="lost",operation="backup"} 0' in failed
    assert "datasafe_last_success_timestamp_seconds" not in failed  # the gateway keeps the previous one
