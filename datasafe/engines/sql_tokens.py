"""A small SQL lexer, and the token helpers the parsers of schema definitions share.

The schema text of :mod:`datasafe.engines.schema_sql` (and the DDL rewriting of
:mod:`datasafe.masking.ddl_pg` and :mod:`datasafe.masking.ddl_sql`, the expressions of
:mod:`datasafe.scan.derived`) is read token by token: strings, quoted identifiers and comments
must never be mistaken for the words around them, in each engine's dialect.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass


# -- a small SQL lexer -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    """One token. ``kind``: word, ident (quoted identifier), string, number, op or comment.
    ``value``: the word as written, the unquoted identifier, the unescaped string, the comment's
    text. ``key``: a word in upper case (keywords compare on it), else empty."""

    kind: str
    value: str
    start: int
    end: int
    key: str = ""


_COMMON = {
    "comment": r"--[^\n]*|/\*.*?(?:\*/|\Z)",
    "number": r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+",
    "word": r"[A-Za-z_\u0080-\U0010ffff][\w$\u0080-\U0010ffff]*",
    "op": r"::|:=|<>|!=|>=|<=|\|\||=>|\S",
}
_DIALECTS = {
    "postgresql": {"dollar": r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$", "estring": r"[Ee]'(?:[^'\\]|\\.|'')*'",
                   "string": r"'(?:[^']|'')*'", "ident": r'"(?:[^"]|"")*"'},
    "mysql": {"string": r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"", "ident": r"`(?:[^`]|``)*`"},
    "sqlite": {"string": r"'(?:[^']|'')*'", "ident": r'"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]'},
    #: expressions of any engine (derived columns)
    "generic": {"dollar": r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$", "string": r"'(?:[^']|'')*'",
                "ident": r'"(?:[^"]|"")*"|`(?:[^`]|``)*`'},
}
_PATTERNS = {
    name: re.compile("|".join(f"(?P<{k}>{v})" for k, v in {**spec, **_COMMON}.items()), re.S)
    for name, spec in _DIALECTS.items()
}
_BACKSLASH = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "Z": "\x1a"}
_SPACE = re.compile(r"\s+")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda e: _BACKSLASH.get(e.group(1), e.group(1)), text, flags=re.S)


def tokenize(sql: str, dialect: str = "generic") -> list[Token]:
    """The tokens of ``sql`` in ``dialect`` (postgresql, mysql, sqlite, generic), comments included."""
    pattern = _PATTERNS[dialect]
    out: list[Token] = []
    pos, n = 0, len(sql)
    while pos < n:
        space = _SPACE.match(sql, pos)
        if space is not None:
            pos = space.end()
            continue
        m = pattern.match(sql, pos)
        if m is None:  # cannot happen: op matches any character that is not a space
            break
        kind, text, end = m.lastgroup or "op", m.group(), m.end()
        if kind == "dollar":  # $tag$ ... $tag$
            close = sql.find(text, end)
            close = n if close < 0 else close
            end = min(n, close + len(text))
            out.append(Token("string", sql[m.end():close], pos, end))
        elif kind == "estring":
            out.append(Token("string", _unescape(text[2:-1].replace("''", "'")), pos, end))
        elif kind == "string":
            q = text[0]
            value = text[1:-1].replace(q + q, q)
            out.append(Token("string", _unescape(value) if dialect == "mysql" else value, pos, end))
        elif kind == "ident":
            q = text[0]
            out.append(Token("ident", text[1:-1] if q == "[" else text[1:-1].replace(q + q, q), pos, end))
        elif kind == "word":
            out.append(Token("word", text, pos, end, text.upper()))
        elif kind == "comment":
            body = text[2:] if text.startswith("--") else text[2:].removesuffix("*/")
            out.append(Token("comment", body.strip(), pos, end))
        else:
            out.append(Token(kind, text, pos, end))
        pos = end
    return out


def name_of(tok: Token, dialect: str) -> str:
    """An identifier as the database stores it (PostgreSQL folds unquoted names to lower case)."""
    if tok.kind == "word" and dialect == "postgresql":
        return tok.value.lower()
    return tok.value


def without_comments(tokens: list[Token]) -> list[Token]:
    return [t for t in tokens if t.kind != "comment"]


def is_word(tok: Token | None, *words: str) -> bool:
    return tok is not None and tok.key in words and tok.kind == "word"


def is_op(tokens: list[Token], i: int, op: str) -> bool:
    return i < len(tokens) and tokens[i].kind == "op" and tokens[i].value == op


def closing(tokens: list[Token], i: int) -> int:
    """Index of the parenthesis closing the one at ``i`` (or of the last token)."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].kind == "op":
            if tokens[j].value == "(":
                depth += 1
            elif tokens[j].value == ")":
                depth -= 1
                if depth == 0:
                    return j
    return len(tokens) - 1


def split_commas(tokens: list[Token]) -> list[list[Token]]:
    """``tokens`` cut at commas outside parentheses."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for t in tokens:
        if t.kind == "op" and t.value == "(":
            depth += 1
        elif t.kind == "op" and t.value == ")":
            depth -= 1
        if depth == 0 and t.kind == "op" and t.value == ",":
            parts.append([])
        else:
            parts[-1].append(t)
    return [p for p in parts if p]


def find_word(tokens: list[Token], *words: str, start: int = 0) -> int:
    """Index of the first of ``words`` outside parentheses, at or after ``start``; -1 if none."""
    depth = 0
    for j in range(max(start, 0), len(tokens)):
        t = tokens[j]
        if t.kind == "op" and t.value == "(":
            depth += 1
        elif t.kind == "op" and t.value == ")":
            depth -= 1
        elif depth == 0 and t.kind == "word" and t.key in words:
            return j
    return -1


def qualified(tokens: list[Token], i: int, dialect: str) -> tuple[str, int]:
    """The dotted name starting at ``i``: (unquoted name, index after it)."""
    if i >= len(tokens):
        return "?", i
    parts = [name_of(tokens[i], dialect)]
    i += 1
    while is_op(tokens, i, ".") and i + 1 < len(tokens) and tokens[i + 1].kind in ("word", "ident"):
        parts.append(name_of(tokens[i + 1], dialect))
        i += 2
    return ".".join(parts), i


def text_of(sql: str, tokens: list[Token]) -> str:
    return sql[tokens[0].start:tokens[-1].end] if tokens else ""


def expression(tokens: list[Token], i: int, stop: frozenset[str]) -> list[Token]:
    """The expression at ``i``: its first term, then what follows up to a ``stop`` word outside parentheses."""
    out: list[Token] = []
    j = i
    while j < len(tokens):
        t = tokens[j]
        if out and t.kind == "word" and t.key in stop:
            break
        if t.kind == "op" and t.value == "(":
            k = closing(tokens, j)
            out.extend(tokens[j:k + 1])
            j = k + 1
            continue
        out.append(t)
        j += 1
    return out


def statements(sql: str, dialect: str) -> Iterator[tuple[str, list[Token]]]:
    """(text, tokens) of each statement of a script, cut at ``;`` outside strings and bodies; comments
    are left out and token positions are relative to the statement's text."""
    tokens = without_comments(tokenize(sql, dialect))
    start = 0
    for j, t in enumerate([*tokens, Token("op", ";", len(sql), len(sql))]):
        if t.kind == "op" and t.value == ";":
            part = tokens[start:j]
            if part:
                base = part[0].start
                yield sql[base:part[-1].end], [Token(p.kind, p.value, p.start - base, p.end - base, p.key)
                                               for p in part]
            start = j + 1


def unquote(text: str) -> str:
    """The double-quoted identifiers in a name (as pg_dump and the catalogs write them) unquoted."""
    return re.sub(r'"((?:[^"]|"")*)"', lambda m: m.group(1).replace('""', '"'), text)


def render_name(tokens: list[Token], dialect: str) -> str:
    """The tokens of a name (``public."Weird T".email``, ``c1 ON DOMAIN public.d``) as one unquoted name."""
    out = ""
    for t in tokens:
        if t.kind in ("word", "ident"):
            text = t.value.lower() if t.kind == "word" and (dialect == "postgresql" or t.key in ("ON", "DOMAIN")) \
                else t.value
            out += (" " if out and not out.endswith((".", "(", " ")) else "") + text
        else:
            out += ", " if t.value == "," else t.value
    return out
