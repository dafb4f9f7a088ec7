"""The retention policy model: the ``retention:`` settings of a source and the ``--keep-*`` options.

Which snapshots a policy keeps is decided by :func:`datasafe.ops.retention.select`; this module
holds only the validated settings, so the configuration can carry them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from datasafe.units import Span, parse_span

#: the count rules, in the order :meth:`RetentionPolicy.describe` lists them
COUNT_RULES = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")


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
        if any(getattr(self, name) for name in COUNT_RULES):
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
        parts = [f"{name}={getattr(self, name)}" for name in COUNT_RULES if getattr(self, name)]
        if self.keep_within:
            parts.append(f"keep_within={self.keep_within}")
        if self.keep_tags:
            parts.append(f"keep_tags={','.join(self.keep_tags)}")
        parts.append(f"min_keep={self.min_keep}")
        return " ".join(parts)
