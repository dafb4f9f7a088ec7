"""What may be restored where: the rule between production data and everything else.

Decided from facts the servers confirm, never from how a URL or a storage name is spelled
(:mod:`datasafe.identity`), before the first change, by the library itself
(:func:`datasafe.commands.restore.restore`, :func:`datasafe.commands.mask.mask`,
:func:`datasafe.commands.refresh.refresh` all call :meth:`Policy.decide`):

1. **The data's class follows the data.** A snapshot's class is the class of the configured
   source or environment whose identity equals the snapshot's recorded origin, whatever name it
   is stored under; an origin that matches none (or no recorded origin) is ``policy.default_class``
   (production unless configured). A masked snapshot counts as masked only when it was masked
   with strict coverage *and* its manifest is authenticated by the policy key
   (:mod:`datasafe.snapshot.provenance`); otherwise it has its origin's class.
2. **The target's class is its identity's.** A target whose identity equals a configured
   environment or source has that one's class (the most restrictive when several match).
3. Production data (class ``production``, not masked) into a non-production environment is
   refused; the only override is ``allow_unmasked: true`` on that environment (audited).
4. Production data into a database that is no configured environment or source needs
   ``--confirm <database name>`` (disaster recovery into a new server; audited).
5. A production target, and the very database the snapshot came from, need ``--confirm`` with
   the configured name (or, for an unconfigured database, its database name).

Every decision, allowed or refused, carries the resolved identities for the audit trail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasafe.config import LoadedConfig
from datasafe.engine_names import is_file_engine
from datasafe.environments import Environment
from datasafe.environments.identities import RANK, IdentityResolver, Known, configured, match
from datasafe.errors import DatasafeError, ExitCode, IntegrityError, Refused
from datasafe.identity import DatabaseIdentity
from datasafe.policykey import PolicyKey
from datasafe.snapshot import provenance
from datasafe.snapshot.manifest import Manifest
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

MASKED = "masked"


@dataclass
class DataClass:
    """What a snapshot holds, and why the policy thinks so."""

    name: str  # "masked" or one of CLASSES
    provenance: str
    origin: dict[str, Any] | None
    origin_matches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reason: str = "not masked"

    @property
    def production(self) -> bool:
        return self.name == "production"


@dataclass
class PolicyDecision:
    """The outcome of :meth:`Policy.decide` (allowed, unless it is attached to a :class:`PolicyRefused`)."""

    snapshot: str
    source: str
    target: str
    environment: str | None
    env_class: str | None
    data: DataClass | None = None
    target_identity: dict[str, Any] | None = None
    target_matches: list[str] = field(default_factory=list)
    confirmed: str | None = None
    override: str | None = None
    refused: str | None = None
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The decision as the audit trail keeps it."""
        return {
            "snapshot": self.snapshot, "source": self.source, "target": self.target,
            "environment": self.environment, "target_class": self.env_class,
            "data_class": self.data.name if self.data else None,
            "provenance": self.data.provenance if self.data else None,
            "origin": self.data.origin if self.data else None,
            "origin_matches": self.data.origin_matches if self.data else [],
            "target_identity": self.target_identity, "target_matches": self.target_matches,
            "confirmed": self.confirmed, "override": self.override, "refused": self.refused,
            "notes": self.notes,
        }


class PolicyRefused(Refused):
    """A policy refusal, with the decision that led to it (for the audit trail)."""

    def __init__(self, message: str, decision: PolicyDecision, *, hint: str | None = None,
                 exit_code: ExitCode | None = None) -> None:
        super().__init__(message, hint=hint)
        decision.refused = message
        self.decision = decision
        if exit_code is not None:  # an edited manifest is an integrity error (6), refused all the same
            self.exit_code = exit_code


def target_label(identity: DatabaseIdentity) -> str:
    """What ``--confirm`` must say for an unconfigured database: its name (a SQLite file's name)."""
    return Path(identity.database).name if is_file_engine(identity.engine) else identity.database


class Policy:
    """The policy of one configuration, with the identities it asked for cached for the run."""

    def __init__(self, cfg: LoadedConfig, key: PolicyKey | None, resolver: IdentityResolver | None = None) -> None:
        self.cfg = cfg
        self.key = key
        self.resolver = resolver or IdentityResolver()
        self.known = configured(cfg)

    # -- what the data is --------------------------------------------------------------------
    def data_class(self, manifest: Manifest, *, will_mask: bool | None = None) -> DataClass:
        """The class of ``manifest``'s rows. ``will_mask``: the manifest is the input of a masking run
        about to happen (True: with strict coverage), and the class is that of its output.

        Raises:
            IntegrityError: the manifest fails its provenance check (edited).
        """
        state = provenance.status(manifest, self.key)
        m = manifest.masking or {}
        notes: list[str] = []
        if will_mask is not None:  # this run signs its output, when it has a policy key
            masked, trusted = will_mask, self.key is not None
        else:
            masked, trusted = bool(m.get("masked")) and bool(m.get("strict")), state == "authenticated"
        origin = manifest.origin
        if masked and trusted:
            return DataClass(MASKED, state, origin)
        reason = "not masked"
        if masked and will_mask is not None:
            reason = "there is no policy key to authenticate the masked snapshot with"
        elif masked:
            reason = f"its manifest claims strict masking but is {provenance.describe(state, manifest)}"
        elif m.get("masked") or will_mask is not None:
            reason = "masked with strict coverage turned off"
        default = self.cfg.config.policy.default_class
        if origin is None:
            notes.append(f"it records no origin: {default} by default (policy.default_class)")
            return DataClass(default, state, None, notes=notes, reason=reason)
        ident = DatabaseIdentity.from_dict(origin, f"manifest of snapshot {manifest.snapshot_id}")
        found = match(self.resolver, self.known, ident)
        name = found.env_class or default
        for k, why in found.unknown:
            if RANK[k.env_class] < RANK[name]:
                notes.append(f"{k.describe()} could not be asked who it is ({why}): it might be the origin, so "
                             f"the data counts as {k.env_class}")
                name = k.env_class
            else:
                log.info("%s could not be asked who it is (%s); not matched", k.describe(), why)
        if not found.matches:
            notes.append(f"its origin ({ident.describe()}) is no configured source or environment: "
                         f"{default} by default (policy.default_class)")
        return DataClass(name, state, origin, [k.describe() for k in found.matches], notes, reason)

    # -- the decision ------------------------------------------------------------------------
    def decide(self, manifest: Manifest, target: DatabaseURL, env: Environment | None = None,
               confirm: str | None = None, *, will_mask: bool | None = None) -> PolicyDecision:
        """Allow restoring ``manifest`` into ``target`` or raise :class:`PolicyRefused` saying why.

        ``env`` is the environment the caller named (its URL is ``target``); ``will_mask`` as in
        :meth:`data_class`."""
        decision = PolicyDecision(manifest.snapshot_id, manifest.source, str(target),
                                  env.name if env else None, env.env_class if env else None)
        what = f"snapshot {manifest.snapshot_id} of {manifest.source}"
        try:
            decision.data = data = self.data_class(manifest, will_mask=will_mask)
        except IntegrityError as exc:
            raise PolicyRefused(str(exc), decision, hint=exc.hint, exit_code=exc.exit_code) from None
        found = self.resolver.lookup(target)
        if isinstance(found, DatasafeError):
            raise PolicyRefused(f"cannot tell which database {target} is, so nothing goes there: {found}", decision,
                                hint="the policy asks the server itself; check that the target is reachable")
        ident = found
        decision.target_identity = ident.as_dict()
        matched = match(self.resolver, self.known, ident).matches
        if env is not None and not any(k.kind == "environment" and k.name == env.name for k in matched):
            matched.insert(0, Known("environment", env.name, env.env_class, env.url))
        decision.target_matches = [k.describe() for k in matched]
        envs = [k for k in matched if k.kind == "environment"]
        target_class = min((k.env_class for k in matched), key=RANK.__getitem__, default=None)
        decision.env_class = target_class
        if decision.environment is None and envs:
            decision.environment = envs[0].name
        named = (env.name if env is not None else matched[0].name) if matched else target_label(ident)
        where = f"{target} ({' = '.join(decision.target_matches)})" if matched else str(target)
        if len({k.env_class for k in matched}) > 1:
            decision.notes.append(f"{target} is {' and '.join(decision.target_matches)}: the most restrictive "
                                  f"class, {target_class}, applies")

        # 5. the database the snapshot came from, and production targets
        origin = DatabaseIdentity.from_dict(data.origin, what) if data.origin else None
        if origin is not None and origin.same_database(ident):
            self._confirmed(decision, confirm, named,
                            f"{where} is the database {what} was taken from: restoring onto it overwrites it")
        if target_class == "production":
            self._confirmed(decision, confirm, named,
                            f"{where} is production: restoring into it replaces production data")
        # 3 and 4: production data
        if data.production:
            why = f"{what} holds production data ({data.reason})"
            if target_class is None:
                self._confirmed(decision, confirm, named,
                                f"{why} and {target} is no configured environment",
                                hint_extra="or mask it first (datasafe mask), or configure the target as an "
                                           "environment in datasafe.yml")
            elif target_class != "production":
                blocking = [k for k in envs if k.env_class != "production" and not self._allows_unmasked(k.name)]
                if blocking or not envs:
                    name = blocking[0].name if blocking else named
                    raise PolicyRefused(
                        f"{why}: it cannot go into {where}", decision,
                        hint=f"mask it (datasafe mask, or datasafe refresh {name}); the only override is "
                             f"environments.{name}.allow_unmasked in datasafe.yml")
                decision.override = (f"POLICY OVERRIDE: unmasked production {what} restored into {where} "
                                     f"(environments.{', '.join(k.name for k in envs)}.allow_unmasked)")
                log.warning("%s", decision.override)
                decision.notes.append(decision.override)
        decision.notes.extend(data.notes if data.production else [])
        return decision

    def _allows_unmasked(self, env_name: str) -> bool:
        ec = self.cfg.config.environments.get(env_name)
        return bool(ec and ec.allow_unmasked)

    @staticmethod
    def _confirmed(decision: PolicyDecision, confirm: str | None, expected: str, problem: str,
                   hint_extra: str | None = None) -> None:
        if confirm != expected:
            wrong = f" (--confirm {confirm!r} does not name it)" if confirm else ""
            hint = f"add --confirm {expected} if that is what you mean" + (f"; {hint_extra}" if hint_extra else "")
            raise PolicyRefused(f"{problem}{wrong}", decision, hint=hint)
        note = f"confirmed with --confirm {expected}: {problem}"
        if decision.confirmed is None:
            decision.confirmed = expected
        decision.notes.append(note)
