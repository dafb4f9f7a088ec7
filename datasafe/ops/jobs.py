"""Unattended jobs over a repository: prune by retention policy, freshness checks, verify selection."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from datasafe import clock, faultpoints, humanize
from datasafe.errors import ConfigError, ExitCode, Refused
from datasafe.ops.lease import Lease
from datasafe.ops.retention import Decision, SnapshotRef, select
from datasafe.retention_policy import RetentionPolicy
from datasafe.snapshot import verification
from datasafe.snapshot.manifest import MANIFEST_NAME
from datasafe.snapshot.repository import Repository, SnapshotInfo
from datasafe.units import format_duration

log = logging.getLogger(__name__)

#: an incomplete snapshot older than this is removed by prune even if its writer cannot be checked
INCOMPLETE_GRACE = timedelta(hours=24)


def snapshot_refs(repo: Repository, infos: list[SnapshotInfo], lock_days: int | None = None) -> list[SnapshotRef]:
    """What retention needs to know of each complete snapshot (verification read from its records)."""
    refs = []
    for info in infos:
        m = info.manifest
        if m is None:
            continue
        rec = verification.latest(repo.storage, info.source, info.snapshot_id)
        locked = m.finished_at + timedelta(days=lock_days) if lock_days else None
        refs.append(SnapshotRef(m.snapshot_id, m.started_at, frozenset(m.tags), bool(rec and rec.ok), locked))
    return refs


@dataclass
class PruneResult:
    source: str
    policy: RetentionPolicy
    decision: Decision
    dry_run: bool
    removed: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "dry_run": self.dry_run, "policy": self.policy.describe(),
            "keep": [{"snapshot": r.snapshot_id, "time": r.time.isoformat(), "reasons": reasons}
                     for r, reasons in self.decision.keep],
            "remove": [{"snapshot": r.snapshot_id, "time": r.time.isoformat()} for r in self.decision.remove],
            "removed": self.removed, "incomplete_removed": self.incomplete,
        }


def prune(repo: Repository, source: str, policy: RetentionPolicy, *, dry_run: bool = False,
          now: datetime | None = None, lock_days: int | None = None, lease: Lease | None = None) -> PruneResult:
    """Remove the snapshots of ``source`` that ``policy`` does not keep (only decide with ``dry_run``).

    The decision is made once, before anything is deleted, so ``dry_run`` lists exactly what a
    real run removes. Between deletions the ``lease`` is checked.
    """
    now = now or clock.now()
    infos = repo.list(source)
    try:
        decision = select(snapshot_refs(repo, infos, lock_days), policy, now)
    except ValueError as exc:
        raise ConfigError(f"retention of {source}: {exc}") from None
    result = PruneResult(source, policy, decision, dry_run)
    if dry_run:
        return result
    for ref in decision.remove:
        faultpoints.reach("prune.delete")
        if lease is not None:
            lease.check()
        log.info("pruning snapshot %s of %s (taken %s)", ref.snapshot_id, source, ref.time.isoformat())
        remove_snapshot(repo, source, ref.snapshot_id)
        result.removed.append(ref.snapshot_id)
    result.incomplete = _remove_stale_incomplete(repo, source, now)
    return result


@dataclass
class ForgetResult:
    """What ``forget`` removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    snapshots: list[tuple[str, str, datetime]] = field(default_factory=list)  #: (source, id, taken)

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "removed" if not self.dry_run else "would_remove": [
            {"source": src, "snapshot": sid, "time": taken.isoformat()} for src, sid, taken in self.snapshots]}


def forget_plan(repo: Repository, refs: list[str], source: str | None, *, lock_days: dict[str, int | None],
                now: datetime | None = None) -> list[tuple[str, str, datetime]]:
    """The snapshots ``refs`` name (ids, unique prefixes, ``SOURCE/latest``, tags), checked before
    anything is removed: each must exist and be out of its Object Lock retention.

    Raises:
        NotFound: a reference names no snapshot (or is ambiguous: an error of its own).
        Refused: a snapshot is still under Object Lock (its objects cannot be deleted before then).
    """
    now = now or clock.now()
    chosen: dict[tuple[str, str], datetime] = {}
    for ref in refs:
        m = repo.resolve(ref, source, content=False)
        days = lock_days.get(m.source)
        if days and m.finished_at + timedelta(days=days) > now:
            until = m.finished_at + timedelta(days=days)
            raise Refused(f"snapshot {m.snapshot_id} of {m.source} is under Object Lock until "
                          f"{until:%Y-%m-%d %H:%M} UTC: it cannot be removed before then")
        chosen[(m.source, m.snapshot_id)] = m.started_at
    return [(src, sid, taken) for (src, sid), taken in sorted(chosen.items())]


def forget(repo: Repository, plan: list[tuple[str, str, datetime]], *, dry_run: bool = False,
           lease: Lease | None = None) -> ForgetResult:
    """Remove the snapshots of ``plan`` (from :func:`forget_plan`); between removals the
    ``lease`` (the source's, held by the caller) is checked."""
    result = ForgetResult(dry_run, list(plan))
    if dry_run:
        return result
    for src, sid, taken in plan:
        if lease is not None:
            lease.check()
        log.info("forgetting snapshot %s of %s (taken %s)", sid, src, taken.isoformat())
        remove_snapshot(repo, src, sid)
    return result


def remove_snapshot(repo: Repository, source: str, snapshot_id: str) -> None:
    """Remove a complete snapshot, its manifest first.

    A folder is removed object by object (directory order, S3 key order: ``data/`` before
    ``manifest.json``); a removal that stops half-way (killed, a storage error) must leave an
    incomplete snapshot, which is never listed and is removed by the next prune or backup, not
    a listed one whose chunks are gone."""
    prefix = f"{source}/{snapshot_id}"
    repo.storage.delete(f"{prefix}/{MANIFEST_NAME}")
    repo.storage.delete_prefix(prefix)


def _remove_stale_incomplete(repo: Repository, source: str, now: datetime) -> list[str]:
    """Leftovers of failed backups: those whose writer is gone, and any older than the grace period."""
    removed = repo.cleanup_incomplete(source)
    for info in repo.list(source, include_incomplete=True):
        if info.complete or info.damaged:
            continue
        started = datetime.strptime(info.snapshot_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        if now - started > INCOMPLETE_GRACE:
            log.info("removing incomplete snapshot %s of %s, older than %s", info.snapshot_id, source,
                     INCOMPLETE_GRACE)
            repo.storage.delete_prefix(f"{source}/{info.snapshot_id}")
            removed.append(info.snapshot_id)
    return removed


@dataclass
class Freshness:
    """What ``check`` found for one source."""

    source: str
    ok: bool
    #: OK fresh, INTEGRITY newest snapshot damaged or its verification failed, NOT_FOUND nothing verified
    #: recently enough
    code: ExitCode
    message: str
    newest_verified: str | None = None
    age_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "ok": self.ok, "exit_code": int(self.code), "message": self.message,
                "newest_verified": self.newest_verified, "age_seconds": self.age_s}


def freshness(repo: Repository, source: str, max_age: timedelta, now: datetime | None = None) -> Freshness:
    """Is the newest *verified* snapshot of ``source`` younger than ``max_age``?"""
    now = now or clock.now()
    infos = repo.list(source, include_incomplete=True)
    damaged = [i for i in infos if i.damaged]
    complete = [i for i in infos if i.complete]
    newest_ok: SnapshotInfo | None = None
    for info in reversed(complete):
        rec = verification.latest(repo.storage, source, info.snapshot_id)
        if rec is not None and not rec.ok and info is complete[-1]:
            return Freshness(source, False, ExitCode.INTEGRITY, f"{source}: the newest snapshot {info.snapshot_id} "
                             f"failed its last verification ({rec.describe()}): {'; '.join(rec.problems[:1])}")
        if rec is not None and rec.ok:
            newest_ok = info
            break
    if damaged and (not complete or damaged[-1].snapshot_id > complete[-1].snapshot_id):
        return Freshness(source, False, ExitCode.INTEGRITY, f"{source}: the newest snapshot "
                         f"{damaged[-1].snapshot_id} is damaged: {damaged[-1].problem}")
    if newest_ok is None or newest_ok.manifest is None:
        return Freshness(source, False, ExitCode.NOT_FOUND, f"{source}: no verified snapshot")
    age = now - newest_ok.manifest.finished_at
    if age > max_age:
        return Freshness(source, False, ExitCode.NOT_FOUND, f"{source}: the newest verified snapshot "
                         f"{newest_ok.snapshot_id} is {humanize.age(age)} old (more than {format_duration(max_age)})",
                         newest_ok.snapshot_id, age.total_seconds())
    return Freshness(source, True, ExitCode.OK, f"{source}: ok, newest verified snapshot {newest_ok.snapshot_id} is "
                     f"{humanize.age(age)} old", newest_ok.snapshot_id, age.total_seconds())


def unverified(repo: Repository, infos: list[SnapshotInfo], mode: str) -> list[SnapshotInfo]:
    """The snapshots with no passed verification at least as thorough as ``mode``."""
    out = []
    for info in infos:
        if info.manifest is None:
            continue
        records = verification.history(repo.storage, info.source, info.snapshot_id)
        if not any(r.satisfies(mode) for r in records):
            out.append(info)
    return out
