"""An independent look at a masked copy of a corpus database: where did the original values go?

Nothing here uses datasafe's own scan, leak audit or masking code: the databases are read with
their drivers and catalogs, the original values come from the labels (``labels/<engine>.yaml``),
and the search is a plain case-insensitive substring search, run through SQLite's FTS5 trigram
index (every candidate is confirmed with Python's ``in``). What is searched for, and where, is
said in :func:`needles` and :class:`Haystack`; ``tests/test_privacy_end_to_end.py`` states the rule.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.scan_corpus import engine_module
from tests.scan_corpus.score import ColumnLabel, Labels

#: needles shorter than this are not searched (they meet other text by chance)
MIN_LENGTH = 6
#: categories whose values the corpus and the masking generators both draw from public lists
#: (Faker's names and streets, city and region lists, calendar days): a generated value may be an
#: original by design (``Tina Simpson``, ``69 Ruth Mount``), or hold one (``Port Javierfurt``)
LIST_CATEGORIES = frozenset({"first_name", "last_name", "person_name", "username", "street", "city", "postcode",
                             "date_of_birth"})


def listed(label: ColumnLabel) -> bool:
    """Whether a column's values are drawn from public lists (its category or an accepted one is)."""
    return any(c in LIST_CATEGORIES for c in label.categories)
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_NUMBER = re.compile(r"\+?\(?\d[\d ()./-]{7,}\d")  # phone, card, account numbers written in text
_LEXEME = re.compile(r"'((?:[^']|'')*)'")
_PRINTABLE = bytes(c if 32 <= c < 127 else 32 for c in range(256))


# -- databases ----------------------------------------------------------------------------------------
@dataclass
class Db:
    """One database of an engine, read through its driver and catalogs (read only)."""

    engine: str
    url: str  #: postgresql://.../name, mysql://.../name or a SQLite file path

    @property
    def name(self) -> str:
        return Path(self.url).name if self.engine == "sqlite" else urlsplit(self.url).path.lstrip("/")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.engine == "sqlite":
            with sqlite3.connect(self.url) as conn:
                return [tuple(r) for r in conn.execute(sql, params).fetchall()]
        if self.engine == "postgresql":
            import psycopg

            with psycopg.connect(self.url) as conn:
                return [tuple(r) for r in conn.execute(sql, params or None).fetchall()]  # type: ignore[arg-type]
        mod = engine_module("mysql")
        server = self.url.rsplit("/", 1)[0] + "/"
        with mod._connect(server, self.name) as conn:
            cur = conn.cursor()
            cur.execute("SET SESSION time_zone = '+00:00'")
            cur.execute(sql, params or None)
            return [tuple(r) for r in cur.fetchall()]

    def quote(self, name: str) -> str:
        if self.engine == "mysql":
            return ".".join(f"`{p}`" for p in name.split("."))
        return ".".join(f'"{p}"' for p in name.split("."))

    def tables(self) -> list[str]:
        if self.engine == "postgresql":
            return [r[0] for r in self.query(
                "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1")]
        if self.engine == "mysql":
            return [r[0] for r in self.query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                                             "DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1")]
        return [r[0] for r in self.query("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND name NOT LIKE 'sqlite_%' ORDER BY 1")]

    def columns(self, table: str) -> list[tuple[str, str]]:
        """(name, type) of every column, generated ones too."""
        if self.engine == "postgresql":
            return [(r[0], r[1]) for r in self.query(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (self.quote(table),))]
        if self.engine == "mysql":
            return [(r[0], r[1]) for r in self.query(
                "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION", (table,))]
        return [(r[1], r[2]) for r in self.query(f"PRAGMA table_xinfo({self.quote(table)})")]

    def rows(self, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        cols = self.columns(table)
        names = ", ".join(self.quote(c) for c, _ in cols)
        return [c for c, _ in cols], self.query(f"SELECT {names} FROM {self.quote(table)}")

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT count(*) FROM {self.quote(table)}")[0][0])

    def foreign_keys(self) -> list[tuple[str, tuple[str, ...], str, tuple[str, ...]]]:
        """(table, columns, referenced table, referenced columns) of every declared foreign key."""
        if self.engine == "postgresql":
            rows = self.query("""
                SELECT cn.nspname || '.' || c.relname, pn.nspname || '.' || p.relname,
                  (SELECT array_agg(a.attname ORDER BY k.i) FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                   JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n),
                  (SELECT array_agg(a.attname ORDER BY k.i) FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                   JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n)
                FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
                JOIN pg_namespace cn ON cn.oid = c.relnamespace JOIN pg_class p ON p.oid = con.confrelid
                JOIN pg_namespace pn ON pn.oid = p.relnamespace WHERE con.contype = 'f' ORDER BY 1, 2, 3""")
            return [(t, tuple(cs), r, tuple(rs)) for t, r, cs, rs in rows]
        if self.engine == "mysql":
            rows = self.query("""SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME,
                                 REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
                                 WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL
                                 ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION""")
            keys: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
            for t, name, col, ref, rcol in rows:
                keys.setdefault((t, name), []).append((col, ref, rcol))
            return [(t, tuple(c for c, _, _ in v), v[0][1], tuple(r for _, _, r in v)) for (t, _), v in keys.items()]
        out = []
        for t in self.tables():
            keys2: dict[int, list[tuple[Any, ...]]] = {}
            for row in self.query(f"PRAGMA foreign_key_list({self.quote(t)})"):
                keys2.setdefault(row[0], []).append(row)
            for parts in keys2.values():
                ref = parts[0][2]
                refs = tuple(p[4] for p in parts)
                if any(r is None for r in refs):
                    refs = tuple(c for c, _ in self.primary_key(ref))
                out.append((t, tuple(p[3] for p in parts), ref, refs))
        return sorted(out)

    def primary_key(self, table: str) -> list[tuple[str, int]]:
        """(column, position) of the primary key of ``table``."""
        if self.engine == "postgresql":
            return [(r[0], r[1]) for r in self.query(
                "SELECT a.attname, k.i FROM pg_constraint con, unnest(con.conkey) WITH ORDINALITY k(n, i), "
                "pg_attribute a WHERE con.conrelid = %s::regclass AND con.contype = 'p' "
                "AND a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i", (self.quote(table),))]
        if self.engine == "mysql":
            return [(r[0], r[1]) for r in self.query(
                "SELECT COLUMN_NAME, SEQ_IN_INDEX FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
                "DATABASE() AND TABLE_NAME = %s AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX", (table,))]
        return sorted(((r[1], r[5]) for r in self.query(f"PRAGMA table_info({self.quote(table)})") if r[5]),
                      key=lambda x: x[1])

    def unique_keys(self) -> list[tuple[str, tuple[str, ...]]]:
        """(table, columns) of every primary key and unique constraint / unique index."""
        if self.engine == "postgresql":
            rows = self.query("""
                SELECT n.nspname || '.' || c.relname,
                  (SELECT array_agg(a.attname ORDER BY k.i) FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                   JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n)
                FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace WHERE con.contype IN ('p', 'u') ORDER BY 1, 2""")
            return [(t, tuple(cs)) for t, cs in rows]
        if self.engine == "mysql":
            rows = self.query("""SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
                                 WHERE TABLE_SCHEMA = DATABASE() AND NON_UNIQUE = 0
                                 ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX""")
            keys: dict[tuple[str, str], list[str]] = {}
            for t, name, col in rows:
                keys.setdefault((t, name), []).append(col)
            return sorted((t, tuple(v)) for (t, _), v in keys.items())
        out = []
        for t in self.tables():
            pk = tuple(c for c, _ in self.primary_key(t))
            if pk:
                out.append((t, pk))
            for idx in self.query(f"PRAGMA index_list({self.quote(t)})"):
                if idx[2] and idx[3] != "pk":
                    out.append((t, tuple(r[2] for r in self.query(f"PRAGMA index_info({self.quote(idx[1])})"))))
        return sorted(out)

    def orphans(self, table: str, cols: tuple[str, ...], ref: str, refs: tuple[str, ...]) -> int:
        """Rows of ``table`` whose (non-NULL) key finds no row in ``ref``: a LEFT JOIN anti-join."""
        on = " AND ".join(f"p.{self.quote(r)} = c.{self.quote(k)}" for k, r in zip(cols, refs, strict=True))
        notnull = " AND ".join(f"c.{self.quote(k)} IS NOT NULL" for k in cols)
        return int(self.query(f"SELECT count(*) FROM {self.quote(table)} c LEFT JOIN {self.quote(ref)} p ON {on} "
                              f"WHERE {notnull} AND p.{self.quote(refs[0])} IS NULL")[0][0])

    def duplicates(self, table: str, cols: tuple[str, ...]) -> int:
        """Key values that more than one row holds (NULLs left out, as unique constraints do)."""
        names = ", ".join(self.quote(c) for c in cols)
        notnull = " AND ".join(f"{self.quote(c)} IS NOT NULL" for c in cols)
        return int(self.query(f"SELECT count(*) FROM (SELECT {names} FROM {self.quote(table)} WHERE {notnull} "
                              f"GROUP BY {names} HAVING count(*) > 1) d")[0][0])

    def schema_text(self) -> Iterator[tuple[str, str]]:
        """(where, text) of the schema's own text as the server shows it."""
        if self.engine == "postgresql":
            dump = subprocess.run(["pg_dump", "--schema-only", "--dbname", self.url], capture_output=True, text=True,
                                  check=True, timeout=300).stdout
            yield "pg_dump --schema-only", dump
            for what, sql in PG_CATALOG.items():
                for row in self.query(sql):
                    yield what, " ".join(str(v) for v in row)
        elif self.engine == "mysql":
            for t, kind in self.query("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                                      "WHERE TABLE_SCHEMA = DATABASE()"):
                word = "VIEW" if kind == "VIEW" else "TABLE"
                yield f"SHOW CREATE {word} {t}", str(self.query(f"SHOW CREATE {word} `{t}`")[0][1])
            for name, kind in self.query("SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
                                         "WHERE ROUTINE_SCHEMA = DATABASE()"):
                yield f"SHOW CREATE {kind} {name}", str(self.query(f"SHOW CREATE {kind} `{name}`")[0][2])
            for (name,) in self.query("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
                                      "WHERE TRIGGER_SCHEMA = DATABASE()"):
                yield f"SHOW CREATE TRIGGER {name}", str(self.query(f"SHOW CREATE TRIGGER `{name}`")[0][2])
            for what, sql in MYSQL_CATALOG.items():
                for row in self.query(sql):
                    yield what, " ".join(str(v) for v in row)
        else:
            for name, sql in self.query("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"):
                yield f"sqlite_master {name}", str(sql)


#: catalogs that hold PostgreSQL schema text (as tests/test_masking_ddl.py reads them, and more)
PG_CATALOG = {
    "pg_description": "SELECT description FROM pg_description WHERE objoid >= 16384",
    "pg_attrdef": "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef",
    "pg_constraint": "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE oid >= 16384",
    "pg_views": "SELECT definition FROM pg_views WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    "pg_proc": "SELECT prosrc FROM pg_proc WHERE oid >= 16384",
    "pg_policy": "SELECT pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) FROM pg_policy",
    "pg_enum": "SELECT enumlabel FROM pg_enum",
    "pg_type": "SELECT typdefault FROM pg_type WHERE typdefault IS NOT NULL",
    "pg_trigger": "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal",
}
#: information_schema text of MySQL/MariaDB objects
MYSQL_CATALOG = {
    "TABLES.TABLE_COMMENT": "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
    "COLUMNS": "SELECT COLUMN_COMMENT, COLUMN_DEFAULT, GENERATION_EXPRESSION, COLUMN_TYPE FROM "
               "information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()",
    "STATISTICS.INDEX_COMMENT": "SELECT INDEX_COMMENT FROM information_schema.STATISTICS "
                                "WHERE TABLE_SCHEMA = DATABASE()",
    "ROUTINES": "SELECT ROUTINE_COMMENT, ROUTINE_DEFINITION FROM information_schema.ROUTINES "
                "WHERE ROUTINE_SCHEMA = DATABASE()",
    "TRIGGERS": "SELECT ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
    "VIEWS": "SELECT VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()",
    "CHECK_CONSTRAINTS": "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                         "WHERE CONSTRAINT_SCHEMA = DATABASE()",
}


# -- values as text -------------------------------------------------------------------------------------
def _leaves(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for v in node.values():
            yield from _leaves(v)
    elif isinstance(node, list):
        for v in node:
            yield from _leaves(v)
    elif node is not None and not isinstance(node, bool):
        yield str(node)


def as_json(value: Any) -> Any:
    """A JSON document (dict or list) from a driver value, or None."""
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return None
    return None


def as_text(value: Any) -> str | None:
    """A cell as text to search in: the value as the server writes it; a JSON document also as its
    string values (decoded: ``\\u00e9`` is ``é``); binary data as hex and as its printable ASCII."""
    if value is None:
        return None
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex() + "\x1f" + bytes(value).translate(_PRINTABLE).decode("ascii")
    if isinstance(value, (date, datetime)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    doc = as_json(value)
    if doc is not None:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return text + "\x1f" + "\x1f".join(_leaves(doc))
    return str(value)


def at_path(doc: Any, path: str) -> Iterator[str]:
    """The values of ``doc`` at a label path: ``$.a.b``, ``$[*]``, ``[]`` (array elements)."""
    steps = [s for s in re.split(r"\.|(\[\*?\])", path.lstrip("$")) if s]
    nodes = [doc]
    for step in steps:
        nxt: list[Any] = []
        for n in nodes:
            if step in ("[]", "[*]") and isinstance(n, list):
                nxt.extend(n)
            elif isinstance(n, dict) and step in n:
                nxt.append(n[step])
        nodes = nxt
    for n in nodes:
        yield from _leaves(n)


@dataclass(frozen=True)
class Needle:
    text: str  #: lower case
    origin: str  #: table.column (or ``schema``) it comes from
    listed: bool  #: of a category drawn from public lists (see LIST_CATEGORIES)


def column_needles(label: ColumnLabel, type_name: str, values: Iterable[Any]) -> Iterator[Needle]:
    """The original values of one personal column, as the strings to search for."""
    is_listed = listed(label)
    for value in values:
        if value is None:
            continue
        if isinstance(value, memoryview):
            value = bytes(value)
        found: list[str] = []
        if isinstance(value, (bytes, bytearray)):
            mid = len(value) // 2
            found.append(bytes(value[max(0, mid - 12):mid + 12]).hex())  # the middle of the blob
            found.extend(_EMAIL.findall(bytes(value).translate(_PRINTABLE).decode("ascii")))
        elif type_name == "tsvector":  # its lexemes: words; those that identify on their own are searched for
            for lexeme in (m.replace("''", "'").lower() for m in _LEXEME.findall(str(value))):
                alone = "@" in lexeme or sum(ch.isdigit() for ch in lexeme) >= 9
                if len(lexeme) >= MIN_LENGTH:
                    yield Needle(lexeme, label.name, is_listed or not alone)
        elif (doc := as_json(value)) is not None and (label.paths or isinstance(value, (dict, list))):
            for path, category in label.paths or (("$", label.category or ""),):
                for v in at_path(doc, path):
                    if len(v.strip()) >= MIN_LENGTH:
                        yield Needle(v.strip().lower(), f"{label.name} {path}", category in LIST_CATEGORIES)
        else:
            text = as_text(value) or ""
            found.append(text)
            if label.category in ("free_text", "document") or "free_text" in label.accept:
                found.extend(_EMAIL.findall(text))
                found.extend(m.strip() for m in _NUMBER.findall(text) if sum(c.isdigit() for c in m) >= 9)
        for f in found:
            f = f.strip().lower()
            if len(f) >= MIN_LENGTH:
                yield Needle(f, label.name, is_listed)


_PLANT_VALUES = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|\+\d{1,3}(?: \d{2,4}){2,4}"
                           r"|[A-Z][a-z]+ [A-Z][a-z]+(?= <)")


def schema_plants(engine: str) -> list[str]:
    """The personal data planted in the schema text of the corpus DDL: e-mail addresses, phone
    numbers, and the names written before an address (``Sandra Whitfield <...>``)."""
    ddl = engine_module(engine).DDL.read_text()
    code = "\n".join(line for line in ddl.splitlines() if not line.lstrip().startswith("-- ")
                     or "@" in line)  # SQLite keeps a planted address in a -- comment of the CREATE
    return sorted({m.lower() for m in _PLANT_VALUES.findall(code)})


# -- the search -----------------------------------------------------------------------------------------
@dataclass
class Haystack:
    """Text to search in: cells and schema text, lower-cased, in an in-memory FTS5 trigram index."""

    db: sqlite3.Connection = field(default_factory=lambda: sqlite3.connect(":memory:"))

    def __post_init__(self) -> None:
        self.db.execute("CREATE VIRTUAL TABLE t USING fts5(body, place UNINDEXED, open UNINDEXED, "
                        "tokenize='trigram case_sensitive 1')")

    def add(self, place: str, texts: Iterable[str | None], *, open_to_listed: bool) -> None:
        """Add texts found at ``place``; ``open_to_listed``: searched for list values too."""
        self.db.executemany("INSERT INTO t (body, place, open) VALUES (?, ?, ?)",
                            [(t.lower(), place, int(open_to_listed)) for t in texts if t])

    def find(self, needle: str, *, open_only: bool = False) -> list[str]:
        """The places whose text holds ``needle`` (lower case) as a substring (``open_only``: of the
        texts added ``open_to_listed``)."""
        phrase = '"' + needle.replace('"', '""') + '"'
        where = " AND open = 1" if open_only else ""
        rows = self.db.execute(f"SELECT DISTINCT place, body FROM t WHERE t MATCH ?{where}", (phrase,)).fetchall()
        return sorted({place for place, body in rows if needle in body})


def load_cells(db: Db, labels: Labels, into: Haystack, *, pii: bool | None) -> None:
    """Every cell of every table of ``db`` into ``into`` (only labelled personal / other columns
    when ``pii`` says so); cells of columns labelled as not personal are open to list values."""
    by_name = {(c.table, c.column): c for c in labels.columns}
    for table in db.tables():
        names, rows = db.rows(table)
        for i, col in enumerate(names):
            label = by_name.get((table, col))
            personal = label is not None and label.pii
            if pii is not None and personal != pii:
                continue
            into.add(f"{table}.{col}", (as_text(r[i]) for r in rows), open_to_listed=not personal)


def needles(db: Db, labels: Labels) -> list[Needle]:
    """The original values of every column labelled personal, and the planted schema text."""
    out: list[Needle] = []
    for table in labels.tables:
        names, rows = db.rows(table)
        types = dict(db.columns(table))
        for label in labels.columns:
            if label.table == table and label.pii:
                i = names.index(label.column)
                out.extend(column_needles(label, types[label.column], (r[i] for r in rows)))
    out.extend(Needle(p, "schema text", False) for p in schema_plants(labels.engine))
    return list({(n.text, n.listed): n for n in out}.values())
