"""A view of a backend below a fixed prefix (a snapshot folder), so stored paths stay relative."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import BinaryIO

from datasafe.storage.base import ObjectStat, ObjectWriter, StorageBackend


class PrefixedStorage(StorageBackend):
    """Delegates to ``inner`` with ``prefix/`` put in front of every key."""

    scheme = "prefixed"

    def __init__(self, inner: StorageBackend, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix.strip("/")

    def _k(self, key: str) -> str:
        return f"{self.prefix}/{key.lstrip('/')}" if key else self.prefix

    @property
    def url(self) -> str:
        return f"{self.inner.url.rstrip('/')}/{self.prefix}"

    def open_write(self, key: str) -> ObjectWriter:
        return self.inner.open_write(self._k(key))

    def open_read(self, key: str) -> BinaryIO:
        return self.inner.open_read(self._k(key))

    def exists(self, key: str) -> bool:
        return self.inner.exists(self._k(key))

    def size(self, key: str) -> int:
        return self.inner.size(self._k(key))

    def stat(self, key: str) -> ObjectStat:
        return self.inner.stat(self._k(key))

    def list(self, prefix: str) -> Iterator[str]:
        cut = len(self.prefix) + 1
        for key in self.inner.list(self._k(prefix)):
            yield key[cut:]

    def list_dirs(self, prefix: str) -> builtins.list[str]:
        return self.inner.list_dirs(self._k(prefix))

    def delete(self, key: str) -> None:
        self.inner.delete(self._k(key))

    def delete_prefix(self, prefix: str) -> None:
        self.inner.delete_prefix(self._k(prefix))

    def remove_folder_if_empty(self, prefix: str) -> None:
        self.inner.remove_folder_if_empty(self._k(prefix))

    def create_exclusive(self, key: str, data: bytes) -> bool:
        return self.inner.create_exclusive(self._k(key), data)

    def link(self, src_key: str, dst_key: str) -> bool:
        return self.inner.link(self._k(src_key), self._k(dst_key))

    def link_from(self, other: PrefixedStorage, key: str) -> bool:
        """:meth:`link` ``key`` of ``other`` (a view of the same backend) to ``key`` here."""
        return other.inner is self.inner and self.inner.link(other._k(key), self._k(key))

    def check_writable(self) -> None:
        self.inner.check_writable()
