"""Nightly operations through the CLI: locking, prune, check, metrics, verification records, SIGTERM."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from datasafe.errors import ExitCode
from datasafe.ops.lease import Lease, holder
from datasafe.storage.local import LocalStorage
from tests.test_pg_faults import assert_fails, assert_one_error_line, run_cli
from tests.test_sqlite import build_db, sqlite_url

DATASAFE = [sys.executable, "-m", "datasafe.cli"]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.db"
    build_db(path)
    return path


def config(tmp_path: Path, **extra: Any) -> Path:
    path = tmp_path / "datasafe.yml"
    path.write_text(json.dumps({"chunk_size": "64KiB", **extra}))
    return path


def backup(storage: Path, source: Path, *args: str, cfg: Path | None = None) -> Any:
    return run_cli(storage, "backup", sqlite_url(source), "--name", "shop", *args, config=cfg)


def complete_ids(storage: Path) -> list[str]:
    listed = run_cli(storage, "list", "--json")
    assert listed.exit_code == 0, listed.output
    return [s["snapshot"] for s in json.loads(listed.stdout)]


# -- locking --------------------------------------------------------------------------------------
def test_a_held_lock_stops_a_second_backup_with_exit_9(storage_dir: Path, source: Path) -> None:
    lease = Lease(LocalStorage(str(storage_dir)), "shop", operation="backup").acquire()
    try:
        result = backup(storage_dir, source)
        assert_one_error_line(result, ExitCode.LOCKED, "source shop is locked by backup", f"pid {os.getpid()}")
        assert not (storage_dir / "shop").exists() or complete_ids(storage_dir) == []
    finally:
        lease.release()
    assert backup(storage_dir, source).exit_code == 0


def test_wait_queues_behind_the_holder(storage_dir: Path, source: Path) -> None:
    lease = Lease(LocalStorage(str(storage_dir)), "shop", operation="prune").acquire()
    threading.Timer(1.0, lease.release).start()
    started = time.monotonic()
    result = backup(storage_dir, source, "--wait", "30s")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 0.9
    assert len(complete_ids(storage_dir)) == 1


def test_concurrent_backups_never_overlap(tmp_path: Path, storage_dir: Path, source: Path) -> None:
    cmd = [*DATASAFE, "--quiet", "backup", sqlite_url(source), "--name", "shop", "--storage", str(storage_dir)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    codes = sorted(p.wait(timeout=120) for p in procs)
    assert set(codes) <= {0, int(ExitCode.LOCKED)} and 0 in codes
    listed = json.loads(run_cli(storage_dir, "list", "--json").stdout)
    assert len(listed) == codes.count(0)
    # the snapshots that were written were written one after another, never at once
    spans = sorted((s["snapshot"], s["finished_at"]) for s in listed)
    from datasafe.commands.repository import open_repository

    repo = open_repository(str(storage_dir))
    times = sorted((m.started_at, m.finished_at) for m in (repo.resolve(s) for s, _ in spans))
    for (_s1, f1), (s2, _f2) in itertools.pairwise(times):
        assert f1 <= s2


def test_a_killed_holder_is_taken_over_after_the_ttl(tmp_path: Path, storage_dir: Path, source: Path) -> None:
    cfg = config(tmp_path, lock={"ttl": "2s"})
    script = textwrap.dedent(f"""
        import time
        from datetime import timedelta
        from datasafe.ops.lease import Lease
        from datasafe.storage.local import LocalStorage
        import socket
        socket.gethostname = lambda: "db-other-host"  # a holder elsewhere: only its TTL frees the lock
        Lease(LocalStorage({str(storage_dir)!r}), "shop", operation="backup", ttl=timedelta(seconds=2)).acquire()
        print("held", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        blocked = backup(storage_dir, source, cfg=cfg)
        assert_one_error_line(blocked, ExitCode.LOCKED, f"pid {proc.pid}")
        time.sleep(2.5)
        taken = run_cli(storage_dir, "--log-format", "human", "backup", sqlite_url(source), "--name", "shop",
                        config=cfg)
        assert taken.exit_code == 0, taken.output
    finally:
        if proc.poll() is None:
            proc.kill()
    assert holder(LocalStorage(str(storage_dir)), "shop") is None  # released at the end


# -- retention ------------------------------------------------------------------------------------
def test_prune_dry_run_lists_exactly_what_a_real_run_removes(storage_dir: Path, source: Path) -> None:
    for _ in range(4):
        assert backup(storage_dir, source).exit_code == 0
    before = complete_ids(storage_dir)
    dry = run_cli(storage_dir, "prune", "shop", "--keep-last", "2", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert complete_ids(storage_dir) == before  # nothing changed
    real = run_cli(storage_dir, "prune", "shop", "--keep-last", "2", "--json")
    done = json.loads(real.stdout)
    assert [r["snapshot"] for r in planned["remove"]] == done["removed"] == before[:2][::-1]
    assert complete_ids(storage_dir) == before[2:]


def test_forget_removes_exactly_the_named_snapshots(storage_dir: Path, source: Path) -> None:
    for _ in range(3):
        assert backup(storage_dir, source).exit_code == 0
    ids = complete_ids(storage_dir)
    shown = run_cli(storage_dir, "show", "shop/latest", "--json")
    latest = json.loads(shown.stdout)["snapshot_id"]
    first = next(i for i in ids if i != latest)
    kept = [i for i in ids if i not in (first, latest)]
    dry = run_cli(storage_dir, "forget", first[:-1], "shop/latest", "--dry-run", "--json")  # a unique prefix
    assert dry.exit_code == 0, dry.output
    assert {r["snapshot"] for r in json.loads(dry.stdout)["would_remove"]} == {first, latest}
    assert complete_ids(storage_dir) == ids  # a dry run changes nothing
    # a name that matches nothing stops the whole command before anything is removed
    missing = run_cli(storage_dir, "forget", first, "20000101T000000Z-000000")
    assert missing.exit_code == ExitCode.NOT_FOUND and complete_ids(storage_dir) == ids
    real = run_cli(storage_dir, "forget", first, latest)
    assert real.exit_code == 0, real.output
    assert {line.split()[1] for line in real.stdout.splitlines()} == {f"shop/{first}", f"shop/{latest}"}
    assert complete_ids(storage_dir) == kept
    assert not (storage_dir / "shop" / first).exists() and not (storage_dir / "shop" / latest).exists()


def test_forget_respects_the_lock_and_object_lock(storage_dir: Path, source: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from datasafe.commands.repository import open_repository
    from datasafe.errors import Refused
    from datasafe.ops.jobs import forget_plan

    assert backup(storage_dir, source).exit_code == 0
    (sid,) = complete_ids(storage_dir)
    lease = Lease(LocalStorage(str(storage_dir)), "shop", operation="backup").acquire()
    try:
        held = run_cli(storage_dir, "forget", sid)
        assert_one_error_line(held, ExitCode.LOCKED, "source shop is locked by backup")
    finally:
        lease.release()
    assert complete_ids(storage_dir) == [sid]
    repo = open_repository(str(storage_dir))
    with pytest.raises(Refused, match=f"snapshot {sid} of shop is under Object Lock until"):
        forget_plan(repo, [sid], None, lock_days={"shop": 30})
    later = datetime.now(timezone.utc) + timedelta(days=31)
    assert [p[1] for p in forget_plan(repo, [sid], None, lock_days={"shop": 30}, now=later)] == [sid]


def test_backup_prune_uses_the_configured_policy(tmp_path: Path, storage_dir: Path, source: Path) -> None:
    cfg = config(tmp_path, sources={"shop": {"url": sqlite_url(source), "retention": {"keep_last": 2}}})
    for _ in range(3):
        result = run_cli(storage_dir, "backup", "shop", "--prune", config=cfg)
        assert result.exit_code == 0, result.output
    assert len(complete_ids(storage_dir)) == 2
    assert_one_error_line(run_cli(storage_dir, "prune", "other"), ExitCode.CONFIG, "has no retention policy")


def test_prune_refuses_a_policy_that_keeps_nothing(storage_dir: Path, source: Path) -> None:
    assert backup(storage_dir, source).exit_code == 0
    result = run_cli(storage_dir, "prune", "shop", "--keep-last", "0")
    assert_fails(result, ExitCode.CONFIG, "keeps nothing")
    assert len(complete_ids(storage_dir)) == 1


# -- check, verification records, metrics ----------------------------------------------------------
def test_check_exit_codes(storage_dir: Path, source: Path) -> None:
    assert_one_error_line(run_cli(storage_dir, "check", "shop", "--max-age", "26h"), ExitCode.NOT_FOUND,
                          "no verified snapshot")
    assert backup(storage_dir, source).exit_code == 0
    ok = run_cli(storage_dir, "check", "--max-age", "26h", "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)[0]["ok"] is True
    stale = run_cli(storage_dir, "check", "shop", "--max-age", "0s")
    assert_fails(stale, ExitCode.NOT_FOUND, "more than 0s")
    # the newest snapshot fails verification: check says so with the integrity code
    chunk = sorted((storage_dir / "shop").glob("*/data/*/*.zst"))[-1]
    chunk.write_bytes(b"garbage")
    assert run_cli(storage_dir, "verify", "--latest").exit_code == ExitCode.INTEGRITY
    assert_fails(run_cli(storage_dir, "check", "shop", "--max-age", "26h"), ExitCode.INTEGRITY,
                 "failed its last verification")
    assert_one_error_line(run_cli(storage_dir, "check", "--max-age", "soon"), ExitCode.CONFIG, "--max-age")


def test_verification_records_and_since_last(storage_dir: Path, source: Path) -> None:
    assert backup(storage_dir, source).exit_code == 0
    listed = json.loads(run_cli(storage_dir, "list", "--json").stdout)
    assert listed[0]["verified"]["mode"] == "stored" and listed[0]["verified"]["ok"] is True
    first = run_cli(storage_dir, "verify", "--since-last", "--json")
    assert first.exit_code == 0 and len(json.loads(first.stdout)) == 1
    second = run_cli(storage_dir, "verify", "--since-last", "--json")
    assert second.exit_code == 0 and json.loads(second.stdout) == []
    sampled = run_cli(storage_dir, "verify", "--latest", "--sample", "10", "--json")
    report = json.loads(sampled.stdout)[0]
    total = json.loads(run_cli(storage_dir, "show", "latest", "--json").stdout)
    all_chunks = len(total["schema_parts"]) + sum(len(t["chunks"]) for t in total["tables"])
    assert 1 <= report["chunks"] < all_chunks
    listed = json.loads(run_cli(storage_dir, "list", "--json").stdout)
    assert listed[0]["verified"]["mode"] == "sample"
    verify_json = json.loads(run_cli(storage_dir, "verify", "--latest", "--json").stdout)
    assert verify_json[0]["ok"] is True  # the records are not mistaken for tampering


def test_metrics_file(tmp_path: Path, storage_dir: Path, source: Path) -> None:
    metrics = tmp_path / "datasafe.prom"
    ok = backup(storage_dir, source, "--metrics-file", str(metrics))
    assert ok.exit_code == 0, ok.output
    text = metrics.read_text()
    assert 'datasafe_last_run_success{source="shop",operation="backup"} 1' in text
    assert 'datasafe_verify_ok{source="shop"} 1' in text
    rows = json.loads(run_cli(storage_dir, "show", "latest", "--json").stdout)
    assert f'datasafe_backup_rows{{source="shop"}} {sum(t["rows"] for t in rows["tables"])}' in text
    last_success = [ln for ln in text.splitlines() if ln.startswith("datasafe_last_success_timestamp_seconds")]
    failed = run_cli(storage_dir, "backup", sqlite_url(tmp_path / "missing.db"), "--name", "shop",
                     "--metrics-file", str(metrics))
    assert failed.exit_code != 0
    text = metrics.read_text()
    assert 'datasafe_last_run_success{source="shop",operation="backup"} 0' in text
    assert [ln for ln in text.splitlines() if ln.startswith("datasafe_last_success_timestamp_seconds")] \
        == last_success
    unwritable = backup(storage_dir, source, "--metrics-file", str(tmp_path / "no" / "such" / "dir" / "m.prom"))
    assert unwritable.exit_code == 0  # a metrics file that cannot be written is only a warning


def test_quiet_after_the_command(storage_dir: Path, source: Path) -> None:
    result = run_cli(storage_dir, "--log-format", "human", "backup", sqlite_url(source), "--name", "shop", "-q")
    assert result.exit_code == 0
    assert result.stderr == ""


# -- signals ----------------------------------------------------------------------------------------
@pytest.mark.postgres
def test_sigterm_stops_cleanly(tmp_path: Path, storage_dir: Path, pg: Any) -> None:
    src = pg.create("dsterm", "CREATE TABLE big AS SELECT i, md5(i::text) AS h, repeat('x', 200) AS pad "
                              "FROM generate_series(1, 1500000) i")
    proc = subprocess.Popen([*DATASAFE, "--log-format", "human", "backup", str(src), "--name", "big",
                             "--storage", str(storage_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list((storage_dir / "big").glob("*/.in-progress")):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "stopped by SIGTERM" in err.strip().splitlines()[-1]
    left = [str(p.relative_to(storage_dir)) for p in (storage_dir / "big").rglob("*")]
    assert left == [], left  # the incomplete snapshot is gone
    assert holder(LocalStorage(str(storage_dir)), "big") is None  # and the lock released


# -- object lock from retention ------------------------------------------------------------------------
@pytest.mark.parametrize(("retention", "days"), [
    ({"keep_daily": 7, "keep_weekly": 4}, 28),
    ({"keep_within": "2w", "keep_daily": 3}, 14),
    ({"keep_monthly": 2}, 62),
    ({"keep_hourly": 30}, 2),
])
def test_object_lock_days_follow_the_retention_policy(tmp_path: Path, retention: dict[str, Any], days: int) -> None:
    from datasafe.commands.settings import lock_days
    from datasafe.config import load_config

    cfg = config(tmp_path, s3={"object_lock_mode": "GOVERNANCE"},
                 sources={"shop": {"url": "sqlite:///x.db", "retention": retention}})
    loaded = load_config(str(cfg))
    assert lock_days(loaded, "s3://bucket/prefix", "shop") == days
    assert lock_days(loaded, str(tmp_path), "shop") is None  # local storage has no object lock


def test_object_lock_without_a_time_bound_is_a_config_error(tmp_path: Path) -> None:
    from datasafe.commands.settings import lock_days
    from datasafe.config import load_config
    from datasafe.errors import ConfigError

    cfg = config(tmp_path, s3={"object_lock_mode": "COMPLIANCE"},
                 sources={"shop": {"url": "sqlite:///x.db", "retention": {"keep_last": 5}}})
    with pytest.raises(ConfigError, match="gives no time bound"):
        lock_days(load_config(str(cfg)), "s3://bucket/prefix", "shop")
    explicit = config(tmp_path, s3={"object_lock_mode": "COMPLIANCE", "object_lock_days": 40})
    assert lock_days(load_config(str(explicit)), "s3://bucket/prefix", "shop") == 40


# -- pings from the backup command -----------------------------------------------------------------------
def test_backup_pings_healthcheck_and_webhook(tmp_path: Path, storage_dir: Path, source: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_ops_metrics import _Recorder

    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    from http.server import ThreadingHTTPServer

    received: list[tuple[str, str, str, bytes]] = []
    handler = type("Handler", (_Recorder,), {"received": received, "status": 200})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        monkeypatch.setenv("HC_URL", f"{base}/hc/secret-uuid")
        cfg = config(tmp_path, notify={"healthcheck_url": "${HC_URL}", "webhook_url": f"{base}/hook",
                                       "timeout": "5s"})
        ok = backup(storage_dir, source, cfg=cfg)
        assert ok.exit_code == 0, ok.output
        failed = run_cli(storage_dir, "backup", sqlite_url(tmp_path / "missing.db"), "--name", "shop", config=cfg)
        assert failed.exit_code == ExitCode.NOT_FOUND
    finally:
        httpd.shutdown()
        httpd.server_close()
    paths = [p for _, p, _, _ in received]
    assert paths == ["/hc/secret-uuid/start", "/hc/secret-uuid", "/hook",
                     "/hc/secret-uuid/start", "/hc/secret-uuid/fail", "/hook"]
    hooks = [json.loads(body) for _, p, _, body in received if p == "/hook"]
    assert hooks[0]["status"] == "success" and hooks[0]["snapshot"] == complete_ids(storage_dir)[0]
    assert hooks[1]["status"] == "failure" and hooks[1]["exit_code"] == ExitCode.NOT_FOUND
    assert "secret-uuid" not in ok.output + failed.output  # ping URLs are secrets


def test_an_unreachable_ping_never_fails_the_backup(tmp_path: Path, storage_dir: Path, source: Path) -> None:
    cfg = config(tmp_path, notify={"healthcheck_url": "http://127.0.0.1:9/hc/x", "timeout": "1s"})
    result = backup(storage_dir, source, cfg=cfg)
    assert result.exit_code == 0, result.output


def test_a_snapshot_by_time_is_the_newest_taken_at_or_before_it(storage_dir: Path, source: Path) -> None:
    from datetime import timedelta

    from datasafe.commands.repository import open_repository

    for _ in range(3):
        assert backup(storage_dir, source).exit_code == 0
    repo = open_repository(str(storage_dir))
    taken = sorted((repo.resolve(i, "shop").started_at, i) for i in complete_ids(storage_dir))
    (t1, first), (t2, middle), (_t3, newest) = taken
    for ref in (f"shop@{t2.isoformat()}", f"shop@{(t2 + timedelta(microseconds=1)).isoformat()}",
                f"@{t2.astimezone().isoformat()}"):
        shown = run_cli(storage_dir, "show", ref, "--json")
        assert shown.exit_code == 0, (ref, shown.output)
        assert json.loads(shown.stdout)["snapshot_id"] == middle
    assert json.loads(run_cli(storage_dir, "show", "shop@2999-01-01", "--json").stdout)["snapshot_id"] == newest
    early = run_cli(storage_dir, "show", f"shop@{(t1 - timedelta(seconds=1)).isoformat()}")
    assert early.exit_code == ExitCode.NOT_FOUND and "taken at or before" in early.output
    assert run_cli(storage_dir, "show", "shop@2026-13-45").exit_code == ExitCode.NOT_FOUND  # no time: a tag name
    assert first != middle != newest
