"""The engine registry: one line per database engine (its name, URL schemes and package).

Plain data at the bottom of the layers, so that :mod:`datasafe.urls` tells engines apart by URL
scheme without importing :mod:`datasafe.engines`. Everything else an engine brings (its Engine
class, default port, driver extra, row codec, type kinds, options, swapper) it declares once, as
``SPEC`` in its own package's ``__init__``; :mod:`datasafe.engines.registry` reads both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineName:
    """How an engine is named and found.

    Attributes:
        name: the engine's name in manifests, messages and ``DatabaseURL.engine``.
        package: the package whose ``__init__`` declares the engine's ``SPEC``.
        schemes: URL schemes that select the engine, kept as written (``mariadb+...``).
        aliases: further URL schemes that are read as ``name`` (``postgres://`` is ``postgresql://``).
        file: the database is a local file (no server, no port).
        pg_dump: its schema is a pg_dump archive, and its manifests record sequences and the
            ``extra`` that archive needs (docs/format.md, "Sequences and extra").
    """

    name: str
    package: str
    schemes: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    file: bool = False
    pg_dump: bool = False


#: Every engine of this version. Adding an engine adds one line here.
REGISTRY: tuple[EngineName, ...] = (
    EngineName("postgresql", "datasafe.engines.postgres", ("postgresql",), aliases=("postgres",), pg_dump=True),
    EngineName("sqlite", "datasafe.engines.sqlite", ("sqlite",), file=True),
    EngineName("mysql", "datasafe.engines.mysql", ("mysql", "mariadb")),
)

#: engine name -> its entry
BY_NAME: dict[str, EngineName] = {e.name: e for e in REGISTRY}
#: URL scheme (backend part, before any ``+driver``) -> engine name; aliases included
SCHEMES: dict[str, str] = {s: e.name for e in REGISTRY for s in (*e.schemes, *e.aliases)}
#: URL scheme alias -> the scheme it is read as
ALIASES: dict[str, str] = {a: e.name for e in REGISTRY for a in e.aliases}


def is_file_engine(engine: str) -> bool:
    """Whether ``engine`` keeps its database in a local file (SQLite)."""
    entry = BY_NAME.get(engine)
    return entry is not None and entry.file


def uses_pg_dump(engine: str) -> bool:
    """Whether ``engine``'s manifests record sequences and a pg_dump archive's ``extra`` (PostgreSQL)."""
    entry = BY_NAME.get(engine)
    return entry is not None and entry.pg_dump
