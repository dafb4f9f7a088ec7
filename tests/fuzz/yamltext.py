"""YAML documents for the fuzzers of the two YAML inputs (rules files, datasafe.yml): a generated
structure written as YAML or JSON, then hostile text made of it: anchors and aliases (up to and
past the expansion limit), merge keys, tags PyYAML knows and tags it must refuse, several
documents, tabs, NUL, a BOM, invalid UTF-8 and deep flow nesting."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import strategies as st


def dump(value: Any, unicode: bool) -> str:
    """``value`` as YAML (or as JSON, which is YAML too, when PyYAML cannot write it)."""
    try:
        return yaml.safe_dump(value, allow_unicode=unicode, sort_keys=False)
    except (yaml.YAMLError, ValueError, TypeError):
        return json.dumps(value, ensure_ascii=not unicode, default=str)


def laughs(levels: int, width: int) -> str:
    """A "billion laughs" of ``levels`` anchors, each aliasing the one before ``width`` times."""
    text = f"l0: &l0 [{', '.join(['lol'] * width)}]\n"
    for i in range(1, levels):
        text += f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]\n"
    return text


TAGGED = ("!!binary aGVsbG8=", "!!binary '!!!'", "!!timestamp 2026-02-30", "!!timestamp 2026-13-01",
          "2026-13-45", "!!int 99" + "9" * 5000, "!!int 1:2:3:" + "9" * 5000, "!!float x", "!!float 1e99999",
          "!!python/object/apply:os.system ['true']", "!!python/name:os.system", "!custom x", "!!set {a, b}",
          "!!omap [a: 1, b: 2]", "!!str", "!!null ~", "!!bool maybe", "*undefined", "&a", "? [a, b]\n: 1",
          "{a: 1, a: 2}", "<<: 5", "[" * 200 + "]" * 200, "[" * 20_000, "'unterminated", "\t", "\x00", "\x85",
          "- \ud800", "%YAML 9.9\n---", "--- a\n--- b", "...")


@st.composite
def hostile_yaml(draw: st.DrawFn, document: Any) -> bytes:
    """``document`` as YAML text, maybe changed in text: what a file of that kind may hold."""
    text = dump(document, draw(st.booleans()))
    ways = ["append", "insert", "laughs", "merge", "encoding", "json"]
    pick = draw(st.integers(0, 2 * len(ways) - 1))  # as it is half the time, else one way each
    how = ways[pick] if pick < len(ways) else "as is"
    if how == "append":
        keys = sorted(document) if isinstance(document, dict) and document else ["x"]
        text += f"\n{draw(st.sampled_from(keys))}: {draw(st.sampled_from(TAGGED))}\n"  # a key again, or a new one
    elif how == "insert":
        lines = text.splitlines() or [""]
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, draw(st.sampled_from(TAGGED)))
        text = "\n".join(lines) + "\n"
    elif how == "laughs":  # within the limit (9**4 nodes), at it, and far past it
        levels, width = draw(st.sampled_from([(2, 3), (4, 9), (5, 9), (9, 9), (30, 2)]))
        text += "\n" + laughs(levels, width)
    elif how == "merge":  # an anchor on the first value, merged into a mapping at the end
        text = text.replace(": ", ": &anchor ", 1) + "\nmerged:\n  <<: *anchor\n  <<: [*anchor, *anchor]\n"
    elif how == "json":
        text = json.dumps(document, ensure_ascii=False, default=str)
    else:
        data = text.encode("utf-8", "surrogatepass")
        return draw(st.sampled_from([b"\xef\xbb\xbf" + data, text.encode("utf-16"), data[: len(data) // 2],
                                     data + b"\n\xff\xfe\n", b"\x00" + data]))
    return text.encode("utf-8", "surrogatepass")
