"""What information_schema and SHOW CREATE say about one database, and how its rows are read.

Rows leave the server already in the ``mysql-tsv`` encoding (LOAD DATA's default text format):
the server escapes and joins each row, the client only joins lines. Binary columns travel as
hexadecimal, FLOAT widened to DOUBLE (exact), geometry as its internal SRID + WKB bytes in hex.
"""

from __future__ import annotations

import re
from typing import Any

from datasafe.engines.mysql.connection import Connection, q, query
from datasafe.errors import DatabaseError
from datasafe.snapshot.manifest import Column, ForeignKey, TableEntry

ENCODING = "mysql-tsv"

BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
GEOMETRY_TYPES = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
                  "multipolygon", "geometrycollection", "geomcollection"}
PLAIN_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "double",
               "real", "date", "datetime", "timestamp", "time", "year", "bool", "boolean"}
_GENERATED = re.compile(r"(VIRTUAL|STORED|PERSISTENT) GENERATED", re.I)


def base_type(column_type: str) -> str:
    return re.split(r"[\s(]", column_type.strip().lower(), maxsplit=1)[0]


#: (SQL literal of a character, SQL literal of its mysql-tsv escape); the backslash goes first.
#: Only what LOAD DATA could misread is escaped: a CR or NUL inside a field is read as it is.
_ESCAPES = (("'\\\\'", "'\\\\\\\\'"), ("'\\t'", "'\\\\t'"), ("'\\n'", "'\\\\n'"))
#: Character sets whose bytes already are utf8mb4 (no conversion needed before printing).
_UTF8_BYTES = {"utf8mb4", "utf8mb3", "utf8", "ascii"}


def _escaped(expr: str, charset: str | None) -> str:
    out = expr if (charset or "").lower() in _UTF8_BYTES else f"CONVERT({expr} USING utf8mb4)"
    for raw, esc in _ESCAPES:
        out = f"REPLACE({out}, {raw}, {esc})"
    return out


def column_expr(col: Column) -> str:
    """The SQL that prints one column in mysql-tsv (without the NULL marker)."""
    name, kind = q(col.name), base_type(col.type)
    if kind in BINARY_TYPES or kind in GEOMETRY_TYPES or kind == "bit":
        return f"HEX({name})"
    if kind == "float":
        return f"CAST({name} AS DOUBLE)"
    if kind in PLAIN_TYPES:
        return name
    return _escaped(name, getattr(col, "charset", None))


def load_target(col: Column, var: str) -> tuple[str, str | None]:
    """(what LOAD DATA reads the field into, the SET clause turning it into the column's value)."""
    name, kind = q(col.name), base_type(col.type)
    if kind in BINARY_TYPES or kind in GEOMETRY_TYPES:
        return var, f"{name} = UNHEX({var})"
    if kind == "bit":
        return var, f"{name} = CAST(CONV({var}, 16, 10) AS UNSIGNED)"
    return name, None


def select_sql(entry: TableEntry) -> str:
    """The query printing every row of ``entry`` as one mysql-tsv line, in a stable order."""
    fields = ", ".join(f"IFNULL({column_expr(c)}, '\\\\N')" if c.nullable else column_expr(c) for c in entry.columns)
    order = ", ".join(q(c) for c in entry.primary_key) or ", ".join(q(c.name) for c in entry.columns)
    table = f"{q(entry.schema_name)}.{q(entry.table)}" if entry.schema_name else q(entry.table)
    return f"SELECT CONCAT_WS('\\t', {fields}) FROM {table} ORDER BY {order}"


def tables(conn: Connection, db: str) -> list[tuple[str, str, int]]:
    """(name, storage engine, estimated bytes) of the base tables of ``db``."""
    rows = query(conn, """SELECT TABLE_NAME, IFNULL(ENGINE, ''), IFNULL(DATA_LENGTH, 0)
                          FROM information_schema.TABLES
                          WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME""", (db,))
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def non_transactional(conn: Connection, db: str) -> list[str]:
    rows = query(conn, """SELECT t.TABLE_NAME, t.ENGINE FROM information_schema.TABLES t
                          JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE
                          WHERE t.TABLE_SCHEMA = %s AND t.TABLE_TYPE = 'BASE TABLE'
                            AND e.TRANSACTIONS <> 'YES' ORDER BY 1""", (db,))
    return [f"{r[0]} ({r[1]})" for r in rows]


def skipped_tables(conn: Connection, db: str) -> list[str]:
    """Tables whose rows are not plain data (MariaDB sequences, system-versioned tables)."""
    rows = query(conn, """SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES
                          WHERE TABLE_SCHEMA = %s AND TABLE_TYPE NOT IN ('BASE TABLE', 'VIEW')""", (db,))
    return [f"{r[0]} ({r[1]})" for r in rows]


def entry(conn: Connection, db: str, table: str) -> TableEntry:
    cols = query(conn, """SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, IFNULL(EXTRA, ''), CHARACTER_SET_NAME
                          FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s
                          ORDER BY ORDINAL_POSITION""", (db, table))
    columns = [Column(name=str(n), type=str(t), nullable=nl == "YES", charset=cs)
               for n, t, nl, extra, cs in cols if not _GENERATED.search(str(extra))]
    keys: dict[str, list[str]] = {}
    indexes: list[str] = []
    unique: list[list[str]] = []
    for name, non_unique, col in query(conn, """SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME
                                               FROM information_schema.STATISTICS
                                               WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s
                                               ORDER BY INDEX_NAME, SEQ_IN_INDEX""", (db, table)):
        if name not in keys:
            keys[name] = []
            if name != "PRIMARY":
                indexes.append(str(name))
            if not int(non_unique) and name != "PRIMARY":
                unique.append(keys[name])
        if col is not None:
            keys[name].append(str(col))
    fks: dict[str, ForeignKey] = {}
    for name, col, ref_table, ref_col in query(
            conn, """SELECT CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME
                     FROM information_schema.KEY_COLUMN_USAGE
                     WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND REFERENCED_TABLE_NAME IS NOT NULL
                     ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION""", (db, table)):
        fk = fks.setdefault(str(name), ForeignKey(name=str(name), columns=[], ref_table=str(ref_table),
                                                   ref_columns=[]))
        fk.columns.append(str(col))
        fk.ref_columns.append(str(ref_col))
    return TableEntry(name=table, schema_name=None, table=table, encoding=ENCODING, columns=columns,
                      content_blake3="", primary_key=keys.get("PRIMARY", []), unique=unique,
                      foreign_keys=list(fks.values()), indexes=indexes)


_DEFINER = re.compile(r"\sDEFINER\s*=\s*(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|[^\s@`']+)"
                      r"(?:@(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|[^\s`']+))?", re.I)


def strip_definer(sql: str) -> tuple[str, str | None]:
    """(statement without its DEFINER clause, the definer removed) — the restoring user becomes definer."""
    m = _DEFINER.search(sql)
    if m is None:
        return sql, None
    return sql[: m.start()] + sql[m.end():], m.group(0).split("=", 1)[1].strip()


def _named(conn: Connection, sql: str, args: tuple[Any, ...]) -> list[str]:
    return [str(r[0]) for r in query(conn, sql, args)]


def _object(row: tuple[Any, ...], sql_index: int, mode_index: int | None, cs_index: int | None) -> dict[str, Any]:
    if row[sql_index] is None:
        raise DatabaseError(f"cannot read the definition of {row[0]}: the user lacks the privilege to see it")
    text, definer = strip_definer(str(row[sql_index]))
    item: dict[str, Any] = {"name": str(row[0]), "sql": text, "definer": definer}
    if mode_index is not None:
        item["sql_mode"] = str(row[mode_index])
    if cs_index is not None:
        item["character_set_client"] = str(row[cs_index])
        item["collation_connection"] = str(row[cs_index + 1])
    return item


def schema(conn: Connection, db: str, table_names: list[str]) -> dict[str, Any]:
    """Every definition of ``db`` as ordered lists of statements (definers stripped, kept aside)."""
    out: dict[str, Any] = {"tables": [], "views": [], "routines": [], "triggers": [], "events": []}
    row = query(conn, """SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA
                         WHERE SCHEMA_NAME = %s""", (db,))[0]
    out["charset"], out["collation"] = str(row[0]), str(row[1])
    for name in table_names:
        out["tables"].append({"name": name, "sql": str(query(conn, f"SHOW CREATE TABLE {q(db)}.{q(name)}")[0][1])})
    for name in _named(conn, """SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = %s
                                ORDER BY TABLE_NAME""", (db,)):
        out["views"].append(_object(query(conn, f"SHOW CREATE VIEW {q(db)}.{q(name)}")[0], 1, None, 2))
    for kind in ("PROCEDURE", "FUNCTION"):
        for name in _named(conn, """SELECT ROUTINE_NAME FROM information_schema.ROUTINES
                                    WHERE ROUTINE_SCHEMA = %s AND ROUTINE_TYPE = %s ORDER BY 1""", (db, kind)):
            item = _object(query(conn, f"SHOW CREATE {kind} {q(db)}.{q(name)}")[0], 2, 1, 3)
            out["routines"].append(dict(item, kind=kind))
    for name, table in query(conn, """SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS
                                      WHERE TRIGGER_SCHEMA = %s ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER""", (db,)):
        item = _object(query(conn, f"SHOW CREATE TRIGGER {q(db)}.{q(str(name))}")[0], 2, 1, 3)
        out["triggers"].append(dict(item, table=str(table)))
    for (name,) in query(conn, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s ORDER BY 1",
                         (db,)):
        row = query(conn, f"SHOW CREATE EVENT {q(db)}.{q(str(name))}")[0]
        out["events"].append(dict(_object(row, 3, 1, 4), time_zone=str(row[2])))
    return out
