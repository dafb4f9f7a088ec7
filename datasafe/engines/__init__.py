"""Engines, keyed by the name users see in URLs (``postgresql``, ``sqlite``, ``mysql``).

Each engine is one package that declares itself once, as ``SPEC`` in its ``__init__``, and is
listed in the one registry, :data:`datasafe.engine_names.REGISTRY`. Modules:

* ``base``: the :class:`Engine` seam, backup and restore options and plans, the scratch server
* ``spec``: :class:`EngineSpec`, what an engine declares about itself
* ``registry``: the specs of the registered engines; engines, swappers and codecs loaded on use
* ``options``: :class:`EngineOptions`, the base of an engine's own options model
* ``codec``: the row codec seam and the tab-separated text PostgreSQL and MySQL share
* ``kinds``: column kinds, read from declared type names (:func:`column_kind`)
* ``sampling``: what engines share to read a live database's rows outside a backup (samples, leak audits)
* ``schema_text``: pieces of the schema's own text, and the :class:`SchemaReader` seam of schema parts
* ``schema_sql``: the pieces of schema text in SQL definitions (pg_dump script, ``CREATE`` statements)
* ``sql_tokens``: a small SQL lexer with each engine's dialect
* ``swap``: the :class:`Swapper` seam of ``datasafe refresh``
* ``workers``: the worker pool of parallel backups and restores
* ``split``: large tables read and loaded as ranges in parallel (what the engines share of it)
* ``restore_mark``: the mark a restore leaves in its target until it finishes
* ``postgres``, ``mysql``, ``sqlite``: the engines
"""

from __future__ import annotations

from datasafe.engines.base import BackupOptions, BackupResult, Engine, RestoreOptions, RestorePlan
from datasafe.engines.options import EngineOptions
from datasafe.engines.registry import codec_for, get_engine, names, spec, specs, swapper_for
from datasafe.engines.spec import EngineSpec
from datasafe.engines.swap import NEW_MARK, OLD_MARK, Swapper

__all__ = ["NEW_MARK", "OLD_MARK", "BackupOptions", "BackupResult", "Engine", "EngineOptions", "EngineSpec",
           "RestoreOptions", "RestorePlan", "Swapper", "codec_for", "get_engine", "names", "spec", "specs",
           "swapper_for"]
