"""``noise``: move numbers by up to ±N % and dates or timestamps by up to ±N days."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, Field, model_validator

from datasafe.masking import keyed
from datasafe.masking.errors import RulesError
from datasafe.masking.transformers.base import NUMBER_KINDS, Options, Transformer, register
from datasafe.masking.transformers.temporal import DAY, Stamp, is_special_date, nonzero_offset, shift
from datasafe.masking.types import ColumnInfo, RowView

_INTEGER = re.compile(r"[-+]?\d+")
_STEPS = 1_000_000  # resolution of the random factor


class NoiseOptions(Options):
    percent: float | None = Field(None, gt=0, le=1000, description="numbers: move by a random amount of up to "
                                                                   "±percent % of the value")
    days: int | None = Field(None, ge=1, le=365_000, description="dates and timestamps: move by up to ±days "
                                                                 "(never by 0; timestamps by any number of "
                                                                 "seconds in that range)")
    keep_sign: bool = Field(True, description="numbers never cross zero (with percent > 100 they stop at 0)")
    minimum: float | None = Field(None, description="numbers: never below this")
    maximum: float | None = Field(None, description="numbers: never above this")

    @model_validator(mode="after")
    def _something(self) -> NoiseOptions:
        if self.percent is None and self.days is None:
            raise ValueError("noise needs `percent` (numbers) or `days` (dates, timestamps)")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum is above maximum")
        return self


@register("noise")
class Noise(Transformer[NoiseOptions]):
    """A nearby number or date: same kind, same text form, within the type's range.

    Integers stay integers, decimals keep their scale (the column's, or the input's number of
    decimals) and precision, and the sign is kept. Dates move by whole days; timestamps keep their
    format, fractional-second digits and time zone suffix. `infinity` and zero dates stay as they
    are. In a text column a value is shifted as a date when it looks like one and `days` is set,
    and as a number otherwise.
    """

    Options = NoiseOptions
    kinds = NUMBER_KINDS | {"date", "timestamp", "text", "other"}
    example = "amount: {noise: {percent: 10}}\ncreated_at: {noise: {days: 30}}"

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        super().__init__(options, column, key)
        kind = column.kind
        if kind in NUMBER_KINDS and self.options.percent is None:
            raise RulesError(f"column {column.name} ({column.type}): rule 'noise' needs `percent` for numbers")
        if kind in ("date", "timestamp") and self.options.days is None:
            raise RulesError(f"column {column.name} ({column.type}): rule 'noise' needs `days` for dates")

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        draws = keyed.Draws(keyed.digest(self.key, value, attempt))
        kind = self.column.kind
        if self.options.days is not None and (kind in ("date", "timestamp") or (
                kind not in NUMBER_KINDS and value[:4].isdigit() and value[4:5] == "-")):
            return self._moment(value, draws)
        if self.options.percent is None:
            raise self.unmaskable("not a date, and `percent` is not set")
        return self._number(value, draws)

    def _moment(self, value: str, draws: keyed.Draws) -> str:
        if is_special_date(value):
            return value
        stamp = Stamp.parse(value)
        if stamp is None:
            raise self.unmaskable("not a date or timestamp in ISO form")
        days = self.options.days or 1
        seconds = nonzero_offset(draws, days * DAY) if stamp.has_time else nonzero_offset(draws, days) * DAY
        moved = shift(stamp.moment, seconds) or shift(stamp.moment, -seconds)
        return stamp.render(moved) if moved is not None else value

    def _number(self, value: str, draws: keyed.Draws) -> str:
        text = value.strip()
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise self.unmaskable("not a number") from None
        if not number.is_finite():
            return value
        o = self.options
        factor = Decimal(draws.below(2 * _STEPS + 1) - _STEPS) / _STEPS * Decimal(str(o.percent)) / 100
        new = number + number * factor
        if o.keep_sign and (new < 0 < number or number < 0 < new):
            new = Decimal(0)
        if o.minimum is not None:
            new = max(new, Decimal(str(o.minimum)))
        if o.maximum is not None:
            new = min(new, Decimal(str(o.maximum)))
        kind = self.column.kind
        if kind == "int" or (kind != "float" and _INTEGER.fullmatch(text)):
            return str(int(new.to_integral_value(rounding=ROUND_HALF_EVEN)))
        if kind == "float":
            return repr(float(new))
        scale = self.column.scale
        if scale is None:
            exponent = number.as_tuple().exponent
            scale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        return f"{new.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_EVEN):.{scale}f}"
