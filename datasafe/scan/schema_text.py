"""The schema's own text, piece by piece, each named by the object it belongs to.

Personal data hides in schemas too: an address in a table comment, a customer's e-mail as a
column default, a CHECK or a policy that singles out one person, a view or function body with
a name in it, an enum label. A masked copy keeps its schema, so these survive masking unless
someone edits them: a scan must find them and say where.

Snapshot and live database give the same pieces under the same names, e.g.
``comment on column public.customers.email``, ``default of public.customers.contact``,
``check customers_note_check on public.customers``, ``view public.vip``,
``function public.greet(text)``, ``policy p_self on public.customers``, ``enum public.mood``,
``generated column public.customers.email_lower``. Identifiers are unquoted, as manifest table
names are.

- PostgreSQL snapshots: the pg_dump archive through ``pg_restore -f -``, split at the
  ``-- Name: ...; Type: ...`` header pg_dump writes before every object; live: the catalogs.
- MySQL/MariaDB: the ``SHOW CREATE`` statements, from the snapshot's schema part or read live
  the way a backup reads them, so both go through one parser.
- SQLite: the ``CREATE`` statements (schema part or ``sqlite_master``), SQL comments in them too.

This module reads the snapshot's schema parts and the live catalogs; the SQL definitions are
taken apart in :mod:`datasafe.scan.schema_sql`.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
from typing import Any

from datasafe.engines import get_engine
from datasafe.errors import DatabaseError, IntegrityError, NotFound
from datasafe.scan.model import SchemaText
from datasafe.scan.schema_sql import mysql_schema_texts, pg_script_texts, sqlite_schema_texts
from datasafe.scan.sql_tokens import unquote
from datasafe.snapshot.chunks import read_whole
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

#: schema part formats, as the engines write them
PG_FORMAT = "pg_dump-custom"
MYSQL_FORMAT = "mysql-schema-json"
SQLITE_FORMAT = "sqlite-schema-json"
_PG = "postgresql"


# -- snapshots ------------------------------------------------------------------------------------------
def snapshot_schema_text(repo: Repository, manifest: Manifest) -> list[SchemaText]:
    """The schema text of a stored snapshot (an encrypted one is opened with the repository's keys).

    Raises:
        DependencyError: a PostgreSQL snapshot, and no pg_restore that reads its archive.
        IntegrityError: a schema part is damaged.
    """
    manifest = repo.open(manifest)
    objects = repo.snapshot_storage(manifest)
    out: list[SchemaText] = []
    for part in manifest.schema_parts:
        if part.format not in (PG_FORMAT, MYSQL_FORMAT, SQLITE_FORMAT):
            log.warning("snapshot %s: schema part %s has format %r, which scan does not read",
                        manifest.snapshot_id, part.name, part.format)
            continue
        raw = read_whole(objects, part, label=f"schema {part.name}")
        if part.format == PG_FORMAT:
            out.extend(pg_script_texts(_pg_script(raw, manifest)))
        elif part.format == MYSQL_FORMAT:
            out.extend(mysql_schema_texts(_json(raw, manifest)))
        else:
            data = _json(raw, manifest)
            out.extend(sqlite_schema_texts(
                (str(o["type"]), str(o["name"]), str(o.get("table") or o["name"]), str(o.get("sql") or ""))
                for o in [*data.get("create", []), *data.get("post", [])]))
    return out


def _json(raw: bytes, manifest: Manifest) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise IntegrityError(f"snapshot {manifest.snapshot_id}: its schema part is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise IntegrityError(f"snapshot {manifest.snapshot_id}: its schema part is not a JSON object")
    return data


def _pg_script(archive: bytes, manifest: Manifest) -> str:
    """The SQL script of a pg_dump custom archive, without owners and privileges."""
    get_engine(_PG)  # the PostgreSQL engine (and its tools module) needs psycopg: a clear error if absent
    from datasafe.engines.postgres.tools import find_tool, run_tool

    major = int(str(manifest.extra.get("pg_dump_version", "0")).split(".")[0] or 0)
    tool = find_tool("pg_restore", None, major or None)
    with tempfile.TemporaryDirectory(prefix="datasafe-scan-") as folder:
        path = os.path.join(folder, "schema.pgdump")
        with open(path, "wb") as fh:
            fh.write(archive)
        return run_tool([tool.path, "--no-owner", "--no-privileges", "--file=-", path], None,
                        "pg_restore (schema text)")


# -- live databases -----------------------------------------------------------------------------------
def url_schema_text(url: DatabaseURL) -> list[SchemaText]:
    """The schema text of a live database, from its catalogs (read only).

    Raises:
        DependencyError: the engine's driver is not installed.
        ConnectionFailed, DatabaseError, NotFound: the database cannot be read.
    """
    get_engine(url.engine)  # the driver is there, or an actionable DependencyError
    if url.engine == _PG:
        return _pg_catalog(url)
    if url.engine == "mysql":
        return _mysql_catalog(url)
    if url.engine == "sqlite":
        return _sqlite_catalog(url)
    raise NotFound(f"scan cannot read the schema of {url.engine} databases")


_USER_NSP = ("n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
             "AND n.nspname NOT LIKE 'pg\\_temp%'")


def _not_ext(cls: str, oid: str) -> str:
    return f"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{cls}'::regclass AND e.objid = {oid} " \
           "AND e.deptype = 'e')"


#: (kind, query giving (object name, text)) per piece of PostgreSQL schema text; objects made by
#: initdb (oid below 16384) and by extensions are left out, as pg_dump leaves them out
_PG_QUERIES: tuple[tuple[str, str], ...] = (
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
_PG_OBJECT_TYPES = {"table column": "column", "view column": "column", "materialized view column": "column",
                    "foreign table column": "column", "composite type column": "column",
                    "table constraint": "constraint", "domain constraint": "constraint"}


def _pg_catalog(url: DatabaseURL) -> list[SchemaText]:
    # psycopg is an optional dependency: imported once get_engine has said it is installed
    import psycopg

    from datasafe.engines.postgres.connection import connect, db_error

    out: list[SchemaText] = []
    with connect(url) as conn, conn.cursor() as cur:
        try:
            for kind, query in _PG_QUERIES:
                cur.execute(query)
                for row in cur.fetchall():
                    if kind == "comment":
                        out.append(_pg_comment_row(*row))
                    elif kind == "default":
                        out.append(SchemaText(row[0], "generated" if row[2] else "default", row[1] or ""))
                    else:
                        out.append(SchemaText(row[0], kind, row[1] or ""))
        except psycopg.Error as exc:
            raise db_error(f"reading the schema of {url}", exc) from exc
    return out


def _pg_comment_row(typ: str, identity: str, text: str, function: str | None, typtype: str | None) -> SchemaText:
    word = _PG_OBJECT_TYPES.get(typ, typ)
    if function is not None:
        identity = function
    elif typtype == "d":
        word = "domain"
    elif typ == "domain constraint":
        name, _, domain = identity.partition(" on ")
        identity = f"{name} on domain {domain}"
    return SchemaText(f"comment on {word} {unquote(identity)}", "comment", text or "")


def _mysql_catalog(url: DatabaseURL) -> list[SchemaText]:
    # the driver is an optional dependency: imported once get_engine has said it is installed
    from datasafe.engines.mysql import catalog
    from datasafe.engines.mysql.connection import Error, connect, db_error

    conn = connect(url)
    try:
        names = [name for name, _engine, _size in catalog.tables(conn, url.database)]
        return mysql_schema_texts(catalog.schema(conn, url.database, names))
    except Error as exc:
        raise db_error(f"reading the definitions of {url}", exc) from exc
    finally:
        conn.close()


def _sqlite_catalog(url: DatabaseURL) -> list[SchemaText]:
    path = url.database
    if not path or not os.path.isfile(path):
        raise NotFound(f"SQLite database {path or url} does not exist")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                                "ORDER BY rowid").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"cannot read SQLite database {path}: {exc}") from exc
    return sqlite_schema_texts((str(a), str(b), str(c), str(d)) for a, b, c, d in rows)
