"""Where people live and how to reach them: addresses, phone numbers, IP addresses."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from datasafe.masking import keyed, native
from datasafe.masking.fakes import to_text
from datasafe.masking.layout import Layout, digit_layout
from datasafe.masking.transformers.base import LocaleOptions, NativeFirst, Options, Transformer, register
from datasafe.masking.transformers.person import FakerTransformer
from datasafe.masking.types import ColumnInfo, RowView, cut_limit

_POWERS = [10**n for n in range(20)]
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"


def replace_chars(value: str, draws: keyed.Draws, *, letters: bool = True) -> str:
    """Replace every digit by a digit (and every ASCII letter by a letter of the same case); keep the rest."""
    out = []
    for ch in value:
        if ch.isdigit() and ch.isascii():
            out.append(str(draws.below(10)))
        elif letters and ch.isascii() and ch.isalpha():
            out.append((_UPPER if ch.isupper() else _LOWER)[draws.below(26)])
        else:
            out.append(ch)
    return "".join(out)


@register("street")
class Street(FakerTransformer[LocaleOptions]):
    """A street address (house number and street) in the locale's form."""

    Options = LocaleOptions
    method = "street_address"
    example = "street: street"


@register("city")
class City(FakerTransformer[LocaleOptions]):
    """A city name from the locale."""

    Options = LocaleOptions
    method = "city"
    example = "city: city"


class PostcodeOptions(LocaleOptions):
    keep_format: bool = Field(False, description="replace the digits and letters of the input, keeping its layout "
                                                 "(`SW1A 1AA` → `KE4B 7QT`), instead of a postcode of the locale")


@register("postcode")
class Postcode(FakerTransformer[PostcodeOptions]):
    """A postcode of the locale, or the input's layout with other digits and letters."""

    Options = PostcodeOptions
    method = "postcode"
    example = "zip: {postcode: {keep_format: true}}"

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        if self.options.keep_format:
            return replace_chars(value, keyed.Draws(keyed.digest(self.key, value, attempt)))
        return super().mask(value, row, attempt)


class AddressOptions(LocaleOptions):
    single_line: bool = Field(True, description="join the lines of the address with `, `")


@register("address")
class Address(FakerTransformer[AddressOptions]):
    """A full postal address of the locale (street, city, postcode)."""

    Options = AddressOptions
    method = "address"
    example = "shipping_address: address"

    def render(self, fake: Any) -> str:
        text = to_text(fake)
        return ", ".join(text.splitlines()) if self.options.single_line else text


class PhoneOptions(LocaleOptions):
    keep_format: bool = Field(True, description="keep the input's layout (`+44 20 7946 0958`) and replace its "
                                                "digits; false: a phone number of the locale")
    keep_country_code: bool = Field(True, description="with `keep_format`: keep the digits of a leading "
                                                      "`+CC` country code (up to the first separator, at most 3)")


@register("phone")
class Phone(FakerTransformer[PhoneOptions]):
    """A phone number: the input's layout with keyed digits, or a number of the locale.

    With `keep_format`, a leading `0` (trunk prefix) stays `0` and a leading non-zero digit stays
    non-zero, so numbers keep looking like numbers of their country. Inputs with fewer than four
    digits get a number of the locale.
    """

    Options = PhoneOptions
    method = "phone_number"
    example = "phone: phone\nmobile: {phone: {keep_format: false, locale: en_GB}}"

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        super().__init__(options, column, key)
        self._codes: dict[str, tuple[int, int]] = {}

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        layout = digit_layout(value)
        if not self.options.keep_format or layout.fields < 4:
            return super().mask(value, row, attempt)
        return self._keep_format(value, layout, self.digest(value, attempt))

    def _country_code(self, value: str, layout: Layout) -> tuple[int, int]:
        """Where the kept country code starts and how many digits it has (0 when none is kept)."""
        keep = start = 0
        if self.options.keep_country_code and value.lstrip().startswith("+"):
            # up to three digits right after the "+": the first digits of the value
            start = value.index("+") + 1
            while keep < 3 and keep < layout.fields and layout.positions[keep] == start + keep:
                keep += 1
        return start, keep

    def _keep_format(self, value: str, layout: Layout, digest: bytes) -> str:
        template, count, positions = layout
        # the country code depends on the layout only (where "+" and the digits are): remembered
        code = self._codes.get(template)
        if code is None:
            code = self._country_code(value, layout)
            if len(self._codes) < 4096:
                self._codes[template] = code
        start, keep = code
        if keep == count:
            return value
        number = int.from_bytes(digest[:16], "big")
        # a trunk prefix 0 stays 0, another first digit stays non-zero
        first = "0" if value[positions[keep]] == "0" else str(1 + number % 9)
        rest = count - keep - 1
        drawn = str(number // 9 % _POWERS[rest]).zfill(rest) if rest < 20 else keyed.Draws(digest).digits(rest)
        return template.format(*value[start:start + keep], first, *drawn)

    def first_choice_digested(self) -> Callable[[str, bytes], str | None] | None:
        if not self.options.keep_format:
            return None
        other, keep_format, fit = self._mask_first, self._keep_format, self._fit

        def first(value: str, digest: bytes) -> str | None:
            layout = digit_layout(value)
            if layout.fields < 4:
                return other(value)
            return fit(keep_format(value, layout, digest))

        return first

    def first_choice_native(self) -> NativeFirst | None:
        c, limit = native.RULES, cut_limit(self.column)
        if c is None or limit is None or not self.options.keep_format:
            return None
        key, keep_code = self.key, self.options.keep_country_code
        return lambda values: c.phone(key, values, keep_code, limit)


class IpOptions(Options):
    ipv4_prefix: int = Field(0, ge=0, le=32, description="leading bits of an IPv4 address kept (8 keeps `10.x.x.x`)")
    ipv6_prefix: int = Field(0, ge=0, le=128, description="leading bits of an IPv6 address kept")


@register("ip")
class Ip(Transformer[IpOptions]):
    """An IP address of the same version (IPv4 stays IPv4, IPv6 stays IPv6), prefix length kept.

    A `/n` suffix is kept; in a `cidr` column the host bits are zero. A value that is not an IP
    address is replaced by a keyed IPv4 address.
    """

    Options = IpOptions
    kinds = frozenset({"inet", "text", "other"})
    example = "ip: {ip: {ipv4_prefix: 8}}"

    def __init__(self, options: BaseModel | Mapping[str, Any], column: ColumnInfo, key: bytes) -> None:
        super().__init__(options, column, key)
        self.cidr = column.type.strip().lower().startswith("cidr")

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        bits = int.from_bytes(keyed.digest(self.key, value, attempt)[:16], "big")
        try:
            iface = ipaddress.ip_interface(value.strip())
        except ValueError:
            return str(ipaddress.IPv4Address(bits >> 96))
        width = iface.max_prefixlen
        keep = self.options.ipv4_prefix if width == 32 else self.options.ipv6_prefix
        original = int(iface.ip)
        random_bits = bits >> (128 - width)
        host_mask = (1 << (width - keep)) - 1
        address = (original & ~host_mask & ((1 << width) - 1)) | (random_bits & host_mask)
        if self.cidr:
            address &= ~((1 << (width - iface.network.prefixlen)) - 1)
        new = ipaddress.IPv6Address(address) if width == 128 else ipaddress.IPv4Address(address)
        if "/" in value:
            return f"{new}/{value.rsplit('/', 1)[1].strip()}"
        return str(new)
