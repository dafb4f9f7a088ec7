"""Where people live: addresses, postcodes, IP addresses (phone numbers are in :mod:`.phone`).

Street, city, postcode and address take ``country_column``: each row's value is then made in
the Faker locale of the country another column of the row names (see :mod:`datasafe.masking.countries`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, model_validator

from datasafe.masking import keyed
from datasafe.masking.fakes import to_text
from datasafe.masking.layout import same_script
from datasafe.masking.transformers.base import Options, Transformer, register
from datasafe.masking.transformers.person import CountryOptions, FakerTransformer
from datasafe.masking.types import ColumnInfo, RowView

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"


def replace_chars(value: str, draws: keyed.Draws, *, letters: bool = True) -> str:
    """Replace every decimal digit by a digit of its script (and every ASCII letter by a letter of the
    same case); keep the rest."""
    out = []
    for ch in value:
        if ch.isdecimal():
            out.append(same_script(str(draws.below(10)), ch))
        elif letters and ch.isascii() and ch.isalpha():
            out.append((_UPPER if ch.isupper() else _LOWER)[draws.below(26)])
        else:
            out.append(ch)
    return "".join(out)


@register("street")
class Street(FakerTransformer[CountryOptions]):
    """A street address (house number and street) in the locale's form."""

    Options = CountryOptions
    method = "street_address"
    example = "street: street\nstreet_line: {street: {country_column: country}}"


@register("city")
class City(FakerTransformer[CountryOptions]):
    """A city name from the locale."""

    Options = CountryOptions
    method = "city"
    example = "city: city"


class PostcodeOptions(CountryOptions):
    keep_format: bool = Field(False, description="replace the digits and letters of the input, keeping its layout "
                                                 "(`SW1A 1AA` → `KE4B 7QT`), instead of a postcode of the locale")

    @model_validator(mode="after")
    def _one_source(self) -> PostcodeOptions:
        if self.keep_format and self.country_column is not None:
            raise ValueError("keep_format keeps the input's own layout, country_column makes a postcode of the "
                             "row's country: choose one")
        return self


@register("postcode")
class Postcode(FakerTransformer[PostcodeOptions]):
    """A postcode of the locale, or the input's layout with other digits and letters."""

    Options = PostcodeOptions
    method = "postcode"
    example = "zip: {postcode: {keep_format: true}}\npostal_code: {postcode: {country_column: country}}"

    def mask(self, value: str, row: RowView, attempt: int) -> str | None:
        if self.options.keep_format:
            return replace_chars(value, keyed.Draws(keyed.digest(self.key, value, attempt)))
        return super().mask(value, row, attempt)


class AddressOptions(CountryOptions):
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
        return self.first_from_digest(value, keyed.digest(self.key, value, attempt))

    def first_from_digest(self, value: str, digest: bytes) -> str | None:
        bits = int.from_bytes(digest[:16], "big")
        plain = None if self.cidr else _dotted_quad(value)
        iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface | None = None
        if plain is not None:  # read without the ipaddress module (a tenth of the time)
            width, original = 32, plain
        else:
            try:
                iface = ipaddress.ip_interface(value.strip())
            except ValueError:
                return str(ipaddress.IPv4Address(bits >> 96))
            width, original = iface.max_prefixlen, int(iface.ip)
        keep = self.options.ipv4_prefix if width == 32 else self.options.ipv6_prefix
        host_mask = (1 << (width - keep)) - 1
        address = (original & ~host_mask & ((1 << width) - 1)) | ((bits >> (128 - width)) & host_mask)
        if iface is None:  # str(IPv4Address(address)), without the ipaddress module
            return f"{address >> 24}.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}"
        if self.cidr:
            address &= ~((1 << (width - iface.network.prefixlen)) - 1)
        new = ipaddress.IPv6Address(address) if width == 128 else ipaddress.IPv4Address(address)
        if "/" in value:
            return f"{new}/{value.rsplit('/', 1)[1].strip()}"
        return str(new)


def _dotted_quad(value: str) -> int | None:
    """A plain IPv4 address (``192.0.2.7``, no prefix, no spaces) as an integer, as
    :class:`ipaddress.IPv4Address` reads it (no leading zeros); None for anything else."""
    parts = value.split(".")
    if len(parts) != 4:
        return None
    n = 0
    for part in parts:
        if not (0 < len(part) <= 3 and part.isascii() and part.isdigit()) or (part[0] == "0" and len(part) > 1):
            return None
        octet = int(part)
        if octet > 255:
            return None
        n = n << 8 | octet
    return n
