"""The engines of this version, found through the one registry (:data:`datasafe.engine_names.REGISTRY`).

Each registered package declares an :class:`~datasafe.engines.spec.EngineSpec` as ``SPEC`` in its
``__init__``; this module reads the specs and loads what they name on first use, turning a
missing driver into a :class:`~datasafe.errors.DependencyError` that says what to install.
"""

from __future__ import annotations

import functools
import importlib
from typing import TypeVar

from datasafe.engine_names import BY_NAME, REGISTRY
from datasafe.engines.base import Engine
from datasafe.engines.codec import RowCodec
from datasafe.engines.spec import EngineSpec
from datasafe.engines.swap import Swapper
from datasafe.errors import ConfigError, DependencyError, IntegrityError
from datasafe.urls import DatabaseURL

_T = TypeVar("_T")


def names() -> tuple[str, ...]:
    """Every registered engine's name, in registry order."""
    return tuple(e.name for e in REGISTRY)


@functools.cache
def spec(name: str) -> EngineSpec:
    """The spec of engine ``name`` (no driver is imported); ConfigError for an unknown engine."""
    try:
        entry = BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(BY_NAME))
        raise ConfigError(f"no engine for {name!r} databases in this version (available: {known})") from None
    found = getattr(importlib.import_module(entry.package), "SPEC", None)
    if not isinstance(found, EngineSpec) or found.name != name:
        raise TypeError(f"{entry.package} declares no SPEC for the {name} engine")
    return found


def specs() -> tuple[EngineSpec, ...]:
    """The spec of every registered engine, in registry order."""
    return tuple(spec(n) for n in names())


def load(ref: str, kind: type[_T], engine: EngineSpec, needs: str) -> type[_T]:
    """The class ``"module:Class"`` of ``engine``, a subclass of ``kind``.

    Raises:
        DependencyError: its module needs a driver that is not installed; ``needs`` begins the
            message (``the mysql engine``: "the mysql engine needs MySQLdb: pip install ...").
    """
    module_name, _, class_name = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"pip install 'datasafe[{engine.extra}]'" if engine.extra else "reinstall datasafe"
        raise DependencyError(f"{needs} needs {exc.name}: {hint}") from exc
    found = getattr(module, class_name)
    if not (isinstance(found, type) and issubclass(found, kind)):
        raise TypeError(f"{ref} is not a {kind.__name__}")
    return found


def get_engine(name: str) -> Engine:
    """Instantiate the engine for ``name``; a missing driver gives an actionable error."""
    engine_spec = spec(name)
    return load(engine_spec.engine, Engine, engine_spec, f"the {name} engine")()  # type: ignore[type-abstract]


def swapper_for(url: DatabaseURL) -> Swapper:
    """The swapper of ``datasafe refresh`` for the engine of ``url``; a missing driver gives an actionable error."""
    if url.engine not in BY_NAME:
        known = ", ".join(sorted(BY_NAME))
        raise ConfigError(f"refresh does not support {url.engine!r} databases (supported: {known})")
    engine_spec = spec(url.engine)
    cls = load(engine_spec.swapper, Swapper, engine_spec, f"refreshing {url.engine} databases")  # type: ignore[type-abstract]
    return cls(url)


def codecs() -> dict[str, type[RowCodec]]:
    """Row encoding name -> the codec class, for every engine."""
    return {s.codec.encoding: s.codec for s in specs()}


def codec_for(encoding: str) -> RowCodec:
    """A codec for rows stored as ``encoding``; IntegrityError when no engine writes it."""
    known = codecs()
    try:
        return known[encoding]()
    except KeyError:
        raise IntegrityError(f"cannot mask rows stored as {encoding!r} (known: {', '.join(known)})") from None
