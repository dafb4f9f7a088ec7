"""PII discovery on one column (``datasafe.scan.detect``): names, values, JSON paths, arrays, types.

Every value here is generated: Faker with a fixed seed, phone numbers from the ranges reserved for
fiction, e-mail addresses at reserved domains, IP addresses from the documentation ranges, and
identifiers whose check digits are computed here. For each category a positive column and at least
one look-alike that must stay silent; every finding is checked for counts-only evidence that never
repeats a sampled value.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import date, timedelta

import phonenumbers
import pytest
from faker import Faker
from stdnum import iban as std_iban
from stdnum.de import idnr as de_idnr
from stdnum.de import vat as de_vat
from stdnum.fr import nir as fr_nir
from stdnum.us import ssn as us_ssn

from datasafe.engines.kinds import KINDS, column_kind
from datasafe.scan.detect import (
    FREE_TEXT_SHARE,
    MIN_MATCHES,
    SHARE_NAMED,
    SHARE_SPECIFIC,
    TYPE_CONFIDENCE,
    detect_column,
)
from datasafe.scan.detect_names import city_names, name_hints, person_names, street_words
from datasafe.scan.model import CATEGORIES, Finding

SEED = 20240630
N = 400


# -- helpers -----------------------------------------------------------------------------------------

def detect(table: str, column: str, type_name: str, values: Sequence[str | None], kind: str | None = None
           ) -> list[Finding]:
    """detect_column, plus what must hold for every finding: a known category, confidence in 0..1,
    strongest first, and evidence made of counts that never repeats a sampled value."""
    kind = kind or column_kind(type_name)
    assert kind in KINDS
    findings = detect_column(table, column, type_name, kind, values)
    assert [f.confidence for f in findings] == sorted((f.confidence for f in findings), reverse=True)
    for f in findings:
        assert f.category in CATEGORIES
        assert 0.0 < f.confidence <= 1.0
        assert f.basis in ("name", "values", "type")
        if f.basis == "values":
            assert any(c.isdigit() for c in f.evidence), f.evidence
        for value in values:
            for piece in _pieces(value):
                assert piece not in f.evidence, (f.category, f.evidence)
    return findings


def _pieces(value: str | None) -> list[str]:
    """A value and the parts of it that could leak (JSON strings, array elements)."""
    if value is None or len(value.strip()) < 5:
        return []
    out = [value.strip()]
    if value.lstrip().startswith(("{", "[")):
        try:
            doc = json.loads(value)
        except ValueError:
            doc = None
        stack = [doc]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                stack += list(node.values())
            elif isinstance(node, list):
                stack += node
            elif isinstance(node, str) and len(node) >= 5:
                out.append(node)
        out += [e.strip('"') for e in value.strip("{}").split(",") if len(e.strip('"')) >= 5]
    return out


def categories(findings: list[Finding]) -> set[str]:
    return {f.category for f in findings}


def top(findings: list[Finding]) -> str | None:
    return findings[0].category if findings else None


@pytest.fixture
def fk() -> Faker:
    faker = Faker(["en_US", "en_GB", "de_DE", "fr_FR"])
    faker.seed_instance(SEED)
    return faker


@pytest.fixture
def rng() -> random.Random:
    return random.Random(SEED)


def digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(n))


def luhn_complete(prefix: str) -> str:
    """``prefix`` followed by its Luhn check digit (computed here, not by the code under test)."""
    total = 0
    for i, ch in enumerate(reversed(prefix)):
        d = int(ch)
        if i % 2 == 0:  # these digits are doubled once the check digit is appended
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return prefix + str((10 - total % 10) % 10)


def emails(fk: Faker, n: int = N) -> list[str]:
    return [f"{fk.user_name()}{i}@example.{('com', 'org', 'net')[i % 3]}" for i in range(n)]


def fiction_phone(rng: random.Random) -> str:
    """A valid number from a range reserved for fiction (US 555-01xx, Ofcom drama, ARCEP 99 00),
    written in E.164, international or national form."""
    raw = rng.choice([f"+1415555{rng.randrange(100, 200):04d}", f"+4420794600{rng.randrange(100):02d}",
                      f"+3319900{rng.randrange(10000):04d}"])
    number = phonenumbers.parse(raw)
    assert phonenumbers.is_valid_number(number)
    style = rng.choice([None, phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.NATIONAL])
    return raw if style is None else phonenumbers.format_number(number, style)


def ssn(rng: random.Random, dashes: bool = True) -> str:
    while True:
        value = f"{rng.randrange(1, 900):03d}{rng.randrange(1, 100):02d}{rng.randrange(1, 10000):04d}"
        if us_ssn.is_valid(value):
            return f"{value[:3]}-{value[3:5]}-{value[5:]}" if dashes else value


def iban(rng: random.Random) -> str:
    bban = digits(rng, 18)
    return "DE" + std_iban.calc_check_digits("DE00" + bban) + bban


def png(rng: random.Random) -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(60)


def pdf(rng: random.Random) -> bytes:
    return b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + rng.randbytes(40)


# -- column names ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("table", "column", "expected"), [
    ("customer", "FirstName", {"first_name"}),
    ("customer", "last_name", {"last_name"}),
    ("public.customer", "name", {"person_name"}),
    ("invoices", "BillingPostalCode", {"postcode"}),
    ("users", "email_address", {"email"}),
    ("users", "last_login_ip", {"ip_address"}),
    ("employees", "date_of_birth", {"date_of_birth"}),
    ("people", "birth_place", {"city"}),
    ("staff", "password", {"password_hash"}),
    ("hr.employees", "national_id", {"national_id"}),
    ("payments", "card_holder", {"person_name"}),
    ("address", "address2", {"street"}),
    ("orders", "shipping_address", {"street", "address"}),
])
def test_name_hints_suggest(table: str, column: str, expected: set[str]) -> None:
    hints = name_hints(table, column)
    assert expected <= set(hints), hints
    assert all(0.0 < s <= 1.0 for s in hints.values())


@pytest.mark.parametrize(("table", "column", "absent"), [
    ("staff", "phone_extension", "phone"),
    ("countries", "phone_prefix", "phone"),
    ("users", "email_verified_at", "email"),
    ("users", "num_emails", "email"),
    ("country", "city_count", "city"),
    ("payment", "card_last4", "card_number"),
    ("users", "password_changed_at", "password_hash"),
    ("people", "birth_place", "date_of_birth"),
    ("devices", "mac_address", "address"),
])
def test_name_hints_ignore_qualified_names(table: str, column: str, absent: str) -> None:
    assert absent not in name_hints(table, column)


def test_a_bare_name_is_a_strong_hint_only_in_a_table_of_people() -> None:
    assert name_hints("public.customer", "name")["person_name"] > name_hints("public.genre", "name")["person_name"]
    assert "person_name" not in name_hints("products", "product_name")


def test_reference_lists_load_offline_into_folded_frozensets() -> None:
    first, last = person_names()
    assert isinstance(first, frozenset) and isinstance(last, frozenset)
    assert len(first) > 5000 and len(last) > 5000
    assert all(w == w.casefold() for w in list(first)[:500])
    assert {"gregoire", "grégoire"} <= first  # accents kept and stripped
    assert "müller" in last and "muller" in last
    assert len(city_names()) > 1000
    assert {"street", "strasse", "rue", "via", "laan", "calle"} <= street_words()  # ß folds to ss


# -- e-mail, phone -------------------------------------------------------------------------------------

def test_email(fk: Faker) -> None:
    values = emails(fk)
    assert top(detect("t", "contact_value", "text", values)) == "email"
    named = detect("customer", "email", "varchar(190)", values)
    assert top(named) == "email" and named[0].confidence > 0.9
    assert f"{N:,} of {N:,} sampled values" in named[0].evidence


def test_email_look_alikes(fk: Faker) -> None:
    handles = [f"@{fk.user_name()}{i}" for i in range(N)]
    spelled = [f"{fk.user_name()} at example dot com" for _ in range(N)]
    assert detect("t", "handle", "text", handles) == []
    assert "email" not in categories(detect("t", "alias", "text", spelled))


def test_phone(rng: random.Random) -> None:
    values = [fiction_phone(rng) for _ in range(N)]
    assert top(detect("t", "data", "text", values)) == "phone"
    assert top(detect("address", "phone", "text", values)) == "phone"


def test_phone_digits_only_need_the_name(rng: random.Random) -> None:
    values = [f"415555{rng.randrange(100, 200):04d}" for _ in range(N)]
    assert detect("t", "ref", "text", values) == []
    assert top(detect("t", "mobile", "text", values)) == "phone"


def test_phone_look_alikes(rng: random.Random) -> None:
    isbns = [f"{digits(rng, 1)}-{digits(rng, 3)}-{digits(rng, 5)}-{digits(rng, 1)}" for _ in range(N)]
    dates = [(date(2020, 1, 1) + timedelta(days=rng.randrange(1500))).isoformat() for _ in range(N)]
    extensions = [str(rng.randrange(100, 990)) for _ in range(N)]
    prefixes = [rng.choice(["+44", "+1", "+49", "+33", "+351"]) for _ in range(N)]
    assert detect("t", "isbn", "text", isbns) == []
    assert detect("t", "shipped_on", "text", dates) == []
    assert detect("staff", "phone_extension", "text", extensions) == []
    assert detect("countries", "phone_prefix", "text", prefixes) == []


# -- people ----------------------------------------------------------------------------------------------

def test_person_names(fk: Faker) -> None:
    firsts = [fk.first_name() for _ in range(N)]
    lasts = [fk.last_name() for _ in range(N)]
    fulls = [f"{f} {la}" for f, la in zip(firsts, lasts, strict=True)]
    assert top(detect("customer", "first_name", "text", firsts)) == "first_name"
    assert top(detect("customer", "last_name", "text", lasts)) == "last_name"
    assert top(detect("public.customer", "name", "text", fulls)) == "person_name"
    assert top(detect("orders", "shipping_name", "text", fulls)) == "person_name"
    display = [f"{la.upper()}, {f}" for f, la in zip(firsts, lasts, strict=True)]
    assert top(detect("t", "value", "text", display)) == "person_name"  # values alone, "LAST, First"


GENRES = ["Action", "Animation", "Children", "Classics", "Comedy", "Documentary", "Drama", "Family", "Foreign",
          "Games", "Horror", "Music", "New", "Sci-Fi", "Sports", "Travel"]
LANGUAGES = ["English", "Italian", "Japanese", "Mandarin", "French", "German"]
MEDIA_TYPES = ["MPEG audio file", "Protected AAC audio file", "Protected MPEG-4 video file",
               "Purchased AAC audio file", "AAC audio file"]
COUNTRIES = ["Argentina", "Chad", "Georgia", "Jordan", "Kenya", "Peru", "Chile", "Jamaica", "Israel", "Niger",
             "France", "Germany", "India", "Ireland", "Mexico", "Morocco", "Senegal", "Uganda", "Viet Nam"]


@pytest.mark.parametrize(("table", "values"), [
    ("public.genre", GENRES), ("public.category", GENRES), ("media_type", MEDIA_TYPES),
    ("public.language", LANGUAGES), ("country", COUNTRIES),
])
def test_names_of_things_are_no_person_names(table: str, values: list[str]) -> None:
    assert detect(table, "name", "varchar(50)", values * 3) == []


def test_product_titles_pets_and_brands_are_no_person_names(fk: Faker) -> None:
    products = [f"{fk.word().title()} {fk.word().title()} {fk.word().title()}" for _ in range(N)]
    titles = [f"{fk.word().upper()} {fk.word().upper()}" for _ in range(N)]
    pets = [fk.first_name() for _ in range(N)]
    brands = [fk.last_name() for _ in range(N)]
    companies = [fk.company() for _ in range(N)]
    assert detect("product", "name", "text", products) == []
    assert detect("film", "title", "text", titles) == []
    assert detect("pets", "name", "text", pets) == []
    assert detect("t", "pet_name", "text", pets) == []
    assert detect("t", "brand", "text", brands) == []
    assert detect("t", "company", "text", companies) == []


def test_a_first_name_column_of_names_outside_the_lists_keeps_its_name_finding(rng: random.Random) -> None:
    made_up = ["".join(rng.choice("bdgklmnrstvz") + rng.choice("aeiou") for _ in range(3)).title()
               for _ in range(N)]
    found = detect("customer", "first_name", "text", made_up)
    assert top(found) == "first_name" and found[0].basis == "name" and found[0].confidence < 0.6


# -- addresses -------------------------------------------------------------------------------------------

def test_street_line_is_street_not_address(fk: Faker) -> None:
    us = Faker("en_US")
    us.seed_instance(SEED)
    lines = [f"{us.building_number()} {us.street_name()}" for _ in range(N)]
    found = detect("public.address", "address", "varchar(50)", lines)
    assert top(found) == "street" and "address" not in categories(found)
    assert top(detect("t", "street", "text", [fk.street_address() for _ in range(N)])) == "street"


def test_whole_address(fk: Faker) -> None:
    assert top(detect("orders", "shipping_address", "text", [fk.address() for _ in range(N)])) == "address"
    one_line = [f"{fk.street_address()}, {fk.postcode()} {fk.city()}" for _ in range(N)]
    assert top(detect("t", "deliver_to", "text", one_line)) == "address"


def test_apartment_lines_count_with_the_name(rng: random.Random) -> None:
    units = [f"{rng.choice(['Apt', 'Suite', 'Flat', 'Unit'])} {rng.randrange(1, 60)}" for _ in range(N)]
    assert top(detect("address", "address2", "text", units)) == "street"
    assert detect("t", "location", "text", units) == []


def test_city_needs_the_name_or_the_lists(fk: Faker) -> None:
    de = Faker("de_DE")
    de.seed_instance(SEED)
    cities = [fk.city() for _ in range(N)]
    assert top(detect("customers", "City", "nvarchar(40)", cities)) == "city"
    assert top(detect("t", "ort_x", "text", [de.city_name() for _ in range(N)])) == "city"  # Faker's real cities
    assert detect("t", "state", "text", [Faker("en_US").state() for _ in range(N)]) == []
    assert detect("t", "department", "text", ["Finance", "Legal", "Sales EMEA", "Data Platform"] * 50) == []


def test_postcode(fk: Faker, rng: random.Random) -> None:
    zips = [f"{rng.randrange(501, 99950):05d}" for _ in range(N)]
    assert top(detect("t", "zip", "text", zips)) == "postcode"
    assert top(detect("invoices", "BillingPostalCode", "nvarchar(10)", zips)) == "postcode"
    assert detect("hr.departments", "cost_center", "text", zips) == []  # 5 digits alone need the name
    assert detect("products", "bin_quantity", "integer", [z.lstrip("0") for z in zips]) == []
    uk = Faker("en_GB")
    uk.seed_instance(SEED)
    assert top(detect("t", "code", "text", [uk.postcode() for _ in range(N)])) == "postcode"
    lots = [f"{rng.choice('QXZ')}{rng.choice('JQZ')}{rng.randrange(10, 99)} {rng.randrange(10)}AB" for _ in range(N)]
    assert detect("t", "lot", "text", lots) == []  # UK layout, but no UK postcode area


# -- identifiers -----------------------------------------------------------------------------------------

def test_national_id(rng: random.Random) -> None:
    assert top(detect("t", "tax_ref", "text", [ssn(rng) for _ in range(N)])) == "national_id"
    plain = [ssn(rng, dashes=False) for _ in range(N)]
    assert top(detect("hr.employees", "national_id", "text", plain)) == "national_id"
    assert detect("t", "order_ref", "text", plain) == []  # 9 plain digits: any order number
    idnrs = []
    while len(idnrs) < N:
        body = str(rng.randrange(1, 10)) + digits(rng, 9)
        value = body + de_idnr.mod_11_10.calc_check_digit(body)
        if de_idnr.is_valid(value):
            idnrs.append(value)
    assert top(detect("employees", "steuer_id", "text", idnrs)) == "national_id"
    nirs = []
    for _ in range(N):
        body = f"{rng.choice('12')}{rng.randrange(40, 99)}{rng.randrange(1, 13):02d}{rng.randrange(1, 96):02d}" \
               f"{rng.randrange(1, 990):03d}{rng.randrange(1, 999):03d}"
        nirs.append(body + fr_nir.calc_check_digits(body))
    assert top(detect("t", "numero", "text", nirs)) == "national_id"  # the mod-97 key rules out chance


def test_national_id_look_alikes(rng: random.Random) -> None:
    assert detect("t", "part_no", "text", [digits(rng, 11) for _ in range(N)]) == []
    found = detect("hr.employees", "national_id", "text", [f"X-{digits(rng, 3)}" for _ in range(N)])
    assert "national_id" not in categories(found)


def test_iban(rng: random.Random) -> None:
    values = [iban(rng) for _ in range(N)]
    spaced = [" ".join(v[i:i + 4] for i in range(0, len(v), 4)) for v in values]
    assert top(detect("t", "account", "text", values)) == "iban"
    assert top(detect("payments", "iban", "text", spaced)) == "iban"
    wrong = [v[:2] + f"{(int(v[2:4]) + 1) % 100:02d}" + v[4:] for v in values]  # check digits off by one
    assert detect("t", "account", "text", wrong) == []


def test_vat(rng: random.Random) -> None:
    values = []
    while len(values) < N:
        body = str(rng.randrange(1, 10)) + digits(rng, 7)
        value = body + de_vat.mod_11_10.calc_check_digit(body)
        if de_vat.is_valid(value):
            values.append("DE" + value)
    assert top(detect("customers", "vat_number", "text", values)) == "vat"
    assert top(detect("t", "registration", "text", values)) == "vat"
    assert detect("t", "registration", "text", ["DE" + digits(rng, 9) for _ in range(N)]) == []  # 1 in 10 pass


CARD_PREFIXES = [("424242", 16), ("400000", 16), ("555555", 16), ("510510", 16), ("222300", 16), ("378282", 15),
                 ("601111", 16)]


def card(rng: random.Random) -> str:
    prefix, length = rng.choice(CARD_PREFIXES)
    return luhn_complete(prefix + digits(rng, length - len(prefix) - 1))


def test_card_number(rng: random.Random) -> None:
    plain = [card(rng) for _ in range(N)]
    spaced = [" ".join(v[i:i + 4] for i in range(0, len(v), 4)) for v in plain]
    dashed = [v.replace(" ", "-") for v in spaced]
    for values in (plain, spaced, dashed):
        assert top(detect("t", "instrument", "text", values)) == "card_number"
    assert top(detect("payment", "card_number", "text", plain)) == "card_number"


def test_card_look_alikes_that_pass_luhn_by_chance(rng: random.Random) -> None:
    orders = [rng.choice("45") + digits(rng, 15) for _ in range(N)]  # card-like prefixes, about 1 in 10 pass
    skus = [digits(rng, rng.choice([12, 13, 14, 16])) for _ in range(N)]
    no_network = [luhn_complete("9" + digits(rng, 14)) for _ in range(N)]  # all pass Luhn, no card prefix
    wrong_length = [luhn_complete("4" + digits(rng, 13)) for _ in range(N)]  # Visa prefix, 15 digits
    third = [luhn_complete("4" + digits(rng, 14)) if i % 3 == 0 else "4" + digits(rng, 15) for i in range(N)]
    for values in (orders, skus, no_network, wrong_length, third):
        assert "card_number" not in categories(detect("orders", "order_number", "text", values))
    assert detect("payment", "card_last4", "text", [p[-4:] for p in (card(rng) for _ in range(N))]) == []


def test_ip_address(rng: random.Random) -> None:
    v4 = [f"{rng.choice(['192.0.2', '198.51.100', '203.0.113'])}.{rng.randrange(1, 255)}" for _ in range(N)]
    v6 = [f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(65536):x}" for _ in range(N)]
    assert top(detect("t", "peer", "text", v4 + v6)) == "ip_address"
    assert top(detect("events", "client_ip", "inet", v4)) == "ip_address"
    versions = [f"{rng.randrange(1, 5)}.{rng.randrange(20)}.{rng.randrange(10)}.{rng.randrange(10)}"
                for _ in range(N)]
    assert detect("files", "generator_version", "text", versions) == []


# -- dates, logins, secrets --------------------------------------------------------------------------------

def test_date_of_birth_needs_the_name(fk: Faker) -> None:
    births = [fk.date_of_birth(minimum_age=18, maximum_age=80).isoformat() for _ in range(N)]
    assert top(detect("employees", "birth_date", "date", births)) == "date_of_birth"
    assert top(detect("Employees", "BirthDate", "TEXT", births)) == "date_of_birth"
    assert top(detect("t", "dob", "text", [b.replace("-", "") for b in births], kind="int")) == "date_of_birth"
    assert detect("employees", "hire_date", "date", births) == []
    assert detect("events", "occurred_at", "timestamp", [f"{b} 12:00:00+00" for b in births]) == []
    future = [(date.today() + timedelta(days=400 + i)).isoformat() for i in range(N)]
    assert detect("t", "birth_date", "date", future) == []


def test_username_needs_the_name(fk: Faker) -> None:
    logins = [f"{fk.user_name()}{i}" for i in range(N)]
    assert top(detect("users", "username", "varchar(40)", logins)) == "username"
    services = ["billing-svc", "etl-nightly", "api-gateway", "hr-sync", "ldap-import"] * 80
    assert detect("users", "created_by", "text", services) == []
    assert detect("t", "slug", "text", [fk.slug() for _ in range(N)]) == []


def test_password_hash(rng: random.Random) -> None:
    alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    bcrypt = ["$2b$12$" + "".join(rng.choice(alphabet) for _ in range(53)) for _ in range(N)]
    argon = ["$argon2id$v=19$m=65536,t=3,p=4$" + "".join(rng.choice(alphabet[2:]) for _ in range(66))
             for _ in range(N)]
    assert top(detect("t", "blob_text", "text", bcrypt + argon)) == "password_hash"
    hexes = [rng.randbytes(16).hex() for _ in range(N)]
    assert top(detect("users", "reset_token", "text", hexes)) == "password_hash"
    plain = detect("users", "password", "text", [f"hunter{i}" for i in range(N)])
    assert top(plain) == "password_hash" and plain[0].basis == "name" and plain[0].confidence <= 0.5


def test_hashes_and_ids_of_things_are_no_secrets(rng: random.Random) -> None:
    sha = [rng.randbytes(32).hex() for _ in range(N)]
    uuids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(N)]
    assert detect("documents", "sha256", "text", sha) == []
    assert detect("users", "external_id", "uuid", uuids) == []
    assert detect("events", "request_id", "text", uuids) == []


# -- free text ---------------------------------------------------------------------------------------------

def ticket(fk: Faker, rng: random.Random, share: float) -> str:
    text = f"My order #{rng.randrange(100000, 999999)} has not arrived yet. {fk.sentence()}"
    if rng.random() < share:
        text += rng.choice([f" You can reach me at {fk.user_name()}@example.com.",
                            f" Please call me back on {fiction_phone(rng)}, best after 5 pm.",
                            f" Deliver to my neighbour {fk.first_name()} {fk.last_name()} instead."])
    return text


def test_free_text_that_embeds_personal_data(fk: Faker, rng: random.Random) -> None:
    bodies = [ticket(fk, rng, 0.4) for _ in range(N)]
    found = detect("support_ticket", "body", "text", bodies)
    assert top(found) == "free_text"
    assert "email" in found[0].evidence and "phone" in found[0].evidence and "person name" in found[0].evidence
    assert top(detect("t", "payload_text", "text", bodies)) == "free_text"  # values alone


def test_free_text_without_personal_data(fk: Faker, rng: random.Random) -> None:
    films = [f"A {fk.word().title()} Drama of a Feminist And a Mad Scientist who must Battle a Dentist "
             f"in The Canadian Rockies" for _ in range(N)]
    products = [" ".join(Faker("en_US").sentences(3)) + f" Weight {rng.randrange(80, 9000)} g." for _ in range(N)]
    assert detect("film", "description", "text", films) == []
    assert detect("products", "description", "text", products) == []
    assert detect("support_ticket", "body", "text", [ticket(fk, rng, 0.0) for _ in range(N)]) == []


def test_free_text_threshold(fk: Faker, rng: random.Random) -> None:
    clean = [ticket(fk, rng, 0.0) for _ in range(N)]
    at = int(N * FREE_TEXT_SHARE)
    embedding = [c + f" Mail me: {fk.user_name()}{i}@example.org" for i, c in enumerate(clean[:at])]
    assert top(detect("t", "notes", "text", embedding + clean[at:])) == "free_text"
    assert detect("t", "notes", "text", embedding[:-1] + clean[at - 1:]) == []


# -- binary content ----------------------------------------------------------------------------------------

def test_images_and_documents_in_every_engines_encoding(rng: random.Random) -> None:
    images = [png(rng) for _ in range(50)]
    assert top(detect("staff", "picture", "bytea", ["\\x" + b.hex() for b in images])) == "image"  # PostgreSQL
    assert top(detect("staff_photos", "photo", "mediumblob", [b.hex().upper() for b in images])) == "image"  # MySQL
    assert top(detect("employees", "Photo", "BLOB", [base64.b64encode(b).decode() for b in images])) == "image"
    jpeg = ["\\x" + (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + rng.randbytes(40)).hex() for _ in range(50)]
    assert top(detect("t", "scan", "bytea", jpeg)) == "image"
    docs = ["\\x" + pdf(rng).hex() for _ in range(50)]
    assert top(detect("hr.employees", "contract_pdf", "bytea", docs)) == "document"


def test_other_binary_content_is_no_document(rng: random.Random) -> None:
    archives = ["\\x" + gzip.compress(rng.randbytes(60), mtime=0).hex() for _ in range(50)]
    noise = ["\\x" + rng.randbytes(60).hex() for _ in range(50)]
    assert detect("documents", "content", "bytea", archives) == []
    assert detect("documents", "content", "bytea", noise) == []


# -- JSON and arrays ----------------------------------------------------------------------------------------

def test_json_paths(fk: Faker, rng: random.Random) -> None:
    docs = []
    for i in range(N):
        doc: dict[str, object] = {"user": {"id": i, "email": f"{fk.user_name()}{i}@example.com",
                                           "name": f"{fk.first_name()} {fk.last_name()}"},
                                  "items": [{"sku": digits(rng, 12), "qty": rng.randrange(1, 9)}]}
        if i % 2:
            doc["contact"] = {"phones": [fiction_phone(rng) for _ in range(rng.randrange(1, 3))]}
        docs.append(json.dumps(doc))
    found = detect("public.events", "payload", "jsonb", docs)
    paths = {(f.path, f.category) for f in found}
    assert ("$.user.email", "email") in paths
    assert ("$.user.name", "person_name") in paths
    assert ("$.contact.phones[*]", "phone") in paths
    assert all(f.path and not f.path.startswith("$.items") for f in found)
    as_text = detect("events", "data", "text", docs)  # JSON kept in a text column (SQLite, MySQL longtext)
    assert {(f.path, f.category) for f in as_text} == paths


def test_json_without_personal_data(rng: random.Random) -> None:
    meta = [json.dumps({"app_version": f"3.{rng.randrange(14)}.{rng.randrange(9)}", "trace_id": rng.randbytes(8).hex(),
                        "region": rng.choice(["eu-west-1", "us-east-1"]), "duration_ms": rng.randrange(900)})
            for _ in range(N)]
    assert detect("public.events", "meta", "jsonb", meta) == []


def test_json_arrays_and_mixed_contact_fields(fk: Faker, rng: random.Random) -> None:
    arrays = [json.dumps([f"{fk.user_name()}{i}@example.net"]) if i % 3 else "[]" for i in range(N)]
    assert [(f.path, f.category) for f in detect("orders", "cc_emails", "json", arrays)] == [("$[*]", "email")]
    mixed = [json.dumps({"field": "x", "value": f"{fk.user_name()}{i}@example.com" if i % 2 else fiction_phone(rng)})
             for i in range(N)]
    found = {(f.path, f.category) for f in detect("events", "payload", "text", mixed)}
    assert found == {("$.value", "email"), ("$.value", "phone")}


def test_json_keys_that_are_data_do_not_reach_the_path(fk: Faker) -> None:
    docs = [json.dumps({f"{fk.user_name()}{i}@example.com": {"phone": "+14155550123"}}) for i in range(20)]
    found = detect("t", "by_address", "jsonb", docs)
    assert [f.path for f in found] == ["$.*.phone"]


def test_postgres_arrays(fk: Faker) -> None:
    def literal(items: list[str]) -> str:
        return "{" + ",".join('"' + s.replace('"', '\\"') + '"' if " " in s else s for s in items) + "}"

    mails = [literal([f"{fk.user_name()}{i}@example.com", f"{fk.user_name()}{i}@example.org"]) for i in range(N)]
    found = detect("hr.employees", "private_emails", "text[]", [*mails, "{}", "{NULL}"])
    assert [(f.path, f.category) for f in found] == [("[]", "email")]
    assert "array elements" in found[0].evidence
    roles = [literal(["reader", "editor"]), literal(["admin"]), literal(["Deleted Scenes", "Trailers"])] * 50
    assert detect("public.film", "special_features", "text[]", roles) == []


def test_tsvector_is_derived_by_type() -> None:
    found = detect("public.film", "fulltext", "tsvector", ["'amaz':1 'harbor':2"] * 20)
    assert [(f.category, f.basis, f.confidence) for f in found] == [("derived", "type", TYPE_CONFIDENCE)]
    assert found[0].evidence == "tsvector: lexemes derived from text columns"


# -- thresholds, empty columns, look-alikes that are no data at all --------------------------------------------

def test_share_thresholds_at_their_boundaries() -> None:
    n = 20
    at = int(n * SHARE_SPECIFIC)
    mails = [f"person{i}@example.com" for i in range(n)]
    filler = [f"item number {i}" for i in range(n)]
    assert top(detect("t", "col", "text", mails[:at] + filler[at:])) == "email"
    assert detect("t", "col", "text", mails[:at - 1] + filler[at - 1:]) == []
    named = int(n * SHARE_NAMED)
    assert top(detect("t", "email", "text", mails[:named] + filler[named:])) == "email"
    assert detect("t", "email", "text", mails[:named - 1] + filler[named - 1:]) == []


def test_too_few_matches_report_nothing_unless_they_are_all_there_is() -> None:
    few = [f"person{i}@example.com" for i in range(MIN_MATCHES - 1)]
    assert detect("t", "col", "text", [*few, "x1", "x2"]) == []
    single = detect("t", "col", "text", few[:1])
    assert top(single) == "email" and single[0].confidence < 0.7  # one value: a modest confidence


@pytest.mark.parametrize("values", [[], [None] * 50, ["", "  ", None] * 20])
@pytest.mark.parametrize(("column", "type_name"), [("email", "text"), ("payload", "jsonb"), ("photo", "bytea"),
                                                   ("fulltext", "tsvector"), ("tags", "text[]")])
def test_empty_and_null_columns_give_no_finding(values: list[str | None], column: str, type_name: str) -> None:
    assert detect("customer", column, type_name, values) == []


@pytest.mark.parametrize(("column", "type_name", "make"), [
    ("status", "text", lambda r, i: r.choice(["open", "pending", "closed"])),
    ("http_status", "smallint", lambda r, i: r.choice(["200", "301", "404", "500"])),
    ("country_code", "char(2)", lambda r, i: r.choice(["US", "GB", "DE", "FR", "NL"])),
    ("currency", "char(3)", lambda r, i: r.choice(["USD", "EUR", "GBP"])),
    ("amount", "numeric(10,2)", lambda r, i: f"{r.uniform(1, 999):.2f}"),
    ("total", "text", lambda r, i: f"{r.uniform(1, 999):.2f}"),
    ("occurred_at", "timestamp with time zone",
     lambda r, i: f"2024-0{r.randrange(1, 9)}-1{r.randrange(9)} 12:00:00+00"),
    ("rental_ref", "text", lambda r, i: f"R-2024-{i:06d}"),
    ("locale", "text", lambda r, i: r.choice(["en_US", "en_GB", "fr_FR", "de_DE"])),
    ("customer_id", "integer", lambda r, i: str(r.randrange(1, 10**6))),
    ("active", "boolean", lambda r, i: r.choice(["t", "f"])),
])
def test_look_alikes_without_personal_data(rng: random.Random, column: str, type_name: str,
                                           make: Callable[[random.Random, int], str]) -> None:
    assert detect("t", column, type_name, [make(rng, i) for i in range(N)]) == []


def test_evidence_is_counts_only(fk: Faker, rng: random.Random) -> None:
    values = [f"{fk.first_name()} {fk.last_name()} <{fk.user_name()}{i}@example.com>" for i in range(40)]
    values += [fiction_phone(rng) for _ in range(40)]
    found = detect("t", "recipient", "text", values)
    assert found
    for f in found:
        assert not any(v in f.evidence for v in values)
        assert "@" not in f.evidence and "+" not in f.evidence


# -- speed -----------------------------------------------------------------------------------------------------

def test_ten_thousand_values_in_well_under_a_second(fk: Faker, rng: random.Random) -> None:
    person_names(), city_names(), street_words()  # loaded once per process, not per column
    columns = {
        "body": [ticket(fk, rng, 0.4) for _ in range(10_000)],
        "phone": [fiction_phone(rng) for _ in range(10_000)],
        "address": [fk.address() for _ in range(10_000)],
    }
    for column, values in columns.items():
        best = min(_timed(column, values) for _ in range(2))
        assert best < 1.0, (column, best)


def _timed(column: str, values: list[str]) -> float:
    started = time.perf_counter()
    assert detect_column("t", column, "text", "text", values)
    return time.perf_counter() - started
