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
                                          columns=[], content_blake3=""), int(size))
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


def toc_map(cur: Cursor[Any]) -> dict[str, Any]:
    """Which table owns each schema object, keyed as pg_restore --list shows it ("classoid:oid").

    ``restore --tables`` uses it to keep exactly the definitions, keys, indexes, triggers and
    comments of the chosen tables (and their parents) from the pg_dump archive.
    """
    rel = f"""SELECT c.oid, n.nspname || '.' || c.relname AS qname, c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND {_USER_SCHEMAS} AND {_NOT_EXTENSION_MEMBER}"""
    cur.execute(f"""
        WITH rel AS ({rel})
        SELECT 'pg_class'::regclass::oid, rel.oid, rel.qname, 'table', rel.relname, NULL FROM rel
        UNION ALL SELECT 'pg_class'::regclass::oid, i.indexrelid, rel.qname, 'index', ic.relname, NULL
          FROM pg_index i JOIN rel ON rel.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
        UNION ALL SELECT 'pg_constraint'::regclass::oid, con.oid, rel.qname, 'constraint', con.conname,
          CASE WHEN con.contype = 'f' THEN (SELECT fn.nspname || '.' || fc.relname FROM pg_class fc
            JOIN pg_namespace fn ON fn.oid = fc.relnamespace WHERE fc.oid = con.confrelid) END
          FROM pg_constraint con JOIN rel ON rel.oid = con.conrelid
        UNION ALL SELECT 'pg_trigger'::regclass::oid, t.oid, rel.qname, 'trigger', t.tgname, NULL
          FROM pg_trigger t JOIN rel ON rel.oid = t.tgrelid WHERE NOT t.tgisinternal
        UNION ALL SELECT 'pg_attrdef'::regclass::oid, d.oid, rel.qname, 'default', NULL, NULL
          FROM pg_attrdef d JOIN rel ON rel.oid = d.adrelid
        UNION ALL SELECT 'pg_rewrite'::regclass::oid, r.oid, rel.qname, 'rule', r.rulename, NULL
          FROM pg_rewrite r JOIN rel ON rel.oid = r.ev_class
        UNION ALL SELECT 'pg_policy'::regclass::oid, p.oid, rel.qname, 'policy', p.polname, NULL
          FROM pg_policy p JOIN rel ON rel.oid = p.polrelid
        UNION ALL SELECT 'pg_class'::regclass::oid, s.oid, rel.qname, 'sequence', s.relname, NULL
          FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
          JOIN rel ON rel.oid = d.refobjid
          WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
            AND d.deptype IN ('a', 'i')""")
    objects: dict[str, str] = {}
    fk_refs: dict[str, str] = {}
    names: dict[str, dict[str, list[str]]] = {}
    for classoid, oid, owner, kind, name, ref in cur.fetchall():
        key = f"{classoid}:{oid}"
        objects[key] = owner
        if ref is not None:
            fk_refs[key] = ref
        if name is not None:
            names.setdefault(owner, {}).setdefault(kind, []).append(name)
    cur.execute(f"""
        WITH rel AS ({rel})
        SELECT child.qname, pn.nspname || '.' || pc.relname FROM pg_inherits i
        JOIN rel child ON child.oid = i.inhrelid
        JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace""")
    parents: dict[str, list[str]] = {}
    for child, parent in cur.fetchall():
        parents.setdefault(child, []).append(parent)
    return {"objects": objects, "fk_refs": fk_refs, "names": names, "parents": parents}
