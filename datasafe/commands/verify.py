"""``verify``: read snapshots back (one, the newest, all, or those not verified yet) and record the results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from datasafe.commands.repository import open_repository
from datasafe.config import Config, LoadedConfig, pg_bin_for
from datasafe.environments.policy import Policy
from datasafe.errors import DatasafeError, IntegrityError, Refused, UsageError
from datasafe.humanize import count
from datasafe.identity import DatabaseIdentity
from datasafe.ops.jobs import unverified
from datasafe.progress import Progress
from datasafe.snapshot.check import VERIFY_MODES, VerifyReport
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.transfer.verify import verify as verify_snapshot
from datasafe.urls import DatabaseURL

__all__ = ["VERIFY_MODES", "VerifyResult", "scratch_check", "verify"]


@dataclass
class VerifyResult:
    """One report per snapshot verified (a damaged manifest is a failed report of its own)."""

    reports: list[VerifyReport] = field(default_factory=list)
    #: ``since_last`` found every snapshot verified already
    nothing_to_do: bool = False

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)

    def as_list(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.reports]

    def check(self) -> None:
        """Raise :class:`~datasafe.errors.IntegrityError` (exit 6) naming the first problem, if any."""
        bad = [r for r in self.reports if not r.ok]
        if bad:
            problems = sum(len(r.problems) for r in bad)
            more = f" (and {count(problems - 1, 'more problem')})" if problems > 1 else ""
            raise IntegrityError(f"snapshot {bad[0].snapshot_id} failed verification: {bad[0].problems[0]}{more}")


def verify(config: LoadedConfig, snapshot: str | None = None, *, latest: bool = False, every: bool = False,
           since_last: bool = False, source: str | None = None, sample: float | None = None, deep: bool = False,
           scratch: str | None = None, mode: str = "full", jobs: int = 2, repo: Repository | None = None,
           progress: Progress | None = None) -> VerifyResult:
    """Verify ``snapshot``, or the ``latest``, ``every`` snapshot, or those ``since_last`` (not yet
    verified as thoroughly as this ``mode``): exactly one of them.

    Every chunk is read back (``mode``: full, stored or metadata; ``sample``: that percentage of
    them); ``deep`` also restores into a scratch database (on ``scratch``, default: the origin's
    server) and compares content digests; production data goes only onto a production server.
    Failures are in the result (:meth:`VerifyResult.check` raises for them), not raised."""
    if sum([bool(snapshot), latest, every, since_last]) != 1:
        raise UsageError("give exactly one of SNAPSHOT, --latest, --all or --since-last")
    repo = repo or open_repository(None, config)
    result = VerifyResult()
    targets: list[str | Manifest]
    if every:
        infos = repo.list(source, include_incomplete=True)
        targets = [i.manifest for i in infos if i.manifest]
        # a damaged manifest is a failed snapshot, not a missing one
        result.reports += [VerifyReport(i.snapshot_id, i.source, problems=[i.problem or "manifest damaged"])
                           for i in infos if i.damaged]
    elif since_last:
        wanted = "deep" if deep else "sample" if sample is not None and sample < 100 else mode
        targets = [i.manifest for i in unverified(repo, repo.list(source), wanted) if i.manifest]
        result.nothing_to_do = not targets
    else:
        targets = ["latest" if latest else str(snapshot)]
    check = scratch_check(config, repo)
    for ref in targets:
        manifest = ref if isinstance(ref, Manifest) else repo.resolve(ref, source, content=False)
        result.reports.append(verify_snapshot(repo, manifest, deep=deep, scratch=scratch, jobs=jobs, mode=mode,
                                              sample=sample, pg_bin=pg_bin_for(config, manifest.source),
                                              progress=progress, check_scratch=check))
    return result


def scratch_check(config: LoadedConfig | None, repo: Repository) -> Callable[[Manifest, DatabaseURL], None]:
    """The check ``verify --deep`` makes of its scratch database: production data goes into one only
    on a production server, the origin's or that of a configured production source or environment
    (asked by identity)."""

    def check(manifest: Manifest, target: DatabaseURL) -> None:
        if manifest.engine == "sqlite":
            return  # a temporary file on this host
        policy = Policy(config or LoadedConfig(Config(), None), repo.policy_key)
        data = policy.data_class(manifest)
        if not data.production:
            return
        found = policy.resolver.lookup(target)
        if isinstance(found, DatasafeError):
            raise Refused(f"cannot tell which server the scratch database {target} is on: {found}")
        servers = [policy.resolver.lookup(k.url) for k in policy.known if k.url is not None and k.env_class ==
                   "production" and k.url.engine == manifest.engine]
        if data.origin is not None:
            servers.append(DatabaseIdentity.from_dict(data.origin, f"snapshot {manifest.snapshot_id}"))
        if not any(isinstance(s, DatabaseIdentity) and s.same_server(found) for s in servers):
            raise Refused(f"verify --deep would copy the production data of snapshot {manifest.snapshot_id} onto "
                          f"{target.replace(database='')}, which is not a production server",
                          hint="use --scratch on the server the snapshot came from (the default), or on a server of "
                               "a production source or environment")

    return check
