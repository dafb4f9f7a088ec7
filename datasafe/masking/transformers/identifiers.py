"""Identifiers with structure and check digits: national ids, payment cards, IBANs, UUIDs."""

from __future__ import annotations

import random
import re
import string
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from datasafe.masking import keyed
from datasafe.masking.fakes import slot, to_text
from datasafe.masking.transformers.base import LocaleOptions, Options, Transformer, register
from datasafe.masking.types import ColumnInfo, RowView


def with_layout(layout: str, chars: str) -> str | None:
    """``chars`` put into the alphanumeric positions of ``layout`` (None when the counts differ)."""
    slots = [i for i, ch in enumerate(layout) if ch.isascii() and ch.isalnum()]
    if len(slots) != len(chars):
        return None
    out = list(layout)
    for i, ch in zip(slots, chars, strict=True):
        out[i] = ch
    return "".join(out)


def _alnum(value: str) -> str:
    return "".join(ch for ch in value if ch.isascii() and ch.isalnum())


# --- national ids ---------------------------------------------------------------------------------

_NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"
_NINO_BAD = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def _us_ssn(rng: random.Random) -> str:
    area = rng.randrange(1, 899)
    area += area >= 666  # 001-665, 667-899
    return f"{area:03d}{rng.randrange(1, 100):02d}{rng.randrange(1, 10000):04d}"


def _gb_nino(rng: random.Random) -> str:
    while True:
        prefix = rng.choice(_NINO_FIRST) + rng.choice(_NINO_SECOND)
        if prefix not in _NINO_BAD:
            break
    return f"{prefix}{rng.randrange(10**6):06d}{rng.choice('ABCD')}"


def _nl_bsn(rng: random.Random) -> str:
    while True:  # the "elfproef": weights 9..2 and -1 sum to a multiple of 11
        digits = [rng.randrange(10) for _ in range(8)]
        total = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True))
        last = total % 11
        if last < 10 and digits[0] != 0:
            return "".join(map(str, digits)) + str(last)


_NATIONAL = {
    "US": (_us_ssn, "{0}{1}{2}-{3}{4}-{5}{6}{7}{8}"),
    "GB": (_gb_nino, "{0}{1}{2}{3}{4}{5}{6}{7}{8}"),
    "NL": (_nl_bsn, "{0}{1}{2}{3}{4}{5}{6}{7}{8}"),
}


class NationalIdOptions(LocaleOptions):
    country: Literal["US", "GB", "NL"] | None = Field(
        None, description="`US`: social security number (area never 000, 666 or 9xx); `GB`: National Insurance "
                          "number; `NL`: BSN (passes the 11-test); unset: Faker's `ssn` of `locale`")
    keep_format: bool = Field(True, description="keep the input's separators when it has as many letters and "
                                                "digits as the id (`123456789` stays without dashes)")


@register("national_id")
class NationalId(Transformer[NationalIdOptions]):
    """A valid-looking national identity number of a country."""

    Options = NationalIdOptions
    example = "ssn: {national_id: {country: US}}"

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        country = self.options.country
        seed = keyed.seed(self.key, value, attempt)
        if country is None:
            return to_text(slot(self.name, self.options.faker_locale).call(seed, "ssn"))
        make, canonical = _NATIONAL[country]
        chars = make(random.Random(seed))
        if self.options.keep_format:
            kept = with_layout(value, chars)
            if kept is not None:
                return kept
        return canonical.format(*chars)


# --- payment cards --------------------------------------------------------------------------------

# (pattern on the leading digits, digits kept, brand). The kept digits identify the brand.
_BRANDS = (
    (re.compile(r"3[47]"), 2, "amex"),
    (re.compile(r"5[1-5]"), 2, "mastercard"),
    (re.compile(r"2(2[2-9][1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)"), 4, "mastercard"),
    (re.compile(r"6011"), 4, "discover"),
    (re.compile(r"64[4-9]"), 3, "discover"),
    (re.compile(r"65"), 2, "discover"),
    (re.compile(r"35(2[89]|[3-8]\d)"), 4, "jcb"),
    (re.compile(r"30[0-5]"), 3, "diners"),
    (re.compile(r"3[68]"), 2, "diners"),
    (re.compile(r"62"), 2, "unionpay"),
    (re.compile(r"5[06-9]|6"), 2, "maestro"),
    (re.compile(r"4"), 1, "visa"),
)
_BRAND_NEW = {"visa": ("4", 16), "mastercard": ("5", 16), "amex": ("37", 15), "discover": ("6011", 16)}


def luhn_check_digit(payload: str) -> str:
    """The digit that makes ``payload + digit`` pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    digits = "".join(ch for ch in number if ch.isdigit())
    return len(digits) > 1 and luhn_check_digit(digits[:-1]) == digits[-1]


class CreditCardOptions(Options):
    brand: Literal["keep", "visa", "mastercard", "amex", "discover"] = Field(
        "keep", description="`keep`: the input's brand prefix and length (Visa `4`, Mastercard `51`-`55` and "
                            "`2221`-`2720`, Amex `34`/`37`, ...); or always this brand")


@register("credit_card")
class CreditCard(Transformer[CreditCardOptions]):
    """A Luhn-valid card number with the input's brand prefix, length and separators.

    `4111 1111 1111 1111` becomes `4xxx xxxx xxxx xxxx`; an input that is not a card number
    (fewer than 12 digits) becomes a 16-digit Visa-style number in groups of four.
    """

    Options = CreditCardOptions
    example = "credit_card: credit_card\ncard_number: {credit_card: {brand: visa}}"

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        rng = keyed.keyed_random(self.key, value, attempt)
        digits = "".join(ch for ch in value if ch.isdigit() and ch.isascii())
        brand = self.options.brand
        if brand == "keep" and 12 <= len(digits) <= 19:
            prefix = next((digits[:n] for pattern, n, _ in _BRANDS if pattern.match(digits)), digits[:1])
            length = len(digits)
        else:
            prefix, length = _BRAND_NEW["visa" if brand == "keep" else brand]
        body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
        number = body + luhn_check_digit(body)
        kept = with_layout(value, number)
        if kept is not None:
            return kept
        sep = next((ch for ch in value if ch in " -"), " ") if len(digits) >= 12 else " "
        groups = [number[0:4], number[4:10], number[10:]] if length == 15 else [
            number[i:i + 4] for i in range(0, length, 4)]
        return sep.join(groups)


# --- IBAN -----------------------------------------------------------------------------------------

# BBAN layouts (n: digit, a: upper-case letter, c: letter or digit) for IBANs made from scratch.
_BBAN = {"AT": "16n", "BE": "12n", "CH": "5n12c", "DE": "18n", "DK": "14n", "ES": "20n", "FI": "14n",
         "FR": "10n11c2n", "GB": "4a14n", "IE": "4a14n", "IT": "1a10n12c", "LU": "3n13c", "NL": "4a10n",
         "NO": "11n", "PL": "24n", "PT": "21n", "SE": "20n"}
_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{8,30}")


def iban_check_digits(country: str, bban: str) -> str:
    moved = bban + country + "00"
    number = int("".join(str(int(ch, 36)) for ch in moved))
    return f"{98 - number % 97:02d}"


def iban_valid(value: str) -> bool:
    compact = _alnum(value).upper()
    if not _IBAN.fullmatch(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _bban_from_layout(layout: str, rng: random.Random) -> str:
    out: list[str] = []
    for count, cls in re.findall(r"(\d+)([nac])", layout):
        pool = string.digits if cls == "n" else string.ascii_uppercase if cls == "a" else (
            string.digits + string.ascii_uppercase)
        out.extend(rng.choice(pool) for _ in range(int(count)))
    return "".join(out)


class IbanOptions(LocaleOptions):
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$",
                                description=f"make IBANs of this country ({', '.join(sorted(_BBAN))}); default: "
                                            "the input's country, and for inputs that are not IBANs Faker's "
                                            "`iban` of `locale`")


@register("iban")
class Iban(Transformer[IbanOptions]):
    """An IBAN with a valid checksum, of the input's country and BBAN layout, with its spacing.

    The BBAN's digits and letters are replaced class for class, so the length and layout stay
    those of the country; national check digits inside the BBAN are not recomputed.
    """

    Options = IbanOptions
    example = "iban: iban"

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        super().__init__(options, column, key)
        if self.options.country is not None and self.options.country not in _BBAN:
            from datasafe.masking.errors import RulesError

            raise RulesError(f"rule 'iban': no BBAN layout known for country {self.options.country!r}; "
                             f"known: {', '.join(sorted(_BBAN))}")

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        seed = keyed.seed(self.key, value, attempt)
        rng = random.Random(seed)
        compact = _alnum(value).upper()
        country = self.options.country
        if country is None and _IBAN.fullmatch(compact):
            country = compact[:2]
            bban = "".join(rng.choice(string.digits) if ch.isdigit() else rng.choice(string.ascii_uppercase)
                           for ch in compact[4:])
        elif country is not None:
            bban = _bban_from_layout(_BBAN[country], rng)
        else:
            made = _alnum(to_text(slot(self.name, self.options.faker_locale).call(seed, "iban"))).upper()
            country, bban = made[:2], made[4:]
        iban = country + iban_check_digits(country, bban) + bban
        if value.strip()[:2].islower() and _IBAN.fullmatch(compact):
            iban = iban.lower()
        kept = with_layout(value, iban)
        if kept is not None:
            return kept
        return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)) if " " in value.strip() else iban


# --- UUID -----------------------------------------------------------------------------------------

_UUID = re.compile(r"\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?")


@register("uuid")
class Uuid(Transformer[Options]):
    """A keyed, valid version-4 UUID, written like the input (case, dashes, braces)."""

    kinds = frozenset({"uuid", "text", "other"})
    example = "external_ref: uuid"

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        raw = bytearray(keyed.digest(self.key, value, attempt)[:16])
        raw[6] = (raw[6] & 0x0F) | 0x40
        raw[8] = (raw[8] & 0x3F) | 0x80
        hexed = raw.hex()
        text = f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"
        stripped = value.strip()
        if self.column.kind == "uuid" or not _UUID.fullmatch(stripped):
            return text
        if "-" not in stripped:
            text = hexed
        if stripped.startswith("{"):
            text = "{" + text + "}"
        return text.upper() if stripped.upper() == stripped and any(c.isalpha() for c in stripped) else text
