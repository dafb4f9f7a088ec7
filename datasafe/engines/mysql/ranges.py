"""Primary-key ranges of a large MySQL/MariaDB table, so that several connections read it at once.

Boundaries are found by walking the primary key in order, every Nth key (``ORDER BY <key> LIMIT
1 OFFSET N`` from the previous boundary): ranges of about equal row counts whatever the key's
type or distribution, composite keys included. Boundaries only partition the key space (every
key falls into exactly one range), so they may be found outside the backup's snapshot; the rows
of each range are read inside it. A table stays whole when it has no primary key, a key column
whose values could not be handed back to the server exactly (floating point, BIT, ENUM, SET,
JSON, spatial or text types), or a storage engine without consistent snapshots.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from datasafe.engines.mysql.catalog import BINARY_TYPES, base_type
from datasafe.engines.mysql.connection import Connection, q, query
from datasafe.snapshot.manifest import TableEntry

#: how the manifest names the ranges of a table split by its primary key
SPLIT_BY = "primary-key"

_INTEGER = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year"}
_DECIMAL = {"decimal", "numeric"}
_STRING = {"char", "varchar"}
#: temporal key columns: their bounds travel as text and are cast back to the column's kind
_TEMPORAL = {"date": "DATE", "datetime": "DATETIME(6)", "timestamp": "DATETIME(6)", "time": "TIME(6)"}
_USABLE = _INTEGER | _DECIMAL | _STRING | {"binary", "varbinary"} | set(_TEMPORAL)
#: storage engines whose rows a consistent snapshot reads as of one moment
TRANSACTIONAL = {"innodb"}


def key_kinds(entry: TableEntry) -> list[str] | None:
    """The base type of each primary-key column, or None when the table is read whole."""
    types = {c.name: base_type(c.type) for c in entry.columns}
    kinds = [types.get(k, "") for k in entry.primary_key]
    if not kinds or any(k not in _USABLE for k in kinds):
        return None
    return kinds


def boundaries(conn: Connection, entry: TableEntry, kinds: list[str], count: int) -> list[list[Any]]:
    """Up to ``count - 1`` keys that cut ``entry`` into ``count`` ranges of about equal row counts,
    in key order, as the manifest records them (integers as numbers, binary values in hex, the rest
    as the server prints them)."""
    estimate = query(conn, "SELECT IFNULL(TABLE_ROWS, 0) FROM information_schema.TABLES "
                           "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (entry.table,))
    rows = int(estimate[0][0]) if estimate else 0
    step = rows // count
    if step < 1:
        return []
    columns = ", ".join(_printed(c, kind) for c, kind in zip(entry.primary_key, kinds, strict=True))
    order = ", ".join(_qq(c) for c in entry.primary_key)
    found: list[list[Any]] = []
    while len(found) < count - 1:
        where, args = ("", []) if not found else condition(entry, kinds, ">=", found[-1])
        got = query(conn, f"SELECT {columns} FROM {_table(entry)}{where and ' WHERE ' + where} ORDER BY {order} "
                          f"LIMIT 1 OFFSET {int(step)}", args)
        if not got:
            break
        found.append([int(v) if kind in _INTEGER else str(v) for v, kind in zip(got[0], kinds, strict=True)])
    return found


def condition(entry: TableEntry, kinds: list[str], op: str, bound: list[Any]) -> tuple[str, list[Any]]:
    """SQL and arguments of ``(key columns) op (bound)`` in key order, ``op`` ``>=`` or ``<``, spelt
    as nested comparisons (``a > x OR (a = x AND b >= y)``) that the range optimizer of every
    MySQL and MariaDB version reads as index ranges. Names have ``%`` doubled: the SQL is formatted
    with its arguments by the driver."""
    if op not in (">=", "<") or len(bound) != len(kinds):
        raise ValueError(f"not a key bound of {entry.name}: {bound!r}")
    strict = ">" if op == ">=" else "<"
    cols = [_qq(c) for c in entry.primary_key]
    values = [_argument(v, kind) for v, kind in zip(bound, kinds, strict=True)]
    marks = [_mark(kind) for kind in kinds]
    expr, args = f"{cols[-1]} {op} {marks[-1]}", [values[-1]]
    for col, mark, value in reversed(list(zip(cols[:-1], marks[:-1], values[:-1], strict=True))):
        expr = f"{col} {strict} {mark} OR ({col} = {mark} AND ({expr}))"
        args = [value, value, *args]
    return f"({expr})", args


def range_condition(entry: TableEntry, kinds: list[str], start: list[Any] | None, end: list[Any] | None
                    ) -> tuple[str, list[Any]]:
    """SQL and arguments selecting the keys from ``start`` (inclusive) up to ``end`` (exclusive)."""
    parts: list[str] = []
    args: list[Any] = []
    for op, bound in ((">=", start), ("<", end)):
        if bound is not None:
            sql, more = condition(entry, kinds, op, bound)
            parts.append(sql)
            args += more
    return " AND ".join(parts), args


def _qq(name: str) -> str:
    """A quoted name inside SQL that the driver formats with arguments (``%`` doubled)."""
    return q(name).replace("%", "%%")


def _table(entry: TableEntry) -> str:
    return f"{_qq(entry.schema_name)}.{_qq(entry.table)}" if entry.schema_name else _qq(entry.table)


def _printed(column: str, kind: str) -> str:
    if kind in BINARY_TYPES:
        return f"HEX({_qq(column)})"
    if kind in _INTEGER:
        return _qq(column)
    return f"CAST({_qq(column)} AS CHAR)"


def _mark(kind: str) -> str:
    if kind in BINARY_TYPES:
        return "UNHEX(%s)"
    if kind in _TEMPORAL:
        return f"CAST(%s AS {_TEMPORAL[kind]})"
    return "%s"


def _argument(value: Any, kind: str) -> Any:
    if kind in _INTEGER:
        return int(value)
    if kind in _DECIMAL:
        return Decimal(str(value))
    return str(value)
