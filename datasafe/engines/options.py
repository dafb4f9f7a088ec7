"""Engine options: the settings only one engine understands, as that engine's own model.

The generic :class:`~datasafe.engines.base.BackupOptions` and
:class:`~datasafe.engines.base.RestoreOptions` carry such settings by name in ``engine_settings``
(filled from the same CLI flags and configuration keys as ever, e.g. ``--no-owner`` and
``pg_bin``); each engine reads the ones its model declares with :meth:`EngineOptions.of` and
ignores the rest, so one configuration serves sources of every engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from datasafe.errors import ConfigError

_O = TypeVar("_O", bound="EngineOptions")


class HasEngineSettings(Protocol):
    """Backup and restore options: both carry the engine-specific settings by name."""

    @property
    def engine_settings(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class EngineOptions:
    """An engine's own options (none for an engine that has none). Subclasses add fields."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The settings this model reads."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_settings(cls: type[_O], settings: Mapping[str, Any]) -> _O:
        """The model from the settings it declares; unset (None) ones keep their defaults."""
        values = {name: settings[name] for name in cls.names() if settings.get(name) is not None}
        try:
            return cls(**values)
        except TypeError as exc:  # pragma: no cover - the names come from the model itself
            raise ConfigError(f"invalid engine options: {exc}") from None

    @classmethod
    def of(cls: type[_O], options: HasEngineSettings) -> _O:
        """The model from backup or restore options."""
        return cls.from_settings(options.engine_settings)
