"""What an engine declares about itself: :class:`EngineSpec`, one per engine package (its ``SPEC``).

The spec names the pieces that import the engine's driver (its Engine and Swapper classes) as
``"module:Class"`` text, loaded on first use by :mod:`datasafe.engines.registry`: drivers are
optional extras, and reading a spec (for its row codec, schema reader, type kinds or options) never
needs one.
"""

from __future__ import annotations

from dataclasses import dataclass

from datasafe.engines.codec import RowCodec
from datasafe.engines.options import EngineOptions
from datasafe.engines.schema_text import SchemaReader


@dataclass(frozen=True)
class EngineSpec:
    """One engine's capabilities.

    Attributes:
        name: the engine's name (as in :data:`datasafe.engine_names.REGISTRY`).
        extra: the pip extra that installs its driver (``datasafe[extra]``); None: none needed.
        default_port: the server's port when a URL names none; None for a file engine.
        engine: ``"module:Class"`` of its :class:`~datasafe.engines.base.Engine` (backup, restore,
            identity, the scratch database of ``verify --deep``: ``Engine.scratch``; a live database's
            samples, rows and schema text for ``datasafe scan`` and ``datasafe leaks``).
        swapper: ``"module:Class"`` of its :class:`~datasafe.engines.swap.Swapper` (``datasafe refresh``).
        codec: the row codec of the chunks its backups write (masking and scanning read them).
        type_kinds: its column type names, as (regular expression, kind) pairs, for
            :func:`datasafe.engines.kinds.column_kind` (kinds: :data:`datasafe.engines.kinds.KINDS`).
        schema: the reader of the schema parts its backups write, into schema text (scanning reads it).
        options: the model of its own backup and restore options.
    """

    name: str
    extra: str | None
    default_port: int | None
    engine: str
    swapper: str
    codec: type[RowCodec]
    type_kinds: tuple[tuple[str, str], ...]
    schema: type[SchemaReader]
    options: type[EngineOptions] = EngineOptions
