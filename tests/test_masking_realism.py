"""Masked copies look like real data and carry nothing of the original (issue part 6, "Realism").

- An empty or blank value carries no personal data: every rule leaves it as it is, in every path
  (the transformer, its first choices, the pools, the C code, the block masker).
- A masked phone number is a valid number of the original's region, in the original's layout.
- Digits of every script are digits: none survives a rule that keeps a layout.
- ``country_column`` makes places of the row's country.
- ``mask --dry-run`` shows long values cut and binary data as its size.

All data is generated (Faker with fixed seeds, numbers from phonenumbers' patterns).
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from faker import Faker

from datasafe.commands.repository import open_repository
from datasafe.config import Config, LoadedConfig, resolve_source
from datasafe.errors import DatasafeError
from datasafe.masking import batch, codecs, keyed, native
from datasafe.masking.errors import RulesError
from datasafe.masking.plan import plan_masking
from datasafe.masking.preview import PREVIEW_CHARS, describe, preview
from datasafe.masking.rules import parse_rules
from datasafe.masking.transformers import TRANSFORMERS, Transformer, build_transformer, kernels
from datasafe.masking.transformers.column_rule import expand_rule
from datasafe.masking.transformers.identifiers import luhn_valid
from datasafe.masking.types import ColumnInfo, Row
from datasafe.transfer.backup import backup as take_backup
from tests.test_masking_native import needs_c
from tests.test_pg_faults import run_cli

KEY = b"realism test key, not a secret 0123"
TEXT = ColumnInfo("c", "text")

#: options for the rules that have required ones; every other rule is built with its defaults
REQUIRED_OPTIONS: dict[str, dict[str, Any]] = {
    "faker": {"provider": "job"},
    "fixed": {"value": "X"},
    "regex": {"pattern": ".*", "replacement": "x"},
    "template": {"template": "{_hash}"},
    "json": {"paths": {"$.a": "email"}},
    "noise": {"percent": 10},
}
BLANKS = ["", " ", "   ", "\t", " \n ", "\u00a0", "\u3000\u2003", "\r\n"]
#: a value each rule masks (where "Anna Lee 12" would not do)
SAMPLES = {"json": '{"a": "anna@example.org"}', "noise": "12.50", "date_of_birth": "1987-03-02", "ip": "10.1.2.3",
           "credit_card": "4111 1111 1111 1111", "phone": "+44 20 7946 0958", "empty": "x"}


def _build(name: str, options: dict[str, Any] | None = None, column: ColumnInfo = TEXT) -> Transformer[Any]:
    rule = expand_rule({name: options if options is not None else REQUIRED_OPTIONS.get(name, {})})
    assert rule is not None
    return build_transformer(rule.transformer, rule.options, column, KEY)


def _shape(text: str) -> str:
    """Every decimal digit (of any script) as 9: what a layout keeps."""
    return "".join("9" if ch.isdecimal() else ch for ch in text)


# --- 1. empty and blank values stay as they are ------------------------------------------------------

@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_every_rule_keeps_empty_and_blank_values(name: str) -> None:
    t = _build(name)
    first = t.first_choice()
    digested = t.first_choice_digested()
    for value in BLANKS:
        assert t(value) == value, (name, value)
        assert t(value, Row(original={"c": value})) == value
        assert first(value) == value, (name, value)
        if digested is not None:
            assert digested(value, keyed.digest(KEY, value)) == value
    other = SAMPLES.get(name, "Anna Lee 12")
    assert t(other) != other  # the rule does mask other values


@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
@pytest.mark.parametrize("codec", [codecs.PgCopyText(), codecs.MysqlTsv()], ids=["pg", "mysql"])
def test_the_block_masker_keeps_empty_and_blank_fields(name: str, codec: codecs.TabText) -> None:
    """Stored fields (escaped, in a block of other values) come back exactly as they were."""
    t = _build(name)
    other = SAMPLES.get(name, "Anna Lee 12")
    values = [other, *BLANKS, other + "\t", "", other]
    fields = [codec.encode_cell(v) for v in values] + [codec.null]
    table = t.first_choice_table()
    column = batch._column_function(t, codec, None, table)
    per_value = batch._stored_function(t, codec, None, table)
    expected = [codec.encode_cell(t(v)) for v in values] + [codec.encode_cell(t(None))]
    for k, value in enumerate(values):
        if not value.strip():
            assert expected[k] == fields[k]  # the reference keeps it
    assert [per_value(f) for f in fields] == expected
    if column is not None:
        assert column(fields) == expected


def test_pools_keep_blank_values_only() -> None:
    pool = [b"a", b"b", b"c"]
    # blank: empty, space, U+00A0, tab and line break, U+3000; not blank: U+200B (no space), invalid UTF-8
    values = [b"", b" ", b"\xc2\xa0", b"\t\n", b"\xe3\x80\x80", b"x", b" x ", b"\xe2\x80\x8b", b"\xff"]
    got = native.pick(KEY, values, pool, True)
    assert all(g is v for g, v in zip(got[:5], values, strict=False)) and all(g in pool for g in got[5:])
    assert native.py_pick(KEY, values, pool, True) == got
    assert all(g in pool for g in native.pick(KEY, values, pool))  # without keep_blank: the pool for every value


@needs_c
def test_the_c_rules_give_no_value_for_blank_values() -> None:
    c = native.RULES
    values = [b"", b"   ", b"\t", b"\xc2\xa0", b"123-45-6789"]
    outs, missing = c.ssn_us(KEY, values, True, -1)
    assert outs[:2] == [b"", b"   "] and missing == [2, 3] and outs[4] not in (None, b"123-45-6789")
    for rule in ("email", "text", "credit_card"):
        in_c = kernels.kernel(_build(rule))
        assert in_c is not None
        outs, missing = in_c(values[:4])
        assert outs[:2] == [b"", b"   "] and missing == [2, 3], rule


def test_fixed_empty_and_null_replace_blank_values_when_told() -> None:
    assert _build("fixed", {"value": "X", "replace_empty": True})("  ") == "X"
    assert _build("fixed", {"value": "X"})("  ") == "  "
    assert _build("null", {"replace_empty": True})("") is None
    assert _build("empty", {"replace_empty": True})(" \t ") == ""
    with pytest.raises(RulesError, match="replace_empty"):
        expand_rule({"email": {"replace_empty": True}})


def test_a_blank_value_that_collides_in_a_unique_key_gets_an_alternative() -> None:
    t = _build("address")
    assert t("", attempt=0) == "" and t("", attempt=1) not in ("", None)


# --- 2. phone numbers: valid for their region, in their layout ------------------------------------

def _numbers(locale: str, region: str, count: int) -> list[phonenumbers.PhoneNumber]:
    """Valid numbers of ``region`` from Faker's generator (fixed seed)."""
    fake = Faker(locale)
    fake.seed_instance(42)
    found: list[phonenumbers.PhoneNumber] = []
    while len(found) < count:
        try:
            number = phonenumbers.parse(fake.phone_number(), region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number) and phonenumbers.region_code_for_number(number) == region:
            number.extension = None  # the layouts add one of their own
            found.append(number)
    return found


def _layouts(number: phonenumbers.PhoneNumber) -> list[str]:
    fmt = phonenumbers.PhoneNumberFormat
    national = phonenumbers.format_number(number, fmt.NATIONAL)
    international = phonenumbers.format_number(number, fmt.INTERNATIONAL)
    return [phonenumbers.format_number(number, fmt.E164), international, national,
            re.sub(r"[ \-()]+", ".", national).strip("."), international.replace(" ", "-"),
            f"{international} ext. 123"]


@pytest.mark.parametrize(("locale", "region"), [("en_US", "US"), ("en_GB", "GB"), ("de_DE", "DE"),
                                                ("fr_FR", "FR"), ("en_CA", "CA")])
def test_masked_phones_are_valid_numbers_of_their_region_in_their_layout(locale: str, region: str) -> None:
    t = _build("phone", {"locale": locale})
    first = t.first_choice()
    checked = 0
    for number in _numbers(locale, region, 25):
        original = phonenumbers.national_significant_number(number)
        for value in _layouts(number):
            masked = t(value)
            assert masked is not None and first(value) == masked
            assert _shape(masked) == _shape(value), (value, masked)  # same non-digits at the same places
            parsed = phonenumbers.parse(masked, region)
            assert phonenumbers.is_valid_number(parsed), (value, masked)
            assert phonenumbers.region_code_for_number(parsed) == region, (value, masked)
            assert phonenumbers.national_significant_number(parsed) != original, (value, masked)
            checked += 1
    assert checked == 25 * 6


def test_invalid_numbers_become_valid_ones() -> None:
    t = _build("phone")
    for value, region in [("+1 (192) 515-0843", "US"), ("(192) 515-0843", "US"), ("+1 (555) 010-9999", "US"),
                          ("+44 20 0001 0001", "GB"), ("1-100-000-0000", "US")]:
        masked = t(value)
        assert masked is not None and _shape(masked) == _shape(value)
        parsed = phonenumbers.parse(masked, "US")
        assert phonenumbers.is_valid_number(parsed) and phonenumbers.region_code_for_number(parsed) == region, masked


def test_phones_of_every_region_with_few_valid_numbers_are_valid() -> None:
    """Regions that share a country code (NANP islands) or whose numbers are sparse among digit strings."""
    t = _build("phone")
    for region in ("AG", "BS", "JM", "GU", "JE", "IM", "AR", "KZ", "VA", "AX"):
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            value = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            own = phonenumbers.region_code_for_number(example)  # IM's example mobile number is GB's
            for attempt in range(3):
                masked = t(value, attempt=attempt)
                assert masked is not None and _shape(masked) == _shape(value)
                parsed = phonenumbers.parse(masked, None)
                assert phonenumbers.is_valid_number(parsed), (region, value, masked)
                assert phonenumbers.region_code_for_number(parsed) == own, (region, value, masked)


def test_phone_without_keeping_the_country_code_is_a_valid_number_of_another_country() -> None:
    t = _build("phone", {"keep_country_code": False})
    countries = set()
    for number in _numbers("en_GB", "GB", 20):
        value = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        masked = t(value)
        assert masked is not None and _shape(masked) == _shape(value)
        parsed = phonenumbers.parse(masked, None)
        assert phonenumbers.is_valid_number(parsed), (value, masked)
        countries.add(parsed.country_code)
    assert len(countries) > 3


def test_phones_that_are_no_number_of_a_region_keep_their_layout() -> None:
    t = _build("phone")
    for value in ["555-0143", "030 12345678", "+999 1234 5678", "0000 000"]:
        masked = t(value)
        assert masked is not None and _shape(masked) == _shape(value) and masked != value
    assert t("020 7946 0958")[:1] == "0"  # type: ignore[index]  # a trunk 0 stays 0


def test_phone_block_masking_equals_the_transformer() -> None:
    t = _build("phone", {"locale": "en_GB"})
    codec = codecs.PgCopyText()
    values = [_layouts(n)[i % 6] for i, n in enumerate(_numbers("en_GB", "GB", 60))] + ["", "\t", "12"]
    column = batch._column_function(t, codec, None, None)
    assert column is not None
    assert column([codec.encode_cell(v) for v in values]) == [codec.encode_cell(t(v)) for v in values]


# --- 3. digits of every script --------------------------------------------------------------------

ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")
ASCII = str.maketrans("٠١٢٣٤٥٦٧٨٩०१२३४५६७८९", "01234567890123456789")


def _same_scripts(value: str, masked: str) -> None:
    assert len(value) == len(masked)
    for a, b in zip(value, masked, strict=True):
        if a.isdecimal():
            assert b.isdecimal() and ord(a) - int(a) == ord(b) - int(b), (value, masked)  # same script
        else:
            assert a == b, (value, masked)


def test_phone_digits_of_other_scripts_are_masked_in_their_script() -> None:
    t = _build("phone")
    value = "+33 1 23 45 67 89".translate(ARABIC)
    masked = t(value)
    assert masked is not None
    _same_scripts(value, masked)
    parsed = phonenumbers.parse(masked.translate(ASCII), None)
    assert phonenumbers.is_valid_number(parsed) and phonenumbers.region_code_for_number(parsed) == "FR"
    assert masked[4:] != value[4:]
    short = "+٣٣ 1 23 45"  # the example: no number of France has five digits
    out = t(short)
    assert out is not None and out[4:] != short[4:]
    _same_scripts(short, out)
    other = _build("phone", {"keep_country_code": False})("+44 20 7946 0958".translate(DEVANAGARI))
    assert other is not None and not other.startswith("+४४")
    gb = _build("phone", {"locale": "en_GB"})
    national = "020 7946 0958".translate(DEVANAGARI)
    out = gb(national)
    assert out is not None and out[0] == "०" and out != national
    _same_scripts(national, out)


@pytest.mark.parametrize("table", [ARABIC, DEVANAGARI], ids=["arabic-indic", "devanagari"])
def test_layout_rules_mask_digits_of_other_scripts(table: dict[int, int]) -> None:
    ssn = "123-45-6789".translate(table)
    out = _build("national_id", {"country": "US"})(ssn)
    assert out is not None and out != ssn
    _same_scripts(ssn, out)
    assert re.fullmatch(r"(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}", out.translate(ASCII))

    card = "4111 1111 1111 1111".translate(table)
    out = _build("credit_card")(card)
    assert out is not None and out != card
    _same_scripts(card, out)
    assert luhn_valid(out.translate(ASCII)) and out.translate(ASCII).startswith("4")

    postcode = "110001".translate(table)
    out = _build("postcode", {"keep_format": True})(postcode)
    assert out is not None and out != postcode
    _same_scripts(postcode, out)

    mixed = "+44 20 7946 0958 / " + "12 34".translate(table)
    out = _build("phone")(mixed)
    assert out is not None and out[-5:] != mixed[-5:]
    _same_scripts(mixed, out)


@needs_c
def test_the_c_rules_leave_digits_of_other_scripts_to_python() -> None:
    for rule, options, value, ascii in [("national_id", {"country": "US"}, "١٢٣-٤٥-٦٧٨٩", "123-45-6789"),
                                        ("credit_card", {}, "٤١١١ ١١١١ ١١١١ ١١١١", "4111 1111 1111 1111"),
                                        ("credit_card", {}, "4111 1111 1111 111١", "4111 1111 1111 1111")]:
        t = _build(rule, options)
        in_c = kernels.kernel(t)
        assert in_c is not None
        outs, missing = in_c([value.encode(), ascii.encode()])
        assert missing == [0] and outs[1] is not None, (rule, value)


# --- 4. places of the row's country ----------------------------------------------------------------

POSTCODES = {
    "CA": r"[A-Z]\d[A-Z] ?\d[A-Z]\d",
    "US": r"\d{5}(-\d{4})?",
    "DE": r"\d{5}",
    "GB": r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}",
    "PL": r"\d{2}-\d{3}",
    "JP": r"\d{3}-\d{4}",
}


@pytest.mark.parametrize(("country", "shape"), [
    ("CA", "CA"), ("Canada", "CA"), ("CAN", "CA"), ("canada ", "CA"),
    ("US", "US"), ("United States", "US"), ("U.S.A.", "US"),
    ("DE", "DE"), ("Deutschland", "DE"), ("germany", "DE"),
    ("GB", "GB"), ("United Kingdom", "GB"), ("UK", "GB"),
    ("PL", "PL"), ("Polska", "PL"), ("JP", "JP"), ("日本", "JP"),
    ("Atlantis", "US"), ("", "US"), (None, "US"),  # unknown: the rule's locale (en_US)
])
def test_postcodes_follow_the_row_country(country: str | None, shape: str) -> None:
    t = _build("postcode", {"country_column": "country"})
    assert t.uses_row and t.first_choice_table() is None and t.first_choice_digested() is None
    for i in range(20):
        value = f"{10000 + i * 37}"
        row = Row(original={"country": country, "postcode": value})
        out = t(value, row)
        assert out is not None and re.fullmatch(POSTCODES[shape], out), (country, out)
        assert t(value, row) == out  # deterministic


def test_places_and_phones_follow_the_row_country() -> None:
    rows = {"CA": Row(original={"country": "CA"}), "DE": Row(original={"country": "Deutschland"})}
    city = _build("city", {"country_column": "country"})
    de_cities = set(_build("city", {"locale": "de_DE"}).faker.pool("city"))
    assert city("Springfield", rows["DE"]) in de_cities
    street = _build("street", {"country_column": "country", "locale": "fr_FR"})
    assert street("1 Main St", rows["DE"]) in set(_build("street", {"locale": "de_DE"}).faker.pool("street_address"))
    address = _build("address", {"country_column": "country"})
    out = address("1 Main St, Springfield", rows["CA"])
    assert out is not None and re.search(POSTCODES["CA"] + "$", out), out
    phone = _build("phone", {"country_column": "country"})
    masked = phone("030 1234567", rows["DE"])  # a national number: read as the row's country's
    assert masked is not None and _shape(masked) == "999 9999999"
    parsed = phonenumbers.parse(masked, "DE")
    assert phonenumbers.is_valid_number(parsed) and phonenumbers.region_code_for_number(parsed) == "DE"
    # a masked country column is read masked
    masked_row = Row(original={"country": "US"}, masked={"country": "Canada"})
    assert re.fullmatch(POSTCODES["CA"], _build("postcode", {"country_column": "country"})("1", masked_row) or "")


def test_country_column_options_are_checked() -> None:
    with pytest.raises(RulesError, match="choose one"):
        expand_rule({"postcode": {"country_column": "country", "keep_format": True}})
    with pytest.raises(RulesError, match="itself"):
        _build("city", {"country_column": "c"})


SHOP = """\
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, country TEXT, postcode TEXT, city TEXT, phone TEXT,
                        address2 TEXT NOT NULL, notes TEXT, photo BLOB);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_postcode TEXT);
"""
RULES = """\
version: 1
tables:
  customers:
    columns:
      name: name
      postcode: {postcode: {country_column: country}}
      city: {city: {country_column: country}}
      phone: {phone: {country_column: country}}
      address2: address
      notes: text
      photo: 'null'
    keep: [id, country]
  orders:
    keep: [id, customer_postcode]
"""
MASKING_KEY = "5e30c6e95b7762d40cd510ec31907aa33c53caa5ca572641"


@pytest.fixture
def snapshot(tmp_path: Path) -> tuple[Path, Any]:
    fake = Faker("en_US")
    fake.seed_instance(7)
    db = tmp_path / "shop.db"
    countries = ["CA", "United States", "DE", "Canada", "US", "Germany"]
    phones = {"CA": "(613) 555-0143", "United States": "(212) 555-0143", "DE": "030 1234567",
              "Canada": "+1 613 555 0198", "US": "212.555.0188", "Germany": "+49 30 901820"}
    with sqlite3.connect(db) as conn:
        conn.executescript(SHOP)
        for i in range(60):
            country = countries[i % len(countries)]
            notes = fake.paragraph() * 500 if i == 0 else fake.sentence()
            photo = bytes(range(256)) * 300 if i == 0 else None
            conn.execute("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (i + 1, fake.name(), country, fake.postcode(), fake.city(), phones[country],
                          "" if i % 3 else " ", notes, photo))
            conn.execute("INSERT INTO orders VALUES (?, ?)", (i + 1, fake.postcode()))
    repo = open_repository(str(tmp_path / "store"))
    source = resolve_source(LoadedConfig(Config(), None), f"sqlite:///{db}", "shop")
    return db, (repo, take_backup(source, repo))


def test_a_masked_snapshot_has_places_of_each_row_country_and_keeps_blanks(
        tmp_path: Path, snapshot: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    db, (_repo, manifest) = snapshot
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    monkeypatch.setenv("DATASAFE_MASKING_KEY", MASKING_KEY)
    result = run_cli(tmp_path / "store", "mask", manifest.snapshot_id, "--rules", str(rules), "--json")
    assert result.exit_code == 0, result.output
    masked = json.loads(result.stdout)["snapshot"]
    target = tmp_path / "masked.db"
    assert run_cli(tmp_path / "store", "restore", masked, "--target", f"sqlite:///{target}").exit_code == 0
    with sqlite3.connect(target) as conn:
        rows = conn.execute("SELECT country, postcode, phone, address2 FROM customers ORDER BY id").fetchall()
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT phone, address2 FROM customers ORDER BY id").fetchall()
    codes = {"CA": "CA", "Canada": "CA", "United States": "US", "US": "US", "DE": "DE", "Germany": "DE"}
    for (country, postcode, phone, address2), (old_phone, old_address2) in zip(rows, before, strict=True):
        code = codes[country]
        assert re.fullmatch(POSTCODES[code], postcode), (country, postcode)
        assert _shape(phone) == _shape(old_phone) and phone != old_phone
        parsed = phonenumbers.parse(phone, code)
        assert phonenumbers.is_valid_number(parsed) and phonenumbers.region_code_for_number(parsed) == code
        assert address2 == old_address2  # '' and ' ' stay as they are


def test_country_column_must_name_a_column_of_the_table(snapshot: tuple[Path, Any], tmp_path: Path) -> None:
    _db, (_repo, manifest) = snapshot
    rules = parse_rules(RULES.replace("country_column: country}}\n      city", "country_column: land}}\n      city"),
                        str(tmp_path / "r.yml"))
    with pytest.raises(DatasafeError, match=r"customers\.postcode: the rule reads column 'land', which customers "
                                            "does not have"):
        plan_masking(manifest, rules, KEY)


def test_a_rule_that_reads_its_row_is_not_followed_by_referencing_columns(
        snapshot: tuple[Path, Any], tmp_path: Path) -> None:
    _db, (_repo, manifest) = snapshot
    text = RULES + ("virtual_foreign_keys:\n  - {table: orders, columns: [customer_postcode], ref_table: customers, "
                    "ref_columns: [postcode]}\n")
    text = text.replace("    keep: [id, customer_postcode]\n", "    keep: [id]\n")
    with pytest.raises(DatasafeError, match="depends on the rest of its row"):
        plan_masking(manifest, parse_rules(text, str(tmp_path / "r.yml")), KEY)


# --- 5. dry-run samples are cut ----------------------------------------------------------------------

def test_dry_run_samples_cut_long_values_and_show_binary_data_as_its_size(
        tmp_path: Path, snapshot: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _db, (_repo, manifest) = snapshot
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    monkeypatch.setenv("DATASAFE_MASKING_KEY", MASKING_KEY)
    result = run_cli(tmp_path / "store", "mask", manifest.snapshot_id, "--rules", str(rules), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)["samples"]["customers"][0]
    for side in ("before", "after"):
        assert all(v is None or len(v) <= 120 for v in first[side].values()), first[side]
    assert re.fullmatch(r".{80}…\(\d{5,} chars\)", first["before"]["notes"], re.S)
    assert re.fullmatch(r".{80}…\(\d{5,} chars\)", first["after"]["notes"], re.S)
    assert first["before"]["photo"] == "<binary, 76800 bytes>" and first["after"]["photo"] is None
    printed = run_cli(tmp_path / "store", "mask", manifest.snapshot_id, "--rules", str(rules), "--dry-run")
    assert printed.exit_code == 0, printed.output
    assert max(map(len, printed.output.splitlines())) < 250
    assert "<binary, 76800 bytes> -> None" in printed.output


def test_preview() -> None:
    blob = bytes(range(256)) * 100
    assert preview("\\x" + blob.hex(), "bytes") == "<binary, 25600 bytes>"  # PostgreSQL bytea
    assert preview(blob.hex().upper(), "bytes") == "<binary, 25600 bytes>"  # MySQL
    import base64

    encoded = base64.b64encode(blob).decode()
    assert preview(encoded, "bytes") == "<binary, 25600 bytes>"  # SQLite
    assert preview(encoded, "text") == "<binary, 25600 bytes>"  # a long base64 value elsewhere
    assert preview("\\x" + blob.hex(), "text") == "<binary, 25600 bytes>"
    assert preview("\\x00", "bytes") == "<binary, 1 bytes>"
    assert preview("short text", "text") == "short text" and preview(None) is None
    long = "word " * 20_000
    cut = preview(long)
    assert cut == long[:PREVIEW_CHARS] + "…(100000 chars)"
    assert describe(cut) == repr(long[:PREVIEW_CHARS]) + "…(100000 chars)"
    assert describe("<binary, 3 bytes>") == "<binary, 3 bytes>" and describe(None) == "None"
    assert describe("it's") == repr("it's")
    hexdigits = "0123456789abcdef" * 8  # long hex text of a text column is text
    assert preview(hexdigits, "text") == hexdigits[:PREVIEW_CHARS] + "…(128 chars)"


@needs_c
def test_the_c_rules_equal_python_on_blank_values_and_digits_of_other_scripts() -> None:
    from tests.test_masking_native_rules import RULES as C_RULES

    values = [*BLANKS, "١٢٣-٤٥-٦٧٨٩", "१२३४५६७८९", "٤١١١ ١١١١ ١١١١ ١١١١", "x ١", " é ", "\u2003x"]
    encode = codecs.PgCopyText().encode_cell
    for rule, options, type_name in C_RULES:
        t = build_transformer(rule, options, ColumnInfo("c", type_name), KEY)
        in_c, digested = kernels.kernel(t), t.first_choice_digested()
        assert in_c is not None and digested is not None
        outs, missing = in_c([v.encode() for v in values])
        for value, out in zip(values, outs, strict=True):
            expected = t(value)
            assert digested(value, keyed.digest(KEY, value)) == expected
            if out is not None:
                assert out == encode(expected), (rule, value, out, expected)
        assert all(values[k].strip() or not values[k].isprintable() for k in missing if not values[k].strip())
