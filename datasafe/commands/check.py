"""``check``: is the newest verified snapshot of each source young enough (for monitoring)?"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from datasafe.commands.repository import open_repository
from datasafe.commands.settings import duration_option
from datasafe.config import LoadedConfig
from datasafe.errors import ExitCode, IntegrityError, NotFound
from datasafe.ops.jobs import Freshness, freshness
from datasafe.snapshot.repository import Repository


@dataclass
class CheckResult:
    """The freshness of each source checked."""

    sources: list[Freshness]

    def as_list(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.sources]

    def check(self) -> None:
        """Raise for the worst source: IntegrityError (exit 6) for a damaged or failed newest
        snapshot, NotFound (exit 7) for one without a verified snapshot young enough."""
        worst = max(self.sources, key=lambda r: (r.code == ExitCode.INTEGRITY, r.code == ExitCode.NOT_FOUND))
        if worst.code == ExitCode.INTEGRITY:
            raise IntegrityError(worst.message)
        if worst.code == ExitCode.NOT_FOUND:
            raise NotFound(worst.message)


def check(config: LoadedConfig, sources: list[str] | None = None, *, max_age: str,
          repo: Repository | None = None, concurrency: int | None = None) -> CheckResult:
    """Check that each of ``sources`` (default: every configured source, or with none configured
    every source with snapshots in the storage) has a verified snapshot younger than ``max_age``
    (``26h``), ``concurrency`` sources at once (default: config ``fleet.concurrency``). Reads the
    storage only; failures are in the result (:meth:`CheckResult.check`)."""
    limit = duration_option("--max-age", max_age)
    repo = repo or open_repository(None, config)
    # a folder without snapshots (left by a failed first backup of an earlier version) is no source
    names = list(sources or []) or list(config.config.sources) or [
        s for s in repo.sources() if repo.snapshot_ids(s)]
    if not names:
        raise NotFound(f"no sources configured and no snapshots in {repo.storage.url}")
    opened = repo
    with ThreadPoolExecutor(max(1, concurrency or config.config.fleet.concurrency),
                            thread_name_prefix="datasafe-check") as pool:
        return CheckResult(list(pool.map(lambda name: freshness(opened, name, limit), names)))
