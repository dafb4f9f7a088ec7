"""``datasafe refresh ENV``: a non-production database replaced by a freshly masked copy, safely.

1. Check everything first: the environment (non-production, a source, a rules file that loads
   and covers the snapshot's schema, readable post-restore scripts), the snapshot (the newest
   *verified* one of the source unless named), the masking key, the target server.
2. Mask the snapshot into a masked snapshot (kept in the storage, tagged ``refresh-ENV``).
3. Restore it into a new temporary database on the environment's server.
4. Run the environment's post-restore SQL scripts there (reset passwords, disable mail, ...).
5. Swap the temporary database into place atomically, then drop the previous copy
   (``keep_previous`` keeps it).

A failure at any step removes the temporary database and leaves the existing one exactly as it
was. The per-engine work of steps 3 and 5 is in :mod:`datasafe.refresh`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasafe import audit, faultpoints
from datasafe.config import LoadedConfig
from datasafe.engines import RestoreOptions
from datasafe.environments import Environment, environment
from datasafe.environments.policy import Policy, PolicyDecision, PolicyRefused
from datasafe.errors import ConfigError, NotFound, Refused
from datasafe.masking.keys import MaskingKey
from datasafe.progress import NullProgress, Progress
from datasafe.snapshot import verification
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository

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
    from datasafe import api
    from datasafe.masking.plan import check_rules
    from datasafe.masking.rules import load_rules

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
    if manifest.engine != env.url.engine:
        raise ConfigError(f"snapshot {manifest.snapshot_id} is a {manifest.engine} snapshot; {env.describe()} "
                          f"is a {env.url.engine} database")
    rules = load_rules(env.rules)
    check_rules(manifest, rules)
    plan = RefreshPlan(env, manifest, env.rules, scripts)
    # the masked output's class (strict or not) against the environment, before any masking work
    plan.policy = Policy(cfg, repo.policy_key)
    plan.decision = api.decide(repo, plan.policy, manifest, env.url, env, None, "refresh", will_mask=rules.strict)
    plan.steps = [
        f"mask snapshot {manifest.snapshot_id} of {manifest.source} with {env.rules}",
        f"restore the masked snapshot into a new temporary database next to {env.url}",
        *[f"run {name}" for name, _ in scripts],
        f"swap it into place as {env.url} and drop the previous copy",
    ]
    return plan


def refresh(cfg: LoadedConfig, repo: Repository, plan: RefreshPlan, key: MaskingKey, *, keep_previous: bool = False,
            jobs: int = 2, pg_bin: str | None = None, progress: Progress | None = None) -> RefreshResult:
    """Carry out ``plan`` (see the module docstring); the existing database changes only at the swap."""
    from datasafe import api
    from datasafe.masking.api import mask
    from datasafe.refresh import swapper_for

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
            restore_plan = api.plan_restore(repo, masked, temp.render(hide_password=False),
                                            RestoreOptions(jobs=jobs, no_owner=True, pg_bin=pg_bin,
                                                           progress=progress))
            restore_plan.policy = decision.record()
            faultpoints.reach("refresh.masked")
            api.run_restore(repo, restore_plan, environment=env.name, refresh_of=env.url.database or str(env.url))
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
