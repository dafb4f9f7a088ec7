"""Which snapshots a retention policy keeps: restic's ``forget --keep-*`` rules as a pure function.

:func:`select` sorts the snapshots newest first and applies every rule of the policy:

- ``keep_last n`` keeps the ``n`` newest snapshots.
- ``keep_hourly`` / ``keep_daily`` / ``keep_weekly`` / ``keep_monthly`` / ``keep_yearly n`` keep,
  for each of the last ``n`` hours / days / ISO weeks / months / years *that have snapshots*,
  the newest snapshot of that period. Periods are computed in UTC; a week is an ISO week
  ``(ISO year, week)``, so 31 December can belong to week 1 of the next year. A period without
  snapshots does not use up the count.
- ``-1`` for any of the counts means unlimited (every snapshot for ``keep_last``, one per period
  for the others).
- ``keep_within d`` keeps every snapshot taken within ``d`` before the *newest snapshot* (not
  before now: a source whose backups stopped keeps its history). Years and months are calendar
  years and months.
- ``keep_tags`` keeps every snapshot that carries at least one of the tags.

A snapshot kept by several rules lists every reason. A policy without any rule is refused
(``ValueError``): removing every snapshot is never what was meant.

Then the safety rails, which only ever keep more:

1. the newest snapshot that passed verification is kept ("newest verified");
2. if fewer than ``min_keep`` snapshots are kept, the newest of the others are kept until there
   are ``min_keep`` ("min_keep");
3. a snapshot under object lock (``locked_until`` later than ``now``) is kept: the storage would
   refuse to delete it anyway ("object lock until ...").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from datasafe.ops.durations import Span, parse_span

#: (policy field, reason, period of a UTC timestamp)
_PERIODS: tuple[tuple[str, str, Callable[[datetime], Hashable]], ...] = (
    ("keep_hourly", "hourly snapshot", lambda t: (t.year, t.month, t.day, t.hour)),
    ("keep_daily", "daily snapshot", lambda t: (t.year, t.month, t.day)),
    ("keep_weekly", "weekly snapshot", lambda t: tuple(t.isocalendar())[:2]),
    ("keep_monthly", "monthly snapshot", lambda t: (t.year, t.month)),
    ("keep_yearly", "yearly snapshot", lambda t: t.year),
)
_COUNTS = ("keep_last", *(name for name, _, _ in _PERIODS))


@dataclass(frozen=True)
class SnapshotRef:
    """What retention needs to know about one snapshot."""

    snapshot_id: str
    #: when the snapshot was taken (timezone-aware; buckets are computed in UTC)
    time: datetime
    tags: frozenset[str] = frozenset()
    #: the snapshot passed verification (at backup time or by a later ``verify``)
    verified: bool = False
    #: the storage's object lock (S3 Object Lock retain-until) on its objects, if any
    locked_until: datetime | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError(f"snapshot {self.snapshot_id}: time must be timezone-aware, got {self.time!r}")
        if self.locked_until is not None and self.locked_until.tzinfo is None:
            raise ValueError(f"snapshot {self.snapshot_id}: locked_until must be timezone-aware")


class RetentionPolicy(BaseModel):
    """The ``retention:`` settings of a source (and the ``--keep-*`` options of one run)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_last: int | None = Field(None, ge=-1, description="the n newest snapshots (-1: all)")
    keep_hourly: int | None = Field(None, ge=-1, description="newest of each of the last n hours with snapshots")
    keep_daily: int | None = Field(None, ge=-1, description="newest of each of the last n days with snapshots")
    keep_weekly: int | None = Field(None, ge=-1, description="newest of each of the last n ISO weeks with snapshots")
    keep_monthly: int | None = Field(None, ge=-1, description="newest of each of the last n months with snapshots")
    keep_yearly: int | None = Field(None, ge=-1, description="newest of each of the last n years with snapshots")
    keep_within: str | None = Field(None, description="every snapshot within this duration before the newest")
    keep_tags: list[str] = Field(default_factory=list, description="every snapshot carrying one of these tags")
    min_keep: int = Field(1, ge=0, description="never keep fewer snapshots than this")

    @field_validator("keep_within")
    @classmethod
    def _within(cls, v: str | None) -> str | None:
        if v is None:
            return None
        span = parse_span(v)
        if span.uses_bare_m:
            raise ValueError(
                f"{v!r} is ambiguous: restic reads m as months, datasafe as minutes; "
                "write mo for months (6mo) or min for minutes (30min)"
            )
        return span.text

    @field_validator("keep_tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        if any(not t.strip() for t in v):
            raise ValueError("keep_tags: a tag cannot be empty")
        return v

    @property
    def within(self) -> Span | None:
        return parse_span(self.keep_within) if self.keep_within else None

    @property
    def is_empty(self) -> bool:
        """True when no rule keeps anything (0 counts as unset, as in restic)."""
        if any(getattr(self, name) for name in _COUNTS):
            return False
        within = self.within
        if within is not None and (within.years or within.months or within.rest > timedelta(0)):
            return False
        return not self.keep_tags

    def merged(self, overrides: Mapping[str, Any] | RetentionPolicy | None) -> RetentionPolicy:
        """This policy with the settings given in ``overrides`` replacing its own, one setting at a time.

        ``None`` (and an empty ``keep_tags``) in ``overrides`` means "not given": the CLI passes
        every ``--keep-*`` option and only those the user typed take effect. Unknown keys raise
        :class:`pydantic.ValidationError`.
        """
        if overrides is None:
            return self
        given = overrides.model_dump(exclude_unset=True) if isinstance(overrides, RetentionPolicy) else dict(overrides)
        changes = {k: v for k, v in given.items() if v is not None and not (k == "keep_tags" and not v)}
        if not changes:
            return self
        return RetentionPolicy.model_validate({**self.model_dump(exclude_unset=True), **changes})

    def horizon_days(self) -> int | None:
        """How many days this policy may keep a snapshot at most, when that is bounded by time.

        Used to derive S3 Object Lock retention from the policy: ``keep_within`` and the period
        rules (a day per daily, 7 per weekly, 31 per monthly, 366 per yearly snapshot, rounded up
        for hourly ones). None when a rule keeps snapshots without a time bound (``-1``) or no
        time-based rule is set (``keep_last`` and ``keep_tags`` only)."""
        spans: list[int] = []
        per_period = {"keep_hourly": 1 / 24, "keep_daily": 1, "keep_weekly": 7, "keep_monthly": 31,
                      "keep_yearly": 366}
        for name, days in per_period.items():
            n = getattr(self, name)
            if n == -1:
                return None
            if n:
                spans.append(math.ceil(n * days))
        span = self.within
        if span is not None:
            spans.append(math.ceil(span.approx.total_seconds() / 86400))
        return max(spans) if spans else None

    def describe(self) -> str:
        """``keep_last=7 keep_daily=14 keep_within=2d min_keep=3``: the rules in effect, for logs."""
        parts = [f"{name}={getattr(self, name)}" for name in _COUNTS if getattr(self, name)]
        if self.keep_within:
            parts.append(f"keep_within={self.keep_within}")
        if self.keep_tags:
            parts.append(f"keep_tags={','.join(self.keep_tags)}")
        parts.append(f"min_keep={self.min_keep}")
        return " ".join(parts)


@dataclass
class Decision:
    """The outcome of :func:`select`: both lists newest first."""

    keep: list[tuple[SnapshotRef, list[str]]] = field(default_factory=list)
    remove: list[SnapshotRef] = field(default_factory=list)

    @property
    def kept_ids(self) -> list[str]:
        return [ref.snapshot_id for ref, _ in self.keep]

    @property
    def removed_ids(self) -> list[str]:
        return [ref.snapshot_id for ref in self.remove]

    def reasons(self, snapshot_id: str) -> list[str]:
        """Why ``snapshot_id`` is kept; empty when it is removed."""
        for ref, why in self.keep:
            if ref.snapshot_id == snapshot_id:
                return why
        return []


def select(snapshots: Iterable[SnapshotRef], policy: RetentionPolicy, now: datetime) -> Decision:
    """Decide which snapshots ``policy`` keeps and which it removes.

    Args:
        snapshots: the complete snapshots of one source, in any order.
        policy: the rules; see the module docstring.
        now: the current time (aware), for object locks only: every other rule is relative to the
            snapshots themselves, so a pruning run that is late or repeated decides the same.

    Raises:
        ValueError: the policy has no rule ("retention policy keeps nothing"), a snapshot id
            appears twice, or a time is not timezone-aware.
    """
    if policy.is_empty:
        raise ValueError(
            "retention policy keeps nothing: set at least one of keep_last, keep_hourly, keep_daily, "
            "keep_weekly, keep_monthly, keep_yearly, keep_within or keep_tags"
        )
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    ordered = sorted(snapshots, key=lambda s: (s.time.astimezone(timezone.utc), s.snapshot_id), reverse=True)
    if len({s.snapshot_id for s in ordered}) != len(ordered):
        raise ValueError("the same snapshot id appears twice")
    reasons: list[list[str]] = [[] for _ in ordered]
    utc = [s.time.astimezone(timezone.utc) for s in ordered]

    # keep_last is a period of its own: every snapshot is in a period by itself
    rules: list[tuple[int, str, Callable[[int], Hashable]]] = []
    if policy.keep_last:
        rules.append((policy.keep_last, "last snapshot", lambda i: i))
    for name, reason, period in _PERIODS:
        count = getattr(policy, name)
        if count:
            rules.append((count, reason, _by_index(period, utc)))
    for count, reason, bucket in rules:
        last: Hashable = object()
        for i in range(len(ordered)):
            if count == 0:
                break
            b = bucket(i)
            if b != last:  # the first (newest) snapshot seen of a period
                reasons[i].append(reason)
                last = b
                if count > 0:
                    count -= 1

    within = policy.within
    if within is not None and ordered:
        limit = within.before(utc[0])
        for i, t in enumerate(utc):
            if t >= limit:
                reasons[i].append(f"within {within.text}")

    for i, snap in enumerate(ordered):
        for tag in policy.keep_tags:
            if tag in snap.tags:
                reasons[i].append(f"tag {tag}")

    # safety rails: they only ever add snapshots to keep
    newest_verified = next((i for i, s in enumerate(ordered) if s.verified), None)
    if newest_verified is not None:
        reasons[newest_verified].append("newest verified")
    missing = policy.min_keep - sum(1 for r in reasons if r)
    for i in range(len(ordered)):
        if missing <= 0:
            break
        if not reasons[i]:
            reasons[i].append("min_keep")
            missing -= 1
    now_utc = now.astimezone(timezone.utc)
    for i, snap in enumerate(ordered):
        if snap.locked_until is not None and snap.locked_until.astimezone(timezone.utc) > now_utc:
            reasons[i].append(f"object lock until {snap.locked_until.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}")

    decision = Decision()
    for snap, why in zip(ordered, reasons, strict=True):
        if why:
            decision.keep.append((snap, why))
        else:
            decision.remove.append(snap)
    return decision


def _by_index(period: Callable[[datetime], Hashable], times: list[datetime]) -> Callable[[int], Hashable]:
    return lambda i: period(times[i])
