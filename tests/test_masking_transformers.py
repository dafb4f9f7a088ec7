"""Transformers: the data-driven cases in tests/masking_cases/*.yaml, and focused tests.

A case names a column type, a rule as a rules file writes it, input values and the properties
every output must have (see ``PROPERTIES`` below for the vocabulary). Cases say what must hold
("a valid IBAN of the same country"), never a literal masked value, so they do not depend on
the key or on Faker's data lists.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from datasafe.masking import jsonpath, keyed, native
from datasafe.masking.errors import RulesError, UnmaskableValue
from datasafe.masking.transformers import TRANSFORMERS, Transformer, build_transformer
from datasafe.masking.transformers.column_rule import expand_rule
from datasafe.masking.transformers.identifiers import iban_valid, luhn_valid
from datasafe.masking.types import ColumnInfo, Row, column_kind, fit

CASES_DIR = Path(__file__).parent / "masking_cases"
KEY = b"test-key-0123456789abcdef"
OTHER_KEY = b"another-key-0123456789abcdef"
EMAIL = re.compile(r"^[a-z0-9](?:[a-z0-9._+-]*[a-z0-9])?@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9]"
                   r"(?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
REQUIRED = {"faker", "first_name", "last_name", "name", "email", "phone", "street", "city", "postcode", "address",
            "date_of_birth", "national_id", "credit_card", "iban", "company", "username", "ip", "text", "uuid",
            "hash", "fixed", "null", "empty", "redact", "regex", "template", "noise", "json"}


# --- the case files ---------------------------------------------------------------------------------

def _load_cases() -> list[Any]:
    params = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            params.append(pytest.param(case, id=f"{path.stem}:{case['name']}"))
    return params


def _column(spec: Any) -> ColumnInfo:
    if isinstance(spec, str):
        return ColumnInfo("col", spec)
    return ColumnInfo(spec.get("name", "col"), spec["type"], spec.get("nullable", True), spec.get("unique", False))


class Case:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.column = _column(raw["column"])
        self.rule = expand_rule(raw["rule"], locale=raw.get("locale", "en_US"))
        assert self.rule is not None
        self.inputs: list[str | None] = list(raw.get("inputs", []))
        row = raw.get("row", {})
        self.row = Row(original=row.get("original", {}), masked=row.get("masked", {}))

    def transformer(self, key: bytes = KEY) -> Transformer[Any]:
        assert self.rule is not None
        return build_transformer(self.rule.transformer, self.rule.options, self.column, key)

    def run(self, key: bytes = KEY, attempt: int = 0) -> list[str | None]:
        t = self.transformer(key)
        return [t(v, self.row, attempt) for v in self.inputs]


def _pairs(case: Case, outputs: list[str | None]) -> list[tuple[str, str]]:
    return [(i, o) for i, o in zip(case.inputs, outputs, strict=True) if i is not None and o is not None]


def _check_matches(case: Case, outputs: list[str | None], pattern: str) -> None:
    for _, out in _pairs(case, outputs):
        assert re.search(pattern, out), f"{out!r} does not match {pattern}"


def _check_not_matches(case: Case, outputs: list[str | None], pattern: str) -> None:
    for _, out in _pairs(case, outputs):
        assert not re.search(pattern, out), f"{out!r} matches {pattern}"


def _check_equals(case: Case, outputs: list[str | None], expected: Any) -> None:
    wanted = expected if isinstance(expected, list) else [expected] * len(outputs)
    assert outputs == wanted


def _check_one_of(case: Case, outputs: list[str | None], choices: list[str]) -> None:
    assert all(o in choices for o in outputs), outputs


def _check_length_le(case: Case, outputs: list[str | None], limit: int) -> None:
    assert all(len(o) <= limit for _, o in _pairs(case, outputs)), outputs


def _check_same_length(case: Case, outputs: list[str | None], flag: bool) -> None:
    assert all((len(i) == len(o)) == flag for i, o in _pairs(case, outputs)), outputs


def _check_differs(case: Case, outputs: list[str | None], flag: bool) -> None:
    assert all((i != o) == flag for i, o in _pairs(case, outputs)), list(zip(case.inputs, outputs, strict=True))


def _check_unchanged(case: Case, outputs: list[str | None], flag: bool) -> None:
    assert (outputs == case.inputs) == flag, outputs


def _check_deterministic(case: Case, outputs: list[str | None], flag: bool) -> None:
    assert flag
    assert case.run() == outputs, "the same key and input must give the same output"
    other = case.run(OTHER_KEY)
    changeable = [(o, x) for i, o, x in zip(case.inputs, outputs, other, strict=True) if i is not None]
    assert any(o != x for o, x in changeable), "another key must give other outputs"


def _check_null_stays_null(case: Case, outputs: list[str | None], flag: bool) -> None:
    nulls = [o for i, o in zip(case.inputs, outputs, strict=True) if i is None]
    assert nulls, "the case needs a null input"
    assert all((o is None) == flag for o in nulls), outputs


def _check_luhn(case: Case, outputs: list[str | None], flag: bool) -> None:
    assert all(luhn_valid(o) == flag for _, o in _pairs(case, outputs)), outputs


def _check_valid_email(case: Case, outputs: list[str | None], flag: bool) -> None:
    assert all(bool(EMAIL.match(o)) == flag for _, o in _pairs(case, outputs)), outputs


def _check_same_domain(case: Case, outputs: list[str | None], flag: bool) -> None:
    for i, o in _pairs(case, outputs):
        assert (i.rsplit("@", 1)[-1] == o.rsplit("@", 1)[-1]) == flag, (i, o)


def _check_valid_iban(case: Case, outputs: list[str | None], flag: bool) -> None:
    assert all(iban_valid(o) == flag for _, o in _pairs(case, outputs)), outputs


def _layout(text: str) -> str:
    return "".join("9" if c.isdigit() else "A" if c.isalpha() else c for c in text)


def _check_same_layout(case: Case, outputs: list[str | None], flag: bool) -> None:
    for i, o in _pairs(case, outputs):
        assert (_layout(i.upper()) == _layout(o.upper())) == flag, (i, o)


def _check_same_prefix(case: Case, outputs: list[str | None], n: int) -> None:
    for i, o in _pairs(case, outputs):
        assert i[:n] == o[:n], (i, o)


def _check_within_percent(case: Case, outputs: list[str | None], percent: float) -> None:
    for i, o in _pairs(case, outputs):
        x, y = Decimal(i), Decimal(o)
        slack = Decimal(1) if "." not in i else Decimal("0.01")  # rounding to the type
        assert abs(y - x) <= abs(x) * Decimal(str(percent)) / 100 + slack, (i, o)
        assert x == 0 or y == 0 or (x > 0) == (y > 0), f"sign changed: {i} -> {o}"


def _moment(text: str) -> dt.datetime:
    m = re.match(r"(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2})?))?", text)
    assert m, text
    return dt.datetime.fromisoformat(m.group(1) + (" " + m.group(2) if m.group(2) else ""))


def _check_within_days(case: Case, outputs: list[str | None], days: int) -> None:
    for i, o in _pairs(case, outputs):
        assert abs(_moment(o) - _moment(i)) <= dt.timedelta(days=days), (i, o)


def _check_same_suffix(case: Case, outputs: list[str | None], n: int) -> None:
    for i, o in _pairs(case, outputs):
        assert i[-n:] == o[-n:], (i, o)


def _check_same_year(case: Case, outputs: list[str | None], flag: bool) -> None:
    for i, o in _pairs(case, outputs):
        assert (_moment(i).year == _moment(o).year) == flag, (i, o)


def _check_same_month(case: Case, outputs: list[str | None], flag: bool) -> None:
    for i, o in _pairs(case, outputs):
        assert (_moment(i).month == _moment(o).month and _moment(i).year == _moment(o).year) == flag, (i, o)


def _check_year_between(case: Case, outputs: list[str | None], years: list[int]) -> None:
    for _, o in _pairs(case, outputs):
        assert years[0] <= _moment(o).year <= years[1], o


def _check_valid_date(case: Case, outputs: list[str | None], flag: bool) -> None:
    for _, o in _pairs(case, outputs):
        _moment(o)


def _check_decimals(case: Case, outputs: list[str | None], n: int) -> None:
    for _, o in _pairs(case, outputs):
        assert re.fullmatch(rf"-?\d+\.\d{{{n}}}" if n else r"-?\d+", o), o


def _check_valid_uuid4(case: Case, outputs: list[str | None], flag: bool) -> None:
    for _, o in _pairs(case, outputs):
        assert uuid.UUID(o.strip("{}")).version == 4


def _check_ip_version_kept(case: Case, outputs: list[str | None], flag: bool) -> None:
    for i, o in _pairs(case, outputs):
        a, b = ipaddress.ip_interface(i), ipaddress.ip_interface(o)
        assert a.version == b.version and a.network.prefixlen == b.network.prefixlen, (i, o)


def _check_valid_json(case: Case, outputs: list[str | None], flag: bool) -> None:
    for _, o in _pairs(case, outputs):
        json.loads(o)


def _blank(text: str, paths: list[str]) -> str:
    """The text with every value a path selects replaced by ``@``."""
    root = jsonpath.parse(text)
    spans = sorted({(n.start, n.end) for p in paths for n in jsonpath.select(root, jsonpath.parse_path(p))},
                   reverse=True)
    for start, end in spans:
        text = text[:start] + "@" + text[end:]
    return text


def _check_json_unchanged_except(case: Case, outputs: list[str | None], paths: list[str]) -> None:
    for i, o in _pairs(case, outputs):
        json.loads(o)
        assert _blank(i, paths) == _blank(o, paths), (i, o)


def _check_json_values(case: Case, outputs: list[str | None], spec: dict[str, str]) -> None:
    """{path: property} where property is one of: changed, string, number, null, email."""
    for i, o in _pairs(case, outputs):
        for path, prop in spec.items():
            steps = jsonpath.parse_path(path)
            before = [jsonpath.decode(i, n) for n in jsonpath.select(jsonpath.parse(i), steps)]
            after = [jsonpath.decode(o, n) for n in jsonpath.select(jsonpath.parse(o), steps)]
            assert before and len(before) == len(after), (path, i, o)
            for b, a in zip(before, after, strict=True):
                if prop == "changed":
                    assert a != b, (path, b, a)
                elif prop == "string":
                    assert isinstance(a, str), (path, a)
                elif prop == "number":
                    assert isinstance(a, (int, float)) and not isinstance(a, bool), (path, a)
                elif prop == "null":
                    assert a is None, (path, a)
                elif prop == "email":
                    assert isinstance(a, str) and EMAIL.match(a), (path, a)
                else:
                    raise AssertionError(f"unknown json_values property {prop}")


def _check_varies_with_attempt(case: Case, outputs: list[str | None], flag: bool) -> None:
    again = case.run(attempt=1)
    for i, o, x in zip(case.inputs, outputs, again, strict=True):
        if i is not None:
            assert (o != x) == flag, (i, o, x)


def _check_distinct(case: Case, outputs: list[str | None], flag: bool) -> None:
    values = [o for o in outputs if o is not None]
    assert (len(set(values)) == len(values)) == flag, outputs


def _check_is_int(case: Case, outputs: list[str | None], flag: bool) -> None:
    assert all(bool(re.fullmatch(r"-?\d+", o)) == flag for _, o in _pairs(case, outputs)), outputs


def _check_ascii(case: Case, outputs: list[str | None], flag: bool) -> None:
    assert all(o.isascii() == flag for _, o in _pairs(case, outputs)), outputs


PROPERTIES: dict[str, Callable[[Case, list[str | None], Any], None]] = {
    "matches": _check_matches, "not_matches": _check_not_matches, "equals": _check_equals, "one_of": _check_one_of,
    "length_le": _check_length_le, "same_length": _check_same_length, "differs_from_input": _check_differs,
    "unchanged": _check_unchanged, "deterministic": _check_deterministic, "null_stays_null": _check_null_stays_null,
    "luhn": _check_luhn, "valid_email": _check_valid_email, "same_domain": _check_same_domain,
    "valid_iban": _check_valid_iban, "same_layout": _check_same_layout, "same_prefix": _check_same_prefix,
    "same_suffix": _check_same_suffix, "within_percent": _check_within_percent, "within_days": _check_within_days,
    "same_year": _check_same_year, "same_month": _check_same_month, "year_between": _check_year_between,
    "valid_date": _check_valid_date, "decimals": _check_decimals, "valid_uuid4": _check_valid_uuid4,
    "ip_version_kept": _check_ip_version_kept, "valid_json": _check_valid_json,
    "json_unchanged_except": _check_json_unchanged_except, "json_values": _check_json_values,
    "varies_with_attempt": _check_varies_with_attempt, "distinct": _check_distinct, "is_int": _check_is_int,
    "ascii": _check_ascii,
}


@pytest.mark.parametrize("raw", _load_cases())
def test_case(raw: dict[str, Any]) -> None:
    if "error" in raw:
        with pytest.raises((RulesError, UnmaskableValue), match=raw["error"]):
            Case(raw).run()
        return
    case = Case(raw)
    outputs = case.run()
    assert raw.get("expect"), "a case states at least one property"
    for prop, arg in raw["expect"].items():
        assert prop in PROPERTIES, f"unknown property {prop!r}; known: {', '.join(PROPERTIES)}"
        PROPERTIES[prop](case, outputs, arg)


def test_case_files_cover_every_transformer() -> None:
    used = set()
    for path in CASES_DIR.glob("*.yaml"):
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]:
            if "error" not in case:
                rule = expand_rule(case["rule"])
                assert rule is not None
                used.add(rule.transformer)
    assert set(TRANSFORMERS) - used == set()


# --- registry ---------------------------------------------------------------------------------------

def test_every_required_transformer_is_registered_and_documented() -> None:
    assert set(TRANSFORMERS) >= REQUIRED
    for name, cls in TRANSFORMERS.items():
        assert cls.name == name
        assert cls.example and cls.__doc__, name
        for field, info in cls.Options.model_fields.items():
            assert info.description, f"{name}.{field} has no description"
        assert cls.Options.model_config.get("extra") == "forbid", name


@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_documented_examples_are_valid_rules(name: str) -> None:
    examples = yaml.safe_load(TRANSFORMERS[name].example)
    assert isinstance(examples, dict) and examples
    for column, written in examples.items():
        rule = expand_rule(written)
        assert rule is not None and rule.transformer == name, column


def test_register_refuses_a_taken_name() -> None:
    from datasafe.masking.transformers import register

    with pytest.raises(ValueError, match="taken"):
        register("email")(type("Again", (), {}))


# --- determinism, keys, attempts --------------------------------------------------------------------

SAMPLES: dict[str, tuple[str, dict[str, Any], str]] = {
    "first_name": ("text", {}, "Olivia"), "last_name": ("text", {}, "Müller"), "name": ("text", {}, "Olivia Müller"),
    "email": ("text", {}, "cust1.0a1b2c@example.net"), "phone": ("text", {}, "+44 20 0001 0001"),
    "street": ("text", {}, "1 Mill Rd"), "city": ("text", {}, "Kraków"), "postcode": ("text", {}, "10001"),
    "address": ("text", {}, "1 Quay Lane, Rotterdam 00001"), "company": ("text", {}, "ACME Ltd"),
    "username": ("text", {}, "olivia"), "date_of_birth": ("date", {}, "1987-03-02"),
    "national_id": ("char(11)", {"country": "US"}, "123-45-6789"),
    "credit_card": ("varchar(19)", {}, "5500 0001 0001 0001"), "iban": ("text", {}, "DE89370400440532013000"),
    "ip": ("inet", {}, "10.0.0.1"), "text": ("text", {}, "called about order 12"),
    "uuid": ("uuid", {}, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), "hash": ("text", {}, "secret"),
    "noise": ("numeric(12,2)", {"percent": 10}, "1234.50"),
    "faker": ("text", {"provider": "job"}, "Engineer"),
    "json": ("jsonb", {"paths": {"$.email": "email"}}, '{"email": "a@b.example", "n": 1}'),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_deterministic_across_instances_and_varies_with_key_and_attempt(name: str) -> None:
    type_name, options, value = SAMPLES[name]
    column = ColumnInfo("c", type_name)
    first = build_transformer(name, options, column, KEY)
    second = build_transformer(name, options, column, KEY)
    other = build_transformer(name, options, column, OTHER_KEY)
    textual = ColumnInfo("c", type_name).kind == "text"
    inputs = [value, value + "x", value.upper()] if textual else [value]
    assert [first(v) for v in inputs] == [second(v) for v in inputs]
    assert [first(v) for v in inputs] == [first(v) for v in inputs]  # memo gives the same answer
    assert any(first(v) != other(v) for v in inputs)
    assert first(value, attempt=1) != first(value), "attempt 1 must give an alternative"
    assert first(value, attempt=1) != first(value, attempt=2)
    assert first(value, attempt=1) == second(value, attempt=1)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_outputs_do_not_depend_on_the_column(name: str) -> None:
    # The same key and value mask alike in every table and column: a referencing column (not
    # unique, nullable, another name) gets the referenced column's rule and must give its outputs.
    type_name, options, value = SAMPLES[name]
    parent = build_transformer(name, options, ColumnInfo("id", type_name, nullable=False, unique=True), KEY)
    child = build_transformer(name, options, ColumnInfo("parent_id", type_name, nullable=True), KEY)
    assert parent(value) == child(value)
    assert parent(value, attempt=3) == child(value, attempt=3)


def test_keyed_helpers() -> None:
    assert keyed.message("a") == b"a" and keyed.message("a", 2) == b"a\x002"
    assert len(keyed.hexdigest(KEY, "a")) == 64
    assert keyed.seed(KEY, "a") == int.from_bytes(keyed.digest(KEY, "a")[:8], "big")
    assert keyed.keyed_random(KEY, "a").random() == keyed.keyed_random(KEY, "a").random()
    assert keyed.seed(KEY, "a", 1) != keyed.seed(KEY, "a")


def test_unique_email_outputs_are_distinct() -> None:
    t = build_transformer("email", {"unique": True}, ColumnInfo("email", "text", unique=True), KEY)
    outputs = {t(f"cust{i}@example.net") for i in range(5000)}
    assert len(outputs) == 5000


def test_memo_is_bounded() -> None:
    from datasafe.masking.transformers.base import MEMO_SIZE

    t = build_transformer("first_name", {}, ColumnInfo("c", "text"), KEY)
    for i in range(MEMO_SIZE + 100):
        t(str(i))
    assert t._memo is not None
    assert t._memo.cache_info().currsize <= MEMO_SIZE  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "type_name", "options"), [
    ("first_name", "text", {}), ("email", "text", {}), ("hash", "text", {}), ("credit_card", "text", {}),
    ("street", "text", {}), ("noise", "numeric(12,2)", {"percent": 10}),
])
def test_answers_do_not_depend_on_what_the_memo_remembers(monkeypatch: pytest.MonkeyPatch, name: str,
                                                          type_name: str, options: dict[str, Any]) -> None:
    # The memo is only a cache: a value asked again after it was evicted (more distinct values
    # than MEMO_SIZE, as in any large column) must mask exactly as it did the first time.
    from datasafe.masking.transformers import base

    monkeypatch.setattr(base, "MEMO_SIZE", 16)
    values = [f"{i}.5" if name == "noise" else f"value-{i}" for i in range(200)]
    t = build_transformer(name, options, ColumnInfo("c", type_name), KEY)
    first = [t(v) for v in values]
    assert t._memo is not None
    assert t._memo.cache_info().currsize <= 16  # type: ignore[attr-defined]
    assert [t(v) for v in values] == first
    fresh = build_transformer(name, options, ColumnInfo("c", type_name), KEY)
    assert [fresh(v) for v in reversed(values)] == first[::-1]


# --- columns and fit --------------------------------------------------------------------------------

@pytest.mark.parametrize(("type_name", "kind"), [
    ("character varying(255)", "text"), ("char(11)", "text"), ("character(11)", "text"), ("text", "text"),
    ("TEXT", "text"), ("varchar(64)", "text"), ("nvarchar(20)", "text"), ("VARYING CHARACTER(5)", "text"),
    ("citext", "text"), ("\"char\"", "text"),
    ("integer", "int"), ("bigint", "int"), ("smallint", "int"), ("int(11)", "int"), ("INTEGER", "int"),
    ("bigint(20) unsigned", "int"), ("mediumint", "int"), ("UNSIGNED BIG INT", "int"), ("year", "int"),
    ("numeric(12,2)", "decimal"), ("numeric", "decimal"), ("decimal(10,0) unsigned", "decimal"),
    ("NUMERIC", "decimal"), ("real", "float"), ("double precision", "float"), ("FLOAT", "float"),
    ("DOUBLE", "float"), ("date", "date"), ("DATE", "date"), ("timestamp with time zone", "timestamp"),
    ("timestamp(3) without time zone", "timestamp"), ("datetime(6)", "timestamp"), ("DATETIME", "timestamp"),
    ("timestamptz", "timestamp"), ("time without time zone", "time"), ("timetz", "time"),
    ("boolean", "bool"), ("tinyint(1)", "bool"), ("BOOLEAN", "bool"), ("tinyint(4)", "int"),
    ("json", "json"), ("jsonb", "json"), ("uuid", "uuid"), ("bytea", "bytes"), ("longblob", "bytes"),
    ("BLOB", "bytes"), ("varbinary(16)", "bytes"), ("inet", "inet"), ("cidr", "inet"),
    ("text[]", "other"), ("order_status", "other"), ("public.order_status", "other"), ("interval", "other"),
    ("enum('a','b')", "other"), ("point", "other"), ("money", "other"), ("", "other"), ("bit(1)", "other"),
    ("STRING", "text"), ("VARCHAR2(10)", "text"), ("CLOB", "text"), ("MYINT", "int"), ("FLOATY", "float"),
])
def test_column_kind(type_name: str, kind: str) -> None:
    assert column_kind(type_name) == kind


def test_column_info_properties() -> None:
    assert ColumnInfo("c", "character varying(255)").max_length == 255
    assert ColumnInfo("c", "char(11)").max_length == 11
    assert ColumnInfo("c", "text").max_length is None
    n = ColumnInfo("c", "numeric(12,2)")
    assert (n.precision, n.scale, n.kind) == (12, 2, "decimal")
    assert (ColumnInfo("c", "decimal(5)").precision, ColumnInfo("c", "decimal(5)").scale) == (5, 0)
    assert ColumnInfo("c", "numeric").precision is None
    assert ColumnInfo("c", "smallint").int_bounds() == (-32768, 32767)
    assert ColumnInfo("c", "integer").int_bounds() == (-(2**31), 2**31 - 1)
    assert ColumnInfo("c", "INTEGER").int_bounds() == (-(2**63), 2**63 - 1)  # SQLite: 64-bit
    assert ColumnInfo("c", "tinyint unsigned").int_bounds() == (0, 255)
    assert ColumnInfo("c", "year").int_bounds() is None


@pytest.mark.parametrize(("type_name", "nullable", "value", "expected"), [
    ("varchar(5)", True, "abcdefgh", "abcde"),
    ("char(3)", True, "ab", "ab"),
    ("text", True, "x" * 1000, "x" * 1000),
    ("text", True, None, None),
    ("text", False, None, ""),
    ("integer", False, None, "0"),
    ("jsonb", False, None, "{}"),
    ("boolean", False, None, "f"),
    ("tinyint(1)", False, None, "0"),
    ("numeric(12,2)", False, None, "0.00"),
    ("numeric(12,2)", True, "1234.5", "1234.50"),
    ("numeric(12,2)", True, "1234.555", "1234.56"),
    ("numeric(12,2)", True, "1234.565", "1234.56"),  # half to even
    ("numeric(4,2)", True, "123.45", "99.99"),
    ("numeric(4,2)", True, "-123.45", "-99.99"),
    ("numeric(5)", True, "12.6", "13"),
    ("numeric", True, "1.23456789", "1.23456789"),
    ("numeric(12,2)", True, "NaN", "NaN"),
    ("numeric(12,2)", True, "abc", "abc"),
    ("decimal(6,2) unsigned", True, "-5.00", "0.00"),
    ("smallint", True, "40000", "32767"),
    ("smallint", True, "-40000", "-32768"),
    ("integer", True, "12.0", "12"),
    ("integer", True, "1e3", "1000"),
    ("bigint", True, "7", "7"),
    ("tinyint unsigned", True, "-1", "0"),
    ("date", True, "1987-03-02", "1987-03-02"),
])
def test_fit(type_name: str, nullable: bool, value: str | None, expected: str | None) -> None:
    assert fit(value, ColumnInfo("c", type_name, nullable)) == expected


def test_every_output_is_fitted() -> None:
    short = ColumnInfo("c", "varchar(4)")
    for name in ("first_name", "street", "company", "hash", "text"):
        t = build_transformer(name, {}, short, KEY)
        assert len(t("a long enough input value") or "") <= 4, name


# --- errors -----------------------------------------------------------------------------------------

def test_rule_that_does_not_suit_the_column_is_refused() -> None:
    with pytest.raises(RulesError, match=r"column amount \(numeric\(12,2\)\): rule 'email' does not take decimal"):
        build_transformer("email", {}, ColumnInfo("amount", "numeric(12,2)"), KEY)
    with pytest.raises(RulesError, match="NOT NULL"):
        build_transformer("null", {}, ColumnInfo("c", "text", nullable=False), KEY)
    with pytest.raises(RulesError, match="needs `percent`"):
        build_transformer("noise", {"days": 3}, ColumnInfo("c", "integer"), KEY)
    with pytest.raises(RulesError, match="unknown transformer 'emial' \\(did you mean 'email'\\?\\)"):
        build_transformer("emial", {}, ColumnInfo("c", "text"), KEY)
    with pytest.raises(RulesError, match="option keep_domian"):
        build_transformer("email", {"keep_domian": True}, ColumnInfo("c", "text"), KEY)


def test_unmaskable_value_message_never_contains_the_value() -> None:
    t = build_transformer("noise", {"percent": 5}, ColumnInfo("salary", "text"), KEY)
    with pytest.raises(UnmaskableValue) as info:
        t("Jane Doe's salary")
    assert "Jane" not in str(info.value) and "salary" in str(info.value)


def test_template_reads_masked_columns_and_reports_missing_ones() -> None:
    t = build_transformer("template", {"template": "{first_name|lower}.{last_name|slug}@example.com"},
                          ColumnInfo("email", "text"), KEY)
    assert type(t).needs_columns(t.options) == ("first_name", "last_name")
    row = Row(original={"first_name": "Olivia", "last_name": "Åström"},
              masked={"first_name": "Anna", "last_name": "De la Cruz"})
    assert t("olivia@example.net", row) == "anna.de-la-cruz@example.com"
    with pytest.raises(RulesError, match="needs column 'last_name'"):
        t("x", Row(masked={"first_name": "A"}))


FIRST_CHOICE_VARIANTS = [(name, None) for name in sorted(SAMPLES)] + [
    ("email", {"unique": True}), ("email", {"domain": "test.invalid", "unique": True}),
    ("email", {"keep_domain": True}), ("national_id", {"country": "US", "keep_format": False}),
    ("national_id", {"country": "GB"}), ("phone", {"keep_country_code": False}), ("phone", {"keep_format": False}),
    ("text", {"max_length": 5}), ("address", {"single_line": False}), ("first_name", {"gender": "female"}),
    ("credit_card", {"brand": "amex"}),
]


@pytest.mark.parametrize(("name", "variant"), FIRST_CHOICE_VARIANTS)
@pytest.mark.parametrize("type_name", [None, "varchar(12)"])
def test_first_choice_is_the_transformers_answer(name: str, variant: dict[str, Any] | None,
                                                 type_name: str | None) -> None:
    # the pipeline's hot loop calls first_choice() (or picks from first_choice_table()) instead of
    # the transformer: both must answer exactly what the transformer answers at attempt 0
    sample_type, options, value = SAMPLES[name]
    options = variant if variant is not None else options
    column = ColumnInfo("c", type_name if type_name and ColumnInfo("c", sample_type).kind == "text" else sample_type)
    t = build_transformer(name, options, column, KEY)
    first = t.first_choice()
    table = t.first_choice_table()
    digested = t.first_choice_digested()
    inputs = [value, value + "x", value.upper(), "", "a", "+1 (555) 010-9999", "ÅÉ 12-34", "{0} 1234-5678"]
    for v in inputs:
        try:
            expected = t(v)
        except UnmaskableValue:
            continue
        assert first(v) == expected, (name, v)
        if table is not None and not v.strip():  # a blank value stays as it is: it is its own pick
            assert expected == v and native.pick(KEY, [v.encode()], table, True) == [v.encode()], (name, v)
        elif table is not None:
            assert table[int.from_bytes(keyed.digest(KEY, v)[:8], "big") % len(table)] == expected, (name, v)
            assert native.pick(KEY, [v.encode()], table) == [expected], (name, v)
        if digested is not None:
            assert digested(v, keyed.digest(KEY, v)) == expected, (name, v)
    assert t.null_choice() == t(None)


def test_ip_fast_path_gives_what_the_ipaddress_module_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain IPv4 addresses skip the ipaddress module; the output must not change."""
    import random

    from datasafe.masking.transformers import location
    from datasafe.masking.transformers.location import Ip
    from datasafe.masking.types import ColumnInfo

    rnd = random.Random(3)
    values = [".".join(str(rnd.randrange(256)) for _ in range(4)) for _ in range(3000)]
    values += ["010.1.1.1", "1.2.3", "256.1.1.1", " 1.2.3.4", "1.2.3.4/24", "::1", "\u0661.2.3.4", "1.2.3.4 ",
               "+1.2.3.4", "1..2.3", "0.0.0.0", "255.255.255.255", "not an address"]
    for prefix in (0, 8, 24, 32):
        for column in (ColumnInfo("ip", "inet"), ColumnInfo("ip", "text")):
            t = Ip({"ipv4_prefix": prefix}, column, b"k" * 32)
            fast = [t.mask(v, None, 0) for v in values]  # type: ignore[arg-type]
            with monkeypatch.context() as m:
                m.setattr(location, "_dotted_quad", lambda _value: None)
                slow = [t.mask(v, None, 0) for v in values]  # type: ignore[arg-type]
            assert fast == slow
