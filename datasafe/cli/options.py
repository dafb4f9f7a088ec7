"""Option groups shared by several commands: retention overrides, lease waiting, reporting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import click

from datasafe.config import LoadedConfig, retention_for
from datasafe.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

KEEP_COUNTS = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


def retention_options(f: F) -> F:
    """``--keep-last N`` ... ``--keep-within``, ``--keep-tag``, ``--min-keep``: override retention for one run."""
    f = click.option("--min-keep", type=click.IntRange(0), help="Never keep fewer snapshots than this.")(f)
    f = click.option("--keep-tag", "keep_tags", multiple=True, metavar="TAG",
                     help="Keep every snapshot with this tag (repeatable; replaces keep_tags).")(f)
    f = click.option("--keep-within", metavar="DURATION",
                     help="Keep every snapshot taken within DURATION before the newest (e.g. 2d, 6mo).")(f)
    for name in reversed(KEEP_COUNTS):
        what = "newest snapshots" if name == "last" else f"newest snapshot of each of the last N {name} periods"
        f = click.option(f"--keep-{name}", f"keep_{name}", type=click.IntRange(-1), metavar="N",
                         help=f"Keep the N {what} (-1: unlimited).")(f)
    return f


def policy_from(cfg: LoadedConfig, source: str, options: dict[str, Any]) -> Any:
    """The source's configured policy with the given ``--keep-*`` options replacing its settings."""
    from pydantic import ValidationError

    from datasafe.ops.retention import RetentionPolicy

    overrides = {k: v for k, v in options.items() if k.startswith("keep_") or k == "min_keep"}
    overrides["keep_tags"] = list(overrides.get("keep_tags") or [])
    given = {k: v for k, v in overrides.items() if v is not None and v != []}
    base = retention_for(cfg, source)
    if base is None and not given:
        raise ConfigError(f"source {source} has no retention policy: set sources.{source}.retention in "
                          "datasafe.yml or give --keep-* options")
    try:
        return (base or RetentionPolicy()).merged(given)
    except (ValidationError, ValueError) as exc:
        msg = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise ConfigError(f"retention options: {msg}") from None


def wait_option(f: F) -> F:
    return click.option("--wait", metavar="DURATION",
                        help="If another run holds the source's lock, wait up to DURATION for it "
                             "(e.g. 30m) instead of exiting with code 9.")(f)


def parse_wait(value: str | None) -> timedelta | None:
    if value is None:
        return None
    from datasafe.ops.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"--wait: {exc}") from None


def lock_days(cfg: LoadedConfig, storage_url: str, source: str | None = None) -> int | None:
    """Days every object stays under S3 Object Lock: ``s3.object_lock_days``, or, when only
    ``object_lock_mode`` is set, the longest time the source's retention policy keeps a snapshot."""
    s3 = cfg.config.s3
    if not storage_url.startswith("s3://") or not s3.object_lock_mode:
        return None
    if s3.object_lock_days:
        return s3.object_lock_days
    policy = retention_for(cfg, source) if source else None
    days = policy.horizon_days() if policy is not None else None
    if days is None:
        raise ConfigError(f"s3.object_lock_mode is set without object_lock_days, and the retention policy of "
                          f"{source or 'this source'} gives no time bound (keep_within, keep_daily, "
                          "keep_weekly, keep_monthly or keep_yearly) to derive it from")
    return days


def apply_object_lock(cfg: LoadedConfig, storage: object, source: str) -> int | None:
    """Set the lock period of an S3 storage for one source's writes; returns it."""
    days = lock_days(cfg, getattr(storage, "url", ""), source)
    settings = getattr(storage, "settings", None)
    if days is not None and settings is not None and getattr(settings, "object_lock_days", None) != days:
        storage.settings = settings.model_copy(update={"object_lock_days": days})  # type: ignore[attr-defined]
    return days
