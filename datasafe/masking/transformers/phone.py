"""``phone``: phone numbers that keep their layout and stay valid numbers of their region.

With ``keep_format`` the masked number keeps every character of the input that is not a digit
(``+``, spaces, dashes, parentheses, ``ext.``) and the digits in front of the national number
(international prefix, country code, trunk prefix such as the ``0`` of ``020`` or the ``(0)`` of
``+44 (0)20``); the national number is replaced by a valid number of the input's region
(``phonenumbers.is_valid_number``) with as many digits, and an extension by other digits.

The region is learned with the ``phonenumbers`` library: from the country code of an
international number, else from the row's country (``country_column``), else from the rule's
locale (``en_US`` → US). The new national number is drawn from the value's HMAC: candidates
of keyed digits until one is valid, then (for regions where few digit strings are numbers)
candidates that start like one of a fixed sample of valid numbers, then a number of that
sample. :mod:`datasafe.masking.phone_numbers` defines all this (with ``phonenumbers.parse``);
:mod:`datasafe.masking.phone_fast` gives the same results without parse for the values whose
layout it can read, and :mod:`datasafe.masking.phone_native` in C for the usual ones.

A value the library cannot read (no country code and no region to read it in, or a national
number whose length no number of the region has) keeps the layout with keyed digits: a
leading ``0`` stays ``0``, another first digit stays non-zero, and a ``+CC`` country code is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from datasafe.masking import keyed, phone_fast
from datasafe.masking.countries import country_code
from datasafe.masking.fakes import FakerSlot
from datasafe.masking.layout import Layout, digit_layout, digits, fill
from datasafe.masking.phone_numbers import REGIONS, Parts, locale_region, masked_digits, read
from datasafe.masking.transformers.base import register, row_cell
from datasafe.masking.transformers.person import CountryOptions, FakerTransformer
from datasafe.masking.types import ColumnInfo, RowView

_POWERS = [10**n for n in range(20)]


class PhoneOptions(CountryOptions):
    keep_format: bool = Field(True, description="keep the input's layout (`+44 20 7946 0958`) and make its national "
                                                "number another valid number of its region; false: a phone number "
                                                "of the locale")
    keep_country_code: bool = Field(True, description="with `keep_format`: keep a leading `+CC` country code; false: "
                                                      "a number of another country whose code has as many digits")


@register("phone")
class Phone(FakerTransformer[PhoneOptions]):
    """A phone number: the input's layout with a valid number of its region, or a number of the locale.

    With `keep_format` every character but the digits stays, and so do the digits in front of the
    national number (`+44`, `0`, `(0)`, `011 44`); the national number becomes a valid number of
    the input's region (by its country code, else the row's `country_column`, else the locale),
    with as many digits; digits of any script are replaced in that script. A number that cannot
    be read as one of a region keeps its layout with keyed digits (a leading `0` stays `0`).
    Inputs with fewer than four digits get a number of the locale.
    """

    Options = PhoneOptions
    method = "phone_number"
    example = ("phone: phone\nmobile: {phone: {keep_format: false, locale: en_GB}}\n"
               "fax: {phone: {country_column: country}}")

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        super().__init__(options, column, key)
        self._codes: dict[str, tuple[int, int]] = {}
        #: the region of numbers without a country code: the locale's (en_US → US), when it names one
        self.region = locale_region(self.options.faker_locale)

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        return self._masked(value, self.digest(value, attempt), attempt, self.faker_for(row), self._region_for(row))

    def first_from_digest(self, value: str, digest: bytes) -> str | None:
        return self._masked(value, digest, 0, self.faker, self.region)

    def _masked(self, value: str, digest: bytes, attempt: int, faker: FakerSlot, region: str | None) -> str | None:
        layout = digit_layout(value)
        if not self.options.keep_format or layout.fields < 4:  # a number of the locale
            return self.render(self.fake_from(digest, attempt, self.method, faker))
        return self._keep_format(value, layout, digest, region)

    def _region_for(self, row: RowView) -> str | None:
        if self.country_column is None:
            return self.region
        return country_code(row_cell(row, self.country_column), REGIONS) or self.region

    def _keep_format(self, value: str, layout: Layout, digest: bytes, region: str | None) -> str:
        number = digits(value)
        keep = self.options.keep_country_code
        fast = phone_fast.read(value, layout, number, region) if value.isascii() else phone_fast.UNREAD
        if isinstance(fast, Parts):
            made = phone_fast.masked_digits(number, fast, digest, keep)
        else:  # not a phone number, or one the fast path leaves to phonenumbers
            parts = read(value, number, region) if fast is phone_fast.UNREAD else None
            made = None if parts is None else masked_digits(number, parts, keyed.Draws(digest), keep)
        if made is not None:
            return fill(layout, value, made)
        return self._keyed_digits(value, layout, number, digest)

    def reference(self, value: str, digest: bytes, region: str | None) -> str:
        """The first choice of a value of four digits or more as :mod:`~datasafe.masking.phone_numbers`
        defines it (``phonenumbers.parse``, no fast path): what the fast paths must equal."""
        layout = digit_layout(value)
        number = digits(value)
        parts = read(value, number, region)
        made = None if parts is None else masked_digits(number, parts, keyed.Draws(digest),
                                                        self.options.keep_country_code)
        return fill(layout, value, made) if made is not None else self._keyed_digits(value, layout, number, digest)

    def _country_code(self, value: str, layout: Layout) -> tuple[int, int]:
        """Where the kept country code starts and how many digits it has (0 when none is kept)."""
        keep = start = 0
        if self.options.keep_country_code and value.lstrip().startswith("+"):
            # up to three digits right after the "+": the first digits of the value
            start = value.index("+") + 1
            while keep < 3 and keep < layout.fields and layout.positions[keep] == start + keep:
                keep += 1
        return start, keep

    def _keyed_digits(self, value: str, layout: Layout, number: str, digest: bytes) -> str:
        """The layout with keyed digits, for a number of no known region."""
        count = layout.fields
        # the country code depends on the layout only (where "+" and the digits are): remembered
        code = self._codes.get(layout.template)
        if code is None:
            code = self._country_code(value, layout)
            if len(self._codes) < 4096:
                self._codes[layout.template] = code
        keep = code[1]
        if keep == count:
            return value
        drawn = int.from_bytes(digest[:16], "big")
        # a trunk prefix 0 stays 0, another first digit stays non-zero
        first = "0" if number[keep] == "0" else str(1 + drawn % 9)
        rest = count - keep - 1
        more = str(drawn // 9 % _POWERS[rest]).zfill(rest) if rest < 20 else keyed.Draws(digest).digits(rest)
        return fill(layout, value, number[:keep] + first + more)
