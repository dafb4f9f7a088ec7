"""Identifiers with structure and check digits: national ids, payment cards, IBANs, UUIDs."""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from datasafe.masking import keyed
from datasafe.masking.errors import RulesError
from datasafe.masking.fakes import slot, to_text
from datasafe.masking.layout import alnum, alnum_layout, ascii_alnum, digits, fill
from datasafe.masking.transformers.base import LocaleOptions, Options, Transformer, register
from datasafe.masking.types import ColumnInfo, RowView


def with_layout(value: str, chars: str) -> str | None:
    """``chars`` put into the positions of the letters and digits of ``value`` (None when the counts
    differ); digits of another script than ASCII are written in that script."""
    layout = alnum_layout(value)
    return fill(layout, value, chars) if layout.fields == len(chars) else None


# --- national ids ---------------------------------------------------------------------------------

_NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"
_NINO_BAD = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


_SSNS = 898 * 99 * 9999  # areas 001-899 but 666, groups 01-99, serials 0001-9999


def _us_ssn(draws: keyed.Draws) -> str:
    return _ssn(draws.below(_SSNS, 16))


def _ssn(number: int) -> str:
    area = 1 + number % 898
    area += area >= 666
    number //= 898
    return f"{area:03d}{1 + number % 99:02d}{1 + number // 99:04d}"


def _gb_nino(draws: keyed.Draws) -> str:
    while True:
        prefix = _NINO_FIRST[draws.below(len(_NINO_FIRST))] + _NINO_SECOND[draws.below(len(_NINO_SECOND))]
        if prefix not in _NINO_BAD:
            break
    return f"{prefix}{draws.below(10**6):06d}{'ABCD'[draws.below(4)]}"


def _nl_bsn(draws: keyed.Draws) -> str:
    while True:  # the "elfproef": weights 9..2 and -1 sum to a multiple of 11
        digits = [1 + draws.below(9), *(int(d) for d in draws.digits(7))]
        total = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True))
        last = total % 11
        if last < 10:
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

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        super().__init__(options, column, key)
        self.digest = keyed.hmac_sha256(key)

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        return self.first_from_digest(value, self.digest(value, attempt))

    def first_from_digest(self, value: str, digest: bytes) -> str | None:
        country = self.options.country
        if country is None:
            seed = int.from_bytes(digest[:8], "big")
            return to_text(slot(self.name, self.options.faker_locale).call(seed, "ssn"))
        make, canonical = _NATIONAL[country]
        chars = make(keyed.Draws(digest))
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


def _brand_prefix(lead: str) -> str:
    """The leading digits of a card number (its first four digits at most) that identify the brand."""
    return next((lead[:n] for pattern, n, _ in _BRANDS if pattern.match(lead)), lead[:1])


@functools.cache
def prefix_lengths() -> bytes:
    """The brand prefix's length for every four leading digits ``0000``-``9999`` (for the C module)."""
    return bytes(len(_brand_prefix(f"{lead:04d}")) for lead in range(10_000))


_LUHN_DOUBLE = bytes.maketrans(b"0123456789", b"0246813579")  # d -> digit sum of 2d
_POWERS = [10**n for n in range(20)]


def luhn_check_digit(payload: str) -> str:
    """The digit that makes ``payload + digit`` pass the Luhn check."""
    backwards = (payload if payload.isascii() else "".join(str(int(ch)) for ch in payload)).encode()[::-1]
    # the digits' character codes are 48 + digit: sum the codes, take 48 off per digit
    total = sum(backwards[0::2].translate(_LUHN_DOUBLE)) + sum(backwards[1::2])
    return str((48 * len(backwards) - total) % 10)


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

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        super().__init__(options, column, key)
        self.digest = keyed.hmac_sha256(key)
        self._prefixes: dict[str, str] = {}

    def _prefix(self, digits: str) -> str:
        # the brand patterns look at the first four digits at most
        lead = digits[:4]
        prefix = self._prefixes.get(lead)
        if prefix is None:
            prefix = _brand_prefix(lead)
            if len(self._prefixes) < 20_000:
                self._prefixes[lead] = prefix
        return prefix

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        return self.first_from_digest(value, self.digest(value, attempt))

    def first_from_digest(self, value: str, digest: bytes) -> str | None:
        layout = alnum_layout(value)
        numbers = digits(value)
        brand = self.options.brand
        if brand == "keep" and 12 <= len(numbers) <= 19:
            prefix = self._prefix(numbers)
            length = len(numbers)
        else:
            prefix, length = _BRAND_NEW["visa" if brand == "keep" else brand]
        count = length - len(prefix) - 1  # at most 18: one draw of 16 bytes
        body = prefix + str(int.from_bytes(digest[:16], "big") % _POWERS[count]).zfill(count)
        number = body + luhn_check_digit(body)
        if layout.fields == length:  # the input's letters and digits become the number's digits
            return fill(layout, value, number)
        sep = next((ch for ch in value if ch in " -"), " ") if len(numbers) >= 12 else " "
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
    compact = ascii_alnum(value).upper()
    if not _IBAN.fullmatch(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _bban_from_layout(layout: str, draws: keyed.Draws) -> str:
    out: list[str] = []
    for count, cls in re.findall(r"(\d+)([nac])", layout):
        pool = string.digits if cls == "n" else string.ascii_uppercase if cls == "a" else (
            string.digits + string.ascii_uppercase)
        out.extend(pool[draws.below(len(pool))] for _ in range(int(count)))
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
            raise RulesError(f"rule 'iban': no BBAN layout known for country {self.options.country!r}; "
                             f"known: {', '.join(sorted(_BBAN))}")

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        return self.first_from_digest(value, keyed.digest(self.key, value, attempt))

    def first_from_digest(self, value: str, digest: bytes) -> str | None:
        seed = int.from_bytes(digest[:8], "big")
        draws = keyed.Draws(digest)
        compact = alnum(value).upper()
        country = self.options.country
        if country is None and _IBAN.fullmatch(compact):
            country = compact[:2]
            bban = "".join(string.digits[draws.below(10)] if ch.isdigit() else
                           string.ascii_uppercase[draws.below(26)] for ch in compact[4:])
        elif country is not None:
            bban = _bban_from_layout(_BBAN[country], draws)
        else:
            made = ascii_alnum(to_text(slot(self.name, self.options.faker_locale).call(seed, "iban"))).upper()
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
        return self.first_from_digest(value, keyed.digest(self.key, value, attempt))

    def first_from_digest(self, value: str, digest: bytes) -> str | None:
        raw = bytearray(digest[:16])
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
