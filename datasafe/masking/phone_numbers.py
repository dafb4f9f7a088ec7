"""Valid phone numbers of a region, and the reference reading and drawing of a masked number.

This is the definition the ``phone`` rule follows (see :mod:`datasafe.masking.transformers.phone`):

- :func:`read` reads a value with ``phonenumbers.parse``: which of its digits are kept (international
  prefix, country code, trunk prefix), the national number, its country code and region.
- :func:`valid_pattern` is a regex that fullmatches exactly the national numbers of one length that
  ``phonenumbers.is_valid_number`` takes as valid for a region; :func:`is_valid` adds that
  phonenumbers also takes them to be of that region (countries such as +1 and +44 have several).
- :func:`masked_digits` draws the new digits from the value's HMAC: candidates of keyed digits
  until one is valid, then (for regions where few digit strings are numbers) candidates that
  start like one of a fixed sample of valid numbers (:func:`sample`), then a number of that sample.

:mod:`datasafe.masking.phone_fast` computes the same results faster, for the values it can read
without ``phonenumbers.parse``; tests compare the two on many thousands of numbers. The sample
comes from a fixed SHAKE-256 stream, not from any data, so the output depends on the key, the
value and the ``phonenumbers`` version only.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneMetadata

from datasafe.masking import keyed

REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)
NON_GEO = "001"  # phonenumbers' region of non-geographic country codes (+800, +882, ...)
#: the number types phonenumbers.is_valid_number accepts (any of them, within the general pattern)
TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail",
         "fixed_line", "mobile")
#: candidates of keyed digits tried, then (twice) candidates that start like a sampled valid number
UNGUIDED, GUIDED = 2, 8
#: valid numbers sampled per (region, length), from at most this many candidates
_SAMPLE, _SAMPLE_FROM = 256, 8192


def locale_region(locale: str) -> str | None:
    """The phone region of a Faker locale (``en_GB`` → ``GB``), or None (``en``, ``ar_AA``)."""
    region = locale.partition("_")[2]
    return region if region in REGIONS else None


def guided_starts(length: int) -> tuple[int, int]:
    """How many leading digits of a sampled number the guided candidates keep, in the two rounds."""
    return min(3, length // 2), length // 2


# --- reading the input -----------------------------------------------------------------------------

class Parts(NamedTuple):
    """How the digits of a number divide: ``digits[:prefix]`` are kept, then ``national`` digits, then the extension."""

    prefix: int
    national: int
    country: int
    region: str
    #: the country code's digits start the number after a "+"
    plus: bool


def read(value: str, number: str, region: str | None) -> Parts | None:
    """The parts of a phone number (``number``: its digits), as phonenumbers reads it in ``region``;
    None when it cannot."""
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    national = phonenumbers.national_significant_number(parsed)
    tail = national + (parsed.extension or "")
    if not national or not number.endswith(tail):
        return None  # digits the national number does not end with (carrier codes rewritten, ...)
    country = parsed.country_code
    if country is None:
        return None
    regions = regions_of(country)
    if not regions:
        return None
    found = region_of(country, national) or regions[0][0]
    plus = value.lstrip().startswith(("+", "\uff0b")) and number.startswith(str(country))
    return Parts(len(number) - len(tail), len(national), country, found, plus)


# --- valid national numbers -------------------------------------------------------------------------

@cache
def valid_pattern(country: int, region: str, length: int) -> re.Pattern[str] | None:
    """A regex that fullmatches exactly the national numbers of ``length`` digits that phonenumbers
    takes as valid for ``region`` (its general pattern and the pattern of one of the number types);
    None when no number of that length is valid there."""
    meta = PhoneMetadata.metadata_for_region_or_calling_code(country, region)
    if meta is None:
        return None
    general = meta.general_desc
    if general is None or not general.national_number_pattern or (
            general.possible_length and length not in general.possible_length):
        return None
    kinds = []
    for name in TYPES:
        desc = getattr(meta, name)
        if desc is None or not desc.national_number_pattern:
            continue
        if desc.possible_length and length not in desc.possible_length:
            continue
        kinds.append(f"(?:{desc.national_number_pattern})")
    if not kinds:
        return None
    return re.compile(f"(?=(?:{general.national_number_pattern})\\Z)(?:{'|'.join(kinds)})")


def valid_in(country: int, region: str, national: str) -> bool:
    """A valid national number of ``region`` (of whichever region phonenumbers takes it to be)."""
    pattern = valid_pattern(country, region, len(national))
    return pattern is not None and pattern.fullmatch(national) is not None


def region_of(country: int, national: str) -> str | None:
    """``phonenumbers.region_code_for_number`` of a national number (None: of no region)."""
    regions = regions_of(country)
    if len(regions) == 1:
        return regions[0][0]
    for region, leading in regions:
        if leading is not None:
            if leading.match(national):
                return region
        elif valid_in(country, region, national):
            return region
    return None


@cache
def regions_of(country: int) -> tuple[tuple[str, re.Pattern[str] | None], ...]:
    """The regions of a country code in phonenumbers' order, with the leading digits that tell them apart."""
    found = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country, ()):
        meta = PhoneMetadata.metadata_for_region(region, None)
        if meta is None and region != NON_GEO:
            continue
        leading = meta.leading_digits if meta is not None else None
        found.append((region, re.compile(leading) if leading is not None else None))
    return tuple(found)


def is_valid(country: int, region: str, national: str) -> bool:
    """A valid number of ``region``, which phonenumbers also takes to be of ``region``."""
    if not valid_in(country, region, national):
        return False
    return len(regions_of(country)) == 1 or region_of(country, national) == region


@cache
def sample(country: int, region: str, length: int) -> tuple[str, ...]:
    """Valid national numbers of ``length`` digits of ``region``, from a fixed stream (not the key).

    A walk from the library's example numbers of the region: a known number's first digits and
    new ones after them, kept when valid. It finds numbers where few digit strings are valid (a
    region that shares its country code and has a few area codes of its own).
    """
    if valid_pattern(country, region, length) is None:
        return ()
    known = dict.fromkeys(n for n in _examples(country, region) if len(n) == length and is_valid(country, region, n))
    draws = keyed.Draws(hashlib.shake_256(f"datasafe phone sample {country} {region} {length}".encode())
                        .digest(16 * 1024))
    for _ in range(_SAMPLE_FROM):
        if len(known) >= _SAMPLE:
            break
        if known:
            start = draws.below(length)
            candidate = list(known)[draws.below(len(known))][:start] + draws.digits(length - start)
        else:
            candidate = draws.digits(length)
        if is_valid(country, region, candidate):
            known[candidate] = None
    return tuple(known)


def _examples(country: int, region: str) -> list[str]:
    """The national numbers of phonenumbers' example numbers of a region, one per number type."""
    meta = PhoneMetadata.metadata_for_region_or_calling_code(country, region)
    if meta is None:
        return []
    found = []
    for name in TYPES:
        desc = getattr(meta, name)
        if desc is not None and desc.example_number:
            found.append(desc.example_number)
    return found


def national(country: int, region: str, length: int, draws: keyed.Draws) -> str | None:
    """A keyed valid national number of ``length`` digits of ``region``; None when the region has none.

    First a few candidates of keyed digits (any valid number can come out), then candidates that
    start like a sampled valid number (its area code, say) and go on with keyed digits, then a
    sampled number itself.
    """
    if valid_pattern(country, region, length) is None:
        return None
    for _ in range(UNGUIDED):
        candidate = draws.digits(length)
        if is_valid(country, region, candidate):
            return candidate
    numbers = sample(country, region, length)
    if not numbers:
        return None
    for start in guided_starts(length):
        for _ in range(GUIDED):
            candidate = numbers[draws.below(len(numbers))][:start] + draws.digits(length - start)
            if is_valid(country, region, candidate):
                return candidate
    return numbers[draws.below(len(numbers))]


@cache
def codes_of_width(width: int) -> tuple[tuple[int, str], ...]:
    """(country code, its main region) of every geographic country code with ``width`` digits."""
    return tuple((code, regions[0]) for code, regions in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items())
                 if len(str(code)) == width and regions and regions[0] != NON_GEO)


def masked_digits(number: str, parts: Parts, draws: keyed.Draws, keep_country_code: bool) -> str | None:
    """The digits of the masked number (ASCII), or None when no valid number of the region fits."""
    prefix = number[:parts.prefix]
    country, region = parts.country, parts.region
    if not keep_country_code and parts.plus:
        width = len(str(country))
        # another country whose code has as many digits, and numbers of this length
        choices = [c for c in codes_of_width(width) if valid_pattern(c[0], c[1], parts.national) is not None]
        if not choices:
            return None
        country, region = choices[draws.below(len(choices))]
        prefix = str(country) + prefix[width:]
    found = national(country, region, parts.national, draws)
    if found is None:
        return None
    extension = len(number) - parts.prefix - parts.national
    return prefix + found + draws.digits(extension)
