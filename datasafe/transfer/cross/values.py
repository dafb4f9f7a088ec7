"""Values across engines: a stored field of one engine's row encoding into what another engine's
driver loads (docs/cross-engine.md, "Values"). :mod:`.columns` applies these a column at a time.

A converter takes a field as the source codec decodes it (text for ``pg-copy-text`` and
``mysql-tsv``; the JSON value for ``jsonl``) and returns the target's value: text in COPY's text
form for PostgreSQL, a Python value for the MySQL and SQLite drivers. A value the target cannot
hold raises :class:`Untranslatable`, naming the column.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable
from typing import Any

from datasafe.errors import DatabaseError
from datasafe.transfer.cross.types import MYSQL, POSTGRESQL, ColType

Convert = Callable[[Any], Any]
#: a date with a zero year, month or day, as MySQL allows ('0000-00-00', '2024-00-10')
_ZERO_DATE = re.compile(r"^(0000-|\d{4}-00-|\d{4}-\d\d-00)")
#: the time zone PostgreSQL prints after a timestamptz (the session's is UTC: always +00)
_PG_OFFSET = re.compile(r"[+-]\d\d(:\d\d){0,2}$")
_TEXT_KINDS = ("string", "text", "uuid", "inet", "interval", "enum", "set", "json", "other", "date", "time",
               "datetime")


class Untranslatable(DatabaseError):
    """A value the target cannot hold (exit 11, as a database error: the restore is undone)."""


def _identity(v: Any) -> Any:
    return v


def _canonical(ct: ColType) -> Convert:
    """Source field (not NULL) -> a value independent of the source engine."""
    src, k = ct.engine, ct.kind
    if src == "sqlite":
        return _sqlite_canonical(k)
    if k == "bool":
        return lambda s: s in ("t", "1", "true")
    if k in ("int", "year"):
        return int
    if k == "float":
        return float
    if k in ("bytes", "geometry"):
        return (lambda s: bytes.fromhex(s[2:])) if src == "postgresql" else bytes.fromhex
    if k == "bit":
        return (lambda s: int(s or "0", 2)) if src == "postgresql" else (lambda s: int(s or "0", 16))
    if k == "array":
        return lambda s: pg_array(s, ct.element)
    if k == "timestamptz" and src == "postgresql":
        return lambda s: s[:-3] if s.endswith("+00") else _PG_OFFSET.sub("", s)
    return _identity


def _sqlite_canonical(k: str) -> Convert:
    def blob(v: Any) -> Any:
        return base64.b64decode(v.get("$b", "")) if isinstance(v, dict) else v

    if k == "bool":
        return lambda v: bool(v) if isinstance(v, (int, float)) else str(v).strip().lower() in ("1", "t", "true")
    if k == "int":
        return lambda v: int(v) if isinstance(v, float) and v.is_integer() else blob(v)
    if k == "decimal":
        return lambda v: v if isinstance(v, str) else repr(v) if isinstance(v, float) else blob(v) \
            if isinstance(v, dict) else str(v)
    if k == "float":
        return lambda v: float(v) if isinstance(v, int) else blob(v)
    if k == "bytes":
        return lambda v: blob(v) if isinstance(v, dict) else str(v).encode("utf-8")

    def text(v: Any) -> Any:
        if isinstance(v, str):
            return v
        if isinstance(v, dict):
            return str(v.get("$b", ""))
        return repr(v) if isinstance(v, float) else str(v)

    return text


def _pg_text(ct: ColType, column: str) -> Convert:
    """Canonical value -> PostgreSQL's text input form."""
    k = ct.kind
    if k == "bool":
        return lambda v: "t" if v else "f"
    if k == "float":
        return lambda v: repr(v) if isinstance(v, float) and math.isfinite(v) else (
            "NaN" if isinstance(v, float) and math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
            if isinstance(v, float) else str(v))
    if k in ("bytes", "geometry"):
        return lambda v: "\\x" + v.hex() if isinstance(v, bytes) else str(v)
    if k == "bit":
        width = ct.length or 1
        return lambda v: format(v, f"0{width}b") if isinstance(v, int) else str(v)
    if k in ("date", "datetime", "timestamptz") and ct.engine == "mysql":
        def date(v: Any) -> Any:
            return None if _ZERO_DATE.match(v) else v + ("+00" if k == "timestamptz" else "")
        return date
    if k == "timestamptz":
        return lambda v: v + "+00"
    if k in ("int", "year", "decimal"):
        return str
    return lambda v: v if isinstance(v, str) else str(v)


def _mysql_value(ct: ColType, column: str) -> Convert:
    k = ct.kind
    if k == "bool":
        return lambda v: 1 if v else 0
    if k == "array":
        return lambda v: json.dumps(v, ensure_ascii=False)
    return _identity


def _sqlite_value(ct: ColType, column: str) -> Convert:
    k = ct.kind
    if k == "bool":
        return lambda v: 1 if v else 0
    if k == "array":
        return lambda v: json.dumps(v, ensure_ascii=False)
    if k == "timestamptz":
        return lambda v: v + "+00:00"
    if k == "int" and ct.unsigned and ct.bits == 64:
        def checked(v: Any) -> Any:
            if isinstance(v, int) and v > 2**63 - 1:
                raise Untranslatable(f"column {column}: {v} is above SQLite's largest integer (2^63-1)")
            return v
        return checked
    return _identity


def converter(ct: ColType, target: str, column: str) -> Convert:
    """Source field (decoded by the source codec, not NULL) -> the target's value."""
    canon = _canonical(ct)
    make = _pg_text if target == POSTGRESQL else _mysql_value if target == MYSQL else _sqlite_value
    out = make(ct, column)
    if canon is _identity:
        return out
    if out is _identity:
        return canon

    def both(v: Any) -> Any:
        return out(canon(v))
    return both


def is_plain(ct: ColType, target: str) -> bool:
    """Whether the decoded text itself is the target's value (no conversion at all)."""
    if ct.engine == "sqlite":
        return False
    if target == POSTGRESQL:
        return ct.kind in ("string", "text", "uuid", "inet", "interval", "enum", "set", "json", "other", "time",
                           "int", "year", "decimal") or (ct.kind in ("date", "datetime") and ct.engine != "mysql")
    if ct.kind in ("int", "year"):  # integer text: the target's integer columns take it as it is (exactly)
        return not (ct.unsigned and ct.bits == 64 and target != MYSQL)
    return ct.kind in (*_TEXT_KINDS, "decimal")


# -- PostgreSQL array literals ----------------------------------------------------------------------
def pg_array(text: str, element: str) -> list[Any]:
    """``{1,2,NULL}``, ``{"a b","c\\"d"}``, ``{{1,2},{3,4}}`` as (nested) lists; elements of kind
    int, float, decimal (as numbers) and bool become JSON numbers and booleans, others strings."""
    if text.startswith("["):  # explicit bounds: [0:1]={...}
        text = text[text.index("=") + 1:]
    if text == "{}":
        return []
    if '"' not in text and "{" not in text[1:] and "\\" not in text:  # one dimension, nothing quoted
        return [None if raw == "NULL" else _element(raw, element) for raw in text[1:-1].split(",")]
    value, end = _array(text, 0, element)
    if end != len(text):
        raise ValueError(f"not an array literal: {text[:40]!r}")
    return value


def _array(s: str, i: int, element: str) -> tuple[list[Any], int]:
    if s[i] != "{":
        raise ValueError(f"not an array literal: {s[:40]!r}")
    out: list[Any] = []
    i += 1
    if s[i] == "}":
        return out, i + 1
    while True:
        if s[i] == "{":
            sub, i = _array(s, i, element)
            out.append(sub)
        elif s[i] == '"':
            j, buf = i + 1, []
            while s[j] != '"':
                if s[j] == "\\":
                    j += 1
                buf.append(s[j])
                j += 1
            out.append(_element("".join(buf), element))
            i = j + 1
        else:
            j = i
            while s[j] not in ",}":
                j += 1
            raw = s[i:j].strip()
            out.append(None if raw.upper() == "NULL" else _element(raw, element))
            i = j
        if s[i] == "}":
            return out, i + 1
        i += 1  # the comma


def _element(raw: str, element: str) -> Any:
    if element == "int":
        return int(raw)
    if element == "float":
        f = float(raw)
        return f if math.isfinite(f) else raw
    if element == "decimal":
        f = float(raw)
        return int(raw) if raw.lstrip("-").isdigit() else f if repr(f) == raw else raw
    if element == "bool":
        return raw == "t"
    return raw
