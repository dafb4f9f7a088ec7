"""Dates and timestamps as text: parse the leading date and time, rewrite them, keep the rest.

The text forms are the ones the engines write: ``1987-03-02``, ``2021-05-01 12:00:00+00``,
``2021-05-01 12:00:00.123456+05:30``, ``2021-05-01T12:00:00Z``. Whatever follows the time (a time
zone suffix, ``BC`` is left alone) is kept byte for byte.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from datasafe.masking import keyed
from datasafe.masking.transformers.base import Options, Transformer, register
from datasafe.masking.types import RowView

_STAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:([ T])(\d{2}):(\d{2})(?::(\d{2}))?(\.\d+)?)?(.*)", re.S)
DAY = 86_400


@dataclass(frozen=True)
class Stamp:
    """A parsed date or timestamp text and how to write it back."""

    moment: dt.datetime
    has_time: bool
    sep: str
    has_seconds: bool
    fraction: str
    rest: str

    @classmethod
    def parse(cls, value: str) -> Stamp | None:
        """None for text that does not start with a real date (``0000-00-00``, ``infinity``, BC dates)."""
        m = _STAMP.fullmatch(value)
        if m is None or m.group(9).strip().upper().endswith("BC"):
            return None
        year, month, day, sep, hour, minute, second, fraction, rest = m.groups()
        try:
            moment = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                                 int(second or 0))
        except ValueError:
            return None
        return cls(moment, hour is not None, sep or " ", second is not None, fraction or "", rest)

    def render(self, moment: dt.datetime) -> str:
        out = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        if self.has_time:
            out += f"{self.sep}{moment.hour:02d}:{moment.minute:02d}"
            if self.has_seconds:
                out += f":{moment.second:02d}"
            out += self.fraction
        return out + self.rest


def is_special_date(value: str) -> bool:
    """``infinity``, ``-infinity`` (PostgreSQL) and zero dates (MySQL): no real day to hide."""
    text = value.strip().lower()
    return text in ("infinity", "-infinity") or text.startswith("0000-00-00")


def shift(moment: dt.datetime, seconds: int) -> dt.datetime | None:
    """``moment`` moved by ``seconds``; None when that leaves the years 1-9999."""
    try:
        return moment + dt.timedelta(seconds=seconds)
    except OverflowError:
        return None


def nonzero_offset(draws: keyed.Draws, limit: int) -> int:
    """A whole number in [-limit, limit] other than 0."""
    step = 1 + draws.below(limit)
    return step if draws.below(2) else -step


def random_day(draws: keyed.Draws, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=draws.below((last - first).days + 1))


class DateOfBirthOptions(Options):
    keep: Literal["year", "month", "none"] = Field(
        "year", description="what stays: `year` (any day of the same year), `month` (same year and month) or "
                            "`none` (any day between `min_year` and `max_year`)")
    age_band: int | None = Field(None, ge=1, le=100, description="instead of `keep`: any day in the same band of "
                                                                 "N years (10: 1987 → 1980-1989)")
    min_year: int = Field(1930, ge=1, le=9999, description="first year for `keep: none` and for values that "
                                                          "are not dates")
    max_year: int = Field(2005, ge=1, le=9999, description="last year for `keep: none` and for values that "
                                                          "are not dates")
    format: str | None = Field(None, description="strptime/strftime format of a text column that does not store "
                                                 "ISO dates, e.g. `%d/%m/%Y`")

    @model_validator(mode="after")
    def _years(self) -> DateOfBirthOptions:
        if self.min_year > self.max_year:
            raise ValueError("min_year is after max_year")
        return self


@register("date_of_birth")
class DateOfBirth(Transformer[DateOfBirthOptions]):
    """A birth date that keeps its year (or month, or age band) and its type and text form.

    Dates stay dates; in a timestamp the time and time zone are kept. Text that is not a date
    gets a date between `min_year` and `max_year`; `0000-00-00` and `infinity` stay as they are.
    """

    Options = DateOfBirthOptions
    kinds = frozenset({"date", "timestamp", "text", "other"})
    example = "birth_date: {date_of_birth: {keep: year}}\ndob: {date_of_birth: {age_band: 10}}"

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        draws = keyed.Draws(keyed.digest(self.key, value, attempt))
        o = self.options
        if o.format is not None:
            try:
                day = dt.datetime.strptime(value, o.format).date()
            except ValueError:
                return self._any_day(draws).strftime(o.format)
            return self._new_day(day, draws).strftime(o.format)
        stamp = Stamp.parse(value)
        if stamp is None:
            return value if is_special_date(value) else self._any_day(draws).isoformat()
        day = self._new_day(stamp.moment.date(), draws)
        return stamp.render(dt.datetime.combine(day, stamp.moment.time()))

    def _any_day(self, draws: keyed.Draws) -> dt.date:
        return random_day(draws, dt.date(self.options.min_year, 1, 1), dt.date(self.options.max_year, 12, 31))

    def _new_day(self, day: dt.date, draws: keyed.Draws) -> dt.date:
        o = self.options
        if o.age_band is not None:
            start = max(1, day.year - day.year % o.age_band)
            return random_day(draws, dt.date(start, 1, 1), dt.date(min(9999, start + o.age_band - 1), 12, 31))
        if o.keep == "year":
            return random_day(draws, dt.date(day.year, 1, 1), dt.date(day.year, 12, 31))
        if o.keep == "month":
            last = calendar.monthrange(day.year, day.month)[1]
            return random_day(draws, day.replace(day=1), day.replace(day=last))
        return self._any_day(draws)

