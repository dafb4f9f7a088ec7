"""The ``phone`` rule without ``phonenumbers.parse``: the same results as :mod:`datasafe.masking.phone_numbers`, faster.

``phonenumbers.parse`` costs 30 to 50 µs a value, most of it in steps that depend on where a
value's digits are, not on which digits they are: finding the number in the text, the
extension, the ``+``. :func:`read` does those steps once per layout (on probe values, with the
library's own functions: :class:`Plan`) and the few that read digits (country code,
international and trunk prefixes, lengths) itself, with the library's metadata; values of a
layout it cannot vouch for are left to :func:`datasafe.masking.phone_numbers.read` (it returns
:data:`UNREAD`). :func:`masked_digits` draws as :func:`datasafe.masking.phone_numbers.masked_digits`
does, with one compiled regex per (region, length) that says whether a candidate is a valid number
that phonenumbers also takes to be of that region (:func:`acceptor`).

Tests compare both functions with the reference on tens of thousands of numbers of every region
and many layouts; the steps copied from ``phonenumbers.parse`` follow it line by line and name it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from hashlib import shake_256 as _shake
from typing import Any, Final

import phonenumbers
from phonenumbers import PhoneMetadata
from phonenumbers import phonenumberutil as _lib

from datasafe.masking import keyed
from datasafe.masking.layout import Layout
from datasafe.masking.phone_numbers import (
    GUIDED,
    Parts,
    guided_starts,
    regions_of,
    sample,
    valid_pattern,
)
from datasafe.masking.phone_numbers import masked_digits as reference_masked_digits


class _Unread:
    """The fast path cannot vouch for its reading of this value: ask phonenumbers."""

    def __repr__(self) -> str:
        return "UNREAD"


UNREAD: Final = _Unread()
_POWERS = [10**n for n in range(20)]
_MAX_PLANS = 4096
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' _MIN_LENGTH_FOR_NSN and _MAX_LENGTH_FOR_NSN
_MAX_INPUT = 250  # phonenumbers' _MAX_INPUT_STRING_LENGTH
#: phonenumbers' ValidationResult values that keep a national number whose prefix was stripped unstripped
_TOO_SHORT, _LOCAL_ONLY, _INVALID_LENGTH, _TOO_LONG, _POSSIBLE = range(5)
_NO_STRIP = (_TOO_SHORT, _LOCAL_ONLY, _INVALID_LENGTH)


# --- the layout's part: where the number, its "+" and its extension are -------------------------------

@dataclass(frozen=True)
class Plan:
    """What ``phonenumbers.parse`` makes of a layout, whatever its digits.

    Attributes:
        viable: the text is a phone number at all (else parse raises, whatever the digits).
        plus: the number starts with a plus sign (its country code follows).
        main: how many of the value's digits are the number; the others are its extension.
        leading_plus: the value starts with a plus sign after white space (``Parts.plus``).
    """

    viable: bool
    plus: bool
    main: int
    leading_plus: bool


_plans: dict[str, Plan | None] = {}


def plan(layout: Layout) -> Plan | None:
    """The plan of an ASCII value's layout; None when the fast path cannot vouch for it."""
    found = _plans.get(layout.template, UNREAD)
    if found is UNREAD:
        if len(_plans) >= _MAX_PLANS:
            _plans.clear()
        found = _plans[layout.template] = _plan(layout)
    return found  # type: ignore[return-value]


def _plan(layout: Layout) -> Plan | None:
    # The library's steps before the first digit-dependent one, on two probe values: every pattern
    # they use reads a digit as any digit, so they divide every value of the layout alike.
    plans = {_probe(layout.template.format(*(probe * layout.fields)[:layout.fields]), layout.fields)
             for probe in ("5", "123456789")}
    return plans.pop() if len(plans) == 1 else None


def _probe(value: str, fields: int) -> Plan | None:
    try:
        if len(value) > _MAX_INPUT or ";" in value:  # RFC 3966 parameters move digits around: phonenumbers
            return None
        extracted = _lib._build_national_number_for_parsing(value)
        leading_plus = value.lstrip().startswith(("+", "\uff0b"))
        if not _lib._is_viable_phone_number(extracted):
            return Plan(False, False, fields, leading_plus)
        extension, number = _lib._maybe_strip_extension(extracted)
        plus = _lib._PLUS_CHARS_PATTERN.match(number)
        body = number[plus.end():] if plus else number
        digits = "".join(ch for ch in body if ch.isdigit())
        all_digits = "".join(ch for ch in value if ch.isdigit())
        if _lib._normalize(body) != digits or digits + extension != all_digits or value.find(extracted) < 0:
            return None  # letters read as digits, digits outside the number: phonenumbers
    except (phonenumbers.NumberParseException, AttributeError, TypeError):  # AttributeError: another version
        return None
    return Plan(True, plus is not None, len(digits), leading_plus)


# --- the metadata parsing reads -----------------------------------------------------------------------

@dataclass(frozen=True)
class Meta:
    """A region's metadata as ``phonenumbers.parse`` reads it."""

    code: int
    code_text: str
    #: the general pattern (fullmatched), or None: no number matches
    general: re.Pattern[str] | None
    lengths: tuple[int, ...]
    local_lengths: tuple[int, ...]
    national_prefix: re.Pattern[str] | None
    transform: str | None
    international_prefix: re.Pattern[str]


def _meta(meta: Any) -> Meta | None:
    if meta is None or meta.general_desc is None or meta.country_code is None:
        return None
    general = meta.general_desc
    national_prefix = meta.national_prefix_for_parsing
    return Meta(meta.country_code, str(meta.country_code),
                re.compile(general.national_number_pattern) if general.national_number_pattern else None,
                tuple(general.possible_length), tuple(general.possible_length_local_only),
                re.compile(national_prefix) if national_prefix else None, meta.national_prefix_transform_rule or None,
                re.compile(meta.international_prefix if meta.international_prefix is not None else "NonMatch"))


@cache
def region_meta(region: str) -> Meta | None:
    """The metadata phonenumbers parses a number without a country code with, in ``region``."""
    return _meta(PhoneMetadata.metadata_for_region(region, None))


@cache
def main_meta(country: int) -> Meta | None:
    """The metadata phonenumbers parses a number of country code ``country`` with."""
    region = phonenumbers.region_code_for_country_code(country)
    return _meta(PhoneMetadata.metadata_for_region_or_calling_code(country, region))


def _general(number: str, meta: Meta) -> bool:
    """phonenumbers' _match_national_number(number, general_desc, False)."""
    return meta.general is not None and meta.general.fullmatch(number) is not None


def strip_national_prefix(number: str, meta: Meta) -> str:
    """phonenumbers' _maybe_strip_national_prefix_carrier_code(number, metadata)[1]."""
    pattern = meta.national_prefix
    if not number or pattern is None:
        return number
    match = pattern.match(number)
    if not match:
        return number
    viable = _general(number, meta)
    groups = match.groups()
    if meta.transform is None or groups[len(groups) - 1] is None:
        if viable and not _general(number[match.end():], meta):
            return number
        return number[match.end():]
    transformed = pattern.sub(meta.transform, number, count=1)
    if viable and not _general(transformed, meta):
        return number
    return transformed


def length_result(number: str, meta: Meta) -> int:
    """phonenumbers' _test_number_length(number, metadata) (a ValidationResult)."""
    lengths, length = meta.lengths, len(number)
    if length in meta.local_lengths:
        return _LOCAL_ONLY
    if lengths[0] == length:
        return _POSSIBLE
    if lengths[0] > length:
        return _TOO_SHORT
    if lengths[-1] < length:
        return _TOO_LONG
    return _POSSIBLE if length in lengths[1:] else _INVALID_LENGTH


def split_country_code(number: str) -> tuple[int, str]:
    """phonenumbers' _extract_country_code(number): (0, number) when it starts with none."""
    found = _country_codes().get(number[:3])
    if found is None:
        return 0, number
    return found[0], number[found[1]:]


@cache
def _country_codes() -> dict[str, tuple[int, int]]:
    """The country code that each string of up to three digits starts with (as _extract_country_code
    reads it: the shortest code that starts it; codes never start with 0)."""
    codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
    found = {}
    for width in (1, 2, 3):
        for n in range(10**width):
            text = f"{n:0{width}d}"
            if text[0] == "0":
                continue
            for w in range(1, width + 1):
                if int(text[:w]) in codes:
                    found[text] = int(text[:w]), w
                    break
    return found


# --- reading ------------------------------------------------------------------------------------------

def read(value: str, layout: Layout, number: str, region: str | None) -> Parts | _Unread | None:
    """:func:`datasafe.masking.phone_numbers.read` of an ASCII value (``number``: its digits, ``layout``:
    its :func:`~datasafe.masking.layout.digit_layout`); :data:`UNREAD` where it cannot vouch for it."""
    found = plan(layout)
    if found is None:
        return UNREAD
    if not found.viable:
        return None
    main = number[:found.main]
    if found.plus:
        country, national = _international(main)
        if country < 0:
            return UNREAD  # phonenumbers reads it again without the plus
        if country == 0:
            return None
        meta = main_meta(country)
    else:
        if region is None:
            return None  # no country code, and no region to read it in
        own = region_meta(region)
        if own is None:
            return UNREAD
        country, national, meta = _national(main, own)
        if country == 0:
            return None
    if meta is None or not meta.lengths:
        return UNREAD
    return _parts(number, found, country, national, meta)


def _international(number: str) -> tuple[int, str]:
    """(country code, national number) after a plus sign; code 0: parse fails, -1: it tries again."""
    if len(number) <= _MIN_NSN:
        return 0, number
    country, national = split_country_code(number)
    return (country, national) if country else (-1, number)


def _national(number: str, own: Meta) -> tuple[int, str, Meta | None]:
    """(country code, national number, metadata) of a number without a plus sign, in the region of
    ``own`` (phonenumbers' _maybe_extract_country_code); code 0: parse fails."""
    match = own.international_prefix.match(number)
    if match and number[match.end():match.end() + 1] != "0":
        rest = number[match.end():]
        if len(rest) <= _MIN_NSN:
            return 0, rest, None
        country, national = split_country_code(rest)
        return country, national, main_meta(country) if country else None
    if number.startswith(own.code_text):
        potential = strip_national_prefix(number[len(own.code_text):], own)
        if (not _general(number, own) and _general(potential, own)) or length_result(number, own) == _TOO_LONG:
            return own.code, potential, main_meta(own.code)
    return own.code, number, own


def _parts(number: str, found: Plan, country: int, national: str, meta: Meta) -> Parts | None:
    """The rest of phonenumbers.parse (trunk prefix, lengths) and of the reference's read."""
    if len(national) < _MIN_NSN:
        return None
    potential = strip_national_prefix(national, meta)
    if potential is not national and length_result(potential, meta) not in _NO_STRIP:
        national = potential
    if not _MIN_NSN <= len(national) <= _MAX_NSN:
        return None
    tail = national + number[found.main:]
    if not number.endswith(tail):
        return None
    claims = _claims.get((country, len(national)))
    if claims is None:
        claims = _claims[country, len(national)] = _claims_of(country, len(national))
    if not claims:
        return None  # a country code of no region
    for candidate, claim in claims:
        if claim is None or claim(national):
            region = candidate
            break
    plus = found.leading_plus and number.startswith(str(country))
    return Parts(len(number) - len(tail), len(national), country, region, plus)


_claims: dict[tuple[int, int], tuple[tuple[str, Callable[[str], object] | None], ...]] = {}


def _claims_of(country: int, length: int) -> tuple[tuple[str, Callable[[str], object] | None], ...]:
    """``region_of(country, n) or regions_of(country)[0][0]`` for numbers of ``length`` digits, as
    (region, its claim on a number) to try in order; a claim of None: the region, whatever the number."""
    regions = regions_of(country)
    if len(regions) <= 1:
        return tuple((region, None) for region, _ in regions)
    claims: list[tuple[str, Callable[[str], object] | None]] = []
    for region, leading in regions:
        if leading is not None:
            claims.append((region, leading.match))
        else:
            pattern = valid_pattern(country, region, length)
            if pattern is not None:
                claims.append((region, pattern.fullmatch))
    claims.append((regions[0][0], None))  # of none of them
    return tuple(claims)


# --- drawing ------------------------------------------------------------------------------------------

@cache
def acceptor(country: int, region: str, length: int) -> Callable[[str], object] | None:
    """``phone_numbers.is_valid(country, region, n)`` of the national numbers ``n`` of ``length``
    digits, as one regex's fullmatch; None when no number of that length is valid there."""
    pattern = valid_pattern(country, region, length)
    if pattern is None:
        return None
    regions = regions_of(country)
    if len(regions) == 1:
        return pattern.fullmatch
    # region_of(country, n) == region: no region before it claims n, and it does
    guards = []
    for other, leading in regions:
        if other == region:
            if leading is not None:
                guards.append(f"(?=(?:{leading.pattern}))")
            break
        if leading is not None:
            guards.append(f"(?!(?:{leading.pattern}))")
        else:
            theirs = valid_pattern(country, other, length)
            if theirs is not None:
                guards.append(f"(?!(?:{theirs.pattern})\\Z)")
    else:
        return lambda national: False  # not a region of the country: region_of never gives it
    return re.compile("".join(guards) + f"(?:{pattern.pattern})").fullmatch


def masked_digits(number: str, parts: Parts, digest: bytes, keep_country_code: bool) -> str | None:
    """``phone_numbers.masked_digits(number, parts, Draws(digest), keep_country_code)``."""
    length = parts.national
    if (parts.plus and not keep_country_code) or len(number) != parts.prefix + length:
        # another country's number, or an extension after it: as the reference draws them
        return reference_masked_digits(number, parts, keyed.Draws(digest), keep_country_code)
    accept = acceptor(parts.country, parts.region, length)
    if accept is None:
        return None
    prefix, power = number[:parts.prefix], _POWERS[length]
    # the reference's first two candidates: keyed.Draws.digits(length), twice, from the digest's 32 bytes
    candidate = f"{int.from_bytes(digest[:16], 'big') % power:0{length}d}"
    if accept(candidate):
        return prefix + candidate
    candidate = f"{int.from_bytes(digest[16:32], 'big') % power:0{length}d}"
    if accept(candidate):
        return prefix + candidate
    numbers = sample(parts.country, parts.region, length)
    if not numbers:
        return None
    # then keyed.Draws goes on with SHAKE-256 of its bytes, 64 at a time: below(len(numbers)) takes
    # 8 bytes, digits(k) 16, and a draw that does not fit in what is left takes the next 64
    count, data, at = len(numbers), _shake(digest).digest(64), 0
    for start in guided_starts(length):
        rest = length - start
        power = _POWERS[rest]
        for _ in range(GUIDED):
            if at > 56:
                data, at = _shake(data).digest(64), 0
            chosen = numbers[int.from_bytes(data[at:at + 8], "big") % count]
            at += 8
            if at > 48:
                data, at = _shake(data).digest(64), 0
            candidate = f"{chosen[:start]}{int.from_bytes(data[at:at + 16], 'big') % power:0{rest}d}"
            at += 16
            if accept(candidate):
                return prefix + candidate
    if at > 56:
        data, at = _shake(data).digest(64), 0
    return prefix + numbers[int.from_bytes(data[at:at + 8], "big") % count]
