"""Prometheus metrics of nightly runs, as a node_exporter textfile-collector file.

:func:`write_metrics` records one run of one source in a ``*.prom`` file that several sources
(several cron jobs) share: it reads the file, replaces that source's samples, keeps everybody
else's, and writes the result atomically (a temporary file in the same folder, fsync, rename),
while holding an exclusive ``flock`` on ``<file>.lock`` so that two jobs finishing at the same
moment do not lose each other's update. node_exporter only reads ``*.prom`` files, so neither the
temporary file nor the lock file is ever collected.

Metrics (gauges; ``source`` label on all, ``operation`` on the ``last_*`` ones):

==========================================  =========================================================
``datasafe_last_run_timestamp_seconds``      when the last run finished
``datasafe_last_run_success``                1 if it succeeded, 0 if not
``datasafe_last_success_timestamp_seconds``  when the last successful run finished (a failed run
                                             keeps the previous value)
``datasafe_backup_duration_seconds``         the last successful backup: duration,
``datasafe_backup_bytes_stored``             bytes stored (compressed),
``datasafe_backup_bytes_raw``                raw bytes,
``datasafe_backup_rows``                     rows,
``datasafe_backup_tables``                   tables (a failed backup keeps these)
``datasafe_verify_ok``                       1 verified, 0 verification failed; absent when the last
                                             successful backup was not verified
==========================================  =========================================================

The snapshot id is not exported: a label that changes every night would make a new series
every night.

Where no node_exporter can read the file (a Kubernetes CronJob's pod is gone once it has run),
:func:`push_metrics` sends one source's samples to a Prometheus Pushgateway instead (config
``fleet.pushgateway_url``), grouped by ``job="datasafe"``, ``source`` and ``operation``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

VerifyStatus = Literal["ok", "failed", "not run"]

#: name -> help text, in the order they are written
FAMILIES: dict[str, str] = {
    "datasafe_last_run_timestamp_seconds": "Unix time the last datasafe run of this source finished.",
    "datasafe_last_run_success": "1 if the last datasafe run of this source succeeded, 0 if it failed.",
    "datasafe_last_success_timestamp_seconds": "Unix time the last successful datasafe run of this source finished.",
    "datasafe_backup_duration_seconds": "Duration of the last successful backup of this source.",
    "datasafe_backup_bytes_stored": "Bytes stored (compressed) by the last successful backup of this source.",
    "datasafe_backup_bytes_raw": "Raw (uncompressed) bytes of the last successful backup of this source.",
    "datasafe_backup_rows": "Rows in the last successful backup of this source.",
    "datasafe_backup_tables": "Tables in the last successful backup of this source.",
    "datasafe_verify_ok": "1 if the last verification of this source's newest snapshot passed, 0 if it failed.",
}
_RUN_FAMILIES = ("datasafe_last_run_timestamp_seconds", "datasafe_last_run_success",
                 "datasafe_last_success_timestamp_seconds")
_BACKUP_FAMILIES = ("datasafe_backup_duration_seconds", "datasafe_backup_bytes_stored",
                    "datasafe_backup_bytes_raw", "datasafe_backup_rows", "datasafe_backup_tables")
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_COMMENT = re.compile(r"^#\s*(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s(.*))?$")


@dataclass(frozen=True)
class RunMetrics:
    """What one run of one source did."""

    success: bool
    started: datetime
    finished: datetime
    operation: str = "backup"
    #: defaults to ``finished - started``
    duration: timedelta | None = None
    bytes_stored: int | None = None
    bytes_raw: int | None = None
    rows: int | None = None
    tables: int | None = None
    snapshot_id: str | None = None
    verify: VerifyStatus = "not run"

    def __post_init__(self) -> None:
        if self.verify not in ("ok", "failed", "not run"):
            raise ValueError(f"verify must be 'ok', 'failed' or 'not run', not {self.verify!r}")
        if self.started.tzinfo is None or self.finished.tzinfo is None:
            raise ValueError("started and finished must be timezone-aware")

    @property
    def elapsed(self) -> timedelta:
        return self.duration if self.duration is not None else self.finished - self.started


@dataclass
class _Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: str

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)

    def render(self) -> str:
        if not self.labels:
            return f"{self.name} {self.value}"
        inner = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in self.labels)
        return f"{self.name}{{{inner}}} {self.value}"


@dataclass
class _Family:
    name: str
    help: str | None = None
    type: str | None = None
    samples: list[_Sample] = field(default_factory=list)


def escape_label_value(value: str) -> str:
    """Escape a label value for the Prometheus text format (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return repr(round(value, 6))


def render_run(source: str, result: RunMetrics, previous: str = "") -> str:
    """The new file content: ``previous`` with ``source``'s samples replaced by this run's."""
    families = _parse(previous)
    ours = {name: families.pop(name, _Family(name)) for name in FAMILIES}
    op = result.operation

    def is_this_run(s: _Sample) -> bool:
        return s.label("source") == source and s.label("operation") == op

    def is_this_source(s: _Sample) -> bool:
        return s.label("source") == source

    def put(name: str, value: float, labels: tuple[tuple[str, str], ...]) -> None:
        ours[name].samples = [s for s in ours[name].samples if s.labels != labels]
        ours[name].samples.append(_Sample(name, labels, _number(value)))

    def drop(name: str, matches: Callable[[_Sample], bool]) -> None:
        ours[name].samples = [s for s in ours[name].samples if not matches(s)]

    run_labels = (("source", source), ("operation", op))
    finished = result.finished.timestamp()
    for name in ("datasafe_last_run_timestamp_seconds", "datasafe_last_run_success"):
        drop(name, is_this_run)
    put("datasafe_last_run_timestamp_seconds", finished, run_labels)
    put("datasafe_last_run_success", 1 if result.success else 0, run_labels)
    if result.success:
        drop("datasafe_last_success_timestamp_seconds", is_this_run)
        put("datasafe_last_success_timestamp_seconds", finished, run_labels)

    source_labels = (("source", source),)
    if op == "backup" and result.success:
        values = {
            "datasafe_backup_duration_seconds": result.elapsed.total_seconds(),
            "datasafe_backup_bytes_stored": result.bytes_stored,
            "datasafe_backup_bytes_raw": result.bytes_raw,
            "datasafe_backup_rows": result.rows,
            "datasafe_backup_tables": result.tables,
        }
        for name, value in values.items():
            drop(name, is_this_source)
            if value is not None:
                put(name, value, source_labels)
    if result.verify != "not run":
        drop("datasafe_verify_ok", is_this_source)
        put("datasafe_verify_ok", 1 if result.verify == "ok" else 0, source_labels)
    elif op == "backup" and result.success:
        drop("datasafe_verify_ok", is_this_source)

    lines: list[str] = []
    for name, help_text in FAMILIES.items():
        fam = ours[name]
        if not fam.samples:
            continue
        lines += [f"# HELP {name} {_escape_help(help_text)}", f"# TYPE {name} gauge"]
        lines += [s.render() for s in sorted(fam.samples, key=lambda s: s.labels)]
    for fam in families.values():  # metrics this version does not know: kept as they were
        if fam.help is not None:
            lines.append(f"# HELP {fam.name} {fam.help}")
        if fam.type is not None:
            lines.append(f"# TYPE {fam.name} {fam.type}")
        lines += [s.render() for s in fam.samples]
    return "\n".join(lines) + "\n" if lines else ""


def write_metrics(path: str | os.PathLike[str], source: str, result: RunMetrics) -> None:
    """Record ``result`` for ``source`` in the textfile-collector file ``path`` (created if needed).

    Other sources' samples in the file are kept. The file is replaced atomically with mode 0644.

    Raises:
        OSError: the folder does not exist or cannot be written. A backup should log this as a
            warning rather than fail: the snapshot is safe, only its metrics are missing.
    """
    target = Path(path)
    with _locked(target):
        try:
            previous = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            previous = ""
        content = render_run(source, result, previous)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(content)
                fh.flush()
                os.fchmod(fh.fileno(), 0o644)
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    fd = os.open(target.with_name(f"{target.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _parse(text: str) -> dict[str, _Family]:
    families: dict[str, _Family] = {}
    current: _Family | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            m = _COMMENT.match(line)
            if m:
                fam = families.setdefault(m.group(2), _Family(m.group(2)))
                if m.group(1) == "HELP":
                    fam.help = m.group(3) or ""
                else:
                    fam.type = (m.group(3) or "untyped").strip()
                current = fam
            continue
        m = _SAMPLE.match(line)
        labels = _parse_labels(m.group(2) or "") if m else None
        if m is None or labels is None:
            log.warning("metrics file: ignoring line %d, not a sample: %r", lineno, raw[:80])
            continue
        name = m.group(1)
        # histogram/summary samples (x_bucket, x_sum, x_count) belong to the family declared above
        owner = current.name if current is not None and name.startswith(current.name) else name
        fam = families.setdefault(owner, _Family(owner))
        value = m.group(3) + (f" {m.group(4)}" if m.group(4) else "")
        fam.samples.append(_Sample(name, labels, value))
    return families


def _parse_labels(text: str) -> tuple[tuple[str, str], ...] | None:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if not m:
            return None
        out.append((m.group(1), _unescape(m.group(2))))
        pos = m.end()
    return tuple(out)


def source_samples(text: str, source: str, operation: str) -> str:
    """The samples of ``source`` in the metrics file content ``text`` that belong to one
    ``operation`` (those without an ``operation`` label count for every one), with their HELP and
    TYPE lines: what one run pushes."""
    lines: list[str] = []
    for fam in _parse(text).values():
        mine = [s for s in fam.samples if s.label("source") == source and s.label("operation") in (None, operation)]
        if not mine:
            continue
        if fam.help is not None:
            lines.append(f"# HELP {fam.name} {fam.help}")
        if fam.type is not None:
            lines.append(f"# TYPE {fam.name} {fam.type}")
        lines += [s.render() for s in mine]
    return "\n".join(lines) + "\n" if lines else ""


def push_metrics(gateway_url: str, source: str, operation: str, body: str, *, timeout: float = 10.0) -> None:
    """POST ``body`` (Prometheus text format) to the Pushgateway at ``gateway_url`` under the group
    ``job="datasafe", source, operation``. A POST replaces only the families it carries, so a
    failed run keeps the group's last success time and backup figures.

    Raises:
        OSError: the gateway cannot be reached or refused the push (a warning for the caller).
    """
    group = "/".join(f"{k}/{urllib.parse.quote(v, safe='')}" for k, v in
                     (("job", "datasafe"), ("source", source), ("operation", operation)))
    request = urllib.request.Request(f"{gateway_url.rstrip('/')}/metrics/{group}", data=body.encode("utf-8"),
                                     method="POST", headers={"Content-Type": "text/plain; version=0.0.4"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise OSError(f"the Pushgateway answered {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise OSError(f"cannot reach the Pushgateway: {exc.reason}") from None


@contextlib.contextmanager
def pushed(gateway_url: str | None, source: str, operation: str, metrics_file: str | None) -> Iterator[str | None]:
    """Around one run that records itself in a metrics file: yields the file to record in
    (``metrics_file``, or with a gateway and no file a temporary one) and, with a gateway, pushes
    what the run recorded for ``source`` when it ends, whatever its outcome. A failed push is a
    warning."""
    if gateway_url is None:
        yield metrics_file
        return
    with tempfile.TemporaryDirectory(prefix="datasafe-metrics-") as tmp:
        path = metrics_file or str(Path(tmp) / "datasafe.prom")
        try:
            yield path
        finally:
            try:
                body = source_samples(Path(path).read_text(encoding="utf-8"), source, operation)
                if body:
                    push_metrics(gateway_url, source, operation, body)
            except OSError as exc:
                log.warning("could not push the metrics of %s to %s: %s", source, gateway_url, exc.strerror or exc)
