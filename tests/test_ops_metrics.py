"""What a nightly run reports to monitoring: the Prometheus textfile (content, sharing between
sources, atomicity) and the healthcheck/webhook pings (against a local HTTP server)."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from datasafe.ops.metrics import RunMetrics, escape_label_value, render_run, write_metrics
from datasafe.ops.notify import (
    Notifier,
    RunEvent,
    check_url,
    healthcheck_url_for,
    ping_healthcheck,
    post_webhook,
    safe_url,
)

T0 = datetime(2026, 11, 26, 2, 0, 0, tzinfo=timezone.utc)
OK = RunMetrics(
    success=True, started=T0, finished=T0 + timedelta(seconds=12.5), bytes_stored=252723, bytes_raw=1990000,
    rows=85100, tables=4, snapshot_id="20261126T020000Z-d1c602", verify="ok",
)
NEXT_NIGHT = T0 + timedelta(days=1, seconds=40)
FAILED = RunMetrics(success=False, started=T0 + timedelta(days=1), finished=NEXT_NIGHT)

SHOP_OK = """\
# HELP datasafe_last_run_timestamp_seconds Unix time the last datasafe run of this source finished.
# TYPE datasafe_last_run_timestamp_seconds gauge
datasafe_last_run_timestamp_seconds{source="shop",operation="backup"} 1795658412.5
# HELP datasafe_last_run_success 1 if the last datasafe run of this source succeeded, 0 if it failed.
# TYPE datasafe_last_run_success gauge
datasafe_last_run_success{source="shop",operation="backup"} 1
# HELP datasafe_last_success_timestamp_seconds Unix time the last successful datasafe run of this source finished.
# TYPE datasafe_last_success_timestamp_seconds gauge
datasafe_last_success_timestamp_seconds{source="shop",operation="backup"} 1795658412.5
# HELP datasafe_backup_duration_seconds Duration of the last successful backup of this source.
# TYPE datasafe_backup_duration_seconds gauge
datasafe_backup_duration_seconds{source="shop"} 12.5
# HELP datasafe_backup_bytes_stored Bytes stored (compressed) by the last successful backup of this source.
# TYPE datasafe_backup_bytes_stored gauge
datasafe_backup_bytes_stored{source="shop"} 252723
# HELP datasafe_backup_bytes_raw Raw (uncompressed) bytes of the last successful backup of this source.
# TYPE datasafe_backup_bytes_raw gauge
datasafe_backup_bytes_raw{source="shop"} 1990000
# HELP datasafe_backup_rows Rows in the last successful backup of this source.
# TYPE datasafe_backup_rows gauge
datasafe_backup_rows{source="shop"} 85100
# HELP datasafe_backup_tables Tables in the last successful backup of this source.
# TYPE datasafe_backup_tables gauge
datasafe_backup_tables{source="shop"} 4
# HELP datasafe_verify_ok 1 if the last verification of this source's newest snapshot passed, 0 if it failed.
# TYPE datasafe_verify_ok gauge
datasafe_verify_ok{source="shop"} 1
"""


def samples(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.fixture
def prom(tmp_path: Path) -> Path:
    folder = tmp_path / "textfile"
    folder.mkdir()
    return folder / "datasafe.prom"


def test_first_run_exact_content(prom: Path) -> None:
    write_metrics(prom, "shop", OK)
    assert prom.read_text() == SHOP_OK
    assert stat.S_IMODE(prom.stat().st_mode) == 0o644


def test_other_sources_are_kept(prom: Path) -> None:
    write_metrics(prom, "shop", OK)
    notes = replace(OK, finished=T0 + timedelta(seconds=3), duration=timedelta(seconds=2), bytes_stored=10,
                    bytes_raw=20, rows=3, tables=1, verify="not run")
    write_metrics(prom, "notes", notes)
    text = prom.read_text()
    assert samples(text) == [
        'datasafe_last_run_timestamp_seconds{source="notes",operation="backup"} 1795658403',
        'datasafe_last_run_timestamp_seconds{source="shop",operation="backup"} 1795658412.5',
        'datasafe_last_run_success{source="notes",operation="backup"} 1',
        'datasafe_last_run_success{source="shop",operation="backup"} 1',
        'datasafe_last_success_timestamp_seconds{source="notes",operation="backup"} 1795658403',
        'datasafe_last_success_timestamp_seconds{source="shop",operation="backup"} 1795658412.5',
        'datasafe_backup_duration_seconds{source="notes"} 2',
        'datasafe_backup_duration_seconds{source="shop"} 12.5',
        'datasafe_backup_bytes_stored{source="notes"} 10',
        'datasafe_backup_bytes_stored{source="shop"} 252723',
        'datasafe_backup_bytes_raw{source="notes"} 20',
        'datasafe_backup_bytes_raw{source="shop"} 1990000',
        'datasafe_backup_rows{source="notes"} 3',
        'datasafe_backup_rows{source="shop"} 85100',
        'datasafe_backup_tables{source="notes"} 1',
        'datasafe_backup_tables{source="shop"} 4',
        'datasafe_verify_ok{source="shop"} 1',
    ]
    # each family has its HELP and TYPE once
    assert text.count("# TYPE datasafe_backup_rows gauge") == 1
    # writing shop again replaces only shop's samples
    write_metrics(prom, "shop", OK)
    assert prom.read_text() == text


def test_failed_run_keeps_last_success(prom: Path) -> None:
    write_metrics(prom, "shop", OK)
    write_metrics(prom, "shop", FAILED)
    lines = samples(prom.read_text())
    assert 'datasafe_last_run_timestamp_seconds{source="shop",operation="backup"} 1795744840' in lines
    assert 'datasafe_last_run_success{source="shop",operation="backup"} 0' in lines
    # what the last good backup did stays visible
    assert 'datasafe_last_success_timestamp_seconds{source="shop",operation="backup"} 1795658412.5' in lines
    assert 'datasafe_backup_bytes_stored{source="shop"} 252723' in lines
    assert 'datasafe_verify_ok{source="shop"} 1' in lines
    assert len(lines) == len(samples(SHOP_OK))


def test_first_run_failing_has_no_success_timestamp(prom: Path) -> None:
    write_metrics(prom, "shop", FAILED)
    assert samples(prom.read_text()) == [
        'datasafe_last_run_timestamp_seconds{source="shop",operation="backup"} 1795744840',
        'datasafe_last_run_success{source="shop",operation="backup"} 0',
    ]


def test_verify_status(prom: Path) -> None:
    write_metrics(prom, "shop", OK)
    write_metrics(prom, "shop", replace(FAILED, verify="failed"))
    assert 'datasafe_verify_ok{source="shop"} 0' in samples(prom.read_text())
    write_metrics(prom, "shop", replace(OK, verify="not run"))
    assert not [line for line in samples(prom.read_text()) if line.startswith("datasafe_verify_ok")]
    assert "datasafe_verify_ok" not in prom.read_text()  # no HELP/TYPE for an empty family
    with pytest.raises(ValueError, match="verify must be"):
        RunMetrics(success=True, started=T0, finished=T0, verify="maybe")  # type: ignore[arg-type]


def test_other_operations_do_not_touch_backup_samples(prom: Path) -> None:
    write_metrics(prom, "shop", OK)
    write_metrics(prom, "shop", RunMetrics(success=True, started=NEXT_NIGHT, finished=NEXT_NIGHT, operation="prune"))
    lines = samples(prom.read_text())
    assert 'datasafe_last_run_success{source="shop",operation="prune"} 1' in lines
    assert 'datasafe_last_run_success{source="shop",operation="backup"} 1' in lines
    assert 'datasafe_backup_rows{source="shop"} 85100' in lines
    assert 'datasafe_verify_ok{source="shop"} 1' in lines


def test_label_values_are_escaped_and_survive_rewrites(prom: Path) -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    odd = 'we"ird\\name\nx'
    write_metrics(prom, odd, OK)
    line = 'datasafe_backup_rows{source="we\\"ird\\\\name\\nx"} 85100'
    assert line in samples(prom.read_text())
    write_metrics(prom, "shop", OK)  # parses the odd label back and writes it unchanged
    assert line in samples(prom.read_text())
    write_metrics(prom, odd, FAILED)  # and recognises it as the same source
    assert 'datasafe_last_run_success{source="we\\"ird\\\\name\\nx",operation="backup"} 0' in samples(prom.read_text())
    assert len([x for x in samples(prom.read_text()) if "datasafe_last_run_success" in x]) == 2


def test_unknown_metrics_are_kept_and_garbage_dropped(prom: Path, caplog: pytest.LogCaptureFixture) -> None:
    prom.write_text(
        "# HELP datasafe_future_metric Something a newer datasafe writes.\n"
        "# TYPE datasafe_future_metric gauge\n"
        'datasafe_future_metric{source="shop"} 7\n'
        "this is not a sample\n"
    )
    write_metrics(prom, "shop", OK)
    text = prom.read_text()
    assert text.startswith(SHOP_OK)
    assert text[len(SHOP_OK):] == (
        "# HELP datasafe_future_metric Something a newer datasafe writes.\n"
        "# TYPE datasafe_future_metric gauge\n"
        'datasafe_future_metric{source="shop"} 7\n'
    )
    assert any("not a sample" in r.getMessage() for r in caplog.records)


def test_write_is_atomic(prom: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_metrics(prom, "shop", OK)
    assert sorted(p.name for p in prom.parent.iterdir()) == ["datasafe.prom", "datasafe.prom.lock"]
    # a failure at the last step (the rename) leaves the old file whole and no temporary file
    seen: list[str] = []

    def failing_replace(src: str, dst: object) -> None:
        seen.append(Path(src).read_text())
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)  # the module calls os.replace
    with pytest.raises(OSError, match="No space left"):
        write_metrics(prom, "shop", FAILED)
    assert prom.read_text() == SHOP_OK
    assert seen and seen[0] != SHOP_OK and seen[0].endswith("\n")  # the new content was complete
    assert sorted(p.name for p in prom.parent.iterdir()) == ["datasafe.prom", "datasafe.prom.lock"]


def test_temp_file_is_not_collected(prom: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names: list[str] = []
    real = os.replace

    def spy(src: str, dst: str) -> None:
        names.append(Path(src).name)
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_metrics(prom, "shop", OK)
    # node_exporter reads only *.prom: the temporary file must never look like one
    assert names and names[0].startswith(".datasafe.prom.") and not names[0].endswith(".prom")


def test_concurrent_writers_lose_nothing(prom: Path) -> None:
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            for _ in range(5):
                write_metrics(prom, f"db{i}", OK)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    lines = samples(prom.read_text())
    assert sorted(x for x in lines if x.startswith("datasafe_backup_rows")) == [
        f'datasafe_backup_rows{{source="db{i}"}} 85100' for i in range(8)
    ]


def test_missing_folder_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_metrics(tmp_path / "nope" / "datasafe.prom", "shop", OK)


def test_render_run_without_file() -> None:
    assert render_run("shop", OK) == SHOP_OK


def test_caplog_quiet_on_clean_files(prom: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    write_metrics(prom, "shop", OK)
    write_metrics(prom, "notes", OK)
    assert not caplog.records


# -- notification pings (datasafe.ops.notify) -------------------------------------------------------
# A local HTTP server in a thread records what arrives.

class _Recorder(BaseHTTPRequestHandler):
    received: list[tuple[str, str, str, bytes]]
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.command, self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(self.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, str, str, bytes]], type[_Recorder]]]:
    received: list[tuple[str, str, str, bytes]] = []
    handler = type("Handler", (_Recorder,), {"received": received, "status": 200})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", received, handler
    httpd.shutdown()
    httpd.server_close()


def test_healthcheck_pings(server: tuple[str, list[tuple[str, str, str, bytes]], type[_Recorder]]) -> None:
    base, received, _ = server
    notifier = Notifier(healthcheck_url=f"{base}/ping/4f1c-secret", timeout=timedelta(seconds=5))
    notifier.start("shop")
    notifier.finish(RunEvent("shop", True, snapshot="20261126T020003Z-d1c602", duration=timedelta(seconds=12.5)))
    notifier.finish(RunEvent("shop", False, error="cannot connect to db1:5432", exit_code=4))
    assert [(m, p) for m, p, _, _ in received] == [
        ("POST", "/ping/4f1c-secret/start"), ("POST", "/ping/4f1c-secret"), ("POST", "/ping/4f1c-secret/fail"),
    ]
    assert [body.decode() for _, _, _, body in received] == [
        "backup of shop started",
        "backup of shop succeeded: snapshot 20261126T020003Z-d1c602, in 12.5s",
        "backup of shop failed: exit code 4\ncannot connect to db1:5432",
    ]
    assert all(ctype.startswith("text/plain") for _, _, ctype, _ in received)


def test_healthcheck_url_with_query_and_slash() -> None:
    assert healthcheck_url_for("https://hc.example/p/abc/?create=1", "fail") == "https://hc.example/p/abc/fail?create=1"
    assert healthcheck_url_for("https://hc.example/p/abc", "success") == "https://hc.example/p/abc"


def test_webhook_payload(server: tuple[str, list[tuple[str, str, str, bytes]], type[_Recorder]]) -> None:
    base, received, _ = server
    notifier = Notifier(webhook_url=f"{base}/hooks/T0K3N", timeout=5)
    notifier.start("shop")  # the webhook only reports the end of a run
    notifier.finish(RunEvent("shop", True, snapshot="20261126T020003Z-d1c602", duration=timedelta(seconds=12.5)))
    notifier.finish(RunEvent("shop", False, operation="prune", error="storage full", exit_code=5))
    assert [(m, p, c) for m, p, c, _ in received] == [("POST", "/hooks/T0K3N", "application/json")] * 2
    first, second = (json.loads(body) for *_, body in received)
    assert first == {"source": "shop", "operation": "backup", "status": "success",
                     "snapshot": "20261126T020003Z-d1c602", "duration": 12.5, "error": None, "exit_code": None,
                     "host": socket.gethostname()}
    assert (second["status"], second["operation"], second["error"], second["exit_code"], second["snapshot"],
            second["duration"]) == ("failure", "prune", "storage full", 5, None, None)


def test_http_error_is_a_warning(
    server: tuple[str, list[tuple[str, str, str, bytes]], type[_Recorder]], caplog: pytest.LogCaptureFixture
) -> None:
    base, received, handler = server
    handler.status = 500
    assert post_webhook(f"{base}/hooks/T0K3N", {"a": 1}, timeout=5) is False
    assert received
    (record,) = [r for r in caplog.records if r.name == "datasafe.ops.notify"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"webhook to {base}/… failed: HTTP 500 Internal Server Error"
    assert "T0K3N" not in caplog.text  # the URL's secret part stays out of logs


def test_server_that_never_answers_times_out(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never reads or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/ping/abc"
        started = time.monotonic()
        assert ping_healthcheck(url, "success", "ok", timeout=0.5) is False
        Notifier(healthcheck_url=url, webhook_url=url, timeout=0.5).finish(RunEvent("shop", True))
        assert time.monotonic() - started < 5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert all("timed out" in w for w in warnings), warnings


def test_unreachable_port_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    assert ping_healthcheck(f"http://127.0.0.1:{port}/abc", "start", timeout=2) is False
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(f"healthcheck start ping to http://127.0.0.1:{port}/… failed: ")
    assert "refused" in record.getMessage().lower()


def test_bad_urls_are_not_fetched(caplog: pytest.LogCaptureFixture) -> None:
    assert post_webhook("file:///etc/passwd", {}, timeout=1) is False
    assert "must start with http:// or https://" in caplog.text
    with pytest.raises(ValueError, match="http:// or https://"):
        check_url("ftp://example.org/x")
    with pytest.raises(ValueError, match="host"):
        check_url("http:///nohost")
    assert check_url("https://hc-ping.com/abc") == "https://hc-ping.com/abc"
    assert safe_url("https://user:pw@hc-ping.com:8443/secret?x=1") == "https://hc-ping.com:8443/…"


def test_notifier_without_urls_does_nothing(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier()
    assert not notifier.enabled
    notifier.start("shop")
    notifier.finish(RunEvent("shop", False, error="x"))
    assert not caplog.records
