"""Optional pings after (and before) a nightly run: a healthchecks.io-style URL and a JSON webhook.

- **Healthcheck URL** (healthchecks.io, and services that copy its API): ``<url>/start`` when the
  run begins, ``<url>`` when it succeeded, ``<url>/fail`` when it failed, each a POST with a
  one-line text body. A missed success ping is what makes the service alert, so a job that
  never ran (cron broken, host down) is noticed too.
- **Webhook**: one POST of a JSON object when the run ends::

      {"source": "shop", "operation": "backup", "status": "success" | "failure",
       "snapshot": "20261126T020003Z-d1c602" | null, "duration": 12.5 | null,
       "error": "message" | null, "exit_code": 0, "host": "db1"}

Notifications never fail a run: a timeout, a DNS failure, a refused connection or an HTTP error
is logged as a WARNING and the run goes on. ``timeout`` bounds each ping as a whole (name
resolution included), so an unresponsive endpoint delays a nightly job by at most that much.
URLs are secrets (the path of a healthcheck URL is its key; webhook URLs carry tokens): logs
show only their scheme and host.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from datasafe import __version__
from datasafe.notify_urls import HealthcheckKind, check_url, healthcheck_url_for, safe_url

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = timedelta(seconds=10)
#: healthchecks.io keeps the first 100 kB of a ping body; stay far below
MAX_BODY = 10_000


@dataclass(frozen=True)
class RunEvent:
    """The end of one run, as pings and webhooks report it."""

    source: str
    success: bool
    operation: str = "backup"
    snapshot: str | None = None
    duration: timedelta | None = None
    error: str | None = None
    exit_code: int | None = None

    @property
    def status(self) -> str:
        return "success" if self.success else "failure"

    def summary(self) -> str:
        """``backup of shop succeeded: snapshot 2026...-d1c602 in 12.5s`` (the ping body)."""
        text = f"{self.operation} of {self.source} {'succeeded' if self.success else 'failed'}"
        details = []
        if self.snapshot:
            details.append(f"snapshot {self.snapshot}")
        if self.duration is not None:
            details.append(f"in {self.duration.total_seconds():.1f}s")
        if self.exit_code:
            details.append(f"exit code {self.exit_code}")
        if details:
            text += ": " + ", ".join(details)
        if self.error:
            text += f"\n{self.error}"
        return text[:MAX_BODY]

    def payload(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "operation": self.operation,
            "status": self.status,
            "snapshot": self.snapshot,
            "duration": round(self.duration.total_seconds(), 3) if self.duration is not None else None,
            "error": self.error,
            "exit_code": self.exit_code,
            "host": socket.gethostname(),
        }


class Notifier:
    """Sends the pings configured under ``notify:``; without URLs it does nothing.

    Args:
        healthcheck_url: base ping URL, e.g. ``https://hc-ping.com/<uuid>``.
        webhook_url: URL that receives the JSON POST at the end of a run.
        timeout: the longest a single ping may take.
    """

    def __init__(
        self,
        healthcheck_url: str | None = None,
        webhook_url: str | None = None,
        timeout: timedelta | float = DEFAULT_TIMEOUT,
    ) -> None:
        self.healthcheck_url = healthcheck_url
        self.webhook_url = webhook_url
        self.timeout = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)

    @property
    def enabled(self) -> bool:
        return bool(self.healthcheck_url or self.webhook_url)

    def start(self, source: str, operation: str = "backup") -> None:
        """The run begins (healthcheck ``/start``; lets the service measure run time and notice hangs)."""
        if self.healthcheck_url:
            ping_healthcheck(self.healthcheck_url, "start", f"{operation} of {source} started", timeout=self.timeout)

    def finish(self, event: RunEvent) -> None:
        """The run ended: healthcheck success or ``/fail``, then the webhook."""
        if self.healthcheck_url:
            kind: HealthcheckKind = "success" if event.success else "fail"
            ping_healthcheck(self.healthcheck_url, kind, event.summary(), timeout=self.timeout)
        if self.webhook_url:
            post_webhook(self.webhook_url, event.payload(), timeout=self.timeout)


def ping_healthcheck(url: str, kind: HealthcheckKind, body: str = "", *, timeout: float = 10.0) -> bool:
    """POST ``body`` to the healthcheck URL for ``kind``; True when it was delivered. Never raises."""
    target = healthcheck_url_for(url, kind)
    data = body.encode("utf-8", "replace")[:MAX_BODY]
    return _send(target, data, "text/plain; charset=utf-8", timeout, what=f"healthcheck {kind} ping")


def post_webhook(url: str, payload: dict[str, Any], *, timeout: float = 10.0) -> bool:
    """POST ``payload`` as JSON to ``url``; True when it was delivered (2xx). Never raises."""
    data = json.dumps(payload).encode()
    return _send(url, data, "application/json", timeout, what="webhook")


def _send(url: str, data: bytes, content_type: str, timeout: float, *, what: str) -> bool:
    try:
        check_url(url)
    except ValueError as exc:
        log.warning("%s to %s not sent: %s", what, safe_url(url), exc)
        return False
    request = urllib.request.Request(
        url, data=data, method="POST",
        headers={"Content-Type": content_type, "User-Agent": f"datasafe/{__version__}"},
    )
    outcome: list[BaseException | int] = []

    def deliver() -> None:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # http(s) only: checked above
                response.read(1024)
                outcome.append(int(response.status))
        except BaseException as exc:
            outcome.append(exc)

    # urlopen's timeout covers each socket operation but not name resolution: a thread bounds the whole
    worker = threading.Thread(target=deliver, name="datasafe-notify", daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    if not outcome:
        log.warning("%s to %s timed out after %.1fs", what, safe_url(url), timeout)
        return False
    result = outcome[0]
    if isinstance(result, int):
        if 200 <= result < 300:
            log.debug("%s to %s: HTTP %d", what, safe_url(url), result)
            return True
        log.warning("%s to %s failed: HTTP %d", what, safe_url(url), result)
        return False
    log.warning("%s to %s failed: %s", what, safe_url(url), _reason(result))
    return False


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return "timed out"
        return str(reason)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"
