"""Hostile values, shared by the structure-aware generators: wrong types, extreme numbers, text that
breaks paths, encodings, YAML or shells, and nesting deeper than any parser should follow."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

#: strings that have broken parsers before: traversal, NUL, lone surrogates, markup of the formats
#: datasafe reads, interpolation, numbers in disguise, and sizes well past any real value
SPECIAL_STRINGS = (
    "", " ", ".", "..", "../../../etc/passwd", "/etc/passwd", "a/../../b", "data/../../x.zst", "~/x", "C:\\x",
    "\\\\host\\share", "nul\x00byte", "\x00", "\ud800", "\udfff tail", "\ufeffbom", "\u202eevil", "🙂" * 3,
    "é" * 40, "line\nbreak", "cr\rlf\r\n", "\t", "${HOME}", "${DATASAFE_UNSET}", "${X:-d}", "${", "%00%2e%2e%2f",
    "*alias", "&anchor x", "!!python/object/apply:os.system ['true']", "'; DROP TABLE x; --", "{{7*7}}",
    "null", "true", "NaN", "-1", "0x10", "1e999", "9" * 5000, "a" * 20_000, "@", "latest", "shop/latest",
    "20261126T122627Z-d1c602", "postgresql://u:p@h:99999/d", "sqlite://", "s3://b/p",
)

ints = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([-1, 0, 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, 10**300]),
)
floats = st.floats(allow_nan=True, allow_infinity=True)
texts = st.one_of(
    st.sampled_from(SPECIAL_STRINGS),
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=40),
)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts)


def nested(depth: int, leaf: Any = 0) -> Any:
    """``depth`` levels of lists around ``leaf``, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


deep = st.sampled_from([10, 63, 64, 65, 100, 400]).map(nested)
values: st.SearchStrategy[Any] = st.one_of(
    scalars,
    deep,
    st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(texts, inner, max_size=4)), max_leaves=8),
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any] = values) -> st.SearchStrategy[Any]:
    """``good`` about three times in four: most cases must get past the first check to reach the later
    ones (``one_of`` would not do: hypothesis weighs its branches its own way)."""
    return st.integers(0, 3).flatmap(lambda i: bad if i == 3 else good)
