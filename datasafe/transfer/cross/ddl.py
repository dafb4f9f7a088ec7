"""The target's schema as SQLAlchemy objects, compiled by the target dialect's DDL compiler:
tables (columns with mapped types, NOT NULL, constant defaults, primary keys, identity columns),
then indexes, unique constraints and foreign keys, created after the rows are in.

SQLAlchemy is imported here and only here, when a cross-engine restore runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable

from datasafe.engines.sql_tokens import Token, is_op, tokenize, without_comments
from datasafe.errors import UsageError
from datasafe.snapshot.manifest import TableEntry
from datasafe.transfer.cross.schema import CrossSchema, Default
from datasafe.transfer.cross.types import MYSQL, POSTGRESQL, SQLITE, ColType, parse, target_type

#: longest identifier every target takes (PostgreSQL's 63 bytes; MySQL's 64)
MAX_NAME = 63
_NOW = frozenset({"NOW", "CURRENT_TIMESTAMP", "LOCALTIMESTAMP"})
_DIALECTS = {POSTGRESQL: postgresql.dialect, MYSQL: mysql.dialect, SQLITE: sqlite.dialect}


@dataclass
class TargetTable:
    entry: TableEntry
    table: sa.Table
    types: list[ColType]
    #: the identity column and its recorded next value (None: one past the largest)
    identity: tuple[str, int | None] | None = None


@dataclass
class TargetSchema:
    """Everything to create on the target, and what the plan says about it."""

    dialect: str
    tables: list[TargetTable] = field(default_factory=list)
    enums: list[Any] = field(default_factory=list)
    indexes: list[sa.Index] = field(default_factory=list)
    foreign_keys: list[sa.ForeignKeyConstraint] = field(default_factory=list)
    #: per column: "table.column: source type -> target type (note)"
    columns: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def compile(self, element: Any) -> str:
        return str(element.compile(dialect=_DIALECTS[self.dialect]()))

    def quote(self, name: str) -> str:
        return str(_DIALECTS[self.dialect]().identifier_preparer.quote(name))

    def create_tables(self) -> list[str]:
        """The statements creating the enum types and the tables (without indexes; SQLite: with its foreign keys)."""
        out = []
        for enum in self.enums:
            from sqlalchemy.dialects.postgresql.named_types import CreateEnumType  # deferred: start-up time
            out.append(self.compile(CreateEnumType(enum)))
        keep: list[Any] | None = None if self.dialect == SQLITE else []  # other targets add foreign keys after the rows
        out += [self.compile(CreateTable(t.table, include_foreign_key_constraints=keep)) for t in self.tables]
        return out

    def create_keys(self) -> list[str]:
        """Indexes and unique constraints, then foreign keys (PostgreSQL, MySQL)."""
        out = [self.compile(CreateIndex(i)) for i in self.indexes]
        if self.dialect != SQLITE:
            out += [self.compile(AddConstraint(fk)) for fk in self.foreign_keys]
        return out


_SYNONYMS = (("charactervarying", "varchar"), ("character", "char"), ("integer", "int"),
             ("withouttimezone", ""), ("doubleprecision", "double"), ("boolean", "bool"))
_DISPLAY_WIDTH = re.compile(r"^(tinyint|smallint|mediumint|int|bigint)\(\d+\)")


def _spelling(type_text: str) -> str:
    """A type name as compared for the plan's notes: ``character varying(20)`` and ``VARCHAR(20)`` are one."""
    out = type_text.lower().replace(" ", "")
    for long, short in _SYNONYMS:
        out = out.replace(long, short)
    return _DISPLAY_WIDTH.sub(r"\1", out)


def _target_name(entry: TableEntry, dialect: str) -> str:
    return entry.table


def parse_default(text: str) -> Default | None:
    """A default that is a constant (or the current time), without PostgreSQL casts; None otherwise."""
    code = without_comments(tokenize(text.strip(), "generic"))
    while len(code) >= 2 and is_op(code, 0, "(") and code[-1].kind == "op" and code[-1].value == ")":
        code = code[1:-1]
    if "::" in [t.value for t in code if t.kind == "op"]:
        code = code[:[t.value for t in code].index("::")]
    while len(code) >= 2 and is_op(code, 0, "(") and code[-1].kind == "op" and code[-1].value == ")":
        code = code[1:-1]
    if not code:
        return None
    sign = ""
    if len(code) == 2 and code[0].kind == "op" and code[0].value in "+-" and code[1].kind == "number":
        sign, code = code[0].value.replace("+", ""), code[1:]
    if len(code) == 1:
        t: Token = code[0]
        if t.kind == "number":
            return Default("number", sign + t.value)
        if t.kind == "string":
            return Default("string", t.value)
        if t.kind == "word" and t.key == "NULL":
            return Default("null")
        if t.kind == "word" and t.key in ("TRUE", "FALSE"):
            return Default("bool", "1" if t.key == "TRUE" else "0")
    if code[0].kind == "word" and code[0].key in _NOW and (len(code) == 1 or (
            is_op(code, 1, "(") and len(code) <= 4 and code[-1].value == ")")):
        return Default("now")  # now(), current_timestamp(), current_timestamp(6)
    return None


def _server_default(d: Default, ct: ColType, dialect: str) -> Any:
    if d.kind == "now":  # MySQL wants the column's fractional digits: DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6)
        return sa.text("CURRENT_TIMESTAMP(6)" if dialect == MYSQL else "CURRENT_TIMESTAMP")
    if ct.kind == "bool":
        truth = d.value.strip().lower() in ("1", "t", "true", "y", "yes", "on")
        return sa.text(("true" if truth else "false") if dialect == POSTGRESQL else ("1" if truth else "0"))
    if d.kind == "number" or (d.kind == "bool" and ct.kind != "bool"):
        if ct.kind in ("int", "decimal", "float", "year"):
            return sa.text(d.value)
        return d.value
    return d.value


def build(tables: list[TableEntry], schema: CrossSchema, source: str, dialect: str) -> TargetSchema:
    """The target schema of ``tables`` of a snapshot of engine ``source`` on ``dialect``."""
    out = TargetSchema(dialect)
    meta = sa.MetaData()
    names: dict[str, str] = {}
    for entry in tables:
        name = _target_name(entry, dialect)
        if name.lower() in names:
            raise UsageError(f"tables {names[name.lower()]} and {entry.name} would both be {name} in the "
                             f"{dialect} target", hint="restore them separately with --tables")
        names[name.lower()] = entry.name
    used = {n for n in names}
    restored = {e.name: e for e in tables}
    by_entry: dict[str, sa.Table] = {}
    for entry in tables:
        name = _target_name(entry, dialect)
        keyed = set(entry.primary_key) | {c for u in entry.unique for c in u} | \
            {c for fk in entry.foreign_keys for c in fk.columns} | \
            {c for i in schema.indexes if i.table == entry.name for c in i.columns} | \
            {c for other in tables for fk in other.foreign_keys if fk.ref_table == entry.name
             for c in fk.ref_columns}
        identity = schema.identity.get(entry.name)
        cts = [parse(source, c.type, schema.enums) for c in entry.columns]
        if identity is not None:
            pos = next((i for i, c in enumerate(entry.columns) if c.name == identity[0]), None)
            if pos is None or cts[pos].kind != "int":
                identity = None
        columns = []
        for col, ct in zip(entry.columns, cts, strict=True):
            enum_name = f"{name}_{col.name}"[:MAX_NAME]
            mapped = target_type(ct, dialect, in_key=col.name in keyed, enum_name=enum_name)
            is_identity = identity is not None and identity[0] == col.name
            args: list[Any] = []
            if is_identity and dialect == POSTGRESQL:
                args.append(sa.Identity())
            kwargs: dict[str, Any] = {"nullable": col.nullable and col.name not in entry.primary_key,
                                      "primary_key": col.name in entry.primary_key,
                                      "autoincrement": is_identity}
            text = schema.defaults.get((entry.name, col.name))
            if text is not None and not is_identity:
                d = parse_default(text)
                if d is None or ct.kind in ("bytes", "geometry", "array", "json", "bit") or (
                        d.kind == "now" and ct.kind not in ("datetime", "timestamptz")):
                    out.skipped.append(f"default of {entry.name}.{col.name}: {text} is not a constant")
                elif d.kind != "null":
                    kwargs["server_default"] = _server_default(d, ct, dialect)
            if ct.kind == "enum" and dialect == POSTGRESQL:
                out.enums.append(mapped.type)
            columns.append(sa.Column(col.name, mapped.type, *args, **kwargs))
            shown = mapped.type.compile(dialect=_DIALECTS[dialect]())
            if mapped.note or _spelling(shown) != _spelling(col.type):
                out.columns.append(f"{entry.name}.{col.name}: {col.type} -> {shown}"
                                   + (f" ({mapped.note})" if mapped.note else ""))
        kw: dict[str, Any] = {}
        if dialect == SQLITE and identity is not None and len(entry.primary_key) == 1:
            kw["sqlite_autoincrement"] = True
        table = sa.Table(name, meta, *columns, **kw)
        by_entry[entry.name] = table
        out.tables.append(TargetTable(entry, table, cts, identity))
    for entry in tables:
        table = by_entry[entry.name]
        seen: set[tuple[tuple[str, ...], bool]] = {(tuple(entry.primary_key), True)}
        wanted = [(tuple(u), True, None) for u in entry.unique] + [
            (i.columns, i.unique, i.name) for i in schema.indexes if i.table == entry.name]
        for cols, unique, given in wanted:
            if (cols, unique) in seen or (cols, True) in seen:
                continue
            seen.add((cols, unique))
            iname = given or f"{table.name}_{'_'.join(cols)}_key"
            if iname.lower() in used or len(iname) > MAX_NAME:
                iname = f"{table.name}_{iname}"[:MAX_NAME - 9] + f"_{len(used):08d}"
            used.add(iname.lower())
            index_kw: dict[str, Any] = {}
            out.indexes.append(sa.Index(iname, *[table.c[c] for c in cols], unique=unique, **index_kw))
        for fk in entry.foreign_keys:
            ref = restored.get(fk.ref_table)
            if ref is None:
                out.skipped.append(f"foreign key {fk.name} of {entry.name}: {fk.ref_table} is not restored")
                continue
            rt = by_entry[ref.name]
            ref_columns = fk.ref_columns if all(fk.ref_columns) else ref.primary_key  # SQLite: REFERENCES t
            fk_name = fk.name if fk.name.lower() not in used and len(fk.name) <= MAX_NAME else \
                f"{table.name}_{fk.name}"[:MAX_NAME - 9] + f"_{len(used):08d}"
            used.add(fk_name.lower())
            constraint = sa.ForeignKeyConstraint([table.c[c] for c in fk.columns], [rt.c[c] for c in ref_columns],
                                                 name=fk_name)
            table.append_constraint(constraint)  # SQLite creates it with the table: it adds none later
            out.foreign_keys.append(constraint)
    return out
