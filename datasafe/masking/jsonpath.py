"""A small JSON path language and a JSON parser that remembers where every value is in the text.

Paths: ``$`` the document, ``.key`` or ``['key']`` a member, ``[3]`` an array element, ``[*]`` or
``.*`` every element or member, ``..key`` the member ``key`` at any depth below.

Masking replaces only the text of the matched values, so everything else in a ``json``
column (key order, spacing, escapes, number spelling) stays byte for byte.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

Step = tuple[str, str | int | None]  # ("key", name) | ("index", n) | ("any", None) | ("deep", name)

_STEP = re.compile(r"""\.\.(?P<deep>[^.\[\]\s'"]+)|\.(?P<key>[^.\[\]\s'"]+)|\[\*\]|\[(?P<index>-?\d+)\]|"""
                   r"""\[(?P<q>['"])(?P<quoted>.*?)(?P=q)\]""")


def parse_path(path: str) -> tuple[Step, ...]:
    """Parse ``$.a.b``, ``$.a[*].b``, ``$..email``, ``$['odd key'][0]``; ValueError when invalid."""
    if not path.startswith("$"):
        raise ValueError(f"JSON path {path!r} must start with $")
    steps: list[Step] = []
    pos = 1
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None:
            raise ValueError(f"JSON path {path!r}: cannot read from {path[pos:]!r}")
        if m.group("deep") is not None:
            steps.append(("deep", None if m.group("deep") == "*" else m.group("deep")))
        elif m.group("key") is not None:
            steps.append(("any", None) if m.group("key") == "*" else ("key", m.group("key")))
        elif m.group("index") is not None:
            steps.append(("index", int(m.group("index"))))
        elif m.group("quoted") is not None:
            steps.append(("key", m.group("quoted")))
        else:
            steps.append(("any", None))
        pos = m.end()
    return tuple(steps)


@dataclass
class Node:
    """A JSON value and its span ``text[start:end]``."""

    kind: str  # object, array, string, number, literal
    start: int
    end: int
    members: list[tuple[str, Node]] = field(default_factory=list)  # object members, array items (key "")


_WS = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"')
NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_LITERAL = re.compile(r"true|false|null")


def parse(text: str) -> Node:
    """Parse a JSON document keeping spans; ValueError when it is not JSON."""
    try:
        node, pos = _value(text, _WS.match(text, 0).end())  # type: ignore[union-attr]
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if _WS.match(text, pos).end() != len(text):  # type: ignore[union-attr]
        raise ValueError("extra data after the JSON value")
    return node


def _value(text: str, pos: int) -> tuple[Node, int]:
    ch = text[pos:pos + 1]
    if ch == "{":
        return _container(text, pos, "object", "}")
    if ch == "[":
        return _container(text, pos, "array", "]")
    for kind, pattern in (("string", _STRING), ("number", NUMBER), ("literal", _LITERAL)):
        m = pattern.match(text, pos)
        if m is not None:
            return Node(kind, pos, m.end()), m.end()
    raise ValueError(f"invalid JSON at offset {pos}")


def _container(text: str, start: int, kind: str, close: str) -> tuple[Node, int]:
    node = Node(kind, start, start)
    pos = _skip(text, start + 1)
    if text[pos:pos + 1] == close:
        node.end = pos + 1
        return node, node.end
    while True:
        key = ""
        if kind == "object":
            m = _STRING.match(text, pos)
            if m is None:
                raise ValueError(f"invalid JSON at offset {pos}: expected a member name")
            key = json.loads(m.group(0))
            pos = _skip(text, m.end())
            if text[pos:pos + 1] != ":":
                raise ValueError(f"invalid JSON at offset {pos}: expected ':'")
            pos = _skip(text, pos + 1)
        child, pos = _value(text, pos)
        node.members.append((key, child))
        pos = _skip(text, pos)
        ch = text[pos:pos + 1]
        if ch == close:
            node.end = pos + 1
            return node, node.end
        if ch != ",":
            raise ValueError(f"invalid JSON at offset {pos}: expected ',' or {close!r}")
        pos = _skip(text, pos + 1)


def _skip(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]


def select(node: Node, steps: tuple[Step, ...]) -> list[Node]:
    """The nodes a parsed path matches, in document order, each once."""
    current = [node]
    for kind, arg in steps:
        found: list[Node] = []
        for n in current:
            if kind == "key":
                found.extend(c for k, c in n.members if n.kind == "object" and k == arg)
            elif kind == "index" and n.kind == "array" and isinstance(arg, int):
                items = [c for _, c in n.members]
                if -len(items) <= arg < len(items):
                    found.append(items[arg])
            elif kind == "any":
                found.extend(c for _, c in n.members)
            elif kind == "deep":
                found.extend(_descendants(n, arg))
        current = found
    unique = {id(n): n for n in current}
    return sorted(unique.values(), key=lambda n: n.start)


def _descendants(node: Node, name: str | int | None) -> list[Node]:
    out: list[Node] = []
    for key, child in node.members:
        if name is None or (node.kind == "object" and key == name):
            out.append(child)
        out.extend(_descendants(child, name))
    return out


def decode(text: str, node: Node) -> Any:
    return json.loads(text[node.start:node.end])
