"""``mask``: a masked snapshot of a stored one, and optionally its restore into an environment.

The chain: the policy decision for the masked output and the target's checks (before any
masking work) → masking (:mod:`datasafe.masking.masked_snapshot`) → the restore, decided by
the same policy.
"""

from __future__ import annotations

import os
from pathlib import Path

from datasafe.commands.repository import open_repository
from datasafe.commands.restore import decide, restore
from datasafe.config import LoadedConfig
from datasafe.environments import resolve_target
from datasafe.environments.policy import Policy
from datasafe.masking.masked_snapshot import MaskResult
from datasafe.masking.masked_snapshot import mask as mask_snapshot
from datasafe.masking.masking_key import MaskingKey, load_key
from datasafe.masking.rules import load_rules
from datasafe.progress import Progress
from datasafe.snapshot.repository import Repository
from datasafe.transfer.restore import plan_restore, restore_options


def mask(config: LoadedConfig, snapshot: str, rules_path: str | Path, *, source: str | None = None,
         target: str | None = None, confirm: str | None = None, name: str | None = None, tags: list[str] | None = None,
         key: MaskingKey | None = None, key_file: str | Path | None = None, random_key: bool = False,
         strict: bool | None = None, workers: int | None = None, jobs: int = 2, dry_run: bool = False,
         leak_audit: bool = True, repo: Repository | None = None, progress: Progress | None = None) -> MaskResult:
    """Mask ``snapshot`` with the rules file ``rules_path`` into a new masked snapshot (named
    ``SOURCE.masked`` unless ``name``); ``dry_run`` writes nothing and returns sample rows.

    The masking key is ``key``, else ``key_file``, else what the rules file names (its key file or
    environment variable; ``random_key``: a throwaway key). With ``target`` (an environment of
    ``config`` or a database URL), the masked snapshot is also restored there, as :func:`restore`
    does: the policy decision for the masked output (strict or not), the target's identity and its
    emptiness are checked before any masking work, in ``dry_run`` too, so a run that would be
    refused stores nothing. A leak found by the leak audit raises
    :class:`~datasafe.masking.leaks_report.LeakFound` (exit 8) and nothing is stored."""
    repo = repo or open_repository(None, config, writing=not dry_run)
    if key is None:
        key = load_key(load_rules(rules_path), key_file=str(key_file) if key_file else None, env=os.environ,
                       random=random_key)
    manifest = repo.resolve(snapshot, source)
    options = restore_options(config, manifest.source, jobs=jobs, progress=progress)
    policy = Policy(config, repo.policy_key)

    def check_target(planned: MaskResult) -> None:
        if target is None:
            return
        url, env = resolve_target(config, target)
        planned.policy = decide(repo, policy, planned.source, url, env, confirm, "mask",
                                will_mask=planned.plan.strict).record()
        plan_restore(repo, planned.source, url.render(hide_password=False), options)  # target empty, tools there

    result = mask_snapshot(repo, manifest, rules_path, key, name=name, tags=list(tags or []), strict=strict,
                           dry_run=dry_run, progress=progress, workers=workers, leak_audit=leak_audit,
                           check_target=check_target)
    if target is not None and result.manifest is not None:
        result.restored = restore(config, result.manifest, target, options, confirm=confirm, policy=policy,
                                  repo=repo)
    return result
