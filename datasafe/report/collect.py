"""Gather the evidence report from the storage and the configuration, and judge each source.

What is read: every snapshot's ``manifest.json`` (an encrypted snapshot's public header is
enough: its totals and object list; nothing sealed is opened), every verification record under
``<source>/<snapshot-id>/verifications/``, the audit trail under ``.audit/`` (read, and checked
as ``datasafe audit --verify`` checks it), and ``datasafe.yml`` (sources, retention policies,
encryption, S3 Object Lock). No chunk is read: the report costs a few small objects per
snapshot whatever the size of the databases, on a local folder as on S3, where the objects of
different snapshots are fetched side by side.

How a source is judged (the first reason decides; every reason is listed):

- **red**, as ``datasafe check --max-age`` would fail: no snapshot; the newest snapshot is
  damaged or failed its latest verification; no snapshot that passed its latest verification is
  younger than the freshness limit.
- **amber**, fresh but something needs attention: the last backup attempt failed after the
  newest snapshot; an older snapshot failed its latest verification or is damaged; no restore
  test (``verify --deep``) passed within the restore-test limit; a configured source without a
  retention policy; stored snapshots the retention policy no longer keeps (prune has not run).
- **green** otherwise.

Masked copies (sources whose every snapshot is a ``datasafe mask`` output) are made on demand,
so they are held to their verifications only, not to the freshness or restore-test limits.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from datasafe import __version__, audit, clock, humanize
from datasafe.config import LoadedConfig, retention_for
from datasafe.errors import IntegrityError, NotFound, StorageError
from datasafe.ops.retention import SnapshotRef, select
from datasafe.redact import redact
from datasafe.report.model import (
    AuditSummary,
    MaskEvent,
    PolicyEvent,
    Protection,
    Report,
    Retention,
    SnapshotPoint,
    SourceReport,
    TableSeries,
    Verification,
)
from datasafe.snapshot import verification
from datasafe.snapshot.manifest import MANIFEST_NAME, Manifest
from datasafe.snapshot.repository import MASKED_SUFFIX, Repository, check_source_name
from datasafe.units import format_duration

log = logging.getLogger(__name__)

DEFAULT_SINCE = timedelta(days=90)
#: what docs/operations.md suggests for ``check --max-age`` behind a nightly job
DEFAULT_MAX_AGE = timedelta(hours=26)
#: a monthly restore drill, with a few days of slack
DEFAULT_RESTORE_TEST_AGE = timedelta(days=35)
#: tables per source whose rows are plotted
LARGEST_TABLES = 5
#: snapshots read side by side (S3 round trips dominate there; a local folder barely notices)
READERS = 8


@dataclass
class _Stored:
    """One snapshot folder as read: its manifest (or why there is none) and its verifications."""

    source: str
    snapshot_id: str
    manifest: Manifest | None = None
    problem: str | None = None
    damaged: bool = False
    records: list[Verification] = field(default_factory=list)

    @property
    def latest(self) -> Verification | None:
        return self.records[-1] if self.records else None


def _span(td: timedelta) -> str:
    """``26h``, ``90d``: a limit as it is usually written (hours stay hours below a few days)."""
    seconds = int(td.total_seconds())
    if seconds == td.total_seconds() and seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds == td.total_seconds() and seconds % 3600 == 0 and seconds < 7 * 86400:
        return f"{seconds // 3600}h"
    return format_duration(td)


def build(repo: Repository, config: LoadedConfig | None = None, *, since: timedelta = DEFAULT_SINCE,
          sources: Sequence[str] | None = None, max_age: timedelta = DEFAULT_MAX_AGE,
          restore_test_age: timedelta = DEFAULT_RESTORE_TEST_AGE, now: datetime | None = None) -> Report:
    """The evidence report of ``repo`` over the period ``since`` before ``now``.

    Args:
        sources: only these sources (and the masking and policy events that concern them);
            default: every configured source and every source with snapshots in the storage.
        max_age: the freshness limit, as ``datasafe check --max-age``.
        restore_test_age: how old the newest passed restore test may be before a source is amber.

    Raises:
        StorageError: the storage location does not exist or cannot be read.
        NotFound: a source named is neither configured nor in the storage.
    """
    now = now or clock.now()
    start = now - since
    if not repo.storage.exists(""):
        raise StorageError(f"storage {repo.storage.url} does not exist", hint="check --storage")
    configured = list(config.config.sources) if config is not None else []
    stored = repo.sources()
    if sources:
        names = list(dict.fromkeys(check_source_name(s) for s in sources))
        for name in names:
            if name not in configured and name not in stored:
                raise NotFound(f"source {name!r} is neither configured nor in {repo.storage.url}")
    else:
        names = configured + [s for s in stored if s not in configured]
    folders = [(name, sid) for name in names if name in stored for sid in repo.snapshot_ids(name)]
    with ThreadPoolExecutor(READERS) as pool:
        loaded = list(pool.map(lambda f: _load(repo, *f), folders))
    by_source: dict[str, list[_Stored]] = {name: [] for name in names}
    for item in loaded:
        by_source[item.source].append(item)
    records = audit.read(repo.storage)
    report = Report(generated_at=now, since=start, period=_span(since), storage=repo.storage.url,
                    datasafe_version=__version__, max_age_seconds=max_age.total_seconds(),
                    max_age=_span(max_age), restore_test_age=_span(restore_test_age),
                    manifests_read=sum(1 for s in loaded if s.manifest is not None),
                    audit=_audit_summary(repo))
    for name in names:
        if not by_source[name] and name not in configured:
            continue  # a folder without snapshots is no source
        report.sources.append(_source(repo, config, name, by_source[name], records, now, start, max_age,
                                      restore_test_age))
    manifests = {s.snapshot_id: s.manifest for s in loaded if s.manifest is not None}
    chosen = set(names) if sources else None
    report.masks = _masks(records, manifests, start, chosen)
    report.policy = _policy(records, start, chosen)
    return report


# -- reading ------------------------------------------------------------------------------------------
def _load(repo: Repository, source: str, snapshot_id: str) -> _Stored:
    item = _Stored(source, snapshot_id)
    try:
        item.manifest = repo.load_manifest(source, snapshot_id)
    except IntegrityError as exc:
        item.problem = str(exc)
        item.damaged = repo.storage.exists(f"{source}/{snapshot_id}/{MANIFEST_NAME}")
        return item
    item.records = _verifications(repo, item.manifest)
    return item


def _verifications(repo: Repository, m: Manifest) -> list[Verification]:
    """Every verification record of one snapshot, oldest first; unreadable ones are skipped."""
    out = []
    for key in repo.storage.list(f"{m.source}/{m.snapshot_id}/{verification.FOLDER}"):
        try:
            data = repo.storage.read_bytes(key)
            rec = verification.VerificationRecord.from_json(data)
            body = json.loads(data)
        except (NotFound, ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable verification record %s", key)
            continue
        seconds = body.get("seconds")
        out.append(Verification(
            snapshot_id=m.snapshot_id, time=rec.time, mode=str(rec.mode), ok=bool(rec.ok), chunks=int(rec.chunks),
            problems=[str(p) for p in rec.problems][:10], sample_percent=rec.sample_percent, host=str(rec.host),
            seconds=float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else None,
            rows=m.rows, tables=m.table_count))
    out.sort(key=lambda v: v.time)
    return out


def _audit_summary(repo: Repository) -> AuditSummary:
    found = audit.verify(repo.storage, repo.audit_key)
    return AuditSummary(records=found.records, ok=found.ok, hmac_checked=found.key_id is not None,
                        head=found.head, head_sha256=found.head_sha256,
                        problems=[str(p) for p in found.problems[:20]])


# -- one source ---------------------------------------------------------------------------------------
def _point(m: Manifest, latest: Verification | None) -> SnapshotPoint:
    return SnapshotPoint(
        snapshot_id=m.snapshot_id, started_at=m.started_at, finished_at=m.finished_at,
        backup_seconds=max(0.0, (m.finished_at - m.started_at).total_seconds()), stored_bytes=m.stored_size,
        raw_bytes=m.raw_size, rows=m.rows, tables=m.table_count, tags=list(m.tags), encrypted=m.encrypted,
        masked=bool((m.masking or {}).get("masked")), signed=m.provenance is not None,
        verified=None if latest is None else "ok" if latest.ok else "failed")


def _is_masked_copy(name: str, complete: list[_Stored]) -> bool:
    def masked(m: Manifest) -> bool:
        return name.endswith(MASKED_SUFFIX) if m.is_header else bool((m.masking or {}).get("masked"))

    return bool(complete) and all(s.manifest is not None and masked(s.manifest) for s in complete)


def _source(repo: Repository, config: LoadedConfig | None, name: str, items: list[_Stored],
            records: list[dict[str, Any]], now: datetime, start: datetime, max_age: timedelta,
            restore_test_age: timedelta) -> SourceReport:
    complete = sorted((s for s in items if s.manifest is not None),
                      key=lambda s: (s.manifest.started_at, s.snapshot_id))  # type: ignore[union-attr]
    damaged = sorted((s for s in items if s.damaged), key=lambda s: s.snapshot_id)
    configured = config is not None and name in config.config.sources
    out = SourceReport(name=name, status="green", configured=configured, masked_copy=_is_masked_copy(name, complete),
                       snapshots=len(complete), damaged=len(damaged),
                       incomplete=sum(1 for s in items if s.manifest is None and not s.damaged))
    if complete:
        newest = complete[-1].manifest
        assert newest is not None
        out.engine, out.database = newest.engine, newest.database
        out.newest = _point(newest, complete[-1].latest)
    out.history = [_point(s.manifest, s.latest) for s in complete
                   if s.manifest is not None and s.manifest.started_at >= start]
    every = [v for s in complete for v in s.records]
    passed = [v for v in every if v.ok]
    out.last_verify = max(passed, key=lambda v: v.time, default=None)
    out.last_restore_test = max((v for v in passed if v.mode == "deep"), key=lambda v: v.time, default=None)
    out.failures = sorted((v for v in every if not v.ok and v.time >= start), key=lambda v: v.time, reverse=True)
    out.restore_tests = sorted((v for v in every if v.mode == "deep" and v.time >= start), key=lambda v: v.time)
    out.tables = _largest_tables(complete, start)
    mode, days = _lock_days(repo, config, name)
    out.protection = _protection(config, complete, mode, days, now)
    out.retention = _retention(config, name, complete, records, {s.snapshot_id for s in items}, now, days)
    out.last_backup_failure = _backup_failure(records, name, out.newest)
    red, amber = _judge(out, complete, damaged, now, max_age, restore_test_age)
    out.status = "red" if red else "amber" if amber else "green"
    out.reasons = red + amber or [_all_well(out, now, max_age)]
    if out.incomplete:
        out.notes.append(f"{humanize.count(out.incomplete, 'incomplete snapshot folder')} (a backup running, "
                         "or the leftovers of one that failed; the next backup or prune removes them)")
    if not configured and not out.masked_copy:
        out.notes.append("not configured in datasafe.yml: no retention policy applies")
    if complete and not out.tables:
        out.notes.append("rows per table: not shown, the snapshots are encrypted (their public headers hold "
                         "only totals)" if complete[-1].manifest and complete[-1].manifest.is_header
                         else "rows per table: no snapshot in the period")
    return out


def _judge(out: SourceReport, complete: list[_Stored], damaged: list[_Stored], now: datetime,
           max_age: timedelta, restore_test_age: timedelta) -> tuple[list[str], list[str]]:
    """The red and the amber reasons of one source (see the module docstring)."""
    red: list[str] = []
    amber: list[str] = []
    if not complete:
        red.append("no snapshot is stored" if not damaged else f"no readable snapshot ({len(damaged)} damaged)")
    newest = complete[-1] if complete else None
    if newest is not None and newest.latest is not None and not newest.latest.ok:
        v = newest.latest
        red.append(f"the newest snapshot {newest.snapshot_id} failed its last verification ({v.mode}, "
                   f"{v.time:%Y-%m-%d %H:%M} UTC)" + (f": {v.problems[0]}" if v.problems else ""))
    if damaged and (newest is None or damaged[-1].snapshot_id > newest.snapshot_id):
        red.append(f"the newest snapshot {damaged[-1].snapshot_id} is damaged: {damaged[-1].problem}")
    verified = next((s for s in reversed(complete) if s.latest is not None and s.latest.ok), None)
    if verified is not None and verified.manifest is not None:
        age = now - verified.manifest.finished_at
        out.newest_verified, out.verified_age_seconds = verified.snapshot_id, age.total_seconds()
        if age > max_age and not out.masked_copy:
            red.append(f"the newest verified snapshot {verified.snapshot_id} is {humanize.age(age)} old "
                       f"(more than {_span(max_age)})")
    elif complete:
        red.append("no snapshot passed its latest verification")

    if out.last_backup_failure is not None:
        f = out.last_backup_failure
        amber.append(f"the last backup, at {str(f.get('time', '?'))[:16].replace('T', ' ')} UTC, failed"
                     + (f": {f['error']}" if f.get("error") else ""))
    older = [s for s in complete[:-1] if s.latest is not None and not s.latest.ok]
    if older:
        amber.append(f"{humanize.count(len(older), 'older snapshot')} failed the latest verification: "
                     + ", ".join(s.snapshot_id for s in older[-3:]) + (" ..." if len(older) > 3 else ""))
    older_damaged = [s for s in damaged if newest is not None and s.snapshot_id < newest.snapshot_id]
    if older_damaged:
        amber.append(f"{humanize.count(len(older_damaged), 'older snapshot')} damaged: "
                     + ", ".join(s.snapshot_id for s in older_damaged[-3:]))
    if complete and not out.masked_copy:
        test = out.last_restore_test
        if test is None:
            amber.append("no restore test (verify --deep) has passed")
        elif now - test.time > restore_test_age:
            amber.append(f"the last passed restore test (verify --deep) is {humanize.age(now - test.time)} old "
                         f"(more than {_span(restore_test_age)})")
    r = out.retention
    if out.configured and r.policy is None:
        amber.append("no retention policy in datasafe.yml: snapshots are never pruned")
    if r.problem:
        amber.append(f"the retention policy cannot be applied: {r.problem}")
    if r.beyond_policy:
        amber.append(f"{humanize.count(r.beyond_policy, 'stored snapshot')} beyond the retention policy "
                     "(prune has not run since)")
    return red, amber


def _all_well(out: SourceReport, now: datetime, max_age: timedelta) -> str:
    if out.masked_copy:
        newest = out.newest
        made = f"; the newest was made {humanize.age(now - newest.finished_at)} ago" if newest else ""
        return f"masked copy: every snapshot passed its latest verification{made}"
    age = timedelta(seconds=out.verified_age_seconds or 0)
    text = f"the newest verified snapshot is {humanize.age(age)} old (limit {_span(max_age)})"
    if out.last_restore_test is not None:
        text += f"; the last restore test passed {humanize.age(now - out.last_restore_test.time)} ago"
    return text


def _largest_tables(complete: list[_Stored], start: datetime) -> list[TableSeries]:
    """Rows of the largest tables (by rows in the newest snapshot of the period that lists tables)."""
    period = [s.manifest for s in complete if s.manifest is not None and s.manifest.started_at >= start
              and not s.manifest.is_header]
    if not period:
        return []
    largest = sorted(period[-1].tables, key=lambda t: (-t.rows, t.name))[:LARGEST_TABLES]
    series = {t.name: TableSeries(name=t.name) for t in largest}
    for m in period:
        for t in m.tables:
            if t.name in series:
                series[t.name].points.append((m.started_at, t.rows))
    return list(series.values())


def _lock_days(repo: Repository, config: LoadedConfig | None, name: str) -> tuple[str | None, int | None]:
    """S3 Object Lock of this storage for one source: (mode, days), as backups apply it."""
    if config is None or not repo.storage.url.startswith("s3://"):
        return None, None
    s3 = config.config.s3
    if not s3.object_lock_mode:
        return None, None
    if s3.object_lock_days:
        return str(s3.object_lock_mode), int(s3.object_lock_days)
    policy = retention_for(config, name)
    return str(s3.object_lock_mode), policy.horizon_days() if policy is not None else None


def _protection(config: LoadedConfig | None, complete: list[_Stored], mode: str | None, days: int | None,
                now: datetime) -> Protection:
    manifests = [s.manifest for s in complete if s.manifest is not None]
    enc = config.config.encryption if config is not None else None
    out = Protection(snapshots=len(manifests), encrypted=sum(1 for m in manifests if m.encrypted),
                     signed=sum(1 for m in manifests if m.provenance is not None),
                     newest_encrypted=bool(manifests and manifests[-1].encrypted),
                     encryption_configured=bool(enc and (enc.recipients or enc.recipients_file or enc.passphrase_env)))
    if mode is not None:
        out.object_lock = f"{mode.lower()}, {days} days" if days else f"{mode.lower()}, period not derivable"
        if days:
            out.locked = sum(1 for m in manifests if m.finished_at + timedelta(days=days) > now)
    return out


def _retention(config: LoadedConfig | None, name: str, complete: list[_Stored], records: list[dict[str, Any]],
               present: set[str], now: datetime, lock_days: int | None) -> Retention:
    backed_up = {str(r.get("snapshot")) for r in records
                 if r.get("operation") == "backup" and r.get("outcome") == "ok" and r.get("source") == name}
    out = Retention(stored=len(complete), removed=len(backed_up - present - {"None"}))
    policy = retention_for(config, name) if config is not None else None
    if policy is None:
        out.kept = len(complete)
        return out
    out.policy = policy.describe()
    refs = []
    for s in complete:
        m = s.manifest
        assert m is not None
        refs.append(SnapshotRef(m.snapshot_id, m.started_at, frozenset(m.tags), bool(s.latest and s.latest.ok),
                                m.finished_at + timedelta(days=lock_days) if lock_days else None))
    try:
        decision = select(refs, policy, now)
    except ValueError as exc:
        out.problem = str(exc)
        return out
    out.kept, out.beyond_policy = len(decision.keep), len(decision.remove)
    return out


def _backup_failure(records: list[dict[str, Any]], name: str, newest: SnapshotPoint | None) -> dict[str, Any] | None:
    """The newest backup attempt of ``name`` when it failed after the newest snapshot was taken."""
    mine = [r for r in records if r.get("operation") == "backup" and r.get("source") == name]
    if not mine:
        return None
    last = max(mine, key=lambda r: str(r.get("time", "")))
    if last.get("outcome") == "ok":
        return None
    when = _time(last.get("time"))
    if newest is not None and (when is None or when <= newest.finished_at):
        return None
    return {"time": str(last.get("time")), "outcome": str(last.get("outcome")),
            "error": redact(str(last.get("error") or "")), "exit_code": last.get("exit_code"),
            "user": last.get("user"), "host": last.get("host")}


def _time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


# -- masking and policy events ------------------------------------------------------------------------
def _in_period(rec: dict[str, Any], start: datetime) -> bool:
    when = _time(rec.get("time"))
    return when is not None and when.tzinfo is not None and when >= start


def _text(value: object) -> str | None:
    return None if value is None else redact(str(value))


def _leak(value: object) -> tuple[str, str | None]:
    """(verdict, detail) of a record's ``leak_audit``."""
    if value is False:
        return "skipped", "turned off for this run (--no-leak-audit)"
    if not isinstance(value, dict):
        return "not recorded", None
    accepted = value.get("found") or []
    detail = (f"{value.get('columns', 0)} original columns looked for in {value.get('scanned', 0)} output columns"
              + (f"; {humanize.count(len(accepted), 'accepted finding')}" if accepted else ""))
    return ("passed" if value.get("passed") else "failed"), detail


def _masks(records: list[dict[str, Any]], manifests: dict[str, Manifest], start: datetime,
           chosen: set[str] | None) -> list[MaskEvent]:
    by_masked = {str(r.get("snapshot")): r for r in records if r.get("operation") == "mask"}
    out = []
    for rec in records:
        op = rec.get("operation")
        if op not in ("mask", "refresh") or not _in_period(rec, start):
            continue
        masked_id = str(rec.get("snapshot") if op == "mask" else rec.get("masked_snapshot") or "") or None
        masked = manifests.get(masked_id or "")
        mask_rec = rec if op == "mask" else by_masked.get(masked_id or "", {})
        section = (masked.masking or {}) if masked is not None else {}
        if chosen is not None and rec.get("source") not in chosen and (masked is None or masked.source not in chosen):
            continue
        leak, detail = _leak(mask_rec.get("leak_audit", section.get("leak_audit")))
        strict = mask_rec.get("strict", section.get("strict"))
        out.append(MaskEvent(
            time=str(rec.get("time")), operation=str(op), outcome=str(rec.get("outcome")),
            source=_text(rec.get("source")),
            from_snapshot=_text(rec.get("from_snapshot") if op == "mask" else rec.get("snapshot")),
            masked_snapshot=_text(masked_id), environment=_text(rec.get("environment")),
            target=_text(rec.get("target")), rules_file=_text(section.get("rules_file")),
            rules_sha256=_text(rec.get("rules_sha256") or section.get("rules_sha256")),
            strict=strict if isinstance(strict, bool) else None, leak_audit=leak, leak_detail=detail,
            error=_text(rec.get("error")), user=_text(rec.get("user")), host=_text(rec.get("host"))))
    return out


def _policy(records: list[dict[str, Any]], start: datetime, chosen: set[str] | None) -> list[PolicyEvent]:
    out = []
    for rec in records:
        decision = rec.get("decision")
        if (not isinstance(decision, dict) and rec.get("operation") != "policy") or not _in_period(rec, start):
            continue
        decision = decision if isinstance(decision, dict) else {}
        source = rec.get("source") or decision.get("source")
        if chosen is not None and source not in chosen:
            continue
        outcome = str(rec.get("outcome"))
        if outcome == "refused" or decision.get("refused"):
            verdict, reason = "refused", decision.get("refused") or rec.get("error")
        elif decision.get("override"):
            verdict, reason = "overridden", decision.get("override")
        elif rec.get("operation") == "policy":
            verdict, reason = outcome, rec.get("reason") or rec.get("error")
        else:
            verdict, reason = "allowed", "; ".join(str(n) for n in decision.get("notes") or []) or None
        out.append(PolicyEvent(
            time=str(rec.get("time")), operation=str(rec.get("operation")), verdict=verdict, outcome=outcome,
            snapshot=_text(rec.get("snapshot") or decision.get("snapshot")), source=_text(source),
            target=_text(rec.get("target") or decision.get("target")), environment=_text(decision.get("environment")),
            target_class=_text(decision.get("target_class")), data_class=_text(decision.get("data_class")),
            confirmed=_text(decision.get("confirmed")), reason=_text(reason), user=_text(rec.get("user")),
            host=_text(rec.get("host"))))
    return out
