"""Schema parts as documents of objects: the pieces every format shares, and the MySQL/MariaDB
(``mysql-schema-json``) and SQLite (``sqlite-schema-json``) parts, whose objects are ``CREATE``
statements in a JSON document.

A document is a list of :class:`Unit` objects (a table, a view, a pg_dump TOC entry) that are
kept, edited or left out whole. Within a unit, the pieces of text are those of
:mod:`datasafe.scan.schema_text` (named as ``datasafe scan`` names them), and comments are
:class:`Span` objects that can be cut out or given new text. :mod:`datasafe.masking.ddl` decides
what happens; a document only knows how to do it in its format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from datasafe.engines.schema_sql import mysql_schema_texts, sqlite_schema_texts
from datasafe.engines.sql_tokens import tokenize
from datasafe.errors import IntegrityError
from datasafe.masking.errors import RulesError
from datasafe.scan.model import SchemaText

#: (start, end, replacement) in a unit's text
Edit = tuple[int, int, str]


@dataclass
class Span:
    """A comment in a unit's text: what stripping cuts out, and the literal a rewrite replaces."""

    object: str  #: e.g. ``comment on column public.customers.email``
    text: str  #: the comment's text, unquoted
    cut: tuple[int, int]
    literal: tuple[int, int]
    style: str  #: ``string`` (a quoted literal), ``line`` (``--``), ``hash`` (``#``) or ``block`` (``/* */``)


@dataclass
class Unit:
    """One object of a schema part, kept, edited or left out as a whole."""

    name: str  #: what messages call it: ``view public.vip``, ``table customers``
    sql: str
    #: why it cannot be left out (None: it can), e.g. ``it is part of table public.customers``
    fixed: str | None = None
    #: a unit that is one comment (a pg_dump COMMENT entry): stripping leaves out the unit
    is_comment: bool = False
    removed: bool = False
    edited: bool = False
    ref: Any = None  #: the document's own handle (a JSON item, a TOC entry)
    key: str = ""  #: the bare name other objects use to refer to it (MySQL, SQLite)


class SchemaDoc:
    """A schema part as units; subclasses read and write one format."""

    dialect = "generic"

    def __init__(self, raw: bytes) -> None:
        self.raw = raw  #: the part's bytes as stored, given back when nothing changed
        self.units: list[Unit] = []
        self._pieces: dict[tuple[int, str], list[SchemaText]] = {}

    @property
    def changed(self) -> bool:
        return any(u.removed or u.edited for u in self.units)

    def pieces(self, unit: Unit) -> list[SchemaText]:
        """The unit's pieces of text as scan names them (comments included)."""
        key = (id(unit), unit.sql)
        if key not in self._pieces:
            self._pieces[key] = self._extract(unit)
        return self._pieces[key]

    def _extract(self, unit: Unit) -> list[SchemaText]:
        raise NotImplementedError

    def comments(self, unit: Unit) -> list[Span]:
        """The unit's comments, in text order."""
        return []

    def quote(self, unit: Unit, text: str) -> str:
        """``text`` as a string literal of the unit's dialect."""
        return "'" + text.replace("'", "''") + "'"

    def label_spans(self, unit: Unit, piece: SchemaText) -> list[tuple[int, int]]:
        """Where the labels of an enum piece are, one literal each."""
        return []

    def strip(self, unit: Unit, spans: list[Span]) -> None:
        """Cut ``spans`` (comments of ``unit``) out."""
        if unit.is_comment:
            unit.removed = True
            return
        edits = []
        for s in spans:
            start, end = s.cut
            if (start == 0 or unit.sql[start - 1] == "\n") and unit.sql[end:end + 1] == "\n":
                end += 1  # a comment on a line of its own: the line goes
            before, after = unit.sql[start - 1:start], unit.sql[end:end + 1]
            # a space only where two tokens would otherwise touch (``a/**/b``)
            glue = before and after and not before.isspace() and not after.isspace() \
                and before not in "(," and after not in ",;)"
            edits.append((start, end, " " if glue else ""))
        apply_edits(unit, edits)

    def drop(self, unit: Unit) -> list[str]:
        """Leave ``unit`` out; returns the names of what goes with it (its comments, grants)."""
        unit.removed = True
        return []

    def dependents(self) -> list[tuple[Unit, str]]:
        """(left-out unit, name of a kept object that needs it)."""
        removed = [u for u in self.units if u.removed and u.key]
        out: list[tuple[Unit, str]] = []
        for other in self.units:
            if other.removed or other.fixed is not None:
                continue  # tables do not refer to views, routines or triggers
            names = {t.value.lower() for t in tokenize(other.sql, self.dialect) if t.kind in ("word", "ident")}
            out.extend((u, other.name) for u in removed if u.key.lower() in names and u is not other)
        return out

    def dump(self) -> bytes:
        raise NotImplementedError


def apply_edits(unit: Unit, edits: list[Edit]) -> None:
    """Apply non-overlapping edits to the unit's text."""
    text = unit.sql
    for start, end, new in sorted(edits, key=lambda e: e[0], reverse=True):
        text = text[:start] + new + text[end:]
    if edits:
        unit.sql, unit.edited = text, True


def comment_literal(span: Span, text: str, quote: str) -> str:
    """The new text of a comment's literal: ``quote`` for a string, else the comment itself.

    Raises:
        RulesError: the text cannot be written in that comment (a line break in ``--``, ``*/``).
    """
    if span.style == "string":
        return quote
    if span.style in ("line", "hash") and "\n" in text:
        raise RulesError(f"schema.rewrite: {span.object} is a one-line comment: its new text cannot hold a line "
                         "break")
    if span.style == "block" and "*/" in text:
        raise RulesError(f"schema.rewrite: {span.object}: the new text of a /* */ comment cannot hold */")
    return {"line": "-- ", "hash": "# "}.get(span.style, "/* ") + text + (" */" if span.style == "block" else "")


def _line_start(sql: str, start: int) -> int:
    """``start`` moved back over the spaces and tabs before it."""
    while start > 0 and sql[start - 1] in " \t":
        start -= 1
    return start


def _name_comments(spans: list[Span], pieces: list[SchemaText], fallback: str) -> list[Span]:
    """Name each comment after the scan's comment piece of the same text, in order; others ``fallback``."""
    named = [p for p in pieces if p.kind == "comment"]
    i = 0
    for s in spans:
        j = next((k for k in range(i, len(named)) if named[k].text == s.text.strip()), None)
        if j is None:
            s.object = fallback
        else:
            s.object, i = named[j].object, j + 1
    return spans


# -- MySQL / MariaDB ----------------------------------------------------------------------------------
_MY_PARTS = {
    "string": r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"",
    "ident": r"`(?:[^`]|``)*`",
    "version": r"/\*M?!\d*|\*/",  # executable comments are code: only their markers are skipped
    "comment": r"#[^\n]*|--(?=\s|$)[^\n]*|/\*.*?(?:\*/|\Z)",
    "word": r"[\w$]+",
    "op": r"\S",
}
_MY_STRICT = {**_MY_PARTS, "string": r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\""}  # NO_BACKSLASH_ESCAPES
_MY_LEX = {escapes: re.compile("|".join(f"(?P<{k}>{v})" for k, v in parts.items()), re.S)
           for escapes, parts in ((True, _MY_PARTS), (False, _MY_STRICT))}
_MY_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "Z": "\x1a"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    start: int
    end: int


def _my_tokens(sql: str, escapes: bool) -> list[_Tok]:
    return [_Tok(m.lastgroup or "op", m.group(), m.start(), m.end()) for m in _MY_LEX[escapes].finditer(sql)
            if not m.group().isspace()]


def _my_value(tok: _Tok, escapes: bool) -> str:
    q = tok.text[0]
    value = tok.text[1:-1].replace(q + q, q)
    return re.sub(r"\\(.)", lambda e: _MY_ESCAPES.get(e.group(1), e.group(1)), value, flags=re.S) if escapes \
        else value


#: the JSON's lists of statements, in the order a restore runs them
_MY_SECTIONS = ("tables", "views", "routines", "triggers", "events")


class MySQLDoc(SchemaDoc):
    """A ``mysql-schema-json`` part: ``SHOW CREATE`` statements by kind."""

    dialect = "mysql"

    def __init__(self, raw: bytes) -> None:
        super().__init__(raw)
        self.data = _json_object(raw, _MY_SECTIONS, ("name", "sql"))
        for section in _MY_SECTIONS:
            for item in self.data.get(section, []):
                name = str(item["name"])
                label = {"tables": "table", "views": "view", "routines": str(item.get("kind", "function")).lower(),
                         "triggers": "trigger", "events": "event"}[section]
                title = f"{label} {name}" + (f" on {item.get('table', '?')}" if section == "triggers" else "")
                fixed = f"it is part of table {name}" if section == "tables" else None
                self.units.append(Unit(title, str(item["sql"]), fixed=fixed, ref=(section, item), key=name))

    def _escapes(self, unit: Unit) -> bool:
        return "NO_BACKSLASH_ESCAPES" not in str(unit.ref[1].get("sql_mode", "")).upper()

    def _extract(self, unit: Unit) -> list[SchemaText]:
        section, item = unit.ref
        return mysql_schema_texts({section: [dict(item, sql=unit.sql)]})

    def comments(self, unit: Unit) -> list[Span]:
        escapes = self._escapes(unit)
        toks = _my_tokens(unit.sql, escapes)
        spans = []
        for i, t in enumerate(toks):
            if t.kind == "word" and t.text.upper() == "COMMENT":
                j = i + 2 if i + 1 < len(toks) and toks[i + 1].text == "=" else i + 1
                if j < len(toks) and toks[j].kind == "string":
                    s = toks[j]
                    spans.append(Span("", _my_value(s, escapes), (_line_start(unit.sql, t.start), s.end),
                                      (s.start, s.end), "string"))
            elif t.kind == "comment":
                style = "hash" if t.text.startswith("#") else "line" if t.text.startswith("--") else "block"
                body = t.text.lstrip("#-/*").removesuffix("*/") if style == "block" else t.text.lstrip("#-")
                spans.append(Span("", body.strip(), (_line_start(unit.sql, t.start), t.end), (t.start, t.end), style))
        return _name_comments(spans, self.pieces(unit), f"comment in {unit.name}")

    def quote(self, unit: Unit, text: str) -> str:
        if self._escapes(unit):
            text = text.replace("\\", "\\\\")
        return "'" + text.replace("'", "''") + "'"

    def label_spans(self, unit: Unit, piece: SchemaText) -> list[tuple[int, int]]:
        column = piece.object.removeprefix(f"enum {unit.key}.")
        toks = _my_tokens(unit.sql, self._escapes(unit))
        for i, t in enumerate(toks[:-2]):
            if t.kind == "ident" and t.text[1:-1].replace("``", "`") == column \
                    and toks[i + 1].text.upper() in ("ENUM", "SET") and toks[i + 2].text == "(":
                out = []
                for s in toks[i + 3:]:
                    if s.text == ")":
                        break
                    if s.kind == "string":
                        out.append((s.start, s.end))
                return out
        return []

    def dependents(self) -> list[tuple[Unit, str]]:
        removed = [u for u in self.units if u.removed]
        out: list[tuple[Unit, str]] = []
        for other in self.units:
            if other.removed or other.fixed is not None:
                continue
            names = {(t.text[1:-1].replace("``", "`") if t.kind == "ident" else t.text).lower()
                     for t in _my_tokens(other.sql, self._escapes(other)) if t.kind in ("word", "ident")}
            out.extend((u, other.name) for u in removed if u.key.lower() in names and u is not other)
        return out

    def dump(self) -> bytes:
        if not self.changed:
            return self.raw
        for unit in self.units:
            unit.ref[1]["sql"] = unit.sql
        for section in _MY_SECTIONS:
            if section in self.data:
                self.data[section] = [u.ref[1] for u in self.units if u.ref[0] == section and not u.removed]
        return json.dumps(self.data, ensure_ascii=False, indent=1).encode()


# -- SQLite -------------------------------------------------------------------------------------------
class SQLiteDoc(SchemaDoc):
    """A ``sqlite-schema-json`` part: ``CREATE`` statements as ``sqlite_master`` holds them."""

    dialect = "sqlite"

    def __init__(self, raw: bytes) -> None:
        super().__init__(raw)
        self.data = _json_object(raw, ("create", "post"), ("type", "name"))
        for section in ("create", "post"):
            for item in self.data.get(section, []):
                name = str(item["name"])
                fixed = f"it is part of table {name}" if section == "create" else None
                self.units.append(Unit(f"{item['type']} {name}", str(item.get("sql") or ""), fixed=fixed,
                                       ref=(section, item), key=name))

    def _extract(self, unit: Unit) -> list[SchemaText]:
        item = unit.ref[1]
        return sqlite_schema_texts([(str(item["type"]), str(item["name"]), str(item.get("table") or item["name"]),
                                     unit.sql)])

    def comments(self, unit: Unit) -> list[Span]:
        item = unit.ref[1]
        name = f"comment in {item['type']} {item['name']}"
        return [Span(name, t.value, (_line_start(unit.sql, t.start), t.end), (t.start, t.end),
                     "line" if unit.sql.startswith("--", t.start) else "block")
                for t in tokenize(unit.sql, "sqlite") if t.kind == "comment"]

    def dump(self) -> bytes:
        if not self.changed:
            return self.raw
        for unit in self.units:
            unit.ref[1]["sql"] = unit.sql
        for section in ("create", "post"):
            self.data[section] = [u.ref[1] for u in self.units if u.ref[0] == section and not u.removed]
        return json.dumps(self.data, ensure_ascii=False, indent=1).encode()


def _json_object(raw: bytes, sections: tuple[str, ...], needs: tuple[str, ...]) -> dict[str, Any]:
    """The schema document, each of whose ``sections`` is a list of objects with the keys ``needs``
    (its bytes match the manifest, but whoever can write the storage writes both)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise IntegrityError(f"the schema part is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise IntegrityError("the schema part is not a JSON object")
    for section in sections:
        items = data.get(section, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) and all(k in i for k in needs) for i in items):
            raise IntegrityError(f"the schema part's {section} is not a list of objects with {', '.join(needs)}")
    return data


__all__ = ["Edit", "MySQLDoc", "SQLiteDoc", "SchemaDoc", "Span", "Unit", "apply_edits", "comment_literal"]
