"""What a snapshot's engine-specific schema part adds to its manifest for another engine: column
defaults, indexes, identity columns with their next values, enum labels, and the objects that do
not translate (views, functions, triggers, routines, events, policies, partitions, extensions,
CHECKs, generated columns).

The manifest already holds columns, primary keys, unique constraints and foreign keys; the
rest comes from the schema part through the engine's own parsers
(:mod:`datasafe.engines.schema_sql`) and the tokens of :mod:`datasafe.engines.sql_tokens`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from datasafe.engines.schema_sql import mysql_schema_texts, pg_script_texts, sqlite_schema_texts
from datasafe.engines.schema_text import SchemaText, json_part
from datasafe.engines.sql_tokens import (
    Token,
    closing,
    find_word,
    is_op,
    is_word,
    name_of,
    qualified,
    split_commas,
    statements,
    tokenize,
    without_comments,
)
from datasafe.errors import IntegrityError
from datasafe.snapshot.chunks import read_whole
from datasafe.snapshot.manifest import Manifest
from datasafe.storage.base import StorageBackend

#: schema text kinds that have no translation, with what they are called in the plan
_SKIPPED_KINDS = {"view": "views do not translate", "function": "functions and procedures do not translate",
                  "trigger": "triggers do not translate", "policy": "row-level security does not translate",
                  "check": "CHECK constraints are not translated", "domain": "domains do not translate",
                  "generated": "generated columns are not translated (their values are not in the snapshot)",
                  "other": "does not translate"}


@dataclass(frozen=True)
class IndexDef:
    name: str
    table: str  #: the table entry's name
    columns: tuple[str, ...]
    unique: bool = False


@dataclass(frozen=True)
class Default:
    """A column default that translates: a number, a string, a boolean, or the current time."""

    kind: str  #: number, string, bool, now, null
    value: str = ""


@dataclass
class CrossSchema:
    #: (table entry name, column) -> the default's text as the source wrote it
    defaults: dict[tuple[str, str], str] = field(default_factory=dict)
    indexes: list[IndexDef] = field(default_factory=list)
    #: table entry name -> (identity column, its next value as recorded; None: one past the largest)
    identity: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    #: PostgreSQL enum labels by unqualified type name
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: what does not translate, one line each
    skipped: list[str] = field(default_factory=list)


def read_schema(manifest: Manifest, storage: StorageBackend) -> CrossSchema:
    """The schema part of ``manifest`` as a :class:`CrossSchema` (a PostgreSQL snapshot needs pg_restore)."""
    if not manifest.schema_parts:
        raise IntegrityError(f"snapshot {manifest.snapshot_id} has no schema part")
    part = manifest.schema_parts[0]
    raw = read_whole(storage, part, label="schema")
    out = CrossSchema()
    if manifest.engine == "postgresql":
        from datasafe.engines.postgres.schema_text import archive_script  # deferred: start-up time
        _postgres(manifest, archive_script(raw, manifest), out)
    else:
        data = json_part(raw, manifest)
        if manifest.engine == "mysql":
            _mysql(manifest, data, out)
        else:
            _sqlite(manifest, data, out)
    return out


def _pieces(pieces: Iterable[SchemaText], out: CrossSchema) -> None:
    comments = 0
    for p in pieces:
        if p.kind == "default" and p.object.startswith("default of ") and not p.object.startswith("default of domain"):
            where = p.object.removeprefix("default of ")
            table, _, column = where.rpartition(".")
            out.defaults[(table, column)] = p.text
        elif p.kind == "enum" and p.object.startswith("enum "):
            out.enums[p.object.split(".")[-1]] = tuple(p.text.split("\n")) if p.text else ()
        elif p.kind == "comment":
            comments += 1
        elif p.kind in _SKIPPED_KINDS:
            out.skipped.append(f"{p.object}: {_SKIPPED_KINDS[p.kind]}")
    if comments:
        out.skipped.append(f"{comments} comment(s): comments are not copied")


# -- PostgreSQL ---------------------------------------------------------------------------------------
_EXTENSION = re.compile(r"^CREATE EXTENSION IF NOT EXISTS (\S+)", re.M)
_RLS = re.compile(r"^ALTER TABLE (?:ONLY )?(\S+) ENABLE ROW LEVEL SECURITY", re.M)
_ATTACH = re.compile(r"ATTACH PARTITION (\S+)")


def _postgres(manifest: Manifest, script: str, out: CrossSchema) -> None:
    _pieces(pg_script_texts(script), out)
    out.skipped += [f"extension {m}: extensions do not translate" for m in _EXTENSION.findall(script)]
    out.skipped += [f"row-level security on {m}: does not translate" for m in _RLS.findall(script)]
    out.skipped += [f"partition {m}: becomes a table of its own" for m in _ATTACH.findall(script)]
    for sql, code in statements(script, "postgresql"):
        if is_word(code[0], "CREATE") and find_word(code, "INDEX") in (1, 2):
            try:
                _pg_index(sql, code, out)
            except IndexError:
                out.skipped.append(f"index: cannot be read: {sql[:80]}")
    owners: dict[str, str] = manifest.extra.get("sequence_owners", {})
    for seq in manifest.sequences:
        table = owners.get(seq.name)
        entry = manifest.table(table) if table else None
        if entry is None:
            continue
        short = seq.name.split(".")[-1]
        column = next((c for (t, c), text in out.defaults.items()
                       if t == entry.name and "nextval(" in text and short in text), None)
        if column is None and len(entry.primary_key) == 1:
            column = entry.primary_key[0]  # an identity column (GENERATED ... AS IDENTITY)
        if column is not None:
            out.identity[entry.name] = (column, seq.value + 1 if seq.is_called else seq.value)
            out.defaults.pop((entry.name, column), None)


def _pg_index(sql: str, code: list[Token], out: CrossSchema) -> None:
    unique = is_word(code[1], "UNIQUE")
    i = find_word(code, "INDEX")
    name = name_of(code[i + 1], "postgresql")
    on = find_word(code, "ON", start=i)
    at = on + 2 if is_word(code[on + 1], "ONLY") else on + 1
    table, after = qualified(code, at, "postgresql")
    label = f"index {table.split('.')[0]}.{name} on {table}"
    method = "btree"
    if is_word(code[after], "USING"):
        method = code[after + 1].value.lower()
        after += 2
    if method != "btree":
        out.skipped.append(f"{label}: {method} indexes do not translate")
        return
    end = closing(code, after)
    if find_word(code, "WHERE", start=end) > 0:
        out.skipped.append(f"{label}: partial indexes do not translate")
        return
    _add_index(out, label, name, table, code[after + 1:end], unique, "postgresql")


def _add_index(out: CrossSchema, label: str, name: str, table: str, inside: list[Token], unique: bool,
               dialect: str) -> None:
    columns = []
    for item in split_commas(inside):
        words = [t for t in item if not (t.kind == "word" and t.key in ("ASC", "DESC"))]
        if words and words[0].kind in ("word", "ident") and (len(words) == 1 or (
                dialect == "mysql" and is_op(words, 1, "("))):
            columns.append(name_of(words[0], dialect))
        else:
            out.skipped.append(f"{label}: expression indexes do not translate")
            return
    out.indexes.append(IndexDef(name, table, tuple(columns), unique))


# -- MySQL / MariaDB ----------------------------------------------------------------------------------
def _mysql(manifest: Manifest, data: dict[str, Any], out: CrossSchema) -> None:
    _pieces(mysql_schema_texts(data), out)
    items = data.get("tables", [])
    for item in items if isinstance(items, list) else []:
        try:
            _mysql_table(str(item["name"]), str(item["sql"]), out)
        except IndexError:
            out.skipped.append(f"table {item['name']}: its indexes and auto-increment cannot be read")


def _mysql_table(table: str, sql: str, out: CrossSchema) -> None:
    """Indexes and the AUTO_INCREMENT column (with the table's next value) of one SHOW CREATE TABLE."""
    code = without_comments(tokenize(sql, "mysql"))
    start = next((j for j, t in enumerate(code) if t.kind == "op" and t.value == "("), -1)
    if start < 0:
        return
    end = closing(code, start)
    auto_col: str | None = None
    for part in split_commas(code[start + 1:end]):
        first = part[0]
        if first.kind == "ident":
            if find_word(part, "AUTO_INCREMENT") > 0:
                auto_col = first.value
            continue
        kind = first.key
        if kind in ("KEY", "INDEX"):
            _mysql_index(out, table, part, 1, False)
        elif kind in ("FULLTEXT", "SPATIAL"):
            name = part[2].value if len(part) > 2 and part[2].kind == "ident" else "?"
            out.skipped.append(f"index {name} on {table}: {kind.lower()} indexes do not translate")
    if auto_col is not None:
        a = find_word(code, "AUTO_INCREMENT", start=end)
        value = None
        if a > 0 and is_op(code, a + 1, "=") and code[a + 2].kind == "number":
            value = int(code[a + 2].value)
        out.identity[table] = (auto_col, value)


def _mysql_index(out: CrossSchema, table: str, part: list[Token], at: int, unique: bool) -> None:
    name = part[at].value if part[at].kind == "ident" else "?"
    paren = next((j for j in range(at, len(part)) if is_op(part, j, "(")), -1)
    label = f"index {name} on {table}"
    if paren < 0:
        out.skipped.append(f"{label}: cannot be read")
        return
    _add_index(out, label, name, table, part[paren + 1:closing(part, paren)], unique, "mysql")


# -- SQLite -------------------------------------------------------------------------------------------
def _sqlite(manifest: Manifest, data: dict[str, Any], out: CrossSchema) -> None:
    creates = data.get("create", [])
    posts = data.get("post", [])
    objects = [(str(o["type"]), str(o["name"]), str(o.get("table") or o["name"]), str(o.get("sql") or ""))
               for o in [*(creates if isinstance(creates, list) else []), *(posts if isinstance(posts, list) else [])]]
    _pieces(sqlite_schema_texts(objects), out)
    sequence = data.get("sqlite_sequence", [])
    counters = {str(n): int(v) for n, v in sequence} if isinstance(sequence, list) else {}
    for typ, name, table, sql in objects:
        code = without_comments(tokenize(sql, "sqlite"))
        if typ == "index" and code:
            unique = is_word(code[1], "UNIQUE")
            on = find_word(code, "ON")
            paren = next((j for j in range(on, len(code)) if is_op(code, j, "(")), -1)
            label = f"index {name} on {table}"
            if paren < 0:
                continue
            end = closing(code, paren)
            if find_word(code, "WHERE", start=end) > 0:
                out.skipped.append(f"{label}: partial indexes do not translate")
                continue
            _add_index(out, label, name, table, code[paren + 1:end], unique, "sqlite")
        elif typ == "table":
            entry = manifest.table(table)
            if entry is None or len(entry.primary_key) != 1:
                continue
            col = next((c for c in entry.columns if c.name == entry.primary_key[0]), None)
            if col is not None and col.type.strip().upper() == "INTEGER":  # a rowid alias
                seq = counters.get(table)
                out.identity[table] = (col.name, seq + 1 if seq is not None else None)
