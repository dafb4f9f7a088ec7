"""What may be restored where: the rule between production data and everything else.

Checked on every restore (and every refresh) before the first change:

1. A snapshot of a production-class source that is not masked — or was masked with strict
   coverage turned off — is refused for every non-production environment. The only override is
   ``allow_unmasked: true`` on that environment in datasafe.yml, logged on every use.
2. Restoring into a production-class environment needs ``--confirm <environment name>``.
3. Restoring onto the very database a snapshot was taken from needs ``--confirm`` with the
   environment's name (or, for a database that is no configured environment, its database name).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from datasafe.config import LoadedConfig
from datasafe.environments import Environment, same_database, source_class
from datasafe.errors import Refused
from datasafe.snapshot.manifest import Manifest
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)


def is_masked(manifest: Manifest) -> bool:
    """Masked with strict coverage: every column was masked or explicitly kept."""
    m = manifest.masking or {}
    return bool(m.get("masked")) and bool(m.get("strict"))


def holds_production_data(cfg: LoadedConfig, manifest: Manifest) -> bool:
    if is_masked(manifest):
        return False
    origin = (manifest.masking or {}).get("from", {}).get("source") or manifest.source
    return source_class(cfg, origin) == "production"


def _source_url(cfg: LoadedConfig, manifest: Manifest) -> DatabaseURL | None:
    sc = cfg.config.sources.get(manifest.source)
    for text in ([sc.url] if sc is not None else []) + [manifest.source_url]:
        try:
            return DatabaseURL.parse(text)
        except Exception:  # an unset ${VAR} or a redacted URL that does not parse
            continue
    return None


@dataclass
class PolicyDecision:
    """The outcome of :func:`check`: allowed (else :class:`Refused` was raised), with notes for the log."""

    target: str
    environment: str | None
    env_class: str | None
    notes: list[str] = field(default_factory=list)


def check(cfg: LoadedConfig, manifest: Manifest, target: DatabaseURL, env: Environment | None,
          confirm: str | None = None) -> PolicyDecision:
    """Allow restoring ``manifest`` into ``target`` (of environment ``env``), or raise Refused saying why."""
    decision = PolicyDecision(str(target), env.name if env else None, env.env_class if env else None)
    what = f"snapshot {manifest.snapshot_id} of {manifest.source}"
    if holds_production_data(cfg, manifest) and env is not None and not env.production:
        why = ("is not masked" if not manifest.masking else "was masked with strict coverage turned off")
        if not env.allow_unmasked:
            raise Refused(
                f"{what} holds production data and {why}: it cannot go into {env.describe()}",
                hint=f"mask it (datasafe mask / datasafe refresh {env.name}); the only override is "
                     f"environments.{env.name}.allow_unmasked in datasafe.yml")
        note = (f"POLICY OVERRIDE: unmasked production {what} restored into {env.describe()} "
                f"(environments.{env.name}.allow_unmasked)")
        log.warning(note)
        decision.notes.append(note)
    if env is not None and env.production and confirm != env.name:
        raise Refused(f"{env.describe()} is production: restoring into it replaces production data",
                      hint=f"add --confirm {env.name} after checking the target")
    source_url = _source_url(cfg, manifest)
    if source_url is not None and same_database(source_url, target):
        expected = env.name if env is not None else target.database
        if confirm != expected:
            raise Refused(f"{target} is the database {what} was taken from: restoring onto it overwrites it",
                          hint=f"add --confirm {expected} if that is what you mean")
        decision.notes.append(f"restoring onto the source database {target} (confirmed)")
    if env is None and holds_production_data(cfg, manifest):
        log.debug("%s (unmasked production data) goes into %s, which is no configured environment", what, target)
    return decision
