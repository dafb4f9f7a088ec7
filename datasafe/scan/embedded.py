"""Personal data embedded in longer text: a comment, a view body, a note that mentions an address.

``embedded_categories(text)`` counts the e-mail addresses, phone numbers, IBANs, card numbers,
social security numbers and IP addresses inside a piece of text, each validated (phonenumbers,
python-stdnum, the Luhn check), so that an order number or a version string is not taken for
one. It returns counts only. ``redact_embedded(text)`` writes the same text with each of them
replaced by a placeholder of its shape (what ``rules init`` proposes as a schema rewrite).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

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


def _ip_matches(text: str) -> Iterator[re.Match[str]]:
    """The IPv4 addresses of ``text`` that could be someone's (not loopback, unspecified, reserved)."""
    for m in _IPV4.finditer(text):
        try:
            ip = ipaddress.ip_address(m.group())
        except ValueError:
            continue
        if not (ip.is_loopback or ip.is_unspecified or ip.is_reserved):
            yield m


def _ips(text: str) -> int:
    return sum(1 for _ in _ip_matches(text))


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


def embedded_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, category) of each validated value :func:`embedded_categories` counts, in order."""
    # an address's pattern takes a quote or dot in front of it too ('a@b.org' in SQL): not part of it
    spans = [(m.start() + len(m.group()) - len(m.group().lstrip("'.%+-")), m.end(), "email")
             for m in EMAIL_IN.finditer(text)]
    rest = EMAIL_IN.sub(lambda m: " " * len(m.group()), text)  # same length: positions stay
    if _DIGITS.search(rest) is not None:
        spans += [(m.start(), m.end(), "iban") for m in IBAN_IN.finditer(rest) if std_iban.is_valid(m.group())]
        spans += [(m.start(), m.end(), "card_number") for m in _CARD.finditer(rest)
                  if card_shape(d := re.sub(r"\D", "", m.group())) and luhn.is_valid(d)]
        spans += [(m.start(), m.end(), "national_id") for m in _SSN.finditer(rest) if us_ssn.is_valid(m.group())]
        spans += [(m.start(), m.end(), "ip_address") for m in _ip_matches(rest)]
        if len(_DIGITS.findall(rest)) >= 7:
            phones = {(m.start, m.end) for region in PHONE_REGIONS
                      for m in phonenumbers.PhoneNumberMatcher(rest, region, leniency=phonenumbers.Leniency.VALID)}
            spans += [(a, b, "phone") for a, b in phones]
    return sorted(spans)


def redact_embedded(text: str, *, rounds: int = 3) -> str | None:
    """``text`` with every value :func:`embedded_spans` finds replaced by a placeholder of its shape:
    an e-mail address by ``redacted-email`` (``redacted-email-2`` for the second, so enum labels
    stay distinct; no ``@``, so no address at all), every digit of a number by ``0`` (``+44 20 7946 0718`` ->
    ``+00 00 0000 0000``, which is no valid number of any kind). None when something is still
    found after ``rounds`` passes (overlapping finds are redacted one pass at a time)."""
    emails = 0
    for _ in range(rounds):
        spans = embedded_spans(text)
        if not spans:
            return text
        out, pos = [], 0
        for start, end, category in spans:
            if start < pos:
                continue  # overlaps the previous one: the next pass looks again
            out.append(text[pos:start])
            if category == "email":
                emails += 1
                out.append(f"redacted-email{f'-{emails}' if emails > 1 else ''}")
            else:
                out.append(_DIGITS.sub("0", text[start:end]))
            pos = end
        out.append(text[pos:])
        text = "".join(out)
    return None if embedded_categories(text) else text
