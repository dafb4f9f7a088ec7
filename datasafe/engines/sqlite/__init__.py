"""SQLite: the embedded default engine (no driver to install: Python's own ``sqlite3``).

Modules (``SPEC`` below is what the engine registry reads):

* ``engine``: :class:`SqliteEngine`, backup, restore, identity and scratch files of one database file
* ``rows``: a live database's rows outside a backup (samples for ``datasafe scan``, tables for ``datasafe leaks``)
* ``schema_text``: the schema text of its snapshots (:class:`SqliteSchemaReader`) and of a live file
* ``swap``: :class:`SqliteSwapper`, the swap of ``datasafe refresh`` (a rename)
* ``codec``: the row encoding of its snapshots (``jsonl``)
"""

from __future__ import annotations

from datasafe.engines.spec import EngineSpec
from datasafe.engines.sqlite.codec import JsonLines
from datasafe.engines.sqlite.schema_text import SqliteSchemaReader

SPEC = EngineSpec(
    name="sqlite",
    extra=None,
    default_port=None,
    engine="datasafe.engines.sqlite.engine:SqliteEngine",
    swapper="datasafe.engines.sqlite.swap:SqliteSwapper",
    codec=JsonLines,
    schema=SqliteSchemaReader,
    type_kinds=((r"unsigned big int", "int"),),
)

__all__ = ["SPEC"]
