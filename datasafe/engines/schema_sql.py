"""The pieces of schema text in SQL definitions: a pg_dump script, MySQL's and SQLite's ``CREATE``s.

Each piece is named by the object it belongs to, as :mod:`datasafe.engines.schema_text` describes;
the catalogs of a live PostgreSQL database give the same names
(:mod:`datasafe.engines.postgres.schema_catalog`). Definitions are taken apart with the tokens of
:mod:`datasafe.engines.sql_tokens`; one that cannot be followed is kept whole rather than lost.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from datasafe.engines.schema_text import SchemaText
from datasafe.engines.sql_tokens import (
    Token,
    closing,
    expression,
    find_word,
    is_op,
    is_word,
    name_of,
    qualified,
    render_name,
    split_commas,
    statements,
    text_of,
    tokenize,
    unquote,
    without_comments,
)

log = logging.getLogger(__name__)


def _parsed(where: str, sql: str, parse: Callable[..., list[SchemaText]], *args: Any) -> list[SchemaText]:
    """What ``parse(*args)`` finds in ``sql``; SQL it cannot follow is kept whole (kind ``other``), never lost."""
    try:
        return parse(*args)
    except (IndexError, ValueError) as exc:
        log.debug("cannot take apart the definition of %s (%s): kept as a whole", where, exc)
        return [SchemaText(where, "other", sql)]


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
            if is_word(code[0], "SET", "SELECT"):
                continue
            if kind in _FUNCTION_TYPES:
                sig = unquote(tag)
                functions[(schema, sig.split("(", 1)[0])] = sig
                out.append(SchemaText(f"{kind.lower()} {schema}.{sig}", "function", sql))
                break
            where = f"{kind.lower()} {schema + '.' if schema not in ('-', '') else ''}{unquote(tag)}"
            out.extend(_parsed(where, sql, _pg_statement, kind, schema, tag, sql, code, functions))
    return out


def _pg_statement(kind: str, schema: str, tag: str, sql: str, code: list[Token],
                  functions: dict[tuple[str, str], str]) -> list[SchemaText]:
    if kind == "COMMENT":
        return _pg_comment(schema, code, functions)
    if kind in ("TABLE", "FOREIGN TABLE"):
        return _create_table(sql, code, _PG) if is_word(code[0], "CREATE") else []
    if kind == "DEFAULT":  # ALTER TABLE [ONLY] t ALTER [COLUMN] c SET DEFAULT expr
        a, d = find_word(code, "ALTER", start=1), find_word(code, "DEFAULT")
        if a > 0 and d > 0:
            table, _ = qualified(code, 3 if is_word(code[2], "ONLY") else 2, _PG)
            col = name_of(code[a + 2] if is_word(code[a + 1], "COLUMN") else code[a + 1], _PG)
            return [SchemaText(f"default of {table}.{col}", "default", text_of(sql, code[d + 1:]))]
        return []
    if kind == "CHECK CONSTRAINT":  # ALTER TABLE|DOMAIN [ONLY] t ADD CONSTRAINT name CHECK (...)
        target, _ = qualified(code, 3 if is_word(code[2], "ONLY") else 2, _PG)
        c, k = find_word(code, "CONSTRAINT"), find_word(code, "CHECK")
        if c > 0 and k > 0:
            where = f"domain {target}" if is_word(code[1], "DOMAIN") else target
            return [SchemaText(f"check {name_of(code[c + 1], _PG)} on {where}", "check", text_of(sql, code[k:]))]
        return []
    if kind == "DOMAIN":
        return _pg_domain(sql, code)
    if kind == "TYPE":
        if find_word(code, "ENUM") < 0:
            return []
        name, _ = qualified(code, 2, _PG)
        return [SchemaText(f"enum {name}", "enum", "\n".join(t.value for t in code if t.kind == "string"))]
    if kind in ("VIEW", "MATERIALIZED VIEW"):
        return _view(kind.lower(), sql, code, find_word(code, "VIEW") + 1, _PG)
    if kind == "POLICY":  # CREATE POLICY name ON table ...
        table, after = qualified(code, 4, _PG)
        return [SchemaText(f"policy {name_of(code[2], _PG)} on {table}", "policy", text_of(sql, code[after:]))]
    if kind == "INDEX":
        i = find_word(code, "INDEX")
        return [SchemaText(f"index {schema}.{name_of(code[i + 1], _PG)}", "index", text_of(sql, code[i + 2:]))]
    if kind == "TRIGGER":
        table, _ = qualified(code, find_word(code, "ON") + 1, _PG)
        return [SchemaText(f"trigger {name_of(code[find_word(code, 'TRIGGER') + 1], _PG)} on {table}", "trigger", sql)]
    if kind == "EVENT TRIGGER":
        return [SchemaText(f"event trigger {unquote(tag)}", "trigger", sql)]
    if kind == "RULE":
        table, _ = qualified(code, find_word(code, "TO") + 1, _PG)
        return [SchemaText(f"rule {name_of(code[2], _PG)} on {table}", "other", sql)]
    where = f"{schema}." if schema not in ("-", "") else ""
    return [SchemaText(f"{kind.lower()} {where}{unquote(tag)}", "other", sql)]


def _pg_comment(schema: str, code: list[Token], functions: dict[tuple[str, str], str]) -> list[SchemaText]:
    """COMMENT ON <kind> <target> IS '<text>'."""
    i = find_word(code, "IS")
    if i < 3 or i + 1 >= len(code) or code[i + 1].kind != "string":
        return []
    words = " ".join(t.key for t in code[2:6] if t.kind == "word") + " "
    kind = next((k for k in _PG_COMMENT_KINDS if words.startswith(k + " ")), code[2].key)
    target_tokens = code[2 + len(kind.split()):i]
    target = render_name(target_tokens, _PG)
    if kind in _FUNCTION_TYPES:
        sig = functions.get((schema, qualified(target_tokens, 0, _PG)[0].split(".")[-1]))
        target = f"{schema}.{sig}" if sig else target
    return [SchemaText(f"comment on {kind.lower()} {target}", "comment", code[i + 1].value)]


def _pg_domain(sql: str, code: list[Token]) -> list[SchemaText]:
    """CREATE DOMAIN d AS type [DEFAULT expr] [CONSTRAINT name CHECK (expr)]..."""
    name, _ = qualified(code, 2, _PG)
    out = []
    d = find_word(code, "DEFAULT")
    if d > 0:
        out.append(SchemaText(f"default of domain {name}", "default",
                              text_of(sql, expression(code, d + 1, _STOPS[_PG]))))
    k = find_word(code, "CHECK")
    while k > 0:
        named = k >= 2 and is_word(code[k - 2], "CONSTRAINT")
        cname = name_of(code[k - 1], _PG) if named else f"{name.split('.')[-1]}_check"
        end = closing(code, k + 1)
        out.append(SchemaText(f"check {cname} on domain {name}", "check", text_of(sql, code[k:end + 1])))
        k = find_word(code, "CHECK", start=end + 1)
    return out


def _view(kind: str, sql: str, code: list[Token], at: int, dialect: str, name: str | None = None) -> list[SchemaText]:
    parsed, after = qualified(code, at, dialect)
    a = find_word(code, "AS", start=after)
    body = code[a + 1:] if a > 0 else code
    if len(body) > 3 and is_word(body[-3], "WITH") and is_word(body[-2], "NO") and is_word(body[-1], "DATA"):
        body = body[:-3]
    return [SchemaText(f"{kind} {name or parsed}", "view", text_of(sql, body))]


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
    i = find_word(code, "TABLE") + 1
    if i <= 0 or i >= len(code):
        return []
    if is_word(code[i], "IF"):  # IF NOT EXISTS
        i += 3
    parsed, i = qualified(code, i, dialect)
    table = name or parsed
    if not is_op(code, i, "("):
        return []
    end = closing(code, i)
    out: list[SchemaText] = []
    for item in split_commas(code[i + 1:end]):
        first = item[0]
        if first.kind == "word" and (dialect == "mysql" or first.key in _TABLE_ITEMS[dialect]):
            out.extend(_table_item(sql, item, table, dialect))
        else:
            out.extend(_column(sql, item, table, dialect))
    c = find_word(code, "COMMENT", start=end + 1)
    if dialect == "mysql" and c > 0:  # table option COMMENT='...'
        value = code[c + 2] if is_op(code, c + 1, "=") and c + 2 < len(code) else code[min(c + 1, len(code) - 1)]
        if value.kind == "string":
            out.append(SchemaText(f"comment on table {table}", "comment", value.value))
    return out


def _column(sql: str, item: list[Token], table: str, dialect: str) -> list[SchemaText]:
    col = name_of(item[0], dialect)
    where = f"{table}.{col}"
    out: list[SchemaText] = []
    if len(item) > 2 and is_word(item[1], "ENUM", "SET") and is_op(item, 2, "("):
        labels = [t.value for t in item[2:closing(item, 2) + 1] if t.kind == "string"]
        out.append(SchemaText(f"enum {where}", "enum", "\n".join(labels)))
    j = 1
    while j < len(item):
        t = item[j]
        if is_op(item, j, "("):
            j = closing(item, j) + 1
        elif is_word(t, "DEFAULT"):
            expr = expression(item, j + 1, _STOPS[dialect])
            if expr:
                out.append(SchemaText(f"default of {where}", "default", text_of(sql, expr)))
            j += 1 + len(expr)
        elif is_word(t, "AS") and is_op(item, j + 1, "("):
            k = closing(item, j + 1)
            out.append(SchemaText(f"generated column {where}", "generated", text_of(sql, item[j + 2:k])))
            j = k + 1
        elif is_word(t, "CHECK") and is_op(item, j + 1, "("):
            k = closing(item, j + 1)
            if j >= 2 and is_word(item[j - 2], "CONSTRAINT"):
                label = f"check {name_of(item[j - 1], dialect)} on {table}"
            else:  # MariaDB names a column's CHECK after the column
                label = f"check {col} on {table}" if dialect == "mysql" else f"check on {where}"
            out.append(SchemaText(label, "check", text_of(sql, item[j:k + 1])))
            j = k + 1
        elif is_word(t, "COMMENT") and j + 1 < len(item) and item[j + 1].kind == "string":
            out.append(SchemaText(f"comment on column {where}", "comment", item[j + 1].value))
            j += 2
        else:
            j += 1
    return out


def _table_item(sql: str, item: list[Token], table: str, dialect: str) -> list[SchemaText]:
    k = find_word(item, "CHECK")
    if k >= 0 and is_op(item, k + 1, "("):
        named = is_word(item[0], "CONSTRAINT") and len(item) > 1 and k > 1
        label = f"check {name_of(item[1], dialect)} on {table}" if named else f"check on {table}"
        return [SchemaText(label, "check", text_of(sql, item[k:closing(item, k + 1) + 1]))]
    c = find_word(item, "COMMENT")
    if dialect == "mysql" and c > 0 and c + 1 < len(item) and item[c + 1].kind == "string":
        index = "PRIMARY" if is_word(item[0], "PRIMARY") else next(
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
        code = without_comments(tokenize(sql, "mysql"))
        out.extend(_parsed(f"table {name}", sql, _create_table, sql, code, "mysql", name))
    for item in schema.get("views", []):
        sql = str(item["sql"])
        code = without_comments(tokenize(sql, "mysql"))
        name = str(item["name"])
        out.extend(_parsed(f"view {name}", sql, _view, "view", sql, code, find_word(code, "VIEW") + 1, "mysql", name))
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
        code = without_comments(tokens)
        out.extend(SchemaText(f"comment in {typ} {name}", "comment", c.value)
                   for c in tokens if c.kind == "comment" and c.value)
        if typ == "table" and find_word(code, "VIRTUAL") >= 0:
            out.append(SchemaText(f"table {name}", "other", sql))
        elif typ == "table":
            out.extend(_parsed(f"table {name}", sql, _create_table, sql, code, "sqlite", name))
        elif typ == "view":
            at = find_word(code, "VIEW") + 1
            out.extend(_parsed(f"view {name}", sql, _view, "view", sql, code, at, "sqlite", name))
        elif typ == "trigger":
            out.append(SchemaText(f"trigger {name} on {table}", "trigger", sql))
        elif typ == "index":
            out.append(SchemaText(f"index {name}", "index", sql))
    return out
