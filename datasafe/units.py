"""Sizes and durations as people write them in datasafe.yml and on the command line.

Sizes (:func:`parse_size`): a whole number of bytes with an optional unit, decimal or binary:
``1048576``, ``100MB`` (10^8 bytes), ``64MiB`` (2^26 bytes); units ``B``, ``K``/``KB``, ``KiB``,
``M``/``MB``, ``MiB``, ``G``/``GB``, ``GiB``, ``T``/``TB``, ``TiB``, in any letter case.

Durations (:func:`parse_duration`, :func:`parse_span`, :func:`format_duration`): ``26h``, ``7d``,
``1h30m``, ``90s``, ``2w``, ``1y2mo3d``. A duration is one or more ``<whole number><unit>`` parts,
largest unit first, each unit at most once (spaces between parts are allowed). Units, all lower case:

=========  =======================================================================
``y``      year: 365 days as a :class:`~datetime.timedelta`; a calendar year in ``keep_within``
``mo``     month: 30 days as a timedelta; a calendar month in ``keep_within``
``w``      week (7 days)
``d``      day (24 hours)
``h``      hour
``m``      minute (``min`` is accepted too)
``s``      second
``ms``     millisecond
=========  =======================================================================

**``m`` is always minutes** (as in ``ttl: 5m``, ``--wait 1h30m``, systemd and Kubernetes); months
are ``mo``. restic's ``--keep-within`` reads ``m`` as *months*, so ``1y2m3d`` (restic for one year,
two months and three days) is refused here, because the units are out of order (minutes before
days), and a retention policy refuses a ``keep_within`` that uses ``m`` at all (see
:mod:`datasafe.retention_policy`): a restic policy copied verbatim must never silently mean
minutes where months were meant.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

#: unit -> (rank, fixed length); lower rank = larger unit, parts must come in increasing rank
_UNITS: dict[str, tuple[int, timedelta]] = {
    "y": (0, timedelta(days=365)),
    "mo": (1, timedelta(days=30)),
    "w": (2, timedelta(weeks=1)),
    "d": (3, timedelta(days=1)),
    "h": (4, timedelta(hours=1)),
    "m": (5, timedelta(minutes=1)),
    "min": (5, timedelta(minutes=1)),
    "s": (6, timedelta(seconds=1)),
    "ms": (7, timedelta(milliseconds=1)),
}
_PART = re.compile(r"\s*(\d+)\s*(min|mo|ms|y|w|d|h|m|s)(?![a-z])")
_EXAMPLES = "examples: 90s, 5m, 1h30m, 26h, 7d, 2w, 6mo, 1y"

_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?i?B?)?\s*$", re.I)
_SIZE_UNITS = {"": 1, "B": 1, "K": 1000, "KB": 1000, "KIB": 1024, "M": 10**6, "MB": 10**6, "MIB": 1 << 20,
               "G": 10**9, "GB": 10**9, "GIB": 1 << 30, "T": 10**12, "TB": 10**12, "TIB": 1 << 40}


def parse_size(value: object) -> int:
    """``64MiB``, ``100MB``, ``1048576`` -> bytes (an int is taken as it is).

    Raises:
        ValueError: the value is not a size; the message shows examples.
    """
    if isinstance(value, int):
        return value
    m = _SIZE.match(str(value))
    if not m or (m.group(2) or "").upper() not in _SIZE_UNITS:
        raise ValueError(f"not a size: {value!r} (examples: 64MiB, 100MB, 1048576)")
    return int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").upper()]


@dataclass(frozen=True)
class Span:
    """A parsed duration that keeps years and months apart from the fixed-length rest.

    ``before(t)`` steps back whole calendar years and months (as restic's ``keep-within`` does),
    then the fixed rest; :attr:`approx` counts a year as 365 days and a month as 30.
    """

    text: str
    years: int = 0
    months: int = 0
    rest: timedelta = timedelta(0)
    #: the text used the unit ``m`` (minutes here, months in restic)
    uses_bare_m: bool = False

    @property
    def approx(self) -> timedelta:
        return self.years * _UNITS["y"][1] + self.months * _UNITS["mo"][1] + self.rest

    def before(self, t: datetime) -> datetime:
        """The instant this span before ``t``; a day that does not exist in the target month is clamped
        (31 March minus one month is 28 or 29 February)."""
        month_index = t.year * 12 + (t.month - 1) - (self.years * 12 + self.months)
        year, month = divmod(month_index, 12)
        month += 1
        if year < 1:
            raise ValueError(f"{self.text} before {t.isoformat()} is before the year 1")
        day = min(t.day, calendar.monthrange(year, month)[1])
        return t.replace(year=year, month=month, day=day) - self.rest


def parse_span(text: str) -> Span:
    """Parse a duration, keeping calendar years and months (for ``keep_within``).

    Raises:
        ValueError: the text is not a duration; the message shows what is accepted.
    """
    if not isinstance(text, str):
        raise ValueError(f"not a duration: {text!r} ({_EXAMPLES})")
    source = text.strip()
    if not source:
        raise ValueError(f"empty duration ({_EXAMPLES})")
    try:
        span = _parse_span(source)
        _fits = span.approx  # every span is also used as a timedelta (999999999999d is more than one holds)
    except OverflowError:
        raise ValueError(f"{source!r} is longer than any duration datasafe can use") from None
    return span


def _parse_span(source: str) -> Span:
    """:func:`parse_span` of the stripped, non-empty ``source``."""
    pos = 0
    last_rank = -1
    years = months = 0
    rest = timedelta(0)
    bare_m = False
    while pos < len(source):
        m = _PART.match(source, pos)
        if not m:
            raise ValueError(_explain(source, pos))
        number, unit = int(m.group(1)), m.group(2)
        rank, length = _UNITS[unit]
        if rank <= last_rank:
            raise ValueError(_order_problem(source, unit))
        last_rank = rank
        if unit == "y":
            years = number
        elif unit == "mo":
            months = number
        else:
            rest += number * length
        bare_m = bare_m or unit == "m"
        pos = m.end()
    return Span(text=source, years=years, months=months, rest=rest, uses_bare_m=bare_m)


def parse_duration(text: str) -> timedelta:
    """``"26h"``, ``"1h30m"``, ``"7d"``, ``"2w"``, ``"90s"`` -> :class:`~datetime.timedelta`.

    ``m`` is minutes, ``mo`` months (30 days), ``y`` years (365 days); see the module docstring.

    Raises:
        ValueError: the text is not a duration; the message shows what is accepted.
    """
    return parse_span(text).approx


def format_duration(td: timedelta) -> str:
    """The shortest text :func:`parse_duration` reads back as ``td`` (to the millisecond).

    Days are the largest unit (``400d``, not ``1y35d``): a year and a month have no fixed length.
    """
    total_ms = round(td.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    sign = "-" if total_ms < 0 else ""
    total_ms = abs(total_ms)
    parts = []
    for unit, ms in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        n, total_ms = divmod(total_ms, ms)
        if n:
            parts.append(f"{n}{unit}")
    return sign + "".join(parts)


def _explain(source: str, pos: int) -> str:
    bad = source[pos:].strip()
    if re.fullmatch(r"\d+", bad):
        hint = f"a number needs a unit, e.g. {bad}s, {bad}m or {bad}h"
    elif re.match(r"[-+]", bad):
        hint = "a duration cannot be negative or signed"
    elif re.match(r"\d+[.,]", bad):
        hint = "use whole numbers, e.g. 90m instead of 1.5h"
    elif re.match(r"\d+\s*[A-Za-z]+", bad):
        unit = re.match(r"\d+\s*([A-Za-z]+)", bad).group(1)  # type: ignore[union-attr]
        hint = f"unknown unit {unit!r} (units: y, mo, w, d, h, m, s, ms)"
    else:
        hint = _EXAMPLES
    return f"not a duration: {source!r}: {hint}"


def _order_problem(source: str, unit: str) -> str:
    msg = f"not a duration: {source!r}: units must go from largest to smallest, each at most once"
    if re.search(r"\d\s*m(?![a-z])", source):
        msg += " (m means minutes; write mo for months, e.g. 1y2mo3d)"
    return msg
