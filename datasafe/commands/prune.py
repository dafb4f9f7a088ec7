"""``prune`` and ``forget``: removing snapshots, by retention policy or by name, under the source's lease."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datasafe.commands.repository import open_repository
from datasafe.commands.settings import lock_days, lock_settings, retention_policy
from datasafe.config import LoadedConfig
from datasafe.ops.jobs import ForgetResult, PruneResult, forget_plan
from datasafe.ops.nightly import forget_job, prune_job
from datasafe.snapshot.repository import Repository


def prune(config: LoadedConfig, source: str, *, keep: Mapping[str, Any] | None = None, wait: str | None = None,
          dry_run: bool = False, repo: Repository | None = None) -> PruneResult:
    """Remove the snapshots of ``source`` that its retention policy (with the ``keep`` overrides,
    as the ``--keep-*`` options) does not keep; ``dry_run`` only decides. A real run holds the
    source's lease (``wait``: how long to wait for it)."""
    policy = retention_policy(config, source, keep)
    repo = repo or open_repository(None, config)
    return prune_job(repo, source, policy, dry_run=dry_run, lock=lock_settings(config, wait),
                     lock_days=lock_days(config, repo.storage.url, source))


def forget(config: LoadedConfig, snapshots: list[str], *, source: str | None = None, wait: str | None = None,
           dry_run: bool = False, repo: Repository | None = None) -> ForgetResult:
    """Remove the snapshots named, whatever the retention policy says; every name is resolved and
    checked (exists, out of Object Lock) before anything is removed."""
    repo = repo or open_repository(None, config)
    days: dict[str, int | None] = {}
    for ref in snapshots:  # the lock period of each source named (it depends on the source's retention)
        m = repo.resolve(ref, source, content=False)
        days.setdefault(m.source, lock_days(config, repo.storage.url, m.source))
    plan = forget_plan(repo, list(snapshots), source, lock_days=days)
    return forget_job(repo, plan, dry_run=dry_run, lock=lock_settings(config, wait))
