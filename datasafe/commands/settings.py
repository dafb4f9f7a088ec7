"""What a command derives from the configuration and its options: the lock settings (``--wait``),
retention overrides (``--keep-*``), the S3 Object Lock period and how a run reports."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from datasafe.config import LoadedConfig, retention_for
from datasafe.errors import ConfigError
from datasafe.ops.nightly import LockSettings, Reporting
from datasafe.ops.notify import Notifier
from datasafe.retention_policy import RetentionPolicy
from datasafe.storage.base import StorageBackend
from datasafe.units import parse_duration


def duration_option(option: str, value: str) -> timedelta:
    """A duration given for ``option`` (``30m``, ``26h``, ``7d``); a bad one is a ConfigError naming it."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def lock_settings(config: LoadedConfig, wait: str | None = None) -> LockSettings:
    """The source lease's lifetime (config ``lock.ttl``) and how long to wait for it (``--wait``)."""
    return LockSettings(config.config.lock.ttl_delta, None if wait is None else duration_option("--wait", wait))


def reporting(config: LoadedConfig, metrics_file: str | None = None) -> Reporting:
    """Where a backup run reports: ``metrics_file`` (default: config ``metrics_file``) and the pings."""
    n = config.config.notify
    return Reporting(metrics_file or config.config.metrics_file,
                     Notifier(n.healthcheck_url, n.webhook_url, parse_duration(n.timeout)))


def retention_policy(config: LoadedConfig, source: str, keep: Mapping[str, Any] | None = None) -> RetentionPolicy:
    """The source's configured policy with the given ``--keep-*`` options (``keep_last=3``,
    ``keep_tags=[...]``, ``min_keep=...``; None: not given) replacing its settings."""
    overrides = {k: v for k, v in (keep or {}).items() if k.startswith("keep_") or k == "min_keep"}
    overrides["keep_tags"] = list(overrides.get("keep_tags") or [])
    given = {k: v for k, v in overrides.items() if v is not None and v != []}
    base = retention_for(config, source)
    if base is None and not given:
        raise ConfigError(f"source {source} has no retention policy: set sources.{source}.retention in "
                          "datasafe.yml or give --keep-* options")
    try:
        return (base or RetentionPolicy()).merged(given)
    except (ValidationError, ValueError) as exc:
        msg = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise ConfigError(f"retention options: {msg}") from None


def lock_days(config: LoadedConfig, storage_url: str, source: str | None = None) -> int | None:
    """Days every object stays under S3 Object Lock: ``s3.object_lock_days``, or, when only
    ``object_lock_mode`` is set, the longest time the source's retention policy keeps a snapshot."""
    s3 = config.config.s3
    if not storage_url.startswith("s3://") or not s3.object_lock_mode:
        return None
    if s3.object_lock_days:
        return s3.object_lock_days
    policy = retention_for(config, source) if source else None
    days = policy.horizon_days() if policy is not None else None
    if days is None:
        raise ConfigError(f"s3.object_lock_mode is set without object_lock_days, and the retention policy of "
                          f"{source or 'this source'} gives no time bound (keep_within, keep_daily, "
                          "keep_weekly, keep_monthly or keep_yearly) to derive it from")
    return days


def apply_object_lock(config: LoadedConfig, storage: StorageBackend, source: str) -> int | None:
    """Set the Object Lock period of an S3 storage for one source's writes; returns it (None: no lock)."""
    days = lock_days(config, storage.url, source)
    if days is not None:
        storage.retain_for(days)
    return days
