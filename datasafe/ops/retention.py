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

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from datasafe.retention_policy import RetentionPolicy

#: (policy field, reason, period of a UTC timestamp)
_PERIODS: tuple[tuple[str, str, Callable[[datetime], Hashable]], ...] = (
    ("keep_hourly", "hourly snapshot", lambda t: (t.year, t.month, t.day, t.hour)),
    ("keep_daily", "daily snapshot", lambda t: (t.year, t.month, t.day)),
    ("keep_weekly", "weekly snapshot", lambda t: tuple(t.isocalendar())[:2]),
    ("keep_monthly", "monthly snapshot", lambda t: (t.year, t.month)),
    ("keep_yearly", "yearly snapshot", lambda t: t.year),
)


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
