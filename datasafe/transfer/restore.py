"""Restore from a repository: the options, a validated plan (nothing changed yet), and running it.

The policy that decides whether a restore may happen at all is the commands' part
(:mod:`datasafe.commands.restore`); a plan carries its decision in ``plan.policy``.
"""

from __future__ import annotations

import logging
from typing import Any

from datasafe import audit, faultpoints
from datasafe.config import LoadedConfig, pg_bin_for
from datasafe.engines import RestoreOptions, RestorePlan, get_engine
from datasafe.errors import UsageError
from datasafe.progress import NullProgress, Progress
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)


def restore_options(config: LoadedConfig | None, source: str | None, *, tables: list[str] | None = None,
                    schema_only: bool = False, data_only: bool = False, clean: bool = False, jobs: int = 2,
                    no_owner: bool = False, progress: Progress | None = None,
                    pg_bin: str | None = None, keep_row_order: bool = False) -> RestoreOptions:
    """The options of a restore of a snapshot of ``source``: the one place they are built.

    The PostgreSQL client tools are ``pg_bin``, else those ``config`` sets for ``source``.
    ``keep_row_order`` loads every table on one connection, even a split one (``verify --deep``)."""
    if pg_bin is None and config is not None:
        pg_bin = pg_bin_for(config, source)
    return RestoreOptions(tables=tables, schema_only=schema_only, data_only=data_only, clean=clean, jobs=jobs,
                          keep_row_order=keep_row_order, progress=progress or NullProgress(),
                          engine_settings={"no_owner": no_owner, "pg_bin": pg_bin})


def check_request(manifest: Manifest, url: DatabaseURL, options: RestoreOptions) -> None:
    """What can be told wrong without asking any server."""
    if options.schema_only and options.data_only:
        raise UsageError("--schema-only and --data-only exclude each other")
    if url.engine != manifest.engine and options.data_only:
        raise UsageError(f"snapshot {manifest.snapshot_id} is a {manifest.engine} snapshot: --data-only is not "
                         f"available into a {url.engine} target (a restore across engines needs an empty target)")


def plan_restore(repo: Repository, ref: str | Manifest, target: str, options: RestoreOptions,
                 source: str | None = None) -> RestorePlan:
    """Decide and validate a restore's steps without changing anything; no policy."""
    manifest = repo.open(ref) if isinstance(ref, Manifest) else repo.resolve(ref, source)
    url = DatabaseURL.parse(target)
    check_request(manifest, url, options)
    if url.engine != manifest.engine:  # across engines: docs/cross-engine.md
        from datasafe.transfer.cross.restore import plan_cross  # deferred: start-up time (SQLAlchemy)
        return plan_cross(manifest, url, options, repo.snapshot_storage(manifest))
    return get_engine(manifest.engine).plan_restore(manifest, url, options)


def run_restore(repo: Repository, plan: RestorePlan, *, operation: str = "restore", **record: Any) -> RestorePlan:
    """Carry out a planned restore whose policy was decided (its decision is in ``plan.policy``);
    recorded in the audit trail as ``operation`` with ``record``'s fields."""
    m = plan.manifest
    with audit.audited(repo.storage, operation, key=repo.audit_key, snapshot=m.snapshot_id, source=m.source,
                       target=str(plan.target), masked=bool(m.masking),
                       rules_sha256=(m.masking or {}).get("rules_sha256"), decision=plan.policy, **record):
        log.info("restoring snapshot %s of %s into %s", m.snapshot_id, m.source, plan.target)
        faultpoints.reach("restore.begin")
        if plan.target.engine != m.engine:
            from datasafe.transfer.cross.restore import run_cross  # deferred: start-up time (SQLAlchemy)
            run_cross(plan, repo.snapshot_storage(m))
        else:
            get_engine(m.engine).restore(plan, repo.snapshot_storage(m))
        log.info("restore of snapshot %s into %s complete", m.snapshot_id, plan.target)
    return plan
