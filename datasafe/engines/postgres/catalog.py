"""What the PostgreSQL catalogs say about the tables, keys and sequences of a database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Cursor

from datasafe.engines.postgres.connection import qualified
from datasafe.snapshot.manifest import Column, ForeignKey, Sequence, TableEntry

ENCODING = "pg-copy-text"
_USER_SCHEMAS = """n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"""
_NOT_EXTENSION_MEMBER = """NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
  AND d.objid = c.oid AND d.deptype = 'e')"""


@dataclass
class CatalogTable:
    oid: int
    entry: TableEntry
    est_bytes: int

    @property
    def sql_name(self) -> str:
        return qualified(self.entry.schema_name or "public", self.entry.table)


def tables(cur: Cursor[Any]) -> list[CatalogTable]:
    """Every user table that holds rows (partitions included, partitioned parents not)."""
    cur.execute(f"""
        SELECT c.oid, n.nspname, c.relname, pg_relation_size(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND {_USER_SCHEMAS} AND {_NOT_EXTENSION_MEMBER}
        ORDER BY n.nspname, c.relname""")
    found = {
        oid: CatalogTable(oid, TableEntry(name=f"{nsp}.{rel}", schema_name=nsp, table=rel, encoding=ENCODING,
                                          columns=[], content_sha256=""), int(size))
        for oid, nsp, rel, size in cur.fetchall()
    }
    if not found:
        return []
    oids = list(found)
    cur.execute("""
        SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
        FROM pg_attribute a
        WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
        ORDER BY a.attrelid, a.attnum""", (oids,))
    for rel, name, typ, nullable in cur.fetchall():
        found[rel].entry.columns.append(Column(name=name, type=typ, nullable=nullable))
    cur.execute("""
        SELECT con.conrelid, con.conname, con.contype,
          (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num),
          fn.nspname || '.' || fc.relname,
          (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num)
        FROM pg_constraint con
        LEFT JOIN pg_class fc ON fc.oid = con.confrelid
        LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
        WHERE con.conrelid = ANY(%s) AND con.contype IN ('p', 'u', 'f')
        ORDER BY con.conrelid, con.conname""", (oids,))
    for rel, name, kind, cols, ref_table, ref_cols in cur.fetchall():
        entry = found[rel].entry
        if kind == "p":
            entry.primary_key = list(cols)
        elif kind == "u":
            entry.unique.append(list(cols))
        else:
            entry.foreign_keys.append(
                ForeignKey(name=name, columns=list(cols), ref_table=ref_table, ref_columns=list(ref_cols))
            )
    cur.execute("""
        SELECT i.indrelid, ic.relname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = ANY(%s) ORDER BY 1, 2""", (oids,))
    for rel, name in cur.fetchall():
        found[rel].entry.indexes.append(name)
    return list(found.values())


def sequences(cur: Cursor[Any]) -> list[Sequence]:
    """Current values of user sequences (sequences are not transactional: as pg_dump reads them)."""
    cur.execute(f"""
        SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'S' AND {_USER_SCHEMAS} AND {_NOT_EXTENSION_MEMBER} ORDER BY 1, 2""")
    names = cur.fetchall()
    out = []
    for nsp, rel in names:
        cur.execute(f"SELECT last_value, is_called FROM {qualified(nsp, rel)}")
        value, called = cur.fetchone()  # type: ignore[misc]
        out.append(Sequence(name=f"{nsp}.{rel}", value=int(value), is_called=bool(called)))
    return out


def populated_matviews(cur: Cursor[Any]) -> list[str]:
    cur.execute("SELECT schemaname, matviewname FROM pg_matviews WHERE ispopulated ORDER BY 1, 2")
    return [f"{s}.{m}" for s, m in cur.fetchall()]


def user_object_count(cur: Cursor[Any]) -> int:
    """Relations, types and functions in user schemas, plus non-public schemas: 0 means empty."""
    cur.execute(f"""
        SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE {_USER_SCHEMAS} AND c.relkind IN ('r','p','v','m','S','f'))
             + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE {_USER_SCHEMAS})
             + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE {_USER_SCHEMAS} AND t.typtype IN ('e','d','r','m')
                  OR (t.typtype = 'c' AND {_USER_SCHEMAS} AND EXISTS (
                      SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')))
             + (SELECT count(*) FROM pg_namespace n WHERE {_USER_SCHEMAS} AND n.nspname <> 'public')
             + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql')""")
    row = cur.fetchone()
    return int(row[0]) if row else 0


def user_schemas(cur: Cursor[Any]) -> list[str]:
    cur.execute(f"SELECT n.nspname FROM pg_namespace n WHERE {_USER_SCHEMAS} ORDER BY 1")
    return [r[0] for r in cur.fetchall()]
