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

EMAIL = re.compile(r"[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
#: first digits of the card networks (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro)
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|6(?:011|5|4[4-9]|2)|35|30[0-5]|36|38|5[06-8])")
#: regions tried for phone numbers written without a country code
PHONE_REGIONS = ("US", "GB", "DE", "FR")
_DIGITS = re.compile(r"\d")


def _cards(text: str) -> int:
    count = 0
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn.is_valid(digits):
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
    emails = EMAIL.findall(text)
    if emails:
        out["email"] = len(emails)
        text = EMAIL.sub(" ", text)  # an address's digits are not a phone number
    if _DIGITS.search(text) is None:
        return out
    ibans = sum(1 for m in _IBAN.finditer(text) if std_iban.is_valid(m.group()))
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
