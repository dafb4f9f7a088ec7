"""The C first choices of transformers (``_native_rules.c``) equal their Python definition.

A C kernel (:func:`datasafe.masking.transformers.kernels.kernel`) either gives a value's output
in stored form or leaves the value to the rule's
:meth:`~datasafe.masking.transformers.base.Transformer.first_from_digest`. Every output it gives
must equal the transformer's own answer (``t(value)``, computed by ``mask``), byte for byte, and
the values it leaves must be few (those needing escapes, cuts or another layout), or the C code
would be doing nothing.
"""

from __future__ import annotations

import random
import string
from typing import Any

import pytest

from datasafe.masking import batch, codecs, keyed, native
from datasafe.masking.transformers import build_transformer, kernels
from datasafe.masking.types import ColumnInfo
from tests.test_masking_native import needs_c

KEY = b"native rules test key, not a secret"

#: (rule, options, column type)
RULES: list[tuple[str, dict[str, Any], str]] = [
    ("national_id", {"country": "US"}, "char(11)"),
    ("national_id", {"country": "US", "keep_format": False}, "text"),
    ("credit_card", {}, "varchar(19)"),
    ("credit_card", {}, "text"),
    ("email", {"unique": True}, "text"),
    ("email", {}, "text"),
    ("email", {"domain": "corp.example"}, "text"),
    ("text", {}, "text"),
    ("text", {"max_length": 7}, "varchar(5)"),
    ("text", {"words": ["alpha", "beta", "gamma", "delta"]}, "text"),
]


def _value(rnd: random.Random) -> str:
    """Values of every shape: card and phone layouts, separators, letters, non-ASCII, controls, empty."""
    kind = rnd.randrange(10)
    digits = "".join(rnd.choice(string.digits) for _ in range(rnd.randrange(0, 24)))
    if kind == 0:
        return ""
    if kind == 1:  # a card number in groups
        n = rnd.choice([12, 13, 14, 15, 16, 17, 18, 19])
        number = rnd.choice(["4", "51", "55", "2221", "2720", "34", "37", "6011", "644", "65", "3528", "300",
                             "36", "62", "50", "6", "9", "0"]) + digits * 2
        number = (number + "0" * 19)[:n]
        sep = rnd.choice([" ", "-", "", "."])
        return sep.join(number[i:i + 4] for i in range(0, n, 4))
    if kind == 2:  # a phone number
        lead = rnd.choice(["+", " +", "  +", "", "0", "(0", "+ ", "\u00a0+", "\t+"])
        return lead + " ".join(digits[i:i + rnd.randrange(1, 5)] for i in range(0, len(digits), 3))
    if kind == 3:  # an ssn
        return f"{digits[:3]}-{digits[3:5]}-{digits[5:9]}"
    if kind == 4:  # letters and digits mixed
        return "".join(rnd.choice(string.ascii_letters + string.digits + " -/") for _ in range(rnd.randrange(1, 20)))
    if kind == 5:  # non-ASCII, backslashes and control characters
        return "".join(rnd.choice("é€ß\\\t\n\x1f\x7f01234567+- ") for _ in range(rnd.randrange(1, 20)))
    if kind == 6:  # long text
        return " ".join(rnd.choice(["lorem", "ipsum", "Zürich", "42", "path\\x"]) for _ in range(rnd.randrange(60)))
    return "".join(rnd.choice(string.printable) for _ in range(rnd.randrange(1, 30)))


@needs_c
@pytest.mark.parametrize(("rule", "options", "type_name"), RULES)
def test_c_first_choices_equal_python(rule: str, options: dict[str, Any], type_name: str) -> None:
    t = build_transformer(rule, options, ColumnInfo("c", type_name), KEY)
    in_c = kernels.kernel(t)
    digested = t.first_choice_digested()
    assert in_c is not None and digested is not None
    rnd = random.Random(f"{rule}{options}{type_name}")
    texts = [_value(rnd) for _ in range(4000)]
    values = [v.encode() for v in texts]
    outs, missing = in_c(values)
    assert len(outs) == len(values)
    assert missing == [k for k, out in enumerate(outs) if out is None]
    encode = codecs.PgCopyText().encode_cell
    compared = 0
    for text, out in zip(texts, outs, strict=True):
        if out is None:
            continue
        expected = t(text)  # the definition: mask() at attempt 0
        assert out == encode(expected), (text, out, expected)
        assert digested(text, keyed.digest(KEY, text)) == expected  # and so is the Python driver
        compared += 1
    assert compared >= len(values) // 20, f"C gave only {compared} of {len(values)} outputs"


@needs_c
@pytest.mark.parametrize(("rule", "options", "type_name", "value"), [
    ("national_id", {"country": "US"}, "char(11)", "123-45-6789"),
    ("credit_card", {}, "varchar(19)", "5500 0000 0000 0004"),
    ("credit_card", {}, "text", "4111-1111-1111-1111"),
    ("email", {"unique": True}, "text", "anna@example.org"),
    ("text", {}, "text", "called about order 42; ref 7f3a"),
    ("text", {}, "text", "ok"),
])
def test_usual_values_are_done_in_c(rule: str, options: dict[str, Any], type_name: str, value: str) -> None:
    t = build_transformer(rule, options, ColumnInfo("c", type_name), KEY)
    in_c = kernels.kernel(t)
    assert in_c is not None
    outs, missing = in_c([value.encode()])
    assert missing == []
    assert outs == [t(value).encode()]  # type: ignore[union-attr]


@needs_c
@pytest.mark.parametrize("value", [b"\xff\xfe", b"ab\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"])
@pytest.mark.parametrize("rule", ["email", "text", "national_id"])
def test_invalid_utf8_is_left_to_python(rule: str, value: bytes) -> None:
    options = {"country": "US"} if rule == "national_id" else {}
    t = build_transformer(rule, options, ColumnInfo("c", "text"), KEY)
    in_c = kernels.kernel(t)
    assert in_c is not None
    assert in_c([value, b"x1"]) == ([None, in_c([b"x1"])[0][0]], [0])


def test_without_c_no_rule_offers_a_c_first_choice() -> None:
    was = native.NATIVE
    try:
        native.use_native(False)
        for rule, options, type_name in RULES:
            assert kernels.kernel(build_transformer(rule, options, ColumnInfo("c", type_name), KEY)) is None
    finally:
        native.use_native(was)


@needs_c
@pytest.mark.parametrize(("rule", "options", "type_name"), [
    ("national_id", {"country": "GB"}, "text"),
    ("credit_card", {"brand": "visa"}, "text"),
    ("phone", {"keep_format": False}, "text"),
    ("phone", {"keep_country_code": False}, "text"),  # numbers of another country: Python only
    ("email", {"keep_domain": True}, "text"),
    ("email", {}, "varchar(30)"),
    ("text", {"words": ["über", "straße"]}, "text"),
])
def test_options_the_c_code_does_not_cover_stay_in_python(rule: str, options: dict[str, Any], type_name: str
                                                          ) -> None:
    t = build_transformer(rule, options, ColumnInfo("c", type_name), KEY)
    assert kernels.kernel(t) is None


@needs_c
def test_a_column_masked_with_c_equals_the_column_masked_in_python() -> None:
    """The column path (escapes, NULLs, values left to Python, parent alternatives) gives the same fields."""
    codec = codecs.PgCopyText()
    rnd = random.Random(7)
    texts = [_value(rnd) for _ in range(3000)]
    fields = [codec.encode_cell(v) for v in texts] + [codec.null]
    for rule, options, type_name in RULES:
        t = build_transformer(rule, options, ColumnInfo("c", type_name), KEY)
        override = {texts[3]: "kept alternative", texts[4]: None}
        with_c = batch._column_function(t, codec, override, None)
        native.use_native(False)
        try:
            without_c = batch._column_function(t, codec, override, None)
        finally:
            native.use_native(True)
        assert with_c is not None and without_c is not None
        assert with_c(fields) == without_c(fields), (rule, options)


@needs_c
def test_the_c_rules_check_their_arguments() -> None:
    c = native.RULES
    with pytest.raises(ValueError, match="prefixes"):
        c.card(KEY, [b"4111 1111 1111 1111"], b"\x01" * 10, -1)
    with pytest.raises(ValueError, match="empty"):
        c.email(KEY, [b"a@b.c"], [], [b"lee"], [b"example.com"], False, -1)
    with pytest.raises(ValueError, match="ASCII"):
        c.lorem(KEY, [b"text"], "lorem ipsüm ".encode(), b"\x00\x00\x00\x00", -1, -1)
    with pytest.raises(ValueError, match="ASCII"):
        c.lorem(KEY, [b"text"], b"lorem ipsum ", b"\xff\x00\x00\x00", -1, -1)  # a start past the end
    with pytest.raises(TypeError, match="not bytes"):
        c.ssn_us(KEY, ["123-45-6789"], True, -1)
    assert c.ssn_us(KEY, [], True, -1) == ([], [])
