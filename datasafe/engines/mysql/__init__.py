"""MySQL and MariaDB: consistent snapshots read through the server's own text formatting.

Modules (``SPEC`` below is what the engine registry reads; only it is imported without MySQLdb):

* ``engine``: :class:`MySQLEngine`, the :class:`~datasafe.engines.base.Engine` (identity, scratch, digests)
* ``backup``, ``restore``, ``keys``: backup, restore, and keys added after the rows are loaded
* ``ranges``: primary-key ranges of a large table, read by several connections at once
* ``catalog``: tables, columns and keys as the server describes them
* ``rows``: a live database's rows outside a backup (samples for ``datasafe scan``, tables for ``datasafe leaks``)
* ``schema_text``: the schema text of its snapshots (:class:`MysqlSchemaReader`)
* ``connection``: connecting with MySQLdb, quoting, errors
* ``swap``: :class:`MySQLSwapper`, the swap of ``datasafe refresh``
* ``codec``: the row encoding of its snapshots (``mysql-tsv``)
"""

from __future__ import annotations

from datasafe.engines.mysql.codec import MysqlTsv
from datasafe.engines.mysql.schema_text import MysqlSchemaReader
from datasafe.engines.spec import EngineSpec

#: the server port when a URL names none
DEFAULT_PORT = 3306

SPEC = EngineSpec(
    name="mysql",
    extra="mysql",
    default_port=DEFAULT_PORT,
    engine="datasafe.engines.mysql.engine:MySQLEngine",
    swapper="datasafe.engines.mysql.swap:MySQLSwapper",
    codec=MysqlTsv,
    schema=MysqlSchemaReader,
    type_kinds=(
        (r"tinyint\(1\)", "bool"),
        (r"year(\(\d\))?", "int"),
        (r"(tiny|medium|long)blob", "bytes"),
        (r"(multi)?(point|linestring|polygon)", "other"),
        (r"(national )?(tinytext|mediumtext|longtext)(\s*\(\d+\))?", "text"),
    ),
)

__all__ = ["DEFAULT_PORT", "SPEC"]
