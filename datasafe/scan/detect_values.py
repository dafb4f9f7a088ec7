"""Value detectors: what each sampled value looks like, counted over a column.

Every value is classified into *features* (``email``, ``phone``, ``name_full``, ``street``, ...),
and :class:`Classifier` adds them up in a :class:`Profile`; :mod:`datasafe.scan.detect` turns the
counts into findings. No value is kept beyond the counting, and none is ever logged.

Cheap first, expensive last: a precompiled regular expression decides the *shape* of a value
(could it be a phone number, an IBAN, a national id?), and only values of the right shape reach the
checkers that cost tens of microseconds (phonenumbers, python-stdnum). Those checkers see each
distinct value once and at most :data:`CHECK_LIMIT` distinct values per column; beyond that, an
evenly spread selection is checked and the share that passed is applied to the rest (the evidence
then says "about").
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from types import ModuleType

import phonenumbers
from stdnum import iban as std_iban
from stdnum import luhn
from stdnum.eu import vat as eu_vat

from datasafe.scan.detect_names import (
    address_kinds,
    in_city_list,
    person_name,
    person_names,
    place,
    postcode_kinds,
)

#: distinct values per column and checker (phonenumbers, stdnum) checked at most
CHECK_LIMIT = 500
#: a value longer than this is only looked at as free text or a blob
MAX_FIELD = 200
#: ... longer than this, not as a number (phone, id, card, IBAN, date, postcode), only as an address
MAX_NUMBER = 48

EMAIL = re.compile(r"(?:mailto:)?[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}")
_NAME_ADDR = re.compile(r"[^<>@]{0,80}<([^<>\s]+)>")
_PHONE = re.compile(r"(?:\+|00)?[\d(][\d\s().\-/]{5,22}\d(?:\s*(?:x|ext\.?|#)\s*\d{1,6})?")
_SEPARATED = re.compile(r"\d[\s().\-/]+\d")
_GROUPS = re.compile(r"\d+")
_NON_DIGIT = re.compile(r"\D")
_DROP_DIGITS = str.maketrans("", "", "0123456789")
_COMPACT = re.compile(r"[\s.\-/]")
_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
_VAT = re.compile(r"(?:AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI)"
                  r"[0-9A-Z+*]{2,13}")
_CARD = re.compile(r"\d{4}(?:[ -]?\d{2,7}){1,4}|\d{13,19}")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?")
_IPV6 = re.compile(r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w+)?(?:/\d{1,3})?|::ffff:[\d.]+")
_DATE_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})"
                       r"(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?)?")
_DATE_DMY = re.compile(r"(\d{1,2})[./-](\d{1,2})[./-](\d{4})")
_DATE_YMD = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")
_DATE_COMPACT = re.compile(r"(19\d{2}|20\d{2})(\d{2})(\d{2})")
_YEAR = re.compile(r"19\d{2}|20\d{2}")
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{2,31}")
_CRYPT = re.compile(r"\$(?:2[abxy]?|argon2(?:id|i|d)|pbkdf2(?:-sha\d+)?|[1567]|y|gy|sha1|md5|scrypt|bcrypt-sha256)"
                    r"\$[^\s$]*\$?\S{8,}|(?:pbkdf2_sha\d+|argon2|bcrypt(?:_sha256)?|scrypt|sha1|md5)\$\S{16,}|"
                    r"\{(?:SSHA\d*|SHA\d*|SMD5|MD5|CRYPT|PBKDF2[\w-]*|ARGON2)\}\S{8,}|(?:pbkdf2|scrypt):[\w:]+\$\S+\$\S+")
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{56}|[0-9a-fA-F]{64}|[0-9a-fA-F]{96}|"
                         r"[0-9a-fA-F]{128}")
_TOKEN = re.compile(r"[A-Za-z0-9_\-+/=.~]{16,}")
#: issuer prefixes and lengths of card networks (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro)
_CARD_NETWORKS = (
    (re.compile(r"4"), (13, 16, 19)), (re.compile(r"5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)"), (16,)),
    (re.compile(r"3[47]"), (15,)), (re.compile(r"6(?:011|5|4[4-9])"), (16, 17, 18, 19)),
    (re.compile(r"35(?:2[89]|[3-8]\d)"), (16, 17, 18, 19)), (re.compile(r"3(?:0[0-5]|[689])"), (14, 15, 16)),
    (re.compile(r"62"), (16, 17, 18, 19)), (re.compile(r"5[06-8]|6\d"), tuple(range(12, 20))),
)
#: regions tried for a phone number written without its country code (US/CA: ten digits, no leading 0)
_TRUNK_ZERO_REGIONS = ("GB", "DE", "FR", "NL", "AU", "IT")


@dataclass
class Profile:
    """Counts over one column's (or one JSON path's) non-empty values.

    Attributes:
        n: non-empty values looked at (each occurrence counts).
        distinct: distinct values among them.
        features: feature -> values that have it (``email``, ``phone``, ``phone_plain``, ...).
        approximate: features whose count was extrapolated from a checked selection.
        embedded: for free text, category -> values that embed at least one.
        embedding: values that embed any personal data (free text).
    """

    n: int = 0
    distinct: int = 0
    features: Counter[str] = field(default_factory=Counter)
    approximate: set[str] = field(default_factory=set)
    embedded: Counter[str] = field(default_factory=Counter)
    embedding: int = 0


class _Checker:
    """Distinct candidates of one expensive check, checked after the cheap pass (see CHECK_LIMIT).

    ``check`` answers with the feature a value has (``phone``, ``natid_weak``, ...) or None.
    """

    def __init__(self, check: Callable[[str], str | None]) -> None:
        self.check = check
        self.pool: dict[str, int] = {}

    def add(self, key: str, weight: int) -> None:
        self.pool[key] = self.pool.get(key, 0) + weight

    def settle(self, into: Profile) -> None:
        if not self.pool:
            return
        keys = list(self.pool)
        step = -(-len(keys) // CHECK_LIMIT)
        chosen = keys[::step]
        got: Counter[str] = Counter()
        for key in chosen:
            feature = self.check(key)
            if feature:
                got[feature] += self.pool[key]
        checked, total = sum(self.pool[k] for k in chosen), sum(self.pool.values())
        for feature, weight in got.items():
            into.features[feature] += weight if step == 1 else round(total * weight / checked)
            if step > 1:
                into.approximate.add(feature)


def phone_kind(value: str, regions: list[str] | None = None) -> str | None:
    """``phone``: a valid number in international form, or in national form grouped the way the
    region writes it (``(415) 555-0123``, ``020 7946 0123``); ``phone_loose``: valid but grouped
    otherwise; ``phone_plain``: valid, digits only. Random digits pass the national checks of some
    region far too often (a dashed ISBN, a date) for anything but the first to count on its own."""
    try:
        if value.startswith(("+", "00")):
            number = phonenumbers.parse("+" + value[2:] if value.startswith("00") else value, None)
            return "phone" if phonenumbers.is_valid_number(number) else None
        digits = _NON_DIGIT.sub("", value.split("x")[0].split("ext")[0])
        plain = digits == value
        for region in _phone_regions(digits, regions):
            number = phonenumbers.parse(value, region)
            if phonenumbers.is_valid_number(number):
                if regions and region in regions and regions[0] != region:  # this column's region first
                    regions.remove(region)
                    regions.insert(0, region)
                if plain:
                    return "phone_plain"
                written = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
                return "phone" if _GROUPS.findall(written) == _GROUPS.findall(value) else "phone_loose"
    except phonenumbers.NumberParseException:
        return None
    return None


def _phone_regions(digits: str, regions: list[str] | None) -> list[str] | tuple[str, ...]:
    """The regions whose national numbers can look like ``digits`` (saves parsing in the others)."""
    if digits.startswith("0"):
        return regions if regions is not None else _TRUNK_ZERO_REGIONS
    if len(digits) == 10 or (len(digits) == 11 and digits.startswith("1")):
        return ("US",)
    return ("ES", "IT") if len(digits) in (9, 10) else ()


def card_shape(digits: str) -> bool:
    """A card network's prefix and length (the Luhn check comes later)."""
    return any(p.match(digits) and len(digits) in lengths for p, lengths in _CARD_NETWORKS)


def iban_kind(value: str) -> str | None:
    return "iban" if std_iban.is_valid(value) else None


def vat_kind(value: str) -> str | None:
    return "vat" if eu_vat.is_valid(value) else None


def date_year(value: str) -> tuple[int, int, int] | None:
    """(year, month, day) of a date written as ISO, d.m.y, y/m/d or yyyymmdd; None otherwise."""
    m = _DATE_ISO.fullmatch(value) or _DATE_YMD.fullmatch(value)
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    elif (m := _DATE_DMY.fullmatch(value)) is not None:
        d, mo, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if mo > 12 >= d:
            d, mo = mo, d
    elif (m := _DATE_COMPACT.fullmatch(value)) is not None:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    else:
        return None
    return (y, mo, d) if 1 <= mo <= 12 and 1 <= d <= 31 else None


# -- national identity numbers ----------------------------------------------------------------------
# Strong: the layout or the check alone rules out chance (a dashed SSN, the letters of a NINO, the
# mod-97 key of a NIR): (pattern, python-stdnum module; None: checked here). Weak: a plain run of
# digits passes some country's check often enough by chance that only a column name backs it up:
# number of digits -> modules.
_STRONG_IDS: tuple[tuple[re.Pattern[str], str | None], ...] = tuple((re.compile(p), m) for p, m in (
    (r"\d{3}-\d{2}-\d{4}", "us.ssn"),
    (r"[1-478]\d{4}[\dAB]\d{9}", "fr.nir"),
    (r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]", None),
    (r"\d{8}[A-Z]", "es.dni"),
    (r"[XYZ]\d{7}[A-Z]", "es.nie"),
    (r"[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]", "it.codicefiscale"),
    (r"(?:\d{2})?\d{6}[-+]\d{4}", "se.personnummer"),
    (r"\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]", "fi.hetu"),
    (r"756\.?\d{4}\.?\d{4}\.?\d{2}", "ch.ssn"),
    (r"\d{3}\.\d{3}\.\d{3}-\d{2}", "br.cpf"),
    (r"\d{7}[A-W][ABWTXZ]?", "ie.pps"),
    (r"[A-Z]{4}\d{6}[HMX][A-Z]{5}[A-Z\d]\d", "mx.curp"),
))
_ANY_STRONG_ID = re.compile("|".join(f"(?:{pattern.pattern})" for pattern, _module in _STRONG_IDS))
_WEAK_IDS: dict[int, tuple[str, ...]] = {
    9: ("us.ssn", "nl.bsn", "ca.sin"), 10: ("se.personnummer", "dk.cpr"),
    11: ("de.idnr", "pl.pesel", "be.nn", "no.fodselsnummer", "br.cpf"), 12: ("se.personnummer",), 13: ("fr.nir",),
}
_NINO_BAD_PREFIX = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


@functools.cache
def _stdnum(name: str) -> ModuleType:
    return importlib.import_module(f"stdnum.{name}")


def national_id_shape(upper: str, compact: str) -> str | None:
    """``natid_strong`` / ``natid_weak`` when a value (upper case; ``compact``: without separators)
    is laid out like some country's personal number."""
    if _ANY_STRONG_ID.fullmatch(upper) or _ANY_STRONG_ID.fullmatch(compact):
        return "natid_strong"
    return "natid_weak" if compact.isdigit() and len(compact) in _WEAK_IDS else None


def national_id_kind(value: str) -> str | None:
    """``natid_strong`` / ``natid_weak`` when valid for a scheme whose layout it has (python-stdnum)."""
    upper = value.upper()
    compact = _COMPACT.sub("", upper)
    for pattern, module in _STRONG_IDS:
        if pattern.fullmatch(upper) or pattern.fullmatch(compact):
            if module is None:  # UK National Insurance number: layout and excluded prefixes
                if compact[:2] not in _NINO_BAD_PREFIX:
                    return "natid_strong"
            elif _stdnum(module).is_valid(upper if module == "us.ssn" else compact):
                return "natid_strong"
    if compact.isdigit() and any(_stdnum(m).is_valid(compact) for m in _WEAK_IDS.get(len(compact), ())):
        return "natid_weak"
    return None


# -- personal data inside free text -----------------------------------------------------------------
EMAIL_IN = re.compile(r"[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}")
#: a run of digits and separators: every number worth a look in a text is one (found in one pass)
_RUN = re.compile(r"\+?\(?\d[\d ()./-]{5,24}\d\)?")
IBAN_IN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_IBAN_START = re.compile(r"[A-Z]{2}\d{2}")
_CARD_RUN = re.compile(r"\d{4}(?:[ -]?\d{2,7}){1,4}|\d{13,19}")
_SSN_RUN = re.compile(r"\d{3}-\d{2}-\d{4}")
_IPV4_RUN = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
#: capitalised words in a row ("Jane Doe"): the place to look for a first name followed by a last name
_CAPITALISED = re.compile(r"\b[A-ZÀ-Þ][a-zß-ÿ'’-]{1,24}(?:\s+[A-ZÀ-Þ][a-zß-ÿ'’-]{1,24})+\b")


class Embeds:
    """Counts the values of free text that embed e-mail addresses, phone numbers, IBANs, card numbers,
    SSNs, IP addresses or a person's first and last name. Phone numbers count only in a form that
    rules out chance (international, or grouped as their region writes them)."""

    def __init__(self) -> None:
        self.cache: dict[str, bool] = {}
        self.budget = CHECK_LIMIT
        self.regions = list(_TRUNK_ZERO_REGIONS)
        self.unknown = 0  #: values whose only candidate was a phone number left unchecked (budget spent)
        self.found: Counter[str] = Counter()
        self.any = 0

    def scan(self, value: str, weight: int) -> None:
        found: set[str] = set()
        if "@" in value and EMAIL_IN.search(value):
            found.add("email")
            value = EMAIL_IN.sub(" ", value)
        unknown = False
        for m in _RUN.finditer(value):
            start, end = m.span()
            if (start and value[start - 1].isalnum()) or (end < len(value) and value[end].isalnum()):
                continue  # part of a word or a code (A-1234567)
            category = self._number(m.group().rstrip(" ./-"))
            if category == "?":
                unknown = True
            elif category:
                found.add(category)
        if _IBAN_START.search(value) and any(std_iban.is_valid(m.group()) for m in IBAN_IN.finditer(value)):
            found.add("iban")
        first, last = person_names()
        for m in _CAPITALISED.finditer(value):
            words = m.group().casefold().split()
            if any(a in first and b in last for a, b in itertools.pairwise(words)):
                found.add("person_name")
                break
        if found:
            self.any += weight
            for category in found:
                self.found[category] += weight
        elif unknown:
            self.unknown += weight

    def _number(self, run: str) -> str | None:
        """The category of a number in a text (``?``: a phone number left unchecked, budget spent)."""
        if _IPV4_RUN.fullmatch(run):
            octets = [int(o) for o in run.split(".")]
            return "ip_address" if 32 <= max(octets) <= 255 and octets[0] not in (0, 127) else None
        if _SSN_RUN.fullmatch(run):
            return "national_id" if _stdnum("us.ssn").is_valid(run) else None
        digits = _NON_DIGIT.sub("", run)
        if 13 <= len(digits) <= 19 and _CARD_RUN.fullmatch(run) and card_shape(digits) and luhn.is_valid(digits):
            return "card_number"
        if not 8 <= len(digits) <= 15 or not (run[0] in "+(" or _SEPARATED.search(run)) or date_year(run):
            return None
        known = self.cache.get(run)
        if known is None:
            if self.budget <= 0:
                return "?"
            self.budget -= 1
            known = self.cache[run] = phone_kind(run, self.regions) == "phone"
        return "phone" if known else None

    def settle(self, into: Profile) -> None:
        into.embedding += self.any
        into.embedded.update(self.found)
        if self.unknown and self.cache:
            rate = sum(self.cache.values()) / len(self.cache)
            extra = round(self.unknown * rate)
            into.embedding += extra
            into.embedded["phone"] += extra
            into.approximate.add("embedded")


class Classifier:
    """Classifies values into features; ``wanted`` says which families to look for (saves time)."""

    def __init__(self, wanted: frozenset[str]) -> None:
        self.wanted = wanted
        regions = list(_TRUNK_ZERO_REGIONS)
        self.phones = _Checker(lambda value: phone_kind(value, regions))
        self.ibans = _Checker(iban_kind)
        self.vats = _Checker(vat_kind)
        self.ids = _Checker(national_id_kind)
        self.embeds = Embeds()
        self.prose: list[tuple[str, int]] = []
        self.today = date.today()

    def run(self, values: Iterable[str], profile: Profile) -> None:
        counts = Counter(values)
        profile.n += sum(counts.values())
        profile.distinct += len(counts)
        for value, weight in counts.items():
            for feature in self.features(value, weight):
                profile.features[feature] += weight
        for checker in (self.phones, self.ibans, self.vats, self.ids):
            checker.settle(profile)
        # free text only where most values are prose, not addresses (they embed nothing the address
        # category does not already say)
        f = profile.features
        if f["long_text"] >= 0.5 * profile.n and f["address"] + f["street"] < 0.5 * profile.n:
            for value, weight in self.prose:
                self.embeds.scan(value, weight)
            self.embeds.settle(profile)

    def features(self, value: str, weight: int) -> list[str]:
        want = self.wanted
        out: list[str] = []
        spaced = " " in value or "\n" in value
        if "free_text" in want and spaced and len(value) >= 20 and value.count(" ") >= 2:
            out.append("long_text")
            self.prose.append((value, weight))
        if len(value) > MAX_FIELD:
            return out
        digits = len(value) - len(value.translate(_DROP_DIGITS))
        if "@" in value and "email" in want:
            m = _NAME_ADDR.fullmatch(value)
            if EMAIL.fullmatch(m.group(1) if m else value):
                out.append("email")
                return out
        if digits:
            if len(value) <= MAX_NUMBER:
                self._numbers(value, digits, weight, out)
            elif "street" in want:  # a long value with digits: only an address is worth a look
                out += address_kinds(value)
        else:
            self._words(value, out)
        if "secret" in want and not spaced:
            if _CRYPT.fullmatch(value):
                out.append("crypt")
            elif _HEX_DIGEST.fullmatch(value):
                out.append("hex_digest")
            elif _TOKEN.fullmatch(value) and digits and not value.isdigit():
                out.append("token")
        if "username" in want and not spaced and _USERNAME.fullmatch(value) and digits < len(value):
            out.append("username")
        return out

    def _numbers(self, value: str, digits: int, weight: int, out: list[str]) -> None:
        want = self.wanted
        upper = value.upper()
        compact = _COMPACT.sub("", upper) if len(value) <= 48 else upper
        # a value of a more specific shape (address, date, id, card, IBAN) is no phone number
        other = False
        if ("ip_address" in want or "phone" in want) and \
                (_IPV4.fullmatch(value) or (":" in value and _IPV6.fullmatch(value))):
            other = self._ip(value, out)
        ymd = date_year(value) if "-" in value or "." in value or "/" in value or "date" in want else None
        if "date" in want and ymd is None and _YEAR.fullmatch(value):
            ymd = (int(value), 1, 1)
        if ymd:
            other = True
            if "date" in want:
                out.append("date")
                if 1900 <= ymd[0] <= self.today.year:
                    out.append("date_past")
                    if 1920 <= ymd[0] <= 2010:
                        out.append("date_adult")
        if "iban" in want and _IBAN.fullmatch(compact):
            self.ibans.add(compact, weight)
            other = True
        if "vat" in want and _VAT.fullmatch(compact):
            self.vats.add(compact, weight)
            other = True
        if "card_number" in want and 12 <= digits <= 19 and _CARD.fullmatch(value):
            number = _NON_DIGIT.sub("", value)
            if card_shape(number) and luhn.is_valid(number):
                out.append("card")
                other = True
        if "national_id" in want:
            shape = national_id_shape(upper, compact)
            if shape:
                self.ids.add(value, weight)
                other = other or shape == "natid_strong"
        if "phone" in want and not other and 7 <= digits <= 15 and _PHONE.fullmatch(value):
            self.phones.add(value, weight)
        if "postcode" in want and len(value) <= 10:
            out += postcode_kinds(upper)
        if "street" in want:
            out += address_kinds(value)
        if "city" in want and place(value):
            out.append("place")

    def _ip(self, value: str, out: list[str]) -> bool:
        try:
            ip = ipaddress.ip_address(value.split("/")[0].split("%")[0])
        except ValueError:
            return False
        out.append("ip")
        if ip.version == 6 or max(int(o) for o in str(ip).split(".")) >= 32:
            out.append("ip_strong")
        return True

    def _words(self, value: str, out: list[str]) -> None:
        want = self.wanted
        if "person" in want:
            kind = person_name(value)
            if kind:
                out.append("name_" + kind)
        if "street" in want:
            out += address_kinds(value)
        if "city" in want and place(value):
            out.append("place")
            if in_city_list(value):
                out.append("city_list")
