"""PostgreSQL engine: consistent parallel COPY plus pg_dump's schema, restored with pg_restore and COPY.

Modules (``SPEC`` below is what the engine registry reads; only it is imported without psycopg):

* ``engine``: :class:`PostgresEngine`, the :class:`~datasafe.engines.base.Engine` (identity, scratch, digests)
* ``backup``, ``restore``, ``staging``, ``schema``, ``toc``, ``foreign_keys``, ``usercode``: backup and restore
* ``catalog``: tables, columns and keys as the server describes them
* ``rows``: a live database's rows outside a backup (samples for ``datasafe scan``, tables for ``datasafe leaks``)
* ``schema_text``: the schema text of its snapshots (:class:`PgSchemaReader`, through pg_restore)
* ``schema_catalog``: the schema text of a live database, from its catalogs
* ``connection``: connecting with psycopg, COPY, quoting, errors
* ``tools``: finding and running pg_dump and pg_restore
* ``swap``: :class:`PostgresSwapper`, the swap of ``datasafe refresh``
* ``codec``: the row encoding of its snapshots (``pg-copy-text``)
* ``options``: its own options (``pg_bin``, ``no_owner``)
"""

from __future__ import annotations

from datasafe.engines.postgres.codec import PgCopyText
from datasafe.engines.postgres.options import PostgresOptions
from datasafe.engines.postgres.schema_text import PgSchemaReader
from datasafe.engines.spec import EngineSpec

SPEC = EngineSpec(
    name="postgresql",
    extra="postgres",
    default_port=5432,
    engine="datasafe.engines.postgres.engine:PostgresEngine",
    swapper="datasafe.engines.postgres.swap:PostgresSwapper",
    codec=PgCopyText,
    schema=PgSchemaReader,
    type_kinds=(
        (r"(small|big)?serial\d?", "int"),
        (r"jsonb", "json"),
        (r"bytea", "bytes"),
        (r"inet[46]?|cidr", "inet"),
        (r"point|line|lseg|box|path|polygon|circle|interval|money|macaddr8?|bit( varying)?(\s*\(\d+\))?|varbit|"
         r"tsvector|tsquery|xml|pg_lsn|oid|regclass", "other"),
        (r"(national )?(citext|name|bpchar)(\s*\(\d+\))?", "text"),
    ),
    options=PostgresOptions,
)

__all__ = ["SPEC"]
