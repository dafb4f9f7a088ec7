"""A live PostgreSQL database's schema text, from its catalogs: the pieces a pg_dump script of its
schema gives (:mod:`datasafe.engines.schema_text`), under the same names.

Objects made by initdb (oid below 16384) and by extensions are left out, as pg_dump leaves them out.
"""

from __future__ import annotations

import psycopg

from datasafe.engines.postgres.connection import connect, db_error
from datasafe.engines.schema_text import SchemaText
from datasafe.engines.sql_tokens import unquote
from datasafe.urls import DatabaseURL

_USER_NSP = ("n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
             "AND n.nspname NOT LIKE 'pg\\_temp%'")


def _not_ext(cls: str, oid: str) -> str:
    return f"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{cls}'::regclass AND e.objid = {oid} " \
           "AND e.deptype = 'e')"


#: (kind, query giving (object name, text)) per piece of PostgreSQL schema text; objects made by
#: initdb (oid below 16384) and by extensions are left out, as pg_dump leaves them out
_QUERIES: tuple[tuple[str, str], ...] = (
    ("comment", """
        SELECT o.type, o.identity, d.description,
          CASE WHEN d.classoid = 'pg_proc'::regclass THEN (SELECT n.nspname || '.' || p.proname || '('
            || pg_catalog.oidvectortypes(p.proargtypes) || ')' FROM pg_proc p
            JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = d.objoid) END,
          CASE WHEN d.classoid = 'pg_type'::regclass THEN (SELECT t.typtype FROM pg_type t WHERE t.oid = d.objoid) END
        FROM pg_description d, LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) o
        WHERE d.objoid >= 16384 AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = d.classoid
          AND e.objid = d.objoid AND e.deptype = 'e')
          AND (o.schema IS NULL OR o.schema NOT IN ('pg_catalog', 'information_schema'))"""),
    ("default", f"""
        SELECT CASE a.attgenerated WHEN '' THEN 'default of ' ELSE 'generated column ' END
          || n.nspname || '.' || c.relname || '.' || a.attname, pg_get_expr(d.adbin, d.adrelid), a.attgenerated
        FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
        JOIN pg_class c ON c.oid = d.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_NSP} AND {_not_ext('pg_class', 'c.oid')}
        UNION ALL SELECT 'default of domain ' || n.nspname || '.' || t.typname, t.typdefault, ''
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype = 'd' AND t.typdefault IS NOT NULL AND {_USER_NSP} AND {_not_ext('pg_type', 't.oid')}"""),
    ("check", f"""
        SELECT 'check ' || con.conname || ' on ' || CASE WHEN con.contypid <> 0 THEN 'domain ' ELSE '' END
          || n.nspname || '.' || coalesce(c.relname, t.typname), pg_get_constraintdef(con.oid)
        FROM pg_constraint con LEFT JOIN pg_class c ON c.oid = con.conrelid
        LEFT JOIN pg_type t ON t.oid = con.contypid
        JOIN pg_namespace n ON n.oid = coalesce(c.relnamespace, t.typnamespace)
        WHERE con.contype = 'c' AND {_USER_NSP}
          AND {_not_ext('pg_class', 'coalesce(c.oid, 0)')} AND {_not_ext('pg_type', 'coalesce(t.oid, 0)')}"""),
    ("view", f"""
        SELECT CASE c.relkind WHEN 'm' THEN 'materialized view ' ELSE 'view ' END || n.nspname || '.' || c.relname,
          pg_get_viewdef(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND {_USER_NSP} AND {_not_ext('pg_class', 'c.oid')}"""),
    ("function", f"""
        SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' WHEN 'a' THEN 'aggregate ' ELSE 'function ' END
          || n.nspname || '.' || p.proname || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')',
          CASE WHEN p.prokind = 'a' THEN (SELECT coalesce(g.agginitval, '') FROM pg_aggregate g
            WHERE g.aggfnoid = p.oid) ELSE pg_get_functiondef(p.oid) END
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE {_USER_NSP} AND {_not_ext('pg_proc', 'p.oid')}"""),
    ("policy", f"""
        SELECT 'policy ' || pol.polname || ' on ' || n.nspname || '.' || c.relname,
          concat_ws(' ', 'USING (' || pg_get_expr(pol.polqual, pol.polrelid) || ')',
                    'WITH CHECK (' || pg_get_expr(pol.polwithcheck, pol.polrelid) || ')')
        FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_USER_NSP}"""),
    ("enum", f"""
        SELECT 'enum ' || n.nspname || '.' || t.typname, string_agg(e.enumlabel, E'\\n' ORDER BY e.enumsortorder)
        FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE {_USER_NSP} AND {_not_ext('pg_type', 't.oid')} GROUP BY n.nspname, t.typname"""),
    ("index", f"""
        SELECT 'index ' || n.nspname || '.' || ic.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
        WHERE {_USER_NSP} AND {_not_ext('pg_class', 'i.indrelid')} AND NOT EXISTS (SELECT 1 FROM pg_constraint con
          WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))"""),
    ("trigger", f"""
        SELECT 'trigger ' || t.tgname || ' on ' || n.nspname || '.' || c.relname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND {_USER_NSP} AND {_not_ext('pg_class', 'c.oid')}"""),
    ("other", f"""
        SELECT 'rule ' || r.rulename || ' on ' || n.nspname || '.' || c.relname, pg_get_ruledef(r.oid)
        FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE r.rulename <> '_RETURN' AND {_USER_NSP} AND {_not_ext('pg_class', 'c.oid')}"""),
)
#: pg_identify_object's type names -> the words a COMMENT statement uses
_OBJECT_TYPES = {"table column": "column", "view column": "column", "materialized view column": "column",
                 "foreign table column": "column", "composite type column": "column",
                 "table constraint": "constraint", "domain constraint": "constraint"}


def catalog_schema_text(url: DatabaseURL) -> list[SchemaText]:
    """The schema text of a live database, from its catalogs (read only)."""
    out: list[SchemaText] = []
    with connect(url) as conn, conn.cursor() as cur:
        try:
            for kind, query in _QUERIES:
                cur.execute(query)
                for row in cur.fetchall():
                    if kind == "comment":
                        out.append(_comment_row(*row))
                    elif kind == "default":
                        out.append(SchemaText(row[0], "generated" if row[2] else "default", row[1] or ""))
                    else:
                        out.append(SchemaText(row[0], kind, row[1] or ""))
        except psycopg.Error as exc:
            raise db_error(f"reading the schema of {url}", exc) from exc
    return out


def _comment_row(typ: str, identity: str, text: str, function: str | None, typtype: str | None) -> SchemaText:
    word = _OBJECT_TYPES.get(typ, typ)
    if function is not None:
        identity = function
    elif typtype == "d":
        word = "domain"
    elif typ == "domain constraint":
        name, _, domain = identity.partition(" on ")
        identity = f"{name} on domain {domain}"
    return SchemaText(f"comment on {word} {unquote(identity)}", "comment", text or "")
