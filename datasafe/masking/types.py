"""How a column and a cell look to a transformer.

A cell reaches a transformer as ``str | None`` (None is SQL NULL) in the database's text
representation: PostgreSQL ``COPY`` text after unescaping (``1987-03-02``, ``2021-05-01 12:00:00+00``,
``1234.50``, ``t``/``f``), MySQL the same with booleans ``0``/``1``, SQLite numbers as decimal text.
A transformer answers in the same representation, and :func:`fit` makes the answer fit the
column (length, precision and scale, integer range, NOT NULL). A column's kind (:data:`KINDS`,
:func:`column_kind`) is an engine fact, read in :mod:`datasafe.engines.kinds` and named here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Protocol

from datasafe.engines.kinds import KINDS as KINDS
from datasafe.engines.kinds import column_kind as column_kind

_LENGTH_RE = re.compile(
    r"(?:national )?(?:character varying|varchar2?|nvarchar|character|n?char|bpchar)\s*\(\s*(\d+)\s*\)")
_NUMERIC_RE = re.compile(r"(?:numeric|decimal|dec|fixed|number)\s*\(\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?\)")
_INT_BITS = (
    (re.compile(r"tinyint"), 8), (re.compile(r"smallint|int2|smallserial"), 16),
    (re.compile(r"mediumint"), 24), (re.compile(r"bigint|int8|bigserial|unsigned big int"), 64),
    (re.compile(r"int4|serial"), 32),
)


@dataclass(frozen=True)
class ColumnInfo:
    """A column as a transformer sees it.

    Attributes:
        name: the column name.
        type: the declared type as the snapshot records it, e.g. ``character varying(255)``,
            ``numeric(12,2)``, ``timestamp with time zone``, ``varchar(64)``, ``TEXT``.
        nullable: whether NULL is allowed.
        unique: part of a primary key or of a unique constraint.
    """

    name: str
    type: str
    nullable: bool = True
    unique: bool = False
    _parsed: tuple[int | None, int | None, int | None] = field(default=(None, None, None), init=False, repr=False,
                                                               compare=False)

    def __post_init__(self) -> None:
        t = " ".join(self.type.strip().lower().split())
        length = _LENGTH_RE.match(t)
        numeric = _NUMERIC_RE.match(t)
        object.__setattr__(self, "_parsed", (
            int(length.group(1)) if length else None,
            int(numeric.group(1)) if numeric else None,
            (int(numeric.group(2)) if numeric.group(2) else 0) if numeric else None,
        ))

    @property
    def kind(self) -> str:
        """One of :data:`KINDS`, parsed from :attr:`type` (see :func:`column_kind`)."""
        return column_kind(self.type)

    @property
    def max_length(self) -> int | None:
        """The n of ``varchar(n)``, ``char(n)``, ``character varying(n)``, ``nvarchar(n)``."""
        return self._parsed[0]

    @property
    def precision(self) -> int | None:
        """The p of ``numeric(p,s)`` / ``decimal(p,s)``."""
        return self._parsed[1]

    @property
    def scale(self) -> int | None:
        """The s of ``numeric(p,s)`` / ``decimal(p,s)`` (0 for ``numeric(p)``)."""
        return self._parsed[2]

    @property
    def unsigned(self) -> bool:
        """A MySQL ``unsigned`` numeric type."""
        return "unsigned" in self.type.lower()

    def int_bounds(self) -> tuple[int, int] | None:
        """The range of an integer column, or None when the type does not say.

        ``integer``/``int`` as PostgreSQL and MySQL report them (lower case) are 32-bit; SQLite keeps
        the declared spelling, and its ``INTEGER`` holds 64 bits.
        """
        if self.kind != "int":
            return None
        t = self.type.strip()
        low = t.lower()
        bits = next((b for pattern, b in _INT_BITS if pattern.search(low)), None)
        if bits is None and re.match(r"int(eger)?\b", low):
            bits = 32 if t == low else 64
        if bits is None:
            return None
        if self.unsigned:
            return 0, 2**bits - 1
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


class RowView(Protocol):
    """Read-only view of the row being masked.

    Attributes:
        original: the row before masking, by column name.
        masked: the final values of the columns already done for this row: masked columns in
            the order the pipeline runs them, and kept columns (unchanged). ``template`` reads these.
    """

    @property
    def original(self) -> Mapping[str, str | None]: ...

    @property
    def masked(self) -> Mapping[str, str | None]: ...


MaskContext = RowView


@dataclass(frozen=True)
class Row:
    """A plain :class:`RowView` (tests, single values, the docs' examples)."""

    original: Mapping[str, str | None] = field(default_factory=dict)
    masked: Mapping[str, str | None] = field(default_factory=dict)


EMPTY_ROW = Row()


def zero_value(column: ColumnInfo) -> str:
    """The value a NOT NULL column gets when a rule produced NULL for it."""
    kind = column.kind
    if kind in ("int", "float"):
        return "0"
    if kind == "decimal":
        return fit("0", column) or "0"
    if kind == "bool":
        return "0" if "tinyint" in column.type.lower() or column.type.isupper() else "f"
    if kind == "json":
        return "{}"
    if kind == "uuid":
        return "00000000-0000-0000-0000-000000000000"
    if kind == "date":
        return "1970-01-01"
    if kind == "timestamp":
        return "1970-01-01 00:00:00"
    if kind == "time":
        return "00:00:00"
    if kind == "inet":
        return "0.0.0.0"
    return ""


def fit(value: str | None, column: ColumnInfo) -> str | None:
    """Make a transformer's output fit ``column``.

    - NULL in a NOT NULL column becomes the column's zero value (``''``, ``0``, ``{}``, ...).
    - Text is cut to ``max_length`` characters.
    - Decimals are rounded to the scale (half to even, always written with ``scale`` digits) and
      clamped to what the precision holds; unsigned types are clamped at zero.
    - Integers written as ``12.0`` or ``1e3`` become ``12`` and ``1000``, and are clamped to the
      range of the type when the type names it.

    Anything else, and any number that does not parse, is returned unchanged.
    """
    if value is None:
        return None if column.nullable else zero_value(column)
    kind = column.kind
    if kind == "text":
        limit = column.max_length
        return value[:limit] if limit is not None and len(value) > limit else value
    if kind == "decimal":
        return _fit_decimal(value, column)
    if kind == "int":
        return _fit_int(value, column)
    return value


def fitter(column: ColumnInfo) -> Callable[[str | None], str | None]:
    """:func:`fit` bound to ``column``: the checks that do not depend on the value are done once."""
    kind = column.kind
    nullable = column.nullable
    if kind == "text" and nullable:
        limit = column.max_length
        if limit is None:
            return _same
        return lambda value: value[:limit] if value is not None and len(value) > limit else value
    if kind not in ("text", "decimal", "int") and nullable:
        return _same
    return lambda value: fit(value, column)


def cut_limit(column: ColumnInfo) -> int | None:
    """For a non-NULL text value, what :func:`fit` does in ``column``: cut it to this many characters
    (-1: leave it as it is); None where it may do more (decimals, integers)."""
    if column.kind == "text":
        return -1 if column.max_length is None else column.max_length
    return None if column.kind in ("decimal", "int") else -1


def _same(value: str | None) -> str | None:
    return value


def _fit_decimal(value: str, column: ColumnInfo) -> str:
    precision, scale = column.precision, column.scale
    if precision is None and not column.unsigned:
        return value
    try:
        number = Decimal(value)
    except InvalidOperation:
        return value
    if not number.is_finite():
        return value
    if column.unsigned and number < 0:
        number = Decimal(0)
    if precision is None or scale is None:
        return str(number) if number != Decimal(value) else value
    quantum = Decimal(1).scaleb(-scale)
    number = number.quantize(quantum, rounding=ROUND_HALF_EVEN) if scale >= 0 else number
    limit = Decimal(10) ** (precision - scale) - quantum
    if abs(number) > limit:
        number = limit.copy_sign(number)
    return f"{number:.{max(scale, 0)}f}"


def _fit_int(value: str, column: ColumnInfo) -> str:
    try:
        number = int(value)
    except ValueError:
        try:
            exact = Decimal(value)
        except InvalidOperation:
            return value
        if not exact.is_finite():
            return value
        number = int(exact.to_integral_value(rounding=ROUND_HALF_EVEN))
    bounds = column.int_bounds()
    if bounds is not None:
        number = min(max(number, bounds[0]), bounds[1])
    text = str(number)
    return value if text == value else text
