"""The unattended backup: lease, backup, prune, metrics and pings around :func:`datasafe.transfer.backup.backup`.

What a nightly cron job runs (``datasafe backup SOURCE --prune --metrics-file PATH``), as a
library call. Reporting never fails the run: a metrics file that cannot be written or a ping
that times out is a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from datasafe.config import Source
from datasafe.errors import DatasafeError, ExitCode
from datasafe.ops import jobs
from datasafe.ops.lease import DEFAULT_TTL, Lease
from datasafe.ops.metrics import RunMetrics, write_metrics
from datasafe.ops.notify import Notifier, RunEvent
from datasafe.retention_policy import RetentionPolicy
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.transfer.backup import backup

log = logging.getLogger(__name__)


@dataclass
class Reporting:
    """Where a run reports to: a metrics file and pings (both optional)."""

    metrics_file: str | None = None
    notifier: Notifier = field(default_factory=Notifier)


@dataclass
class LockSettings:
    ttl: timedelta = DEFAULT_TTL
    wait: timedelta | None = None


@contextmanager
def reported(source: str, operation: str, reporting: Reporting) -> Iterator[dict[str, object]]:
    """Ping at the start, and write metrics and ping at the end of a run, whatever its outcome.

    The block puts what it produced into the yielded dict (``manifest``, ``verified``).
    """
    outcome: dict[str, object] = {}
    started = datetime.now(timezone.utc)
    reporting.notifier.start(source, operation)
    error: BaseException | None = None
    try:
        yield outcome
    except BaseException as exc:
        error = exc
        raise
    finally:
        finished = datetime.now(timezone.utc)
        manifest = outcome.get("manifest")
        m = manifest if isinstance(manifest, Manifest) else None
        if reporting.metrics_file:
            metrics = RunMetrics(
                success=error is None, started=started, finished=finished, operation=operation,
                bytes_stored=m.stored_size if m else None, bytes_raw=m.raw_size if m else None,
                rows=m.rows if m else None, tables=m.table_count if m else None,
                snapshot_id=m.snapshot_id if m else None,
                verify="ok" if m and outcome.get("verified") else "failed" if _integrity(error) else "not run")
            try:
                write_metrics(reporting.metrics_file, source, metrics)
            except OSError as exc:
                log.warning("could not write the metrics file %s: %s", reporting.metrics_file, exc.strerror or exc)
        code = error.exit_code if isinstance(error, DatasafeError) else (
            ExitCode.INTERRUPTED if isinstance(error, KeyboardInterrupt) else ExitCode.ERROR if error else 0)
        reporting.notifier.finish(RunEvent(
            source=source, success=error is None, operation=operation, snapshot=m.snapshot_id if m else None,
            duration=finished - started, error=str(error) if error else None,
            exit_code=int(code) if error else None))


def _integrity(error: BaseException | None) -> bool:
    return isinstance(error, DatasafeError) and error.exit_code == ExitCode.INTEGRITY


def backup_job(source: Source, repo: Repository, *, lock: LockSettings, reporting: Reporting,
               prune: RetentionPolicy | None = None, lock_days: int | None = None,
               **backup_options: object) -> tuple[Manifest, jobs.PruneResult | None]:
    """Back up ``source`` under its lease; then, with a ``prune`` policy, prune under the same lease."""
    with reported(source.name, "backup", reporting) as outcome, \
            Lease(repo.storage, source.name, operation="backup", ttl=lock.ttl).acquire(lock.wait) as lease:
        manifest = backup(source, repo, lease=lease, **backup_options)  # type: ignore[arg-type]
        outcome["manifest"] = manifest
        outcome["verified"] = backup_options.get("read_back", "digest") != "none"
        pruned = None
        if prune is not None:
            pruned = jobs.prune(repo, source.name, prune, lease=lease, lock_days=lock_days)
        return manifest, pruned


def prune_job(repo: Repository, source: str, policy: RetentionPolicy, *, dry_run: bool, lock: LockSettings,
              lock_days: int | None = None) -> jobs.PruneResult:
    """Prune ``source``; a real run holds the source's lease (a dry run only reads)."""
    if dry_run:
        return jobs.prune(repo, source, policy, dry_run=True, lock_days=lock_days)
    with Lease(repo.storage, source, operation="prune", ttl=lock.ttl).acquire(lock.wait) as lease:
        return jobs.prune(repo, source, policy, lease=lease, lock_days=lock_days)


def forget_job(repo: Repository, plan: list[tuple[str, str, datetime]], *, dry_run: bool,
               lock: LockSettings) -> jobs.ForgetResult:
    """Remove the snapshots of ``plan``; a real run holds each source's lease while it removes
    that source's snapshots (a dry run only reads)."""
    if dry_run:
        return jobs.forget(repo, plan, dry_run=True)
    result = jobs.ForgetResult(False)
    for source in sorted({src for src, _sid, _taken in plan}):
        mine = [p for p in plan if p[0] == source]
        with Lease(repo.storage, source, operation="forget", ttl=lock.ttl).acquire(lock.wait) as lease:
            result.snapshots += jobs.forget(repo, mine, lease=lease).snapshots
    return result

