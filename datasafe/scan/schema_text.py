"""The schema's own text, piece by piece, each named by the object it belongs to.

Personal data hides in schemas too: an address in a table comment, a customer's e-mail as a
column default, a CHECK or a policy that singles out one person, a view or function body with
a name in it, an enum label. A masked copy keeps its schema, so these survive masking unless
someone edits them: a scan must find them and say where.

Snapshot and live database give the same pieces under the same names, e.g.
``comment on column public.customers.email``, ``default of public.customers.contact``,
``check customers_note_check on public.customers``, ``view public.vip``,
``function public.greet(text)``, ``policy p_self on public.customers``, ``enum public.mood``,
``generated column public.customers.email_lower``. Identifiers are unquoted, as manifest table
names are.

- PostgreSQL snapshots: the pg_dump archive through ``pg_restore -f -``, split at the
  ``-- Name: ...; Type: ...`` header pg_dump writes before every object; live: the catalogs.
- MySQL/MariaDB: the ``SHOW CREATE`` statements, from the snapshot's schema part or read live
  the way a backup reads them, so both go through one parser.
- SQLite: the ``CREATE`` statements (schema part or ``sqlite_master``), SQL comments in them too.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from datasafe.engines import get_engine
from datasafe.errors import DatabaseError, IntegrityError, NotFound
from datasafe.scan.model import SchemaText
from datasafe.snapshot.chunks import read_whole
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

#: schema part formats, as the engines write them
PG_FORMAT = "pg_dump-custom"
MYSQL_FORMAT = "mysql-schema-json"
SQLITE_FORMAT = "sqlite-schema-json"


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


def _code(tokens: list[Token]) -> list[Token]:
    return [t for t in tokens if t.kind != "comment"]


def _is(tok: Token | None, *words: str) -> bool:
    return tok is not None and tok.key in words and tok.kind == "word"


def _op(tokens: list[Token], i: int, op: str) -> bool:
    return i < len(tokens) and tokens[i].kind == "op" and tokens[i].value == op


def _close(tokens: list[Token], i: int) -> int:
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


def _split(tokens: list[Token]) -> list[list[Token]]:
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


def _find(tokens: list[Token], *words: str, start: int = 0) -> int:
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


def _qualified(tokens: list[Token], i: int, dialect: str) -> tuple[str, int]:
    """The dotted name starting at ``i``: (unquoted name, index after it)."""
    if i >= len(tokens):
        return "?", i
    parts = [name_of(tokens[i], dialect)]
    i += 1
    while _op(tokens, i, ".") and i + 1 < len(tokens) and tokens[i + 1].kind in ("word", "ident"):
        parts.append(name_of(tokens[i + 1], dialect))
        i += 2
    return ".".join(parts), i


def _slice(sql: str, tokens: list[Token]) -> str:
    return sql[tokens[0].start:tokens[-1].end] if tokens else ""


def _expression(tokens: list[Token], i: int, stop: frozenset[str]) -> list[Token]:
    """The expression at ``i``: its first term, then what follows up to a ``stop`` word outside parentheses."""
    out: list[Token] = []
    j = i
    while j < len(tokens):
        t = tokens[j]
        if out and t.kind == "word" and t.key in stop:
            break
        if t.kind == "op" and t.value == "(":
            k = _close(tokens, j)
            out.extend(tokens[j:k + 1])
            j = k + 1
            continue
        out.append(t)
        j += 1
    return out


def statements(sql: str, dialect: str) -> Iterator[tuple[str, list[Token]]]:
    """(text, tokens) of each statement of a script, cut at ``;`` outside strings and bodies; comments
    are left out and token positions are relative to the statement's text."""
    tokens = _code(tokenize(sql, dialect))
    start = 0
    for j, t in enumerate([*tokens, Token("op", ";", len(sql), len(sql))]):
        if t.kind == "op" and t.value == ";":
            part = tokens[start:j]
            if part:
                base = part[0].start
                yield sql[base:part[-1].end], [Token(p.kind, p.value, p.start - base, p.end - base, p.key)
                                               for p in part]
            start = j + 1


def _parsed(where: str, sql: str, parse: Callable[..., list[SchemaText]], *args: Any) -> list[SchemaText]:
    """What ``parse(*args)`` finds in ``sql``; SQL it cannot follow is kept whole (kind ``other``), never lost."""
    try:
        return parse(*args)
    except (IndexError, ValueError) as exc:
        log.debug("cannot take apart the definition of %s (%s): kept as a whole", where, exc)
        return [SchemaText(where, "other", sql)]


def _unquote(text: str) -> str:
    return re.sub(r'"((?:[^"]|"")*)"', lambda m: m.group(1).replace('""', '"'), text)


def _render(tokens: list[Token], dialect: str) -> str:
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


# -- PostgreSQL snapshots: the pg_dump script -------------------------------------------------------
_PG_HEADER = re.compile(r"^-- Name: (?P<name>.*); Type: (?P<type>[A-Z][A-Z ]*); Schema: (?P<schema>.*?); Owner: .*$",
                        re.M)
#: pg_dump entry types whose text holds nothing of interest (or that another entry reports)
_PG_SKIP = frozenset({"SCHEMA", "SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET", "CONSTRAINT", "FK CONSTRAINT",
                      "ROW SECURITY", "EXTENSION", "ACL", "DEFAULT ACL", "SHELL TYPE", "TABLE ATTACH",
                      "INDEX ATTACH", "ENCODING", "STDSTRINGS", "SEARCHPATH", "DATABASE", "DATABASE PROPERTIES",
                      "PROCEDURAL LANGUAGE", "COLLATION", "MATERIALIZED VIEW DATA", "TABLE DATA", "BLOBS",
                      "BLOB", "LARGE OBJECT", "SECURITY LABEL", "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA"})
_PG_COMMENT_KINDS = ("MATERIALIZED VIEW", "FOREIGN TABLE", "FOREIGN DATA WRAPPER", "EVENT TRIGGER", "ACCESS METHOD",
                     "TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY", "TEXT SEARCH PARSER",
                     "TEXT SEARCH TEMPLATE", "OPERATOR CLASS", "OPERATOR FAMILY", "LARGE OBJECT")
_FUNCTION_TYPES = ("FUNCTION", "PROCEDURE", "AGGREGATE")
_PG = "postgresql"


def pg_script_texts(script: str) -> list[SchemaText]:
    """The pieces of a pg_dump SQL script (``pg_restore -f -`` of a schema archive)."""
    out: list[SchemaText] = []
    headers = list(_PG_HEADER.finditer(script))
    #: (schema, function name) -> signature of the function last seen: pg_dump writes an object's
    #: COMMENT right after it, and names the function by its argument types only in the header
    functions: dict[tuple[str, str], str] = {}
    for n, m in enumerate(headers):
        end = headers[n + 1].start() if n + 1 < len(headers) else len(script)
        body = "\n".join(line for line in script[m.end():end].splitlines() if not line.startswith("\\"))
        kind, schema, tag = m["type"], m["schema"], m["name"]
        if kind in _PG_SKIP:
            continue
        for sql, code in statements(body, _PG):
            if _is(code[0], "SET", "SELECT"):
                continue
            if kind in _FUNCTION_TYPES:
                sig = _unquote(tag)
                functions[(schema, sig.split("(", 1)[0])] = sig
                out.append(SchemaText(f"{kind.lower()} {schema}.{sig}", "function", sql))
                break
            where = f"{kind.lower()} {schema + '.' if schema not in ('-', '') else ''}{_unquote(tag)}"
            out.extend(_parsed(where, sql, _pg_statement, kind, schema, tag, sql, code, functions))
    return out


def _pg_statement(kind: str, schema: str, tag: str, sql: str, code: list[Token],
                  functions: dict[tuple[str, str], str]) -> list[SchemaText]:
    if kind == "COMMENT":
        return _pg_comment(schema, code, functions)
    if kind in ("TABLE", "FOREIGN TABLE"):
        return _create_table(sql, code, _PG) if _is(code[0], "CREATE") else []
    if kind == "DEFAULT":  # ALTER TABLE [ONLY] t ALTER [COLUMN] c SET DEFAULT expr
        a, d = _find(code, "ALTER", start=1), _find(code, "DEFAULT")
        if a > 0 and d > 0:
            table, _ = _qualified(code, 3 if _is(code[2], "ONLY") else 2, _PG)
            col = name_of(code[a + 2] if _is(code[a + 1], "COLUMN") else code[a + 1], _PG)
            return [SchemaText(f"default of {table}.{col}", "default", _slice(sql, code[d + 1:]))]
        return []
    if kind == "CHECK CONSTRAINT":  # ALTER TABLE|DOMAIN [ONLY] t ADD CONSTRAINT name CHECK (...)
        target, _ = _qualified(code, 3 if _is(code[2], "ONLY") else 2, _PG)
        c, k = _find(code, "CONSTRAINT"), _find(code, "CHECK")
        if c > 0 and k > 0:
            where = f"domain {target}" if _is(code[1], "DOMAIN") else target
            return [SchemaText(f"check {name_of(code[c + 1], _PG)} on {where}", "check", _slice(sql, code[k:]))]
        return []
    if kind == "DOMAIN":
        return _pg_domain(sql, code)
    if kind == "TYPE":
        if _find(code, "ENUM") < 0:
            return []
        name, _ = _qualified(code, 2, _PG)
        return [SchemaText(f"enum {name}", "enum", "\n".join(t.value for t in code if t.kind == "string"))]
    if kind in ("VIEW", "MATERIALIZED VIEW"):
        return _view(kind.lower(), sql, code, _find(code, "VIEW") + 1, _PG)
    if kind == "POLICY":  # CREATE POLICY name ON table ...
        table, after = _qualified(code, 4, _PG)
        return [SchemaText(f"policy {name_of(code[2], _PG)} on {table}", "policy", _slice(sql, code[after:]))]
    if kind == "INDEX":
        i = _find(code, "INDEX")
        return [SchemaText(f"index {schema}.{name_of(code[i + 1], _PG)}", "index", _slice(sql, code[i + 2:]))]
    if kind == "TRIGGER":
        table, _ = _qualified(code, _find(code, "ON") + 1, _PG)
        return [SchemaText(f"trigger {name_of(code[_find(code, 'TRIGGER') + 1], _PG)} on {table}", "trigger", sql)]
    if kind == "EVENT TRIGGER":
        return [SchemaText(f"event trigger {_unquote(tag)}", "trigger", sql)]
    if kind == "RULE":
        table, _ = _qualified(code, _find(code, "TO") + 1, _PG)
        return [SchemaText(f"rule {name_of(code[2], _PG)} on {table}", "other", sql)]
    where = f"{schema}." if schema not in ("-", "") else ""
    return [SchemaText(f"{kind.lower()} {where}{_unquote(tag)}", "other", sql)]


def _pg_comment(schema: str, code: list[Token], functions: dict[tuple[str, str], str]) -> list[SchemaText]:
    """COMMENT ON <kind> <target> IS '<text>'."""
    i = _find(code, "IS")
    if i < 3 or i + 1 >= len(code) or code[i + 1].kind != "string":
        return []
    words = " ".join(t.key for t in code[2:6] if t.kind == "word") + " "
    kind = next((k for k in _PG_COMMENT_KINDS if words.startswith(k + " ")), code[2].key)
    target_tokens = code[2 + len(kind.split()):i]
    target = _render(target_tokens, _PG)
    if kind in _FUNCTION_TYPES:
        sig = functions.get((schema, _qualified(target_tokens, 0, _PG)[0].split(".")[-1]))
        target = f"{schema}.{sig}" if sig else target
    return [SchemaText(f"comment on {kind.lower()} {target}", "comment", code[i + 1].value)]


def _pg_domain(sql: str, code: list[Token]) -> list[SchemaText]:
    """CREATE DOMAIN d AS type [DEFAULT expr] [CONSTRAINT name CHECK (expr)]..."""
    name, _ = _qualified(code, 2, _PG)
    out = []
    d = _find(code, "DEFAULT")
    if d > 0:
        out.append(SchemaText(f"default of domain {name}", "default",
                              _slice(sql, _expression(code, d + 1, _STOPS[_PG]))))
    k = _find(code, "CHECK")
    while k > 0:
        named = k >= 2 and _is(code[k - 2], "CONSTRAINT")
        cname = name_of(code[k - 1], _PG) if named else f"{name.split('.')[-1]}_check"
        end = _close(code, k + 1)
        out.append(SchemaText(f"check {cname} on domain {name}", "check", _slice(sql, code[k:end + 1])))
        k = _find(code, "CHECK", start=end + 1)
    return out


def _view(kind: str, sql: str, code: list[Token], at: int, dialect: str, name: str | None = None) -> list[SchemaText]:
    parsed, after = _qualified(code, at, dialect)
    a = _find(code, "AS", start=after)
    body = code[a + 1:] if a > 0 else code
    if len(body) > 3 and _is(body[-3], "WITH") and _is(body[-2], "NO") and _is(body[-1], "DATA"):
        body = body[:-3]
    return [SchemaText(f"{kind} {name or parsed}", "view", _slice(sql, body))]


# -- CREATE TABLE (every engine) ----------------------------------------------------------------------
_STOPS = {
    _PG: frozenset({"NOT", "NULL", "CONSTRAINT", "CHECK", "COLLATE", "GENERATED", "REFERENCES", "UNIQUE",
                    "PRIMARY", "DEFAULT", "DEFERRABLE", "INITIALLY", "COMPRESSION", "STORAGE"}),
    "mysql": frozenset({"NOT", "NULL", "ON", "COMMENT", "AUTO_INCREMENT", "CHECK", "COLLATE", "CHARACTER",
                        "INVISIBLE", "GENERATED", "PRIMARY", "UNIQUE", "KEY", "REFERENCES", "STORAGE",
                        "COLUMN_FORMAT", "SRID", "VISIBLE", "DEFAULT", "CONSTRAINT", "AS"}),
    "sqlite": frozenset({"CONSTRAINT", "PRIMARY", "NOT", "NULL", "UNIQUE", "CHECK", "DEFAULT", "COLLATE",
                         "REFERENCES", "GENERATED", "AS"}),
}
#: words that start a table constraint rather than a column (MySQL quotes every column name)
_TABLE_ITEMS = {
    _PG: frozenset({"CONSTRAINT", "CHECK", "PRIMARY", "UNIQUE", "FOREIGN", "LIKE"}),
    "sqlite": frozenset({"CONSTRAINT", "CHECK", "PRIMARY", "UNIQUE", "FOREIGN"}),
}


def _create_table(sql: str, code: list[Token], dialect: str, name: str | None = None) -> list[SchemaText]:
    """Defaults, generated expressions, CHECKs, comments and ENUM/SET labels of a CREATE TABLE."""
    i = _find(code, "TABLE") + 1
    if i <= 0 or i >= len(code):
        return []
    if _is(code[i], "IF"):  # IF NOT EXISTS
        i += 3
    parsed, i = _qualified(code, i, dialect)
    table = name or parsed
    if not _op(code, i, "("):
        return []
    end = _close(code, i)
    out: list[SchemaText] = []
    for item in _split(code[i + 1:end]):
        first = item[0]
        if first.kind == "word" and (dialect == "mysql" or first.key in _TABLE_ITEMS[dialect]):
            out.extend(_table_item(sql, item, table, dialect))
        else:
            out.extend(_column(sql, item, table, dialect))
    c = _find(code, "COMMENT", start=end + 1)
    if dialect == "mysql" and c > 0:  # table option COMMENT='...'
        value = code[c + 2] if _op(code, c + 1, "=") and c + 2 < len(code) else code[min(c + 1, len(code) - 1)]
        if value.kind == "string":
            out.append(SchemaText(f"comment on table {table}", "comment", value.value))
    return out


def _column(sql: str, item: list[Token], table: str, dialect: str) -> list[SchemaText]:
    col = name_of(item[0], dialect)
    where = f"{table}.{col}"
    out: list[SchemaText] = []
    if len(item) > 2 and _is(item[1], "ENUM", "SET") and _op(item, 2, "("):
        labels = [t.value for t in item[2:_close(item, 2) + 1] if t.kind == "string"]
        out.append(SchemaText(f"enum {where}", "enum", "\n".join(labels)))
    j = 1
    while j < len(item):
        t = item[j]
        if _op(item, j, "("):
            j = _close(item, j) + 1
        elif _is(t, "DEFAULT"):
            expr = _expression(item, j + 1, _STOPS[dialect])
            if expr:
                out.append(SchemaText(f"default of {where}", "default", _slice(sql, expr)))
            j += 1 + len(expr)
        elif _is(t, "AS") and _op(item, j + 1, "("):
            k = _close(item, j + 1)
            out.append(SchemaText(f"generated column {where}", "generated", _slice(sql, item[j + 2:k])))
            j = k + 1
        elif _is(t, "CHECK") and _op(item, j + 1, "("):
            k = _close(item, j + 1)
            if j >= 2 and _is(item[j - 2], "CONSTRAINT"):
                label = f"check {name_of(item[j - 1], dialect)} on {table}"
            else:  # MariaDB names a column's CHECK after the column
                label = f"check {col} on {table}" if dialect == "mysql" else f"check on {where}"
            out.append(SchemaText(label, "check", _slice(sql, item[j:k + 1])))
            j = k + 1
        elif _is(t, "COMMENT") and j + 1 < len(item) and item[j + 1].kind == "string":
            out.append(SchemaText(f"comment on column {where}", "comment", item[j + 1].value))
            j += 2
        else:
            j += 1
    return out


def _table_item(sql: str, item: list[Token], table: str, dialect: str) -> list[SchemaText]:
    k = _find(item, "CHECK")
    if k >= 0 and _op(item, k + 1, "("):
        named = _is(item[0], "CONSTRAINT") and len(item) > 1 and k > 1
        label = f"check {name_of(item[1], dialect)} on {table}" if named else f"check on {table}"
        return [SchemaText(label, "check", _slice(sql, item[k:_close(item, k + 1) + 1]))]
    c = _find(item, "COMMENT")
    if dialect == "mysql" and c > 0 and c + 1 < len(item) and item[c + 1].kind == "string":
        index = "PRIMARY" if _is(item[0], "PRIMARY") else next(
            (t.value for t in item[1:c] if t.kind == "ident"), "?")
        return [SchemaText(f"comment on index {index} on {table}", "comment", item[c + 1].value)]
    return []


# -- MySQL / MariaDB --------------------------------------------------------------------------------
def mysql_schema_texts(schema: dict[str, Any]) -> list[SchemaText]:
    """The pieces of a MySQL schema (the ``mysql-schema-json`` part: ``SHOW CREATE`` statements)."""
    out: list[SchemaText] = []
    for item in schema.get("tables", []):
        sql = str(item["sql"])
        name = str(item["name"])
        out.extend(_parsed(f"table {name}", sql, _create_table, sql, _code(tokenize(sql, "mysql")), "mysql", name))
    for item in schema.get("views", []):
        sql = str(item["sql"])
        code = _code(tokenize(sql, "mysql"))
        name = str(item["name"])
        out.extend(_parsed(f"view {name}", sql, _view, "view", sql, code, _find(code, "VIEW") + 1, "mysql", name))
    for item in schema.get("routines", []):
        kind = str(item.get("kind", "function")).lower()
        out.append(SchemaText(f"{kind} {item['name']}", "function", str(item["sql"])))
    for item in schema.get("triggers", []):
        out.append(SchemaText(f"trigger {item['name']} on {item.get('table', '?')}", "trigger", str(item["sql"])))
    for item in schema.get("events", []):
        out.append(SchemaText(f"event {item['name']}", "other", str(item["sql"])))
    return out


# -- SQLite ---------------------------------------------------------------------------------------------
def sqlite_schema_texts(objects: Iterable[tuple[str, str, str, str]]) -> list[SchemaText]:
    """The pieces of SQLite ``CREATE`` statements: (type, name, table, sql) as ``sqlite_master`` has them."""
    out: list[SchemaText] = []
    for typ, name, table, sql in objects:
        if not sql or name.startswith("sqlite_"):
            continue
        tokens = tokenize(sql, "sqlite")
        code = _code(tokens)
        out.extend(SchemaText(f"comment in {typ} {name}", "comment", c.value)
                   for c in tokens if c.kind == "comment" and c.value)
        if typ == "table" and _find(code, "VIRTUAL") >= 0:
            out.append(SchemaText(f"table {name}", "other", sql))
        elif typ == "table":
            out.extend(_parsed(f"table {name}", sql, _create_table, sql, code, "sqlite", name))
        elif typ == "view":
            out.extend(_parsed(f"view {name}", sql, _view, "view", sql, code, _find(code, "VIEW") + 1, "sqlite", name))
        elif typ == "trigger":
            out.append(SchemaText(f"trigger {name} on {table}", "trigger", sql))
        elif typ == "index":
            out.append(SchemaText(f"index {name}", "index", sql))
    return out


# -- snapshots ------------------------------------------------------------------------------------------
def snapshot_schema_text(repo: Repository, manifest: Manifest) -> list[SchemaText]:
    """The schema text of a stored snapshot (an encrypted one is opened with the repository's keys).

    Raises:
        DependencyError: a PostgreSQL snapshot, and no pg_restore that reads its archive.
        IntegrityError: a schema part is damaged.
    """
    manifest = repo.open(manifest)
    objects = repo.snapshot_storage(manifest)
    out: list[SchemaText] = []
    for part in manifest.schema_parts:
        if part.format not in (PG_FORMAT, MYSQL_FORMAT, SQLITE_FORMAT):
            log.warning("snapshot %s: schema part %s has format %r, which scan does not read",
                        manifest.snapshot_id, part.name, part.format)
            continue
        raw = read_whole(objects, part, label=f"schema {part.name}")
        if part.format == PG_FORMAT:
            out.extend(pg_script_texts(_pg_script(raw, manifest)))
        elif part.format == MYSQL_FORMAT:
            out.extend(mysql_schema_texts(_json(raw, manifest)))
        else:
            data = _json(raw, manifest)
            out.extend(sqlite_schema_texts(
                (str(o["type"]), str(o["name"]), str(o.get("table") or o["name"]), str(o.get("sql") or ""))
                for o in [*data.get("create", []), *data.get("post", [])]))
    return out


def _json(raw: bytes, manifest: Manifest) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise IntegrityError(f"snapshot {manifest.snapshot_id}: its schema part is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise IntegrityError(f"snapshot {manifest.snapshot_id}: its schema part is not a JSON object")
    return data


def _pg_script(archive: bytes, manifest: Manifest) -> str:
    """The SQL script of a pg_dump custom archive, without owners and privileges."""
    get_engine(_PG)  # the PostgreSQL engine (and its tools module) needs psycopg: a clear error if absent
    from datasafe.engines.postgres.tools import find_tool, run_tool

    major = int(str(manifest.extra.get("pg_dump_version", "0")).split(".")[0] or 0)
    tool = find_tool("pg_restore", None, major or None)
    with tempfile.TemporaryDirectory(prefix="datasafe-scan-") as folder:
        path = os.path.join(folder, "schema.pgdump")
        with open(path, "wb") as fh:
            fh.write(archive)
        return run_tool([tool.path, "--no-owner", "--no-privileges", "--file=-", path], None,
                        "pg_restore (schema text)")


# -- live databases -----------------------------------------------------------------------------------
def url_schema_text(url: DatabaseURL) -> list[SchemaText]:
    """The schema text of a live database, from its catalogs (read only).

    Raises:
        DependencyError: the engine's driver is not installed.
        ConnectionFailed, DatabaseError, NotFound: the database cannot be read.
    """
    get_engine(url.engine)  # the driver is there, or an actionable DependencyError
    if url.engine == _PG:
        return _pg_catalog(url)
    if url.engine == "mysql":
        return _mysql_catalog(url)
    if url.engine == "sqlite":
        return _sqlite_catalog(url)
    raise NotFound(f"scan cannot read the schema of {url.engine} databases")


_USER_NSP = ("n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
             "AND n.nspname NOT LIKE 'pg\\_temp%'")


def _not_ext(cls: str, oid: str) -> str:
    return f"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{cls}'::regclass AND e.objid = {oid} " \
           "AND e.deptype = 'e')"


#: (kind, query giving (object name, text)) per piece of PostgreSQL schema text; objects made by
#: initdb (oid below 16384) and by extensions are left out, as pg_dump leaves them out
_PG_QUERIES: tuple[tuple[str, str], ...] = (
    ("comment", """
        SELECT o.type, o.identity, d.description,
          CASE WHEN d.classoid = 'pg_proc'::regclass THEN (SELECT n.nspname || '.' || p.proname || '('
            || pg_catalog.oidvectortypes(p.proargtypes) || ')' FROM pg_proc p
            JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = d.objoid) END,
          CASE WHEN d.classoid = 'pg_type'::regclass THEN (SELECT t.typtype FROM pg_type t WHERE t.oid = d.objoid) END
        FROM pg_description d, LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) o
        WHERE d.objoid >= 16384 AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = d.classoid
          AND e.objid = d.objoid AND e.deptype = 'e')
          AND (o.schema IS NULL OR o.schema NOT IN ('pg_catalog', 'information_schema'))"""),
    ("default", f"""
        SELECT CASE a.attgenerated WHEN '' THEN 'default of ' ELSE 'generated column ' END
          || n.nspname || '.' || c.relname || '.' || a.attname, pg_get_expr(d.adbin, d.adrelid), a.attgenerated
        FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
        JOIN pg_class c ON c.oid = d.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_NSP} AND {_not_ext('pg_class', 'c.oid')}
        UNION ALL SELECT 'default of domain ' || n.nspname || '.' || t.typname, t.typdefault, ''
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype = 'd' AND t.typdefault IS NOT NULL AND {_USER_NSP} AND {_not_ext('pg_type', 't.oid')}"""),
    ("check", f"""
        SELECT 'check ' || con.conname || ' on ' || CASE WHEN con.contypid <> 0 THEN 'domain ' ELSE '' END
          || n.nspname || '.' || coalesce(c.relname, t.typname), pg_get_constraintdef(con.oid)
        FROM pg_constraint con LEFT JOIN pg_class c ON c.oid = con.conrelid
        LEFT JOIN pg_type t ON t.oid = con.contypid
        JOIN pg_namespace n ON n.oid = coalesce(c.relnamespace, t.typnamespace)
        WHERE con.contype = 'c' AND {_USER_NSP}
          AND {_not_ext('pg_class', 'coalesce(c.oid, 0)')} AND {_not_ext('pg_type', 'coalesce(t.oid, 0)')}"""),
    ("view", f"""
        SELECT CASE c.relkind WHEN 'm' THEN 'materialized view ' ELSE 'view ' END || n.nspname || '.' || c.relname,
          pg_get_viewdef(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND {_USER_NSP} AND {_not_ext('pg_class', 'c.oid')}"""),
    ("function", f"""
        SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' WHEN 'a' THEN 'aggregate ' ELSE 'function ' END
          || n.nspname || '.' || p.proname || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')',
          CASE WHEN p.prokind = 'a' THEN (SELECT coalesce(g.agginitval, '') FROM pg_aggregate g
            WHERE g.aggfnoid = p.oid) ELSE pg_get_functiondef(p.oid) END
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE {_USER_NSP} AND {_not_ext('pg_proc', 'p.oid')}"""),
    ("policy", f"""
        SELECT 'policy ' || pol.polname || ' on ' || n.nspname || '.' || c.relname,
          concat_ws(' ', 'USING (' || pg_get_expr(pol.polqual, pol.polrelid) || ')',
                    'WITH CHECK (' || pg_get_expr(pol.polwithcheck, pol.polrelid) || ')')
        FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_NSP}"""),
    ("enum", f"""
        SELECT 'enum ' || n.nspname || '.' || t.typname, string_agg(e.enumlabel, E'\\n' ORDER BY e.enumsortorder)
        FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE {_USER_NSP} AND {_not_ext('pg_type', 't.oid')} GROUP BY n.nspname, t.typname"""),
    ("index", f"""
        SELECT 'index ' || n.nspname || '.' || ic.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
        WHERE {_USER_NSP} AND {_not_ext('pg_class', 'i.indrelid')} AND NOT EXISTS (SELECT 1 FROM pg_constraint con
          WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))"""),
    ("trigger", f"""
        SELECT 'trigger ' || t.tgname || ' on ' || n.nspname || '.' || c.relname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND {_USER_NSP} AND {_not_ext('pg_class', 'c.oid')}"""),
    ("other", f"""
        SELECT 'rule ' || r.rulename || ' on ' || n.nspname || '.' || c.relname, pg_get_ruledef(r.oid)
        FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE r.rulename <> '_RETURN' AND {_USER_NSP} AND {_not_ext('pg_class', 'c.oid')}"""),
)
#: pg_identify_object's type names -> the words a COMMENT statement uses
_PG_OBJECT_TYPES = {"table column": "column", "view column": "column", "materialized view column": "column",
                    "foreign table column": "column", "composite type column": "column",
                    "table constraint": "constraint", "domain constraint": "constraint"}


def _pg_catalog(url: DatabaseURL) -> list[SchemaText]:
    # psycopg is an optional dependency: imported once get_engine has said it is installed
    import psycopg

    from datasafe.engines.postgres.connection import connect, db_error

    out: list[SchemaText] = []
    with connect(url) as conn, conn.cursor() as cur:
        try:
            for kind, query in _PG_QUERIES:
                cur.execute(query)
                for row in cur.fetchall():
                    if kind == "comment":
                        out.append(_pg_comment_row(*row))
                    elif kind == "default":
                        out.append(SchemaText(row[0], "generated" if row[2] else "default", row[1] or ""))
                    else:
                        out.append(SchemaText(row[0], kind, row[1] or ""))
        except psycopg.Error as exc:
            raise db_error(f"reading the schema of {url}", exc) from exc
    return out


def _pg_comment_row(typ: str, identity: str, text: str, function: str | None, typtype: str | None) -> SchemaText:
    word = _PG_OBJECT_TYPES.get(typ, typ)
    if function is not None:
        identity = function
    elif typtype == "d":
        word = "domain"
    elif typ == "domain constraint":
        name, _, domain = identity.partition(" on ")
        identity = f"{name} on domain {domain}"
    return SchemaText(f"comment on {word} {_unquote(identity)}", "comment", text or "")


def _mysql_catalog(url: DatabaseURL) -> list[SchemaText]:
    # the driver is an optional dependency: imported once get_engine has said it is installed
    from datasafe.engines.mysql import catalog
    from datasafe.engines.mysql.connection import Error, connect, db_error

    conn = connect(url)
    try:
        names = [name for name, _engine, _size in catalog.tables(conn, url.database)]
        return mysql_schema_texts(catalog.schema(conn, url.database, names))
    except Error as exc:
        raise db_error(f"reading the definitions of {url}", exc) from exc
    finally:
        conn.close()


def _sqlite_catalog(url: DatabaseURL) -> list[SchemaText]:
    path = url.database
    if not path or not os.path.isfile(path):
        raise NotFound(f"SQLite database {path or url} does not exist")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                                "ORDER BY rowid").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"cannot read SQLite database {path}: {exc}") from exc
    return sqlite_schema_texts((str(a), str(b), str(c), str(d)) for a, b, c, d in rows)
