"""Storage backends, chosen by the URL scheme of a location: the registry and :func:`open_storage`.

- ``base``: :class:`StorageBackend`, the interface every backend implements, and :class:`ObjectWriter`
- ``local``: a folder on a local or mounted file system (``file://`` or a plain path)
- ``prefixed``: a view of another backend below a key prefix (one snapshot's objects)
- ``s3``: Amazon S3 and S3-compatible object stores (``s3://bucket/prefix``)
- ``s3_settings``: the ``s3:`` settings of datasafe.yml and the parsing of ``s3://`` locations
- ``s3_transfer``: multipart uploads and resumable reads of S3 objects

A backend's settings are a section of datasafe.yml named like its scheme (``s3:`` for ``s3://``);
callers pass the configuration's sections by scheme and :func:`open_storage` hands each backend
its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel

from datasafe.errors import ConfigError
from datasafe.storage.base import ObjectStat, ObjectWriter, StorageBackend
from datasafe.storage.local import LocalStorage
from datasafe.storage.s3_settings import S3Settings

DEFAULT_STORAGE = "./datasafe-backups"


@dataclass(frozen=True)
class StorageKind:
    """One storage backend: its URL scheme, its class and the model of its settings section."""

    scheme: str
    #: the backend class; a function so that a backend's module is imported only when it is used
    backend: Callable[[], type[StorageBackend]]
    #: the settings model (the datasafe.yml section named like the scheme); None: no settings
    settings: type[BaseModel] | None = None


def _local() -> type[StorageBackend]:
    return LocalStorage


def _s3() -> type[StorageBackend]:
    from datasafe.storage.s3 import S3Storage  # deferred: start-up time

    return S3Storage


#: URL scheme -> backend. A plain path means ``file``.
BACKENDS: dict[str, StorageKind] = {kind.scheme: kind for kind in (
    StorageKind("file", _local),
    StorageKind("s3", _s3, S3Settings),
)}


def scheme_of(location: str) -> str:
    """The URL scheme of a storage location, lower case; ``file`` for a plain path."""
    return location.split("://", 1)[0].lower() if "://" in location else "file"


def storage_kind(location: str) -> StorageKind:
    """The registered backend of ``location``'s scheme.

    Raises:
        ConfigError: no backend has that scheme.
    """
    scheme = scheme_of(location)
    kind = BACKENDS.get(scheme)
    if kind is None:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError(f"unknown storage scheme {scheme!r} in {location!r} (supported: {known})")
    return kind


def open_storage(location: str, settings: Mapping[str, BaseModel] | None = None) -> StorageBackend:
    """Return the backend for a storage URL or plain path.

    Args:
        location: a path, ``file://`` URL or ``s3://bucket/prefix`` URL.
        settings: storage settings by scheme, as the configuration holds them (``{"s3": S3Settings(...)}``);
            the backend gets the entry of its own scheme. None or a missing entry: the defaults.
    """
    kind = storage_kind(location)
    own = (settings or {}).get(kind.scheme)
    if own is not None and (kind.settings is None or not isinstance(own, kind.settings)):
        raise TypeError(f"settings of {kind.scheme} storage must be "
                        f"{kind.settings.__name__ if kind.settings else 'None'}, not {type(own).__name__}")
    return kind.backend().from_location(location, own)


__all__ = ["BACKENDS", "DEFAULT_STORAGE", "ObjectStat", "ObjectWriter", "StorageBackend", "StorageKind",
           "open_storage", "scheme_of", "storage_kind"]
