"""Column types across engines: a source column's type as a neutral :class:`ColType`, and the
SQLAlchemy type it becomes on each target dialect, with a note where the mapping is not exact.
Imported only by cross-engine restores (SQLAlchemy is no start-up cost).

The table in docs/cross-engine.md is this module in prose; change both together.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

#: dialect names of the targets (SQLAlchemy's)
POSTGRESQL, MYSQL, SQLITE = "postgresql", "mysql", "sqlite"
#: datasafe engine name -> SQLAlchemy dialect name
DIALECTS = {"postgresql": POSTGRESQL, "mysql": MYSQL, "sqlite": SQLITE}
#: MySQL: the length a TEXT or BLOB column gets when it is part of a key (MySQL cannot index those whole)
KEY_LENGTH = 255
#: MySQL DECIMAL's largest precision and scale, for numerics without a declared precision
MYSQL_DECIMAL = (65, 30)
#: SQLite: numerics of up to this many digits are stored as numbers (REAL holds 15 exactly); longer ones as text
SQLITE_DIGITS = 15
#: what MySQL's zero dates become in PostgreSQL
ZERO_NOTE = "zero dates ('0000-00-00') become NULL; in a NOT NULL column they are refused"

_BINARY = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
_GEOMETRY = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
             "geometrycollection", "geomcollection"}
_MYSQL_INTS = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}
_PG_INTS = {"smallint": 16, "integer": 32, "bigint": 64}
_NUMBERS = re.compile(r"\((\d+)(?:\s*,\s*(\d+))?\)")
_LABEL = re.compile(r"'((?:[^']|'')*)'")


@dataclass(frozen=True)
class ColType:
    """A column type as the targets need to know it.

    ``kind`` is one of bool, int, decimal, float, string, text, bytes, date, time, datetime,
    timestamptz, interval, uuid, json, enum, set, array, inet, bit, year, geometry, other."""

    kind: str
    source: str  #: the type as the source database spells it
    bits: int = 64  #: int: 8, 16, 24, 32 or 64; float: 32 or 64
    unsigned: bool = False
    length: int | None = None  #: string: characters; bit: bits
    fixed: bool = False  #: string: CHAR rather than VARCHAR
    precision: int | None = None
    scale: int | None = None
    labels: tuple[str, ...] = field(default_factory=tuple)  #: enum and set
    element: str = ""  #: array: the element type's kind (int, float, decimal, bool or text)
    engine: str = ""  #: the source engine


def _numbers(text: str) -> tuple[int | None, int | None]:
    m = _NUMBERS.search(text)
    if not m:
        return None, None
    return int(m.group(1)), int(m.group(2)) if m.group(2) is not None else None


def parse(engine: str, type_text: str, enums: dict[str, tuple[str, ...]]) -> ColType:
    """``type_text`` of a column of a snapshot of ``engine``; ``enums``: PostgreSQL enum type
    labels by unqualified, unquoted type name."""
    if engine == "postgresql":
        ct = _pg(type_text, enums)
    elif engine == "mysql":
        ct = _mysql(type_text)
    else:
        ct = _sqlite(type_text)
    return dataclasses.replace(ct, engine=engine)


def _pg(t: str, enums: dict[str, tuple[str, ...]]) -> ColType:
    low = t.strip().lower()
    if low.endswith("[]"):
        base = _pg(low[:-2].rstrip("[]"), enums)
        element = base.kind if base.kind in ("int", "float", "decimal", "bool") else "text"
        return ColType("array", t, element=element)
    n, s = _numbers(low)
    name = re.sub(r"\(.*?\)", "", low).strip()
    if name in _PG_INTS:
        return ColType("int", t, bits=_PG_INTS[name])
    if name == "boolean":
        return ColType("bool", t)
    if name == "numeric":
        return ColType("decimal", t, precision=n, scale=s if n is not None else None)
    if name in ("real", "double precision"):
        return ColType("float", t, bits=32 if name == "real" else 64)
    if name in ("character varying", "character", "bpchar"):
        return ColType("string" if n else "text", t, length=n, fixed=name != "character varying")
    if name in ("text", "citext", "name"):
        return ColType("text", t)
    if name == "bytea":
        return ColType("bytes", t)
    if name == "date":
        return ColType("date", t)
    if name.startswith("timestamp"):
        return ColType("timestamptz" if "with time zone" in name and "without" not in name else "datetime", t)
    if name.startswith("time"):
        return ColType("time" if "with time zone" not in name or "without" in name else "other", t)
    if name.startswith("interval"):
        return ColType("interval", t)
    if name == "uuid":
        return ColType("uuid", t)
    if name in ("json", "jsonb"):
        return ColType("json", t)
    if name in ("inet", "cidr", "macaddr", "macaddr8"):
        return ColType("inet", t)
    if name == "bit":
        return ColType("bit", t, length=n or 1)
    bare = name.split(".")[-1].strip('"')
    if bare in enums:
        return ColType("enum", t, labels=enums[bare])
    return ColType("other", t)


def _mysql(t: str) -> ColType:
    low = t.strip().lower()
    name = re.split(r"[\s(]", low, maxsplit=1)[0]
    unsigned = " unsigned" in low
    n, s = _numbers(low)
    if name in _MYSQL_INTS:
        return ColType("int", t, bits=_MYSQL_INTS[name], unsigned=unsigned)
    if name in ("decimal", "numeric"):
        return ColType("decimal", t, precision=n or 10, scale=s or 0)
    if name in ("float", "double", "real"):
        return ColType("float", t, bits=32 if name == "float" else 64)
    if name in ("char", "varchar"):
        return ColType("string", t, length=n or 1, fixed=name == "char")
    if name in ("tinytext", "text", "mediumtext", "longtext"):
        return ColType("text", t)
    if name in _BINARY:
        return ColType("bytes", t)
    if name in ("date", "time", "datetime", "year"):
        return ColType(name, t)
    if name == "timestamp":
        return ColType("timestamptz", t)
    if name in ("bool", "boolean"):
        return ColType("int", t, bits=8)
    if name == "bit":
        return ColType("bit", t, length=n or 1)
    if name in ("enum", "set"):
        return ColType(name, t, labels=tuple(v.replace("''", "'") for v in _LABEL.findall(t)))
    if name == "json":
        return ColType("json", t)
    if name in _GEOMETRY:
        return ColType("geometry", t)
    if name == "uuid":
        return ColType("uuid", t)
    if name in ("inet4", "inet6"):
        return ColType("inet", t)
    return ColType("other", t)


def _sqlite(t: str) -> ColType:
    up = t.strip().upper()
    name = re.split(r"[\s(]", up, maxsplit=1)[0]
    n, s = _numbers(up)
    if name in ("BOOLEAN", "BOOL"):
        return ColType("bool", t)
    if name == "DATE":
        return ColType("date", t)
    if name in ("DATETIME", "TIMESTAMP"):
        return ColType("datetime", t)
    if name == "TIME":
        return ColType("time", t)
    if name == "UUID":
        return ColType("uuid", t)
    if name in ("JSON", "JSONB"):
        return ColType("json", t)
    if name in ("DECIMAL", "NUMERIC"):
        return ColType("decimal", t, precision=n, scale=s if n is not None else None)
    # SQLite's own affinity rules (https://sqlite.org/datatype3.html, 3.1), in their order
    if "INT" in up:
        return ColType("int", t)
    if any(w in up for w in ("CHAR", "CLOB", "TEXT")):
        return ColType("string" if n else "text", t, length=n, fixed=name in ("CHAR", "CHARACTER", "NCHAR"))
    if "BLOB" in up:
        return ColType("bytes", t)
    if not up:
        return ColType("other", t)
    if any(w in up for w in ("REAL", "FLOA", "DOUB")):
        return ColType("float", t)
    return ColType("decimal", t)


@dataclass(frozen=True)
class Mapped:
    """What a column becomes on a target: its SQLAlchemy type and a note where it is not exact."""

    type: Any
    note: str | None = None


def target_type(ct: ColType, dialect: str, *, in_key: bool, enum_name: str) -> Mapped:
    """The SQLAlchemy type of ``ct`` on ``dialect``; ``in_key``: the column is part of a key or an
    index; ``enum_name``: the name a PostgreSQL enum type made for it gets."""
    k = ct.kind
    if dialect == SQLITE:
        return _sqlite_type(ct)
    pg = dialect == POSTGRESQL
    if k == "bool":
        return Mapped(sa.Boolean(create_constraint=False))
    if k in ("int", "year"):
        bits = 16 if k == "year" else ct.bits + (1 if ct.unsigned else 0)
        if not pg and ct.unsigned:
            return Mapped({8: mysql.TINYINT, 16: mysql.SMALLINT, 24: mysql.MEDIUMINT, 32: mysql.INTEGER,
                           64: mysql.BIGINT}[ct.bits](unsigned=True))
        if bits <= 16:
            return Mapped(sa.SmallInteger())
        if bits <= 32:
            return Mapped(sa.Integer())
        if bits <= 64:
            return Mapped(sa.BigInteger())
        return Mapped(sa.Numeric(20, 0), "BIGINT UNSIGNED becomes numeric(20,0)")
    if k == "decimal":
        if ct.precision is None:
            if pg:
                return Mapped(sa.Numeric())
            return Mapped(sa.Numeric(*MYSQL_DECIMAL), "numeric without precision becomes DECIMAL(65,30): "
                                                      "values with more digits are refused")
        return Mapped(sa.Numeric(ct.precision, ct.scale or 0))
    if k == "float":
        if pg:
            return Mapped(postgresql.REAL() if ct.bits == 32 else postgresql.DOUBLE_PRECISION())
        return Mapped(mysql.FLOAT() if ct.bits == 32 else mysql.DOUBLE(),
                      "NaN and infinite values are refused (MySQL cannot hold them)")
    if k in ("string", "text", "other", "interval", "set", "inet") or (k == "uuid" and not pg):
        note = {"other": f"{ct.source} is copied as text", "interval": "intervals become their text",
                "set": "SET values become their comma-separated text",
                "inet": "addresses become their text" if not pg or ct.source.lower().startswith("inet") else None,
                "uuid": "uuids become CHAR(36)"}.get(k)
        if k == "inet" and pg:
            return Mapped(postgresql.INET())
        if k == "uuid":
            return Mapped(sa.CHAR(36), note)
        if k == "inet":
            return Mapped(sa.String(43), note)
        if k == "interval":
            return Mapped(sa.String(64) if not pg else postgresql.INTERVAL(), note if not pg else None)
        if k == "string":
            if ct.fixed:
                return Mapped(sa.CHAR(ct.length))
            if pg or (ct.length or 0) <= 16383:
                return Mapped(sa.String(ct.length))
            return Mapped(mysql.LONGTEXT(), f"{ct.source} is longer than MySQL's VARCHAR: LONGTEXT")
        if pg:
            return Mapped(sa.Text(), note)
        if in_key:
            return Mapped(sa.String(KEY_LENGTH), f"text in a key becomes VARCHAR({KEY_LENGTH}) in MySQL: "
                                                 "longer values are refused")
        return Mapped(mysql.LONGTEXT(), note)
    if k in ("bytes", "geometry"):
        note = "geometry is copied as MySQL's internal bytes (SRID + WKB)" if k == "geometry" else None
        if pg:
            return Mapped(postgresql.BYTEA(), note)
        if in_key:
            return Mapped(sa.VARBINARY(KEY_LENGTH), f"binary in a key becomes VARBINARY({KEY_LENGTH}) in MySQL: "
                                                     "longer values are refused")
        return Mapped(mysql.LONGBLOB(), note)
    zero = ZERO_NOTE if pg and ct.engine == "mysql" else None
    if k == "date":
        return Mapped(sa.Date(), zero)
    if k == "time":
        return Mapped(sa.Time() if pg else mysql.TIME(fsp=6),
                      "times outside 00:00:00-24:00:00 are refused" if pg and ct.engine == "mysql" else None)
    if k in ("datetime", "timestamptz"):
        if pg:
            return Mapped(postgresql.TIMESTAMP(timezone=k == "timestamptz"), zero)
        return Mapped(mysql.DATETIME(fsp=6), "stored as UTC without a time zone" if k == "timestamptz" else None)
    if k == "uuid":
        return Mapped(postgresql.UUID(as_uuid=False))
    if k == "json":
        return Mapped(postgresql.JSONB() if pg else mysql.JSON())
    if k == "enum":
        if pg:
            return Mapped(postgresql.ENUM(*ct.labels, name=enum_name, create_type=False),
                          f"becomes enum type {enum_name}")
        return Mapped(mysql.ENUM(*ct.labels))
    if k == "array":
        return Mapped(mysql.JSON(), "arrays become JSON arrays")
    if k == "bit":
        if pg:
            return Mapped(postgresql.BIT(ct.length or 1))
        if (ct.length or 1) <= 64 and ct.source.lower().startswith("bit("):
            return Mapped(mysql.BIT(ct.length or 1))
        return Mapped(mysql.LONGTEXT(), f"{ct.source} becomes its text of 0s and 1s")
    return Mapped(mysql.LONGTEXT() if not pg else sa.Text(), f"{ct.source} is copied as text")


def _sqlite_type(ct: ColType) -> Mapped:
    k = ct.kind
    if k == "bool":
        return Mapped(sa.Boolean(create_constraint=False), "booleans become 1 and 0")
    if k in ("int", "year", "bit"):
        note = "values above 2^63-1 are refused" if ct.unsigned and ct.bits == 64 else None
        if k == "bit":
            note = "bits become their integer value"
        return Mapped(sa.Integer(), note)
    if k == "decimal":
        if ct.precision is None or ct.precision > SQLITE_DIGITS:
            return Mapped(sa.Text(), f"more than {SQLITE_DIGITS} digits: kept as text, exact")
        return Mapped(sa.Numeric(ct.precision, ct.scale or 0), "NUMERIC affinity: stored as INTEGER or REAL")
    if k == "float":
        return Mapped(sa.Float())
    if k == "string":
        return Mapped(sa.CHAR(ct.length) if ct.fixed else sa.String(ct.length))
    if k in ("bytes", "geometry"):
        return Mapped(sa.LargeBinary(), "geometry is copied as MySQL's internal bytes (SRID + WKB)"
                      if k == "geometry" else None)
    if k == "date":
        return Mapped(sa.Date(), "dates become ISO text")
    if k == "time":
        return Mapped(sa.Time(), "times become ISO text")
    if k == "datetime":
        return Mapped(sa.DateTime(), "timestamps become ISO text")
    if k == "timestamptz":
        return Mapped(sa.DateTime(timezone=True), "timestamps become ISO text in UTC (+00:00)")
    if k in ("json", "array"):
        return Mapped(sa.JSON(), "arrays become JSON arrays" if k == "array" else None)
    if k == "enum":
        return Mapped(sa.String(max((len(x) for x in ct.labels), default=1)), "enum labels become text")
    return Mapped(sa.Text(), None if k == "text" else f"{ct.source} becomes text")
