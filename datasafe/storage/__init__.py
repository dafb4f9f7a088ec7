"""Storage backends, chosen by URL scheme."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from datasafe.errors import ConfigError
from datasafe.storage.base import ObjectStat, ObjectWriter, StorageBackend
from datasafe.storage.local import LocalStorage

if TYPE_CHECKING:
    from datasafe.storage.s3_settings import S3Settings

DEFAULT_STORAGE = "./datasafe-backups"

#: A factory gets the location and the settings model of its own backend (None: defaults).
StorageFactory = Callable[[str, object], StorageBackend]


def _open_local(location: str, _settings: object) -> StorageBackend:
    return LocalStorage(location)


def _open_s3(location: str, settings: object) -> StorageBackend:
    # imported here: the module is only needed for s3:// locations (and boto3 only when one is opened)
    from datasafe.storage.s3 import S3Settings, S3Storage

    if settings is not None and not isinstance(settings, S3Settings):
        raise TypeError(f"s3 settings must be S3Settings, not {type(settings).__name__}")
    return S3Storage(location, settings)


#: URL scheme -> factory. A plain path means ``file``.
BACKENDS: dict[str, StorageFactory] = {
    "file": _open_local,
    "s3": _open_s3,
}


def open_storage(location: str, s3: S3Settings | None = None) -> StorageBackend:
    """Return the backend for a storage URL or plain path.

    Args:
        location: a path, ``file://`` URL or ``s3://bucket/prefix`` URL.
        s3: settings for ``s3://`` locations (the ``s3:`` section of datasafe.yml); None for defaults.
    """
    scheme = location.split("://", 1)[0].lower() if "://" in location else "file"
    factory = BACKENDS.get(scheme)
    if factory is None:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError(f"unknown storage scheme {scheme!r} in {location!r} (supported: {known})")
    settings: dict[str, object] = {"s3": s3}
    return factory(location, settings.get(scheme))


__all__ = ["BACKENDS", "DEFAULT_STORAGE", "ObjectStat", "ObjectWriter", "StorageBackend", "open_storage"]
