"""Engines, keyed by the name users see in URLs (``postgresql``, ``sqlite``, ...)."""

from __future__ import annotations

import importlib

from datasafe.engines.base import BackupOptions, BackupResult, Engine, RestoreOptions, RestorePlan
from datasafe.errors import ConfigError, DependencyError

#: engine name -> (module, class, pip extra that provides its driver)
ENGINES: dict[str, tuple[str, str, str | None]] = {
    "postgresql": ("datasafe.engines.postgres", "PostgresEngine", "postgres"),
    "sqlite": ("datasafe.engines.sqlite", "SqliteEngine", None),
    "mysql": ("datasafe.engines.mysql", "MySQLEngine", "mysql"),
}


def get_engine(name: str) -> Engine:
    """Instantiate the engine for ``name``; a missing driver gives an actionable error."""
    try:
        module_name, class_name, extra = ENGINES[name]
    except KeyError:
        known = ", ".join(sorted(ENGINES))
        raise ConfigError(f"no engine for {name!r} databases in this version (available: {known})") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"pip install 'datasafe[{extra}]'" if extra else "reinstall datasafe"
        raise DependencyError(f"the {name} engine needs {exc.name}: {hint}") from exc
    engine: Engine = getattr(module, class_name)()
    return engine


__all__ = ["ENGINES", "BackupOptions", "BackupResult", "Engine", "RestoreOptions", "RestorePlan", "get_engine"]
