"""Storage backends, chosen by URL scheme."""

from __future__ import annotations

from collections.abc import Callable

from datasafe.errors import ConfigError
from datasafe.storage.base import ObjectWriter, StorageBackend
from datasafe.storage.local import LocalStorage

DEFAULT_STORAGE = "./datasafe-backups"

#: URL scheme -> factory. A plain path means ``file``.
BACKENDS: dict[str, Callable[[str], StorageBackend]] = {
    "file": LocalStorage,
}


def open_storage(location: str) -> StorageBackend:
    """Return the backend for a storage URL or plain path."""
    scheme = location.split("://", 1)[0].lower() if "://" in location else "file"
    factory = BACKENDS.get(scheme)
    if factory is None:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError(f"unknown storage scheme {scheme!r} in {location!r} (supported: {known})")
    return factory(location)


__all__ = ["BACKENDS", "DEFAULT_STORAGE", "ObjectWriter", "StorageBackend", "open_storage"]
