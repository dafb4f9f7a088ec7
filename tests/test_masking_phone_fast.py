"""The fast paths of ``phone`` give what its reference gives, byte for byte, and are fast.

The reference (:mod:`datasafe.masking.phone_numbers`, :meth:`Phone.reference`) reads every value
with ``phonenumbers.parse``. The fast paths read without it: in Python (:mod:`datasafe.masking.phone_fast`)
and in C (:mod:`datasafe.masking.phone_native`). Each is compared with the reference on the same
24,000 generated values: numbers of every region phonenumbers knows (its example numbers, changed
digit by digit), in many layouts (international, national, E.164, RFC 3966, dots and dashes,
``(0)``, ``00``/``011`` prefixes, extensions, letters, digits of other scripts, junk), each read
in one of a dozen regions or in none.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from typing import Any

import phonenumbers
import pytest
from phonenumbers import PhoneMetadata
from phonenumbers import PhoneNumberFormat as Format

from datasafe.masking import batch, codecs, keyed, native, phone_fast, phone_native
from datasafe.masking.digit_dfa import Unsupported, compile_dfa
from datasafe.masking.layout import digit_layout, digits
from datasafe.masking.phone_numbers import TYPES, Parts
from datasafe.masking.phone_numbers import read as reference_read
from datasafe.masking.transformers import build_transformer, kernels
from datasafe.masking.transformers.phone import Phone
from datasafe.masking.types import ColumnInfo, Row
from tests.test_masking_native import needs_c

KEY = b"phone fast path test key, not a secret"
TEXT = ColumnInfo("c", "text")
#: the regions values are read in (None: a rule without one, whose national numbers cannot be read)
READ_IN = ["US", "GB", "DE", "FR", "JP", "BR", "AR", "AU", "IN", "JM", "GG", "IT", "CN", "RU", None]
COUNT = 24_000
ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _examples() -> list[phonenumbers.PhoneNumber]:
    kinds = [getattr(phonenumbers.PhoneNumberType, name.upper()) for name in TYPES]
    found = [n for region in sorted(phonenumbers.SUPPORTED_REGIONS) for kind in kinds
             if (n := phonenumbers.example_number_for_type(region, kind)) is not None]
    found += [n for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)
              if (n := phonenumbers.example_number_for_non_geo_entity(code)) is not None]
    return found


def _value(rnd: random.Random, examples: list[phonenumbers.PhoneNumber]) -> str:
    example = rnd.choice(examples)
    code = str(example.country_code)
    national = list(phonenumbers.national_significant_number(example))
    change = rnd.random()
    if change < 0.6:  # the first digits kept (an area code, a mobile prefix), the others new
        for i in range(rnd.randrange(len(national) + 1), len(national)):
            national[i] = rnd.choice("0123456789")
    elif change < 0.8:  # a digit or two fewer or more
        national = national[:rnd.randrange(max(1, len(national) - 2), len(national) + 1)]
        national += rnd.choices("0123456789", k=rnd.randrange(3))
    else:
        national = rnd.choices("0123456789", k=rnd.randrange(2, 16))
    nsn = "".join(national)
    try:
        number: phonenumbers.PhoneNumber | None = phonenumbers.parse(f"+{code}{nsn}", None)
    except phonenumbers.NumberParseException:
        number = None
    groups = " ".join(nsn[i:i + rnd.randrange(2, 5)] for i in range(0, len(nsn), 3))
    style = rnd.randrange(24)
    if number is not None and style < 8:
        text = phonenumbers.format_number(number, [Format.E164, Format.INTERNATIONAL, Format.NATIONAL,
                                                   Format.RFC3966][style % 4])
        return text.replace(" ", "-") if style == 5 else re.sub(r"[ \-()]+", ".", text).strip(".") if style == 6 \
            else text
    layouts = [
        f"+{code} {groups}", f"00{code} {nsn}", f"+{code} (0){nsn}", f"0{nsn[:3]} {nsn[3:]}",
        f"({nsn[:3]}) {nsn[3:6]}-{nsn[6:]}", f"+{code}-{nsn}{rnd.choice([' ext. 12', ' x345', ' #77', ';ext=9'])}",
        f"{rnd.choice(['', ' ', '  '])}+{code}{nsn}", f"{code} {nsn}", f"011 {code} {groups}", f"{nsn}",
        f"+{code}/{nsn[:4]}/{nsn[4:]}", f"Tel: +{code} {groups}", f"+{code} {groups} / x{nsn[:2]}",
        f"++{code} {nsn}", f"(+{code}) {nsn}", f"＋{code} {groups}", f"+{code} {groups}".translate(ARABIC),
        f"tel:+{code}-{nsn};phone-context=+{code}", f"1-800-FLOWERS {nsn[:2]}", f"+{code} {nsn * 12}",
        "".join(rnd.choices("0123456789 -+().", k=rnd.randrange(4, 22))),
    ]
    return layouts[style % len(layouts)]


def _corpus(count: int) -> list[tuple[str, str | None]]:
    rnd = random.Random(20261203)
    examples = _examples()
    return [(_value(rnd, examples), READ_IN[i % len(READ_IN)]) for i in range(count)]


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, str | None, str]]:
    """(value, region, the reference's first choice) of the values of four digits or more."""
    reference = _phone({})
    out = []
    for value, region in _corpus(COUNT):
        if digit_layout(value).fields >= 4:
            out.append((value, region, reference.reference(value, keyed.digest(KEY, value), region)))
    assert len(out) > 20_000
    return out


def _phone(options: dict[str, Any]) -> Phone:
    t = build_transformer("phone", {"country_column": "country", "locale": "en", **options}, TEXT, KEY)
    assert isinstance(t, Phone)
    return t


def _row(region: str | None) -> Row:
    return Row({"country": region})


@pytest.fixture
def python_only() -> Iterator[None]:
    was = native.NATIVE
    native.use_native(False)
    try:
        yield
    finally:
        native.use_native(was)


# --- Python ------------------------------------------------------------------------------------------

def test_the_python_fast_path_equals_the_reference(corpus: list[tuple[str, str | None, str]],
                                                   python_only: None) -> None:
    t = _phone({})
    read_fast = 0
    for value, region, expected in corpus:
        assert t(value, _row(region)) == expected, (value, region)
        if value.isascii():
            layout = digit_layout(value)
            found = phone_fast.read(value, layout, digits(value), region)
            if found is not phone_fast.UNREAD:
                read_fast += 1
                assert found == reference_read(value, digits(value), region), (value, region)
    assert read_fast > 0.75 * len(corpus)  # the others: RFC 3966, letters, other scripts, a second number


def test_alternatives_and_other_countries_equal_the_reference(corpus: list[tuple[str, str | None, str]],
                                                             python_only: None) -> None:
    t, other = _phone({}), _phone({"keep_country_code": False})
    for value, region, _ in corpus[::6]:
        assert t(value, _row(region), 2) == t.reference(value, keyed.digest(KEY, value, 2), region)
        assert other(value, _row(region)) == other.reference(value, keyed.digest(KEY, value), region)


def test_the_fast_reading_is_phonenumbers_on_layouts_it_knows() -> None:
    for value, region in [("+44 20 7946 0958", None), ("020 7946 0958", "GB"), ("+44 (0)20 7946 0958", "US"),
                          ("00 44 20 7946 0958", "DE"), ("011 44 20 7946 0958", "US"), ("1 212 555 0143", "US"),
                          ("+1 (212) 555-0143 ext. 12", "US"), ("(212) 555-0143", None)]:
        found = phone_fast.read(value, digit_layout(value), digits(value), region)
        assert found == reference_read(value, digits(value), region), value
    found = phone_fast.read("+44 20 7946 0958", digit_layout("+44 20 7946 0958"), "442079460958", "US")
    assert found == Parts(prefix=2, national=10, country=44, region="GB", plus=True)
    # RFC 3966 parameters and letters read as digits go to phonenumbers itself
    for value in ["tel:+44-20-7946-0958;phone-context=+44", "1-800-FLOWERS"]:
        assert phone_fast.read(value, digit_layout(value), digits(value), "US") is phone_fast.UNREAD


# --- C -----------------------------------------------------------------------------------------------

@needs_c
def test_the_c_column_path_equals_the_reference(corpus: list[tuple[str, str | None, str]]) -> None:
    by_region: dict[str | None, list[tuple[str, str]]] = {}
    for value, region, expected in corpus:
        by_region.setdefault(region, []).append((value, expected))
    encode = codecs.PgCopyText().encode_cell
    done = 0
    for region, pairs in by_region.items():
        column = phone_native.column_function(KEY, region, -1)
        for _ in range(3):  # as the blocks of a table go by, the tables learn the countries met
            outs, missing = column([value.encode() for value, _ in pairs])
        assert missing == [k for k, out in enumerate(outs) if out is None]
        for (value, expected), out in zip(pairs, outs, strict=True):
            if out is not None:
                assert out == encode(expected), (value, region)
                done += 1
    assert done > 0.45 * len(corpus)  # the others: other layouts, prefix rules with a transformation


@needs_c
@pytest.mark.parametrize(("locale", "values"), [
    ("en_US", ["+44 20 0001 0001", "+1 (212) 555-0100", "+1-555-0001-001", "(212) 555-0143", "212.555.0143",
               "+49 30 1234567", "+33 1 23 45 67 89", " +81 3-1234-5678", "011 44 20 7946 0958"]),
    ("en_GB", ["020 7946 0958", "07700 900123", "+44 (0)20 7946 0958", "00 1 212 555 0143", "0161 496 0000"]),
    ("de_DE", ["030 1234567", "0171 1234567", "+49 (0)30 1234567", "089/12345678"]),
])
def test_usual_numbers_are_done_in_c(locale: str, values: list[str]) -> None:
    t = build_transformer("phone", {"locale": locale}, TEXT, KEY)
    in_c = kernels.kernel(t)
    assert in_c is not None
    outs, missing = in_c([v.encode() for v in values])
    assert missing == []
    assert [out.decode() for out in outs if out is not None] == [t(v) for v in values]
    column = batch._column_function(t, codecs.PgCopyText(), None, None)
    assert column is not None
    assert column([v.encode() for v in values]) == [t(v).encode() for v in values]  # type: ignore[union-attr]


@needs_c
def test_the_c_code_reports_what_its_tables_lack() -> None:
    c, program = phone_native.kernel(), phone_native.Program()
    values = [b"+44 20 7946 0958", b"+81 3-1234-5678"]
    outs, missing, needs = c.phone(KEY, values, program.tables(), -1, -1)
    assert (outs, missing, sorted(needs)) == ([None, None], [0, 1], [44, 81])
    for _ in range(3):  # a country, then the samples of valid numbers its numbers may need
        program.learn(needs)
        outs, missing, needs = c.phone(KEY, values, program.tables(), -1, -1)
    assert missing == [] and needs == []
    assert outs == [_phone({})(v.decode()).encode() for v in values]  # type: ignore[union-attr]


@needs_c
def test_the_c_code_checks_its_tables() -> None:
    c, program = phone_native.kernel(), phone_native.Program()
    entry = program.region_entry("GB")
    program.learn([-(entry * 32 + 10) - 1])  # the sample of valid numbers of 10 digits
    data, samples = program.raw()
    assert samples
    tables = c.phone_tables(data, samples)
    assert c.phone(KEY, [b"020 7946 0958"], tables, entry, -1)[0][0] is not None
    with pytest.raises(ValueError, match="not one of the tables"):
        c.phone(KEY, [b"020 7946 0958"], tables, entry + 1, -1)
    with pytest.raises(ValueError, match="not a phone program"):
        c.phone_tables(data[:-4] + b"\0" * 3, samples)
    broken = bytearray(data)
    broken[4 * (2 + 44):4 * (2 + 44) + 4] = (len(data) // 4 + 5).to_bytes(4, "little", signed=True)
    with pytest.raises(ValueError, match="country"):
        c.phone_tables(bytes(broken), samples)
    with pytest.raises(ValueError, match="entry"):  # a sample table that points past the samples
        c.phone_tables(data, b"")
    with pytest.raises((TypeError, ValueError)):
        c.phone(KEY, [b"020"], object(), -1, -1)


def test_without_c_phone_offers_no_c_first_choice(python_only: None) -> None:
    assert phone_native.kernel() is None
    assert kernels.kernel(build_transformer("phone", {}, TEXT, KEY)) is None


# --- the automata of phonenumbers' patterns ----------------------------------------------------------

def _patterns() -> list[str]:
    found: set[str] = set()
    for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            meta = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
            if meta is None:
                continue
            descs = [meta.general_desc] + [getattr(meta, name) for name in TYPES]
            found.update(d.national_number_pattern for d in descs if d is not None and d.national_number_pattern)
            found.update(p for p in (meta.leading_digits, meta.national_prefix_for_parsing, meta.international_prefix)
                         if p)
    return sorted(found)


def test_the_automata_match_as_the_regexes_do() -> None:
    rnd = random.Random(5)
    unsupported = []
    for pattern in _patterns():
        try:
            dfa = compile_dfa(pattern)
        except Unsupported:
            unsupported.append(pattern)
            continue
        regex = re.compile(pattern)
        for _ in range(12):
            text, state = "", 0
            for _ in range(rnd.randrange(18)):  # mostly along the automaton, so that matches are met
                live = [d for d in range(10) if state >= 0 and dfa.next[10 * state + d] >= 0]
                digit = rnd.choice(live) if live and rnd.random() < 0.93 else rnd.randrange(10)
                text += str(digit)
                state = dfa.next[10 * state + digit] if state >= 0 else -1
            assert dfa.fullmatch(text) == (regex.fullmatch(text) is not None), (pattern, text)
            match = regex.match(text)
            assert (dfa.prefix(text) >= 0) == (match is not None), (pattern, text)
            if match is not None and dfa.prefix_free:
                assert dfa.prefix(text) == match.end(), (pattern, text)
    assert all("$" in p for p in unsupported)  # only anchored prefix rules (NANP islands, JP, GG, ...)
    for pattern in unsupported:  # read loosely, their automata match more, never less
        dfa, regex = compile_dfa(pattern, loose=True), re.compile(pattern)
        for _ in range(200):
            text = "".join(rnd.choices("0123456789", k=rnd.randrange(12)))
            text = rnd.choice(["", "0", "1", "000", "003768", "180020"]) + text
            assert regex.match(text) is None or dfa.prefix(text) >= 0, (pattern, text)


@pytest.mark.parametrize("pattern", ["a", "\\w", "(?=1)", "1{2,1}", "[a-z]", "(?P<x>1)", "1++", "(1", "1)"])
def test_patterns_the_automata_do_not_read(pattern: str) -> None:
    with pytest.raises(Unsupported):
        compile_dfa(pattern)


# --- speed -------------------------------------------------------------------------------------------

@needs_c
def test_the_usual_numbers_cost_microseconds() -> None:
    """The reference costs 60-100 µs a value; the C column path a few (generous bounds: shared machines)."""
    t = build_transformer("phone", {"locale": "en_GB"}, TEXT, KEY)
    values = [f"+44 20 {n % 10000:04d} {n % 9973:04d}".encode() for n in range(20_000)]
    values += [f"020 {n % 10000:04d} {n % 9973:04d}".encode() for n in range(20_000)]
    column = batch._column_function(t, codecs.PgCopyText(), None, None)
    assert column is not None
    column(values[:100])
    start = time.perf_counter()
    for i in range(0, len(values), 5000):
        column(values[i:i + 5000])
    assert (time.perf_counter() - start) / len(values) < 15e-6
