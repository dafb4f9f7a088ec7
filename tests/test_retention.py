"""Retention: restic's ``forget --keep-*`` semantics, the safety rails, and durations.

Most cases are rows of a table: snapshot times (the time is the snapshot's id), a policy, the ids
expected to be kept. Times are UTC unless they carry an offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from datasafe.ops.retention import SnapshotRef, select
from datasafe.retention_policy import RetentionPolicy
from datasafe.units import format_duration, parse_duration, parse_span

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


def ref(
    spec: str, *, tags: tuple[str, ...] = (), verified: bool = False, locked_until: str | None = None
) -> SnapshotRef:
    """``"2024-01-01 10:00"`` or with an offset ``"2024-01-02 01:00+02:00"``; the spec is the id."""
    t = datetime.fromisoformat(spec)
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    lock = datetime.fromisoformat(locked_until).replace(tzinfo=timezone.utc) if locked_until else None
    return SnapshotRef(spec, t, frozenset(tags), verified, lock)


@dataclass
class Case:
    name: str
    times: list[str]
    policy: dict[str, Any]
    kept: list[str]
    refs: list[SnapshotRef] = field(default_factory=list)

    def snapshots(self) -> list[SnapshotRef]:
        return self.refs + [ref(t) for t in self.times]


CASES = [
    # -- keep_last ------------------------------------------------------------------------------
    Case("last n keeps the n newest",
         ["2024-01-01 01:00", "2024-01-01 02:00", "2024-01-01 03:00", "2024-01-01 04:00", "2024-01-01 05:00"],
         {"keep_last": 3},
         ["2024-01-01 05:00", "2024-01-01 04:00", "2024-01-01 03:00"]),
    Case("last n larger than the number of snapshots keeps all",
         ["2024-01-01 01:00", "2024-01-02 01:00"], {"keep_last": 10},
         ["2024-01-02 01:00", "2024-01-01 01:00"]),
    Case("last -1 is unlimited",
         ["2020-01-01 01:00", "2022-05-01 01:00", "2024-01-01 01:00"], {"keep_last": -1},
         ["2024-01-01 01:00", "2022-05-01 01:00", "2020-01-01 01:00"]),
    Case("input order does not matter",
         ["2024-01-03 01:00", "2024-01-01 01:00", "2024-01-04 01:00", "2024-01-02 01:00"], {"keep_last": 2},
         ["2024-01-04 01:00", "2024-01-03 01:00"]),
    # -- hourly ---------------------------------------------------------------------------------
    Case("hourly: newest of each hour, hours without snapshots do not count",
         ["2024-01-01 10:05", "2024-01-01 10:40", "2024-01-01 11:10", "2024-01-01 11:50", "2024-01-01 13:00"],
         {"keep_hourly": 2},
         ["2024-01-01 13:00", "2024-01-01 11:50"]),
    Case("hourly -1: one per hour, all hours",
         ["2024-01-01 10:05", "2024-01-01 10:40", "2024-01-01 11:10", "2024-01-01 13:00"],
         {"keep_hourly": -1},
         ["2024-01-01 13:00", "2024-01-01 11:10", "2024-01-01 10:40"]),
    # -- daily ----------------------------------------------------------------------------------
    Case("daily: newest per day wins, gaps skipped",
         ["2024-01-01 02:00", "2024-01-01 14:00",
          "2024-01-02 02:00", "2024-01-02 09:00", "2024-01-02 23:59",
          "2024-01-05 02:00",
          "2024-01-06 02:00", "2024-01-06 03:00"],
         {"keep_daily": 3},
         ["2024-01-06 03:00", "2024-01-05 02:00", "2024-01-02 23:59"]),
    Case("daily -1: newest of every day",
         ["2024-01-01 02:00", "2024-01-01 14:00", "2024-01-02 02:00", "2024-01-09 02:00"],
         {"keep_daily": -1},
         ["2024-01-09 02:00", "2024-01-02 02:00", "2024-01-01 14:00"]),
    Case("daily buckets are UTC days, whatever offset the time carries",
         # 01:00+02:00 on the 2nd is 23:00 UTC on the 1st: the same UTC day as 10:00Z on the 1st
         ["2024-01-01 10:00", "2024-01-02 01:00+02:00", "2023-12-31 10:00"],
         {"keep_daily": 2},
         ["2024-01-02 01:00+02:00", "2023-12-31 10:00"]),
    # -- weekly (ISO weeks) ---------------------------------------------------------------------
    Case("weekly: ISO week spans the turn of the year (2020-W53 runs 28 Dec 2020 - 3 Jan 2021)",
         ["2020-12-21 02:00", "2020-12-28 02:00", "2021-01-01 02:00", "2021-01-03 02:00",
          "2021-01-04 02:00", "2021-01-05 02:00"],
         {"keep_weekly": 2},
         ["2021-01-05 02:00", "2021-01-03 02:00"]),
    Case("weekly: 30 Dec 2019 already belongs to 2020-W01",
         ["2019-12-29 02:00", "2019-12-30 02:00", "2020-01-01 02:00"],
         {"keep_weekly": 2},
         ["2020-01-01 02:00", "2019-12-29 02:00"]),
    Case("weekly: a week without snapshots does not count",
         ["2024-01-01 02:00", "2024-01-15 02:00", "2024-01-16 02:00", "2024-02-05 02:00"],
         {"keep_weekly": 3},
         ["2024-02-05 02:00", "2024-01-16 02:00", "2024-01-01 02:00"]),
    # -- monthly / yearly -----------------------------------------------------------------------
    Case("monthly: newest per month, February empty",
         ["2024-01-10 02:00", "2024-01-31 23:00", "2024-03-15 02:00", "2024-04-01 02:00", "2024-04-20 02:00"],
         {"keep_monthly": 2},
         ["2024-04-20 02:00", "2024-03-15 02:00"]),
    Case("monthly -1",
         ["2024-01-10 02:00", "2024-01-31 23:00", "2024-03-15 02:00"],
         {"keep_monthly": -1},
         ["2024-03-15 02:00", "2024-01-31 23:00"]),
    Case("yearly: newest per year, 2023 empty",
         ["2021-06-01 02:00", "2022-01-01 02:00", "2022-12-31 23:59", "2024-02-01 02:00"],
         {"keep_yearly": 2},
         ["2024-02-01 02:00", "2022-12-31 23:59"]),
    # -- keep_within ----------------------------------------------------------------------------
    Case("within is measured back from the newest snapshot, not from now (inclusive)",
         ["2024-01-08 11:59", "2024-01-08 12:00", "2024-01-09 08:00", "2024-01-10 12:00"],
         {"keep_within": "2d"},
         ["2024-01-10 12:00", "2024-01-09 08:00", "2024-01-08 12:00"]),
    Case("within hours and minutes",
         ["2024-01-10 09:59", "2024-01-10 10:00", "2024-01-10 11:30"],
         {"keep_within": "1h30min"},
         ["2024-01-10 11:30", "2024-01-10 10:00"]),
    Case("within a calendar month: 31 March back to 29 February (leap year)",
         ["2024-02-28 23:59", "2024-02-29 00:00", "2024-03-31 00:00"],
         {"keep_within": "1mo"},
         ["2024-03-31 00:00", "2024-02-29 00:00"]),
    Case("within a calendar year",
         ["2023-02-27 23:59", "2023-02-28 00:00", "2024-02-29 00:00"],
         {"keep_within": "1y"},
         ["2024-02-29 00:00", "2023-02-28 00:00"]),
    # -- tags -----------------------------------------------------------------------------------
    Case("tags keep every snapshot carrying any of them",
         ["2024-01-05 02:00"],
         {"keep_last": 1, "keep_tags": ["pre-deploy", "release"]},
         ["2024-01-05 02:00", "2024-01-03 02:00", "2024-01-02 02:00"],
         refs=[ref("2024-01-01 02:00", tags=("nightly",)),
               ref("2024-01-02 02:00", tags=("pre-deploy",)),
               ref("2024-01-03 02:00", tags=("release", "nightly")),
               ref("2024-01-04 02:00")]),
    Case("tags alone are a policy",
         [], {"keep_tags": ["keep"], "min_keep": 0},
         ["2024-01-01 02:00"],
         refs=[ref("2024-01-01 02:00", tags=("keep",)), ref("2024-01-02 02:00")]),
    # -- combinations -----------------------------------------------------------------------------
    Case("rules add up (union)",
         ["2024-01-01 02:00", "2024-01-02 02:00", "2024-01-03 02:00", "2024-01-03 14:00",
          "2024-02-10 02:00", "2024-03-01 02:00", "2024-03-02 02:00"],
         {"keep_last": 2, "keep_daily": 3, "keep_monthly": 3},
         ["2024-03-02 02:00", "2024-03-01 02:00", "2024-02-10 02:00", "2024-01-03 14:00"]),
    # -- safety rails ---------------------------------------------------------------------------
    Case("rail: the newest verified snapshot is never removed (only the newest verified)",
         ["2024-01-04 02:00"],
         {"keep_last": 1},
         ["2024-01-04 02:00", "2024-01-03 02:00"],
         refs=[ref("2024-01-02 02:00", verified=True), ref("2024-01-03 02:00", verified=True)]),
    Case("rail: min_keep keeps the newest others",
         ["2024-01-01 02:00", "2024-01-02 02:00", "2024-01-03 02:00", "2024-01-04 02:00"],
         {"keep_last": 1, "min_keep": 3},
         ["2024-01-04 02:00", "2024-01-03 02:00", "2024-01-02 02:00"]),
    Case("rail: min_keep counts what the policy keeps already",
         ["2024-01-02 02:00", "2024-01-03 02:00", "2024-01-04 02:00"],
         {"keep_last": 1, "keep_tags": ["old"], "min_keep": 3},
         ["2024-01-04 02:00", "2024-01-03 02:00", "2024-01-01 02:00"],
         refs=[ref("2024-01-01 02:00", tags=("old",))]),
    Case("rail: min_keep larger than the number of snapshots keeps all",
         ["2024-01-01 02:00", "2024-01-02 02:00"],
         {"keep_last": 1, "min_keep": 5},
         ["2024-01-02 02:00", "2024-01-01 02:00"]),
    Case("rail: min_keep 0 switches the rail off",
         ["2024-01-01 02:00", "2024-01-02 02:00"],
         {"keep_last": 1, "min_keep": 0},
         ["2024-01-02 02:00"]),
    Case("rail: object lock keeps until it ends (an expired lock does not)",
         ["2024-01-04 02:00"],
         {"keep_last": 1},
         ["2024-01-04 02:00", "2024-01-02 02:00"],
         refs=[ref("2024-01-01 02:00", locked_until="2029-12-31T23:59:59"),
               ref("2024-01-02 02:00", locked_until="2030-01-01T00:00:01"),
               ref("2024-01-03 02:00")]),
    Case("no snapshots, nothing to decide", [], {"keep_last": 3}, []),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_select_table(case: Case) -> None:
    policy = RetentionPolicy.model_validate(case.policy)
    snapshots = case.snapshots()
    decision = select(snapshots, policy, NOW)
    assert decision.kept_ids == case.kept
    # every snapshot is decided exactly once; both lists newest first
    assert sorted(decision.kept_ids + decision.removed_ids) == sorted(s.snapshot_id for s in snapshots)
    for ids in (decision.kept_ids, decision.removed_ids):
        times = [ref(i).time for i in ids]
        assert times == sorted(times, reverse=True)


REASON_CASES = [
    ("several rules list every reason",
     ["2024-01-01 02:00", "2024-01-02 02:00", "2024-01-02 14:00"],
     {"keep_last": 1, "keep_daily": 2, "keep_monthly": 1, "keep_within": "1d"},
     {"2024-01-02 14:00": ["last snapshot", "daily snapshot", "monthly snapshot", "within 1d"],
      "2024-01-02 02:00": ["within 1d"],
      "2024-01-01 02:00": ["daily snapshot"]}),
    ("hourly, weekly and yearly reasons",
     ["2023-06-01 02:00", "2024-01-02 02:00"],
     {"keep_hourly": 1, "keep_weekly": 1, "keep_yearly": 2},
     {"2024-01-02 02:00": ["hourly snapshot", "weekly snapshot", "yearly snapshot"],
      "2023-06-01 02:00": ["yearly snapshot"]}),
    ("a tag reason names the tag",
     [], {"keep_tags": ["pre-deploy", "release"]},
     {"t": ["tag pre-deploy", "tag release"]}),
    ("rails name themselves",
     [], {"keep_last": 1, "min_keep": 3},
     {"n": ["last snapshot"], "v": ["newest verified"], "m": ["min_keep"],
      "l": ["object lock until 2031-05-01T00:00:00Z"]}),
]

REASON_REFS = {
    "a tag reason names the tag": [SnapshotRef("t", NOW, frozenset({"pre-deploy", "release", "x"}))],
    "rails name themselves": [
        SnapshotRef("n", NOW - timedelta(days=1)),
        SnapshotRef("v", NOW - timedelta(days=2), verified=True),
        SnapshotRef("m", NOW - timedelta(days=3)),
        SnapshotRef("r", NOW - timedelta(days=4)),
        SnapshotRef("l", NOW - timedelta(days=5), locked_until=datetime(2031, 5, 1, tzinfo=timezone.utc)),
    ],
}


@pytest.mark.parametrize(("name", "times", "policy", "reasons"), REASON_CASES, ids=[c[0] for c in REASON_CASES])
def test_select_reasons(name: str, times: list[str], policy: dict[str, Any], reasons: dict[str, list[str]]) -> None:
    snapshots = REASON_REFS.get(name, []) + [ref(t) for t in times]
    decision = select(snapshots, RetentionPolicy.model_validate(policy), NOW)
    assert {ref.snapshot_id: why for ref, why in decision.keep} == reasons


def test_min_keep_and_lock_reasons_can_stack() -> None:
    snaps = [ref("2024-01-02 02:00"), ref("2024-01-01 02:00", locked_until="2031-01-01T00:00:00")]
    decision = select(snaps, RetentionPolicy(keep_last=1, min_keep=2), NOW)
    assert decision.reasons("2024-01-01 02:00") == ["min_keep", "object lock until 2031-01-01T00:00:00Z"]
    assert decision.reasons("nope") == []


@pytest.mark.parametrize(
    "policy",
    [{}, {"keep_last": 0, "keep_daily": 0}, {"keep_within": "0s"}, {"keep_tags": []}, {"min_keep": 5}],
    ids=["nothing", "zeros", "zero-within", "no-tags", "min_keep-only"],
)
def test_policy_that_keeps_nothing_is_refused(policy: dict[str, Any]) -> None:
    p = RetentionPolicy.model_validate(policy)
    assert p.is_empty
    with pytest.raises(ValueError, match="retention policy keeps nothing"):
        select([ref("2024-01-01 02:00")], p, NOW)
    with pytest.raises(ValueError, match="retention policy keeps nothing"):
        select([], p, NOW)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"keep_daily": -2}, "greater than or equal to -1"),
        ({"keep_within": "6m"}, "ambiguous"),
        ({"keep_within": "1y2m3d"}, "largest to smallest"),
        ({"keep_within": "two days"}, "not a duration"),
        ({"keep_dialy": 7}, "Extra inputs are not permitted"),
        ({"min_keep": -1}, "greater than or equal to 0"),
        ({"keep_tags": [""]}, "tag cannot be empty"),
    ],
)
def test_invalid_policies(policy: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RetentionPolicy.model_validate(policy)


def test_config_example_is_valid() -> None:
    p = RetentionPolicy.model_validate({
        "keep_last": 7, "keep_daily": 14, "keep_weekly": 8, "keep_monthly": 12, "keep_yearly": 3,
        "keep_within": "2d", "keep_tags": ["pre-deploy"], "min_keep": 3,
    })
    assert not p.is_empty
    assert p.describe() == (
        "keep_last=7 keep_daily=14 keep_weekly=8 keep_monthly=12 keep_yearly=3 keep_within=2d "
        "keep_tags=pre-deploy min_keep=3"
    )


def test_merged_overrides_one_setting_at_a_time() -> None:
    config = RetentionPolicy(keep_daily=14, keep_tags=["pre-deploy"], min_keep=3)
    # the CLI passes every option; those not given are None / empty
    run = config.merged({"keep_last": 2, "keep_daily": None, "keep_within": None, "keep_tags": ()})
    assert (run.keep_last, run.keep_daily, run.keep_tags, run.min_keep) == (2, 14, ["pre-deploy"], 3)
    run = config.merged({"keep_daily": 3, "keep_tags": ["release"], "min_keep": 1})
    assert (run.keep_daily, run.keep_tags, run.min_keep) == (3, ["release"], 1)
    assert config.merged(None) is config
    assert config.merged({}) is config
    assert config.merged(RetentionPolicy(keep_last=5)).keep_last == 5
    assert config.merged(RetentionPolicy(keep_last=5)).min_keep == 3  # a default in overrides is not "given"
    assert RetentionPolicy().merged({"keep_last": 1}).keep_last == 1
    with pytest.raises(ValidationError):
        config.merged({"keep_everything": True})
    with pytest.raises(ValidationError):
        config.merged({"keep_within": "6m"})
    assert config.keep_daily == 14  # unchanged


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SnapshotRef("x", datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        select([ref("2024-01-01 02:00")], RetentionPolicy(keep_last=1), datetime(2024, 1, 1))


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        select([ref("2024-01-01 02:00"), ref("2024-01-01 02:00")], RetentionPolicy(keep_last=1), NOW)


def test_equal_times_are_ordered_by_id() -> None:
    t = datetime(2024, 1, 1, 2, tzinfo=timezone.utc)
    snaps = [SnapshotRef("a", t), SnapshotRef("c", t), SnapshotRef("b", t)]
    decision = select(snaps, RetentionPolicy(keep_daily=1, min_keep=0), NOW)
    assert decision.kept_ids == ["c"]
    assert decision.removed_ids == ["b", "a"]


# -- durations ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("26h", timedelta(hours=26)),
        ("7d", timedelta(days=7)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30min", timedelta(hours=1, minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("500ms", timedelta(milliseconds=500)),
        ("2w", timedelta(weeks=2)),
        ("1y2mo3d", timedelta(days=365 + 60 + 3)),
        ("0s", timedelta(0)),
        (" 10s ", timedelta(seconds=10)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration"),
        ("10", "needs a unit"),
        ("1.5h", "whole numbers"),
        ("-5m", "negative"),
        ("5x", "unknown unit 'x'"),
        ("5M", "unknown unit 'M'"),
        ("1y2m3d", "m means minutes; write mo for months"),
        ("30m1h", "largest to smallest"),
        ("1h1h", "largest to smallest"),
        ("5m1min", "largest to smallest"),
        ("h", "not a duration"),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_span_steps_back_calendar_months() -> None:
    t = datetime(2024, 3, 31, 12, tzinfo=timezone.utc)
    assert parse_span("1mo").before(t) == datetime(2024, 2, 29, 12, tzinfo=timezone.utc)
    assert parse_span("1y1mo1d2h").before(t) == datetime(2023, 2, 27, 10, tzinfo=timezone.utc)
    assert parse_span("13mo").before(t) == datetime(2023, 2, 28, 12, tzinfo=timezone.utc)
    assert parse_span("5m").uses_bare_m and not parse_span("5min").uses_bare_m


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(hours=26), "1d2h"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(milliseconds=1500), "1s500ms"),
        (timedelta(days=400), "400d"),
        (timedelta(minutes=-5), "-5m"),
    ],
)
def test_format_duration(td: timedelta, text: str) -> None:
    assert format_duration(td) == text
    if td >= timedelta(0):
        assert parse_duration(text) == td
