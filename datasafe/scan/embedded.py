"""Personal data embedded in longer text: a comment, a view body, a note that mentions an address.

``embedded_categories(text)`` counts the e-mail addresses, phone numbers, IBANs, card numbers,
social security numbers and IP addresses inside a piece of text, each validated (phonenumbers,
python-stdnum, the Luhn check), so that an order number or a version string is not taken for
one. It returns counts only.
"""

from __future__ import annotations

import ipaddress
import re

import phonenumbers
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.us import ssn as us_ssn

from datasafe.scan.detect_values import EMAIL_IN, IBAN_IN, card_shape

_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
#: regions tried for phone numbers written without a country code
PHONE_REGIONS = ("US", "GB", "DE", "FR")
_DIGITS = re.compile(r"\d")


def _cards(text: str) -> int:
    count = 0
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if card_shape(digits) and luhn.is_valid(digits):
            count += 1
    return count


def _phones(text: str) -> int:
    if len(_DIGITS.findall(text)) < 7:
        return 0
    seen: set[tuple[int, int]] = set()
    for region in PHONE_REGIONS:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            seen.add((match.start, match.end))
    return len(seen)


def _ips(text: str) -> int:
    count = 0
    for m in _IPV4.finditer(text):
        try:
            ip = ipaddress.ip_address(m.group())
        except ValueError:
            continue
        if not (ip.is_loopback or ip.is_unspecified or ip.is_reserved):
            count += 1
    return count


def embedded_categories(text: str) -> dict[str, int]:
    """How many validated e-mail addresses, phone numbers, IBANs, card numbers, SSNs and IP
    addresses ``text`` contains (categories of :mod:`datasafe.scan.model`)."""
    out: dict[str, int] = {}
    emails = EMAIL_IN.findall(text)
    if emails:
        out["email"] = len(emails)
        text = EMAIL_IN.sub(" ", text)  # an address's digits are not a phone number
    if _DIGITS.search(text) is None:
        return out
    ibans = sum(1 for m in IBAN_IN.finditer(text) if std_iban.is_valid(m.group()))
    if ibans:
        out["iban"] = ibans
    cards = _cards(text)
    if cards:
        out["card_number"] = cards
    ssns = sum(1 for m in _SSN.finditer(text) if us_ssn.is_valid(m.group()))
    if ssns:
        out["national_id"] = ssns
    ips = _ips(text)
    if ips:
        out["ip_address"] = ips
    phones = _phones(text)
    if phones:
        out["phone"] = phones
    return out
