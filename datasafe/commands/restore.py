"""``restore``: a snapshot into an environment or database, after the policy has allowed it."""

from __future__ import annotations

from datasafe import audit
from datasafe.commands.repository import open_repository
from datasafe.config import LoadedConfig
from datasafe.engines import RestoreOptions, RestorePlan
from datasafe.environments import Environment, resolve_target
from datasafe.environments.policy import Policy, PolicyDecision, PolicyRefused
from datasafe.errors import IntegrityError, UsageError
from datasafe.progress import Progress
from datasafe.snapshot import provenance
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.transfer.restore import check_request, plan_restore, restore_options, run_restore
from datasafe.urls import DatabaseURL


def decide(repo: Repository, policy: Policy, manifest: Manifest, url: DatabaseURL, env: Environment | None,
           confirm: str | None, operation: str, *, will_mask: bool | None = None) -> PolicyDecision:
    """:meth:`Policy.decide`, with a refusal recorded in the audit trail before it is raised."""
    try:
        return policy.decide(manifest, url, env, confirm, will_mask=will_mask)
    except PolicyRefused as exc:
        audit.append(repo.storage, operation, "refused", key=repo.audit_key, snapshot=manifest.snapshot_id,
                     source=manifest.source, target=str(url), error=str(exc), exit_code=int(exc.exit_code),
                     decision=exc.decision.record())
        if exc.exit_code == IntegrityError.exit_code:
            raise IntegrityError(exc.message, hint=exc.hint) from None
        raise


def restore(config: LoadedConfig, snapshot: str | Manifest, target: str, options: RestoreOptions | None = None, *,
            confirm: str | None = None, source: str | None = None, tables: list[str] | None = None,
            schema_only: bool = False, data_only: bool = False, clean: bool = False, no_owner: bool = False,
            jobs: int = 2, dry_run: bool = False, policy: Policy | None = None, repo: Repository | None = None,
            progress: Progress | None = None) -> RestorePlan:
    """Restore ``snapshot`` (id, ``latest``, tag, ``SOURCE@TIME`` or a manifest) into ``target``
    (an environment name of ``config``, or a database URL); returns the plan, carried out unless
    ``dry_run``.

    The policy (:mod:`datasafe.environments.policy`) is decided first, from the identities the
    servers confirm: a refusal raises :class:`~datasafe.errors.Refused` (exit 8) and is recorded
    in the audit trail. ``confirm`` is ``--confirm``. Then the target is checked (empty, or
    ``clean``); with ``dry_run`` nothing is changed. Without environments in ``config``, every
    snapshot's data counts as production: an unconfigured target then needs ``confirm`` with its
    database name. ``options`` replaces ``tables`` ... ``jobs`` when given.
    """
    if schema_only and data_only:
        raise UsageError("--schema-only and --data-only exclude each other")
    repo = repo or open_repository(None, config)
    if isinstance(snapshot, Manifest):
        manifest = repo.open(snapshot)
    else:
        manifest = repo.resolve(snapshot, source)
        provenance.status(manifest, repo.policy_key)  # an edited manifest fails here (exit 6)
    if options is None:
        options = restore_options(config, manifest.source, tables=tables, schema_only=schema_only,
                                  data_only=data_only, clean=clean, jobs=jobs, no_owner=no_owner, progress=progress)
    url, env = resolve_target(config, target)
    check_request(manifest, url, options)
    decision = decide(repo, policy or Policy(config, repo.policy_key), manifest, url, env, confirm, "restore")
    plan = plan_restore(repo, manifest, url.render(hide_password=False), options)
    plan.policy = decision.record()
    plan.notes[:0] = decision.notes
    if decision.environment is not None:
        plan.environment = {"name": decision.environment, "class": str(decision.env_class)}
    if dry_run:
        return plan
    return run_restore(repo, plan, operation="restore")
