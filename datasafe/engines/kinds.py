"""Column kinds: what a declared column type holds, as masking and scanning tell columns apart.

:data:`KINDS` lists the kinds; :func:`column_kind` reads one from a type name, through the names
each registered engine declares (``EngineSpec.type_kinds``) and the names every engine shares.
"""

from __future__ import annotations

import re
from functools import lru_cache

from datasafe.engines.registry import specs

#: every kind a column can have
KINDS = ("text", "int", "decimal", "float", "date", "timestamp", "time", "bool", "json", "uuid", "bytes",
         "inet", "other")

# Type names every engine shares (standard SQL and common spellings), as (regular expression, kind)
# pairs matched against the lower-cased name with array brackets removed. Each engine adds its own
# names in its spec (``EngineSpec.type_kinds``); those are tried first, in registry order, and the
# first pattern that matches decides.
_COMMON_KINDS: tuple[tuple[str, str], ...] = (
    (r"bool|boolean", "bool"),
    (r"(tiny|small|medium|big)?int(eger)?\d?(\(\d+\))?( (un)?signed)?( zerofill)?", "int"),
    (r"(numeric|decimal|dec|fixed|number)(\s*\(.*\))?( (un)?signed)?( zerofill)?", "decimal"),
    (r"(real|double( precision)?|float\d?)(\s*\(.*\))?( (un)?signed)?( zerofill)?", "float"),
    (r"date", "date"),
    (r"(timestamp|datetime|smalldatetime|datetime2|datetimeoffset)(tz)?(\s*\(\d+\))?( with(out)? time zone)?",
     "timestamp"),
    (r"time(tz)?(\s*\(\d+\))?( with(out)? time zone)?", "time"),
    (r"json", "json"),
    (r"uuid|uniqueidentifier", "uuid"),
    (r"blob|(var)?binary(\s*\(\d+\))?", "bytes"),
    (r"geometry(collection)?|geography", "other"),
    (r"(national )?(character varying|varchar2?|nvarchar|character|n?char|text|clob|string)(\s*\(\d+\))?", "text"),
)


@lru_cache(maxsize=1)
def _kind_res() -> tuple[tuple[re.Pattern[str], str], ...]:
    """Every engine's type-name patterns, then the common ones."""
    pairs = [*(pair for spec in specs() for pair in spec.type_kinds), *_COMMON_KINDS]
    return tuple((re.compile(p), k) for p, k in pairs)


@lru_cache(maxsize=1024)
def column_kind(type_name: str) -> str:
    """The kind of a declared column type: one of :data:`KINDS`.

    Names the registered engines declare (PostgreSQL, MySQL/MariaDB, SQLite) and common SQL
    names are recognised first; any other name gets
    SQLite's affinity rules (contains ``INT`` → int; ``CHAR``, ``CLOB`` or ``TEXT`` → text; ``BLOB``
    → bytes; ``REAL``, ``FLOA`` or ``DOUB`` → float), and ``other`` when none applies: arrays,
    enums, intervals, geometric and user-defined types.
    """
    t = " ".join(type_name.strip().lower().split()).strip('"')
    if not t or t.endswith("]") or t.startswith("_") or t.startswith(("enum(", "set(", "interval")):
        return "other"
    for pattern, kind in _kind_res():
        if pattern.fullmatch(t):
            return kind
    if "int" in t:
        return "int"
    if any(s in t for s in ("char", "clob", "text")):
        return "text"
    if "blob" in t:
        return "bytes"
    if any(s in t for s in ("real", "floa", "doub")):
        return "float"
    return "other"
