"""Which personal data one column holds: its name, its type and a sample of its values, weighed together.

A column name is a modest hint (confidence about 0.5) that the values confirm or veto: ``genre.name``
holds genres, not people, and ``phone_extension`` no phone number. Values alone can report a
category too, when a clear share of the non-empty values matches (:data:`SHARE`); a name that
suggests the category lowers that bar (:data:`SHARE_NAMED`). Categories that values alone cannot
tell apart from harmless look-alikes need the name: any date column is not a date of birth, any
word without spaces not a user name, any 5-digit number not a postcode.

Evidence is counts only ("9,871 of 10,000 sampled values are valid phone numbers"): a finding never
carries a sampled value, so a scan report can be shared. JSON documents are walked leaf by leaf and
each path judged on its own (``$.contact.email``); PostgreSQL arrays element by element (``[]``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from datasafe.engines.kinds import column_kind
from datasafe.scan.detect_names import HINT, name_hints, normalise, uninformative
from datasafe.scan.detect_values import CHECK_LIMIT, Classifier, Profile
from datasafe.scan.model import Finding

#: share of the non-empty values that must match for values alone to report a category
SHARE = 0.6
#: ... for categories whose check rules out chance (a validated IBAN, card, phone in international or
#: formatted form, national id with a strong layout, VAT id, e-mail address, password hash, blob magic)
SHARE_SPECIFIC = 0.5
#: ... when the column's name suggests the category
SHARE_NAMED = 0.3
#: a column (or path) of e-mail addresses *or* phone numbers: both together reach SHARE, each at least this
SHARE_CONTACT_PART = 0.2
#: free text: share of the (long) values that embed personal data, once most values are long text
FREE_TEXT_SHARE = 0.1
#: a category needs at least this many matching values (or all values, when fewer were sampled)
MIN_MATCHES = 3
#: person names, cities and postcodes without a name hint also need this many different values
MIN_DISTINCT = 10
#: confidence of a finding that rests on the column type alone (tsvector)
TYPE_CONFIDENCE = 0.4
#: JSON: documents walked, leaves per document, paths judged, at most
JSON_DOCUMENTS = 5000
JSON_LEAVES = 2000
JSON_PATHS = 500

#: confidence of a category at 100 % share; at its threshold a finding gets 0.7 of it
BASE = {"email": 0.97, "phone": 0.9, "iban": 0.97, "vat": 0.9, "card_number": 0.95, "national_id": 0.9,
        "ip_address": 0.85, "date_of_birth": 0.85, "username": 0.75, "password_hash": 0.95, "image": 0.9,
        "document": 0.85, "person_name": 0.85, "first_name": 0.8, "last_name": 0.8, "street": 0.8, "address": 0.85,
        "city": 0.75, "postcode": 0.75, "free_text": 0.8}
#: types whose values are never personal data by themselves
_NOT_TEXT = ("interval", "money", "bit", "varbit", "macaddr", "pg_lsn", "oid", "regclass", "point", "line", "lseg",
             "box", "path", "polygon", "circle", "geometry", "geography", "tsquery", "int4range", "int8range",
             "numrange", "tsrange", "tstzrange", "daterange", "enum(", "set(")
_FAMILIES = {"email", "phone", "iban", "vat", "card_number", "national_id", "ip_address", "person", "street", "city",
             "postcode", "blob", "free_text", "secret"}


def detect_column(table: str, column: str, type_name: str, kind: str, values: Sequence[str | None], *,
                  nullable: bool = True) -> list[Finding]:
    """Findings for one column from its name, its type and a sample of its values, strongest first.

    Args:
        table: the table, possibly schema-qualified (``public.customer``).
        column: the column's name.
        type_name: its declared type (``character varying(50)``, ``jsonb``, ``text[]``, ``tsvector``).
        kind: one of :data:`datasafe.engines.kinds.KINDS` for ``type_name``.
        values: the sampled cells in the database's text form (None for NULL): PostgreSQL bytea as
            ``\\x`` hex, MySQL binary as hex, SQLite blobs as base64.
        nullable: whether the column allows NULL (accepted for the caller's convenience; the verdict
            rests on the sampled values, which show NULLs as they are).

    Returns:
        Findings (category, confidence, evidence as counts, basis ``name``/``values``/``type``, and
        for JSON and arrays the ``path``); an empty list when the column shows no personal data, and
        always for a column without a non-empty sampled value.
    """
    present = [v for v in values if v is not None and v.strip()]
    if not present:
        return []
    base_type = " ".join(type_name.strip().lower().split()).strip('"')
    hints = name_hints(table, column)
    findings: list[Finding] = []
    if base_type == "tsvector":
        findings.append(Finding("derived", TYPE_CONFIDENCE, "tsvector: lexemes derived from text columns", "type"))
    elif _is_array(base_type):
        element_kind = column_kind(base_type.removesuffix("[]").lstrip("_").removesuffix(" array"))
        elements = [e for v in present for e in _array_elements(v) if e is not None and e.strip()]
        findings += _judge(hints, element_kind, elements, path="[]", unit="array elements",
                           generic=uninformative(column))
    elif kind == "json" or (kind in ("text", "other") and _looks_json(present)):
        findings += _json_findings(table, column, hints, present)
    elif kind != "other" or not base_type.startswith(_NOT_TEXT):
        findings += _judge(hints, kind, present, path=None, unit="sampled values", generic=uninformative(column))
    return sorted(findings, key=lambda f: -f.confidence)


# -- one set of values ------------------------------------------------------------------------------

def _wanted(kind: str, hints: dict[str, float]) -> frozenset[str]:
    """The detector families worth running on values of ``kind`` (numbers and dates need the name)."""
    named = {c for c, s in hints.items() if s >= HINT}
    if kind in ("text", "other"):
        want = set(_FAMILIES)
        if "date_of_birth" in named:
            want.add("date")
        if "username" in named:
            want.add("username")
        return frozenset(want)
    if kind == "int":
        return frozenset({c for c in named if c in ("phone", "national_id", "postcode", "card_number")}
                         | ({"date"} if "date_of_birth" in named else set()))
    if kind in ("date", "timestamp"):
        return frozenset({"date"} if "date_of_birth" in named else set())
    if kind == "inet":
        return frozenset({"ip_address"})
    if kind == "bytes":
        return frozenset({"blob"})
    return frozenset()


def _judge(hints: dict[str, float], kind: str, values: list[str], *, path: str | None, unit: str,
           generic: bool) -> list[Finding]:
    want = _wanted(kind, hints)
    if not want:
        return []
    profile = Profile()
    if "blob" in want:  # binary content is counted here; the rest is text to classify
        text = []
        for v in values:
            blob = blob_kind(v) if len(v) >= 8 and (" " not in v or v.startswith(_RAW_MAGIC)) else None
            if blob:
                profile.n += 1
                profile.features[blob] += 1
            else:
                text.append(v)
        values = text
    Classifier(want).run((v.strip() for v in values), profile)
    if profile.n == 0:
        return []
    if kind == "inet":
        hints = {**hints, "ip_address": max(hints.get("ip_address", 0.0), HINT)}
    return list(_Verdict(profile, hints, path, unit, generic).findings())


class _Verdict:
    """Turns one profile and the name hints into findings (see the module's docstring for the rules)."""

    def __init__(self, profile: Profile, hints: dict[str, float], path: str | None, unit: str,
                 generic: bool) -> None:
        self.p = profile
        self.generic = generic  #: the name says nothing (``value``): single first or last names may count
        self.hints = hints
        self.path = path
        self.unit = unit
        self.done: set[str] = set()

    def findings(self) -> Iterator[Finding]:
        f = self.p.features
        phones = f["phone"] + (f["phone_loose"] + f["phone_plain"] if self._named("phone") else 0)
        yield from self._contact(f["email"], phones)
        if not self._reported("email"):
            yield from self._each("email", f["email"], specific=True, what="are e-mail addresses")
            yield from self._each("phone", phones, specific=True, approx={"phone", "phone_loose", "phone_plain"},
                                  what="are valid phone numbers (phonenumbers)")
        yield from self._each("iban", f["iban"], specific=True, approx={"iban"}, what="are valid IBANs")
        yield from self._each("vat", f["vat"], specific=True, approx={"vat"}, what="are valid EU VAT numbers")
        yield from self._each("card_number", f["card"], specific=True,
                              what="are card numbers (network prefix, length and Luhn check)")
        yield from self._national_id()
        ip = f["ip"] if self._named("ip_address") else f["ip_strong"]
        yield from self._each("ip_address", ip, what="are IP addresses")
        yield from self._date_of_birth()
        if self._named("username"):
            yield from self._each("username", f["username"], what="are user-name shaped (3-32 characters, no spaces)")
        yield from self._secret()
        yield from self._each("image", f["image"], specific=True, what="are images (PNG, JPEG, GIF, WebP, TIFF)")
        yield from self._each("document", f["document"], specific=True,
                              what="are documents (PDF, ZIP/Office, OLE, RTF)")
        yield from self._person()
        yield from self._address()
        yield from self._city()
        yield from self._postcode()
        yield from self._free_text()

    # -- the rule every category follows --------------------------------------------------------

    def _named(self, category: str) -> bool:
        return self.hints.get(category, 0.0) >= HINT

    def _reported(self, category: str) -> bool:
        return category in self.done

    def _each(self, category: str, matched: int, *, specific: bool = False, approx: set[str] | None = None,
              what: str, threshold: float | None = None, base: float | None = None) -> Iterator[Finding]:
        """A finding when ``matched`` values reach the category's share (lower with a name hint)."""
        n = self.p.n
        named = self._named(category)
        if threshold is None:
            threshold = SHARE_NAMED if named else SHARE_SPECIFIC if specific else SHARE
        if matched < min(MIN_MATCHES, n) or matched / n < threshold:
            return
        about = bool(approx and approx & self.p.approximate)
        yield self._finding(category, matched, threshold, what, about=about, base=base)

    def _finding(self, category: str, matched: int, threshold: float, what: str, *, about: bool = False,
                 base: float | None = None, basis: str = "values") -> Finding:
        n = self.p.n
        share = min(1.0, matched / n)
        confidence = (base if base is not None else BASE[category]) * \
            (0.7 + 0.3 * min(1.0, (share - threshold) / max(1e-9, 1.0 - threshold)))
        hint = self.hints.get(category, 0.0)
        if hint:
            confidence = 1.0 - (1.0 - confidence) * (1.0 - 0.6 * hint)
        if n < 10:
            confidence *= 0.6 + 0.04 * n
        evidence = f"{'about ' if about else ''}{matched:,} of {n:,} {self.unit} {what}"
        if about:
            evidence += f" (estimated from {CHECK_LIMIT:,} distinct values checked)"
        if hint >= HINT and basis == "values":
            evidence += "; the column name suggests it too"
        elif hint and basis == "values":
            evidence += "; the column name allows it"
        self.done.add(category)
        return Finding(category, round(min(confidence, 0.99), 3), evidence, basis, self.path)

    def _name_only(self, category: str, evidence: str, confidence: float = 0.5) -> Finding:
        self.done.add(category)
        return Finding(category, confidence, evidence, "name", self.path)

    # -- categories with rules of their own ----------------------------------------------------

    def _contact(self, emails: int, phones: int) -> Iterator[Finding]:
        """A field of e-mail addresses *or* phone numbers (``$.value``, ``contact``)."""
        n = self.p.n
        if (emails + phones) / n < SHARE or min(emails, phones) / n < SHARE_CONTACT_PART or \
                max(emails, phones) / n >= SHARE:
            return
        yield self._finding("email", emails, SHARE_CONTACT_PART, "are e-mail addresses (the others phone numbers)",
                            base=0.85)
        about = bool({"phone", "phone_loose", "phone_plain"} & self.p.approximate)
        yield self._finding("phone", phones, SHARE_CONTACT_PART, "are valid phone numbers (the others e-mail "
                            "addresses)", base=0.8, about=about)

    def _national_id(self) -> Iterator[Finding]:
        f = self.p.features
        if self._named("national_id"):
            matched = f["natid_strong"] + f["natid_weak"]
            yield from self._each("national_id", matched, approx={"natid_strong", "natid_weak"},
                                  what="are valid national identity numbers (python-stdnum checks)")
        else:
            yield from self._each("national_id", f["natid_strong"], specific=True, approx={"natid_strong"},
                                  what="are valid national identity numbers with a distinctive layout "
                                       "(python-stdnum checks)")

    def _date_of_birth(self) -> Iterator[Finding]:
        if not self._named("date_of_birth"):
            return
        f = self.p.features
        adult = f["date_adult"] / self.p.n
        yield from self._each("date_of_birth", f["date_past"], threshold=SHARE, base=0.85 if adult >= 0.5 else 0.7,
                              what=f"are past dates ({f['date_adult']:,} with a year from 1920 to 2010)")

    def _secret(self) -> Iterator[Finding]:
        f, n = self.p.features, self.p.n
        if self._named("password_hash"):
            matched = f["crypt"] + f["hex_digest"] + f["token"]
            found = list(self._each("password_hash", matched, what="are password hashes, digests or tokens"))
            if found:
                yield from found
            elif self.p.distinct >= min(3, n):
                yield self._name_only("password_hash", f"the column name suggests a password or secret; {n:,} "
                                      f"non-empty {self.unit}, {f['crypt'] + f['hex_digest'] + f['token']:,} "
                                      f"of them hash- or token-shaped")
        else:
            yield from self._each("password_hash", f["crypt"], specific=True,
                                  what="are password hashes (bcrypt, argon2, pbkdf2, sha-crypt, ...)")

    def _person(self) -> Iterator[Finding]:
        f, n = self.p.features, self.p.n
        full, weak = f["name_full"], f["name_full_weak"]
        first, last, both = f["name_first"], f["name_last"], f["name_both"]
        listed = full + weak + first + last + both
        shaped = listed + f["name_shape"]
        distinct = self.p.distinct >= min(MIN_DISTINCT, n)
        for category in ("first_name", "last_name", "person_name"):
            if not self._named(category):
                continue
            found = list(self._each(category, listed, what="are names found in the first- and last-name lists "
                                                          "of 18 locales"))
            if found:
                yield from found
            elif shaped / n >= 0.8 and distinct:
                yield self._name_only(category, f"the column name suggests it; {shaped:,} of {n:,} {self.unit} "
                                      f"are shaped like names, {listed:,} of them in the name lists", 0.55)
            return
        if not distinct:
            return
        if full >= SHARE * n * 0.85 and full + weak >= SHARE * n:
            yield from self._each("person_name", full + weak, what="are full names (first and last name, "
                                  f"{full:,} with both in the name lists)")
        elif not self.generic:
            return
        elif first + both >= 0.7 * n and first > last:
            yield from self._each("first_name", first + both, threshold=0.7, what="are first names (name lists)")
        elif last + both >= 0.7 * n and last > first:
            yield from self._each("last_name", last + both, threshold=0.7, what="are last names (name lists)")

    def _address(self) -> Iterator[Finding]:
        f, n = self.p.features, self.p.n
        full = f["address"]
        named = self._named("street") or self._named("address")
        streets = f["street"] + (f["street_weak"] + f["unit"] if named else 0)
        if full >= streets and full:
            yield from self._each("address", full, what="are whole postal addresses (street with postcode or town)")
        if not self._reported("address") or streets - full >= SHARE * n:
            yield from self._each("street", streets, what="are street lines (house number and street name)")

    def _city(self) -> Iterator[Finding]:
        f, n = self.p.features, self.p.n
        if self._named("city"):
            yield from self._each("city", f["place"], threshold=SHARE, what=f"are place names ({f['city_list']:,} "
                                  "in the city lists)")
        elif self.p.distinct >= MIN_DISTINCT and f["city_list"] >= 0.7 * n:
            yield from self._each("city", f["city_list"], threshold=0.7, base=0.6, what="are cities in the city "
                                  "lists")

    def _postcode(self) -> Iterator[Finding]:
        f, n = self.p.features, self.p.n
        if self._named("postcode"):
            codes = f["postcode_alnum"] + f["postcode_num"]
            yield from self._each("postcode", codes, threshold=SHARE, what="are shaped like postal codes")
        elif self.p.distinct >= MIN_DISTINCT and f["postcode_alpha"] >= 0.7 * n:
            yield from self._each("postcode", f["postcode_alpha"], threshold=0.7, base=0.6,
                                  what="are postal codes with letters (UK, Canada, Netherlands, Ireland)")

    def _free_text(self) -> Iterator[Finding]:
        p = self.p
        if p.features["long_text"] < 0.5 * p.n or self.done:  # free text is what no other category explains
            return
        matched = p.embedding
        if matched < min(MIN_MATCHES, p.n) or matched / p.n < FREE_TEXT_SHARE:
            return
        parts = ", ".join(f"{c.replace('_', ' ')} {k:,}" for c, k in sorted(p.embedded.items()) if k)
        yield self._finding("free_text", matched, FREE_TEXT_SHARE, f"embed personal data ({parts})",
                            about="embedded" in p.approximate)


# -- binary content ---------------------------------------------------------------------------------

#: magic bytes of binary images and documents
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image"), (b"\xff\xd8\xff", "image"), (b"GIF87a", "image"), (b"GIF89a", "image"),
    (b"II*\x00", "image"), (b"MM\x00*", "image"), (b"BM", "image?"), (b"RIFF", "riff"), (b"%PDF-", "document"),
    (b"PK\x03\x04", "document"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "document"), (b"{\\rtf", "document"),
)
_HEX = re.compile(r"[0-9a-fA-F]{16,}")
_B64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
_RAW_MAGIC = ("%PDF", "\x89PNG", "GIF8", "\xff\xd8\xff", "PK\x03\x04", "{\\rtf", "II*", "MM\x00*")


def blob_kind(value: str) -> str | None:
    """``image`` / ``document`` by magic bytes: PostgreSQL ``\\x`` hex, MySQL hex, base64, or raw text."""
    head: bytes | None = None
    if value.startswith("\\x"):
        head = _unhex(value[2:34])
    elif len(value) >= 16 and _HEX.fullmatch(value[:32]) and len(value) % 2 == 0:
        head = _unhex(value[:32])
    if head is None and len(value) >= 16 and _B64.match(value[:24]):
        try:
            head = base64.b64decode(value[:24], validate=True)
        except (binascii.Error, ValueError):
            head = None
    if head is None:
        head = value[:12].encode("latin-1", "replace")
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            if kind == "riff":
                return "image" if head[8:12] == b"WEBP" else None
            return None if kind == "image?" else kind
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypavif", b"ftypmif1"):
        return "image"
    return None


def _unhex(text: str) -> bytes | None:
    try:
        return bytes.fromhex(text[: len(text) // 2 * 2])
    except ValueError:
        return None


# -- arrays and JSON --------------------------------------------------------------------------------

def _is_array(base_type: str) -> bool:
    return base_type.endswith("[]") or base_type.endswith(" array") or (base_type.startswith("_") and
                                                                       len(base_type) > 1)


def _array_elements(text: str) -> list[str | None]:
    """The elements of a PostgreSQL array literal (``{a,"b c",NULL}``; nested arrays flattened)."""
    out: list[str | None] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "{},\t\n ":
            i += 1
        elif c == '"':
            i += 1
            buf = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(text[i])
                i += 1
            out.append("".join(buf))
            i += 1
        else:
            j = i
            while j < n and text[j] not in ",}":
                j += 1
            word = text[i:j].strip()
            out.append(None if word.upper() == "NULL" else word)
            i = j
    return out


def _looks_json(values: list[str]) -> bool:
    starts = [v for v in values[:200] if v.lstrip()[:1] in ("{", "[")]
    if len(starts) < 0.5 * min(len(values), 200):
        return False
    parsed = 0
    for v in starts[:50]:
        with contextlib.suppress(ValueError):
            parsed += isinstance(json.loads(v), (dict, list))
    return parsed >= 0.8 * min(len(starts), 50)


def _json_findings(table: str, column: str, hints: dict[str, float], values: list[str]) -> list[Finding]:
    leaves: dict[str, list[str]] = {}
    for text in values[:JSON_DOCUMENTS]:
        try:
            doc = json.loads(text)
        except ValueError:
            continue
        budget = [JSON_LEAVES]
        _walk(doc, "$", leaves, budget)
    findings: list[Finding] = []
    for path, found in sorted(leaves.items(), key=lambda kv: -len(kv[1]))[:JSON_PATHS]:
        key, parent = _path_names(path)
        path_hints = name_hints(parent or table, key) if key else hints
        findings += _judge(path_hints, "text", found, path=path, unit="values at this path",
                           generic=uninformative(key or column))
    return findings


def _walk(node: Any, path: str, leaves: dict[str, list[str]], budget: list[int], depth: int = 0) -> None:
    if budget[0] <= 0 or depth > 32:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            _walk(value, path + _key(str(key)), leaves, budget, depth + 1)
    elif isinstance(node, list):
        for value in node:
            _walk(value, path + "[*]", leaves, budget, depth + 1)
    elif isinstance(node, str) or (isinstance(node, int) and not isinstance(node, bool)):
        budget[0] -= 1
        leaves.setdefault(path, []).append(str(node))


def _key(key: str) -> str:
    """A path step for ``key``; keys that could be data (an address, a number) become ``*``."""
    if key.isidentifier() and key.isascii() and len(key) <= 64:
        return "." + key
    if len(key) <= 64 and key.replace("-", "_").replace(" ", "_").isidentifier() and key.isascii():
        return "['" + key + "']"
    return ".*"


def _path_names(path: str) -> tuple[str | None, str | None]:
    """(last key, the key before it) of a JSON path, skipping array steps."""
    steps = [s for s in path.replace("['", ".").replace("']", "").replace("[*]", "").split(".")[1:] if s and s != "*"]
    if not steps:
        return None, None
    return normalise(steps[-1]), (normalise(steps[-2]) if len(steps) > 1 else None)
