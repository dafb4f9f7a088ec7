"""``report``: the evidence report for auditors and on-call, built from the storage and the configuration."""

from __future__ import annotations

from datetime import timedelta

from datasafe.commands.repository import open_repository
from datasafe.commands.settings import duration_option
from datasafe.config import LoadedConfig
from datasafe.errors import ConfigError
from datasafe.report import Report, build
from datasafe.snapshot.repository import Repository


def _positive(option: str, value: str) -> timedelta:
    span = duration_option(option, value)
    if span.total_seconds() <= 0:
        raise ConfigError(f"{option}: must be longer than 0s")
    return span


def report(config: LoadedConfig, *, since: str = "90d", sources: list[str] | None = None, max_age: str = "26h",
           restore_test_age: str = "35d", repo: Repository | None = None) -> Report:
    """The report over the last ``since``: per source (default: every configured source and every
    source in the storage) a status by ``max_age`` (as check) and ``restore_test_age``, with the
    history behind it. Reads manifests, verification records, the audit trail and the config only."""
    period, limit = _positive("--since", since), _positive("--max-age", max_age)
    test_limit = _positive("--restore-test-age", restore_test_age)
    return build(repo or open_repository(None, config), config, since=period, sources=sources or None,
                 max_age=limit, restore_test_age=test_limit)
