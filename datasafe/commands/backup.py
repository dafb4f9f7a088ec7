"""``backup``: a snapshot of a source under its lease, then optionally a prune, with metrics and pings."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from datasafe.commands.repository import open_repository
from datasafe.commands.settings import apply_object_lock, lock_settings, reporting, retention_policy
from datasafe.commands.snapshots import manifest_summary
from datasafe.config import LoadedConfig, resolve_source
from datasafe.humanize import count
from datasafe.ops.jobs import PruneResult
from datasafe.ops.metrics import pushed
from datasafe.ops.nightly import backup_job
from datasafe.progress import Progress
from datasafe.snapshot.chunks import Compression
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository

log = logging.getLogger(__name__)


@dataclass
class BackupResult:
    """The snapshot a backup stored, and what the prune after it removed (None: no prune)."""

    manifest: Manifest
    pruned: PruneResult | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**manifest_summary(self.manifest), **({"prune": self.pruned.as_dict()} if self.pruned else {})}


def backup(config: LoadedConfig, source: str | None = None, *, name: str | None = None, tags: Iterable[str] = (),
           jobs: int | None = None, compression_level: int | None = None, read_back: str = "digest",
           prune: bool = False, keep: Mapping[str, Any] | None = None, wait: str | None = None,
           metrics_file: str | None = None, repo: Repository | None = None,
           progress: Progress | None = None, pushgateway: str | None = None,
           split_larger_than: int | None = None) -> BackupResult:
    """Take a consistent snapshot of ``source`` (a configured source name or a database URL; None:
    the only configured source) and read it back before it counts.

    The source's lease is held meanwhile (``wait``: how long to wait for another run's, e.g.
    ``30m``; otherwise :class:`~datasafe.errors.LockHeld`, exit 9). With ``prune``, the source's
    snapshots are pruned after it by its retention policy with the ``keep`` overrides
    (``keep_last=...``, as the ``--keep-*`` options), under the same lease. The run is reported to
    ``metrics_file`` (default: config ``metrics_file``), the configured pings and, with a
    ``pushgateway`` URL (default: config ``fleet.pushgateway_url``), a Prometheus Pushgateway.
    Tables larger than ``split_larger_than`` bytes (default: the source's
    ``split_tables_larger_than``; 0: none) are read in ranges."""
    src = resolve_source(config, source, name)
    if split_larger_than is not None:
        src = dataclasses.replace(src, split_larger_than=split_larger_than)
    comp = config.config.compression
    compression = Compression(level=compression_level or comp.level, threads=comp.threads)
    policy = retention_policy(config, src.name, keep) if prune else None
    lock = lock_settings(config, wait)
    repo = repo or open_repository(None, config, writing=True)
    report_to = reporting(config, metrics_file)
    with pushed(pushgateway or config.config.fleet.pushgateway_url, src.name, "backup",
                report_to.metrics_file) as report_to.metrics_file:
        manifest, pruned = backup_job(
            src, repo, lock=lock, reporting=report_to, prune=policy,
            lock_days=apply_object_lock(config, repo.storage, src.name),
            tags=tags, jobs=jobs or src.jobs or config.config.jobs, compression=compression,
            chunk_size=config.config.chunk_size, read_back=read_back, progress=progress)
    if pruned is not None:
        log.info("pruned %s of %s (%s)", count(len(pruned.removed), "snapshot"), src.name, pruned.policy.describe())
    return BackupResult(manifest, pruned)
