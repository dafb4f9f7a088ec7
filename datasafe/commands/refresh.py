"""``refresh``: a non-production database replaced by a freshly masked copy, safely.

1. Check everything first: the environment (non-production, a source, a rules file that loads
   and covers the snapshot's schema, readable post-restore scripts), the snapshot (the newest
   *verified* one of the source unless named), the masking key, the target server.
2. Mask the snapshot into a masked snapshot (kept in the storage, tagged ``refresh-ENV``).
3. Restore it into a new temporary database on the environment's server.
4. Run the environment's post-restore SQL scripts there (reset passwords, disable mail, ...).
5. Swap the temporary database into place atomically, then drop the previous copy
   (``keep_previous`` keeps it).

A failure at any step removes the temporary database and leaves the existing one exactly as it
was. The per-engine work of steps 3 and 5 is the engine's swapper (:mod:`datasafe.engines.swap`).
An environment on another engine than the snapshot's gets a cross-engine restore in step 3
(:mod:`datasafe.transfer.cross`, docs/cross-engine.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasafe import audit, faultpoints
from datasafe.commands.repository import open_repository
from datasafe.commands.restore import decide
from datasafe.config import LoadedConfig, pg_bin_for
from datasafe.engines import swapper_for
from datasafe.environments import Environment, environment
from datasafe.environments.policy import Policy, PolicyDecision, PolicyRefused
from datasafe.errors import ConfigError, NotFound, Refused
from datasafe.masking.masked_snapshot import mask
from datasafe.masking.masking_key import MaskingKey, load_key
from datasafe.masking.plan import check_rules
from datasafe.masking.rules import load_rules
from datasafe.progress import NullProgress, Progress
from datasafe.snapshot import verification
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.transfer.restore import plan_restore, restore_options, run_restore

log = logging.getLogger(__name__)


@dataclass
class RefreshPlan:
    env: Environment
    snapshot: Manifest
    rules: Path
    scripts: list[tuple[str, str]]
    steps: list[str] = field(default_factory=list)
    decision: PolicyDecision | None = None
    policy: Policy | None = None

    def describe(self) -> dict[str, Any]:
        return {"environment": self.env.name, "class": self.env.env_class, "target": str(self.env.url),
                "snapshot": self.snapshot.snapshot_id, "source": self.snapshot.source, "rules": str(self.rules),
                "post_restore_sql": [name for name, _ in self.scripts], "steps": self.steps,
                "policy": self.decision.record() if self.decision else None}


@dataclass
class RefreshResult:
    plan: RefreshPlan
    masked: Manifest | None = None
    previous: str | None = None

    def describe(self) -> dict[str, Any]:
        out = self.plan.describe()
        if self.masked is not None:
            out["masked_snapshot"] = self.masked.snapshot_id
        out["previous_copy"] = self.previous
        return out


def newest_verified(repo: Repository, source: str) -> Manifest:
    for info in reversed(repo.list(source)):
        rec = verification.latest(repo.storage, source, info.snapshot_id)
        if rec is not None and rec.ok and info.manifest is not None:
            return repo.open(info.manifest)
    raise NotFound(f"source {source} has no verified snapshot to refresh from",
                   hint=f"take one with: datasafe backup {source}")


def plan_refresh(cfg: LoadedConfig, repo: Repository, env_name: str, snapshot: str | None = None) -> RefreshPlan:
    """Everything that can be checked before the first change, the policy included."""
    env = environment(cfg, env_name)
    if env.production:
        raise Refused(f"{env.describe()} is production: refresh only replaces non-production databases")
    if not env.source:
        raise ConfigError(f"{cfg.path}: environments.{env.name}.source: which source does it refresh from?")
    if env.rules is None:
        raise ConfigError(f"{cfg.path}: environments.{env.name}.rules: an environment refreshed from production "
                          "data needs a masking rules file")
    scripts = []
    for path in env.post_restore_sql:
        try:
            scripts.append((path.name, path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise ConfigError(f"{cfg.path}: environments.{env.name}.post_restore_sql: cannot read {path}: "
                              f"{exc.strerror}") from None
    manifest = repo.resolve(snapshot, env.source) if snapshot else newest_verified(repo, env.source)
    if manifest.source != env.source:
        raise ConfigError(f"snapshot {manifest.snapshot_id} is of {manifest.source}, not of {env.source}")
    rules = load_rules(env.rules)
    check_rules(manifest, rules)
    plan = RefreshPlan(env, manifest, env.rules, scripts)
    # the masked output's class (strict or not) against the environment, before any masking work
    plan.policy = Policy(cfg, repo.policy_key)
    plan.decision = decide(repo, plan.policy, manifest, env.url, env, None, "refresh", will_mask=rules.strict)
    plan.steps = [
        f"mask snapshot {manifest.snapshot_id} of {manifest.source} with {env.rules}",
        f"restore the masked snapshot into a new temporary database next to {env.url}",
        *[f"run {name}" for name, _ in scripts],
        f"swap it into place as {env.url} and drop the previous copy",
    ]
    return plan


def run_refresh(cfg: LoadedConfig, repo: Repository, plan: RefreshPlan, key: MaskingKey, *,
                keep_previous: bool = False, jobs: int = 2, pg_bin: str | None = None,
                progress: Progress | None = None) -> RefreshResult:
    """Carry out ``plan`` (see the module docstring); the existing database changes only at the swap."""
    progress = progress or NullProgress()
    env = plan.env
    result = RefreshResult(plan)
    swapper = swapper_for(env.url)
    swapper.target_exists()  # reaches the server: a down server fails here, before any work
    policy = plan.policy or Policy(cfg, repo.policy_key)
    with audit.audited(repo.storage, "refresh", key=repo.audit_key, environment=env.name, target=str(env.url),
                       source=plan.snapshot.source, snapshot=plan.snapshot.snapshot_id,
                       decision=plan.decision.record() if plan.decision else None) as record:
        temp = swapper.temporary()
        swapper.prepare(temp)  # cheap, and fails early on missing privileges
        try:
            masked = mask(repo, plan.snapshot, plan.rules, key, tags=[f"refresh-{env.name}"],
                          progress=progress).manifest
            assert masked is not None
            result.masked = masked
            record.update(masked_snapshot=masked.snapshot_id,
                          rules_sha256=(masked.masking or {}).get("rules_sha256"))
            # decided again from the masked snapshot as stored: the temporary database becomes env's
            try:  # a refusal is recorded once, by audited(), with the decision behind it
                decision = policy.decide(masked, env.url, env)
            except PolicyRefused as exc:
                record["decision"] = exc.decision.record()
                raise
            record["decision"] = decision.record()
            log.info("refresh of %s: restoring masked snapshot %s into temporary database %s", env.name,
                     masked.snapshot_id, temp)
            restore_plan = plan_restore(repo, masked, temp.render(hide_password=False),
                                        restore_options(None, masked.source, jobs=jobs, no_owner=True,
                                                        progress=progress, pg_bin=pg_bin))
            restore_plan.policy = decision.record()
            faultpoints.reach("refresh.masked")
            run_restore(repo, restore_plan, environment=env.name, refresh_of=env.url.database or str(env.url))
            faultpoints.reach("refresh.restored")
            for name, sql in plan.scripts:
                log.info("refresh of %s: running %s", env.name, name)
                swapper.run_sql(temp, sql, name)
            faultpoints.reach("refresh.swap")
            result.previous = swapper.swap(temp, keep_previous=keep_previous)
        except BaseException:
            swapper.discard(temp)
            raise
        log.info("refresh of %s complete: %s now holds masked snapshot %s%s", env.name, env.url,
                 masked.snapshot_id, f" (previous copy kept as {result.previous})" if result.previous else "")
    return result


def refresh(config: LoadedConfig, environment_name: str, *, snapshot: str | None = None, keep_previous: bool = False,
            key_file: str | Path | None = None, key: MaskingKey | None = None, jobs: int = 2, dry_run: bool = False,
            repo: Repository | None = None, progress: Progress | None = None) -> RefreshResult:
    """Replace the database of the non-production environment ``environment_name`` with a freshly
    masked copy of its source's newest verified snapshot (or ``snapshot``); see the module docstring.

    Everything, the policy included, is checked before the first change; ``dry_run`` stops there
    (the result then holds only the plan). The masking key is ``key``, else ``key_file``, else
    what the environment's rules file names."""
    repo = repo or open_repository(None, config, writing=not dry_run)
    plan = plan_refresh(config, repo, environment_name, snapshot)
    if key is None:
        key = load_key(load_rules(plan.rules), key_file=str(key_file) if key_file else None)
    if dry_run:
        return RefreshResult(plan)
    return run_refresh(config, repo, plan, key, keep_previous=keep_previous, jobs=jobs,
                       pg_bin=pg_bin_for(config, plan.snapshot.source), progress=progress)
