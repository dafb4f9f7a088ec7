"""The storage seam: where snapshots live.

A backend stores opaque objects under ``/``-separated keys relative to its root. Writes are
atomic per object: a reader sees either nothing or the whole object. Everything above this
layer (snapshots, manifests, chunks) only talks to :class:`StorageBackend`.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, ClassVar

from pydantic import BaseModel


@dataclass(frozen=True)
class ObjectStat:
    """What a backend knows about a stored object without reading it."""

    #: stored size in bytes
    size: int
    #: the backend's own checksum of the stored bytes, or None when it keeps none. Values are only
    #: comparable within one backend: S3 reports ``sha256:<base64>`` for an object written in one
    #: request and ``sha256:<base64>-<parts>`` (a checksum of the part checksums) for a multipart one.
    checksum: str | None


class ObjectWriter(ABC):
    """A streaming write of one object that becomes visible only on :meth:`commit`."""

    bytes_written: int = 0
    #: set by :meth:`commit`: what ``stat(key).checksum`` will report for the object (None if nothing)
    checksum: str | None = None

    @abstractmethod
    def write(self, data: bytes | memoryview) -> None:
        """Append bytes to the object."""

    @abstractmethod
    def commit(self) -> None:
        """Make the object durable and visible under its key."""

    @abstractmethod
    def abort(self) -> None:
        """Throw the partial object away; safe to call more than once."""

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class StorageBackend(ABC):
    """Objects under keys; one subclass per URL scheme."""

    scheme: ClassVar[str]

    @classmethod
    def from_location(cls, location: str, settings: BaseModel | None = None) -> StorageBackend:
        """The backend for ``location``, with the settings of its scheme (None: the defaults).

        Raises:
            TypeError: ``settings`` is not this backend's settings model, or this backend is not
                opened from a location (a view of another backend, such as a prefix).
        """
        raise TypeError(f"{cls.__name__} is not opened from a location")

    @property
    @abstractmethod
    def url(self) -> str:
        """The location, safe to print (no credentials)."""

    @abstractmethod
    def open_write(self, key: str) -> ObjectWriter:
        """Start an atomic streaming write of ``key``."""

    @abstractmethod
    def open_read(self, key: str) -> BinaryIO:
        """Open ``key`` for streaming reads; raises NotFound when absent."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` is an object or a folder holding objects; ``""`` asks for the location itself."""

    @abstractmethod
    def size(self, key: str) -> int:
        """The stored size of ``key`` in bytes; raises NotFound when absent."""

    @abstractmethod
    def stat(self, key: str) -> ObjectStat:
        """Size and backend checksum of ``key``; raises NotFound when absent."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[str]:
        """All keys below the folder ``prefix`` (recursively), in lexicographic order of the whole key."""

    @abstractmethod
    def list_dirs(self, prefix: str) -> builtins.list[str]:
        """Names of the immediate sub-folders of ``prefix``, sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; no error when it is already gone."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Remove every key below the folder ``prefix``; no error when there is none."""

    @abstractmethod
    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Create ``key`` only if it does not exist yet; False when it did (the lease primitive)."""

    @abstractmethod
    def check_writable(self) -> None:
        """Raise StorageError unless objects can be created here."""

    def remove_folder_if_empty(self, prefix: str) -> None:
        """Remove the folder ``prefix`` if nothing is in it; a no-op where folders are no objects (S3)."""
        return None

    def retain_for(self, days: int) -> bool:
        """Keep the objects written from now on for ``days`` days, where this backend can (S3
        Object Lock, in the mode its settings name); False where it cannot, or is not set up to."""
        return False

    def link(self, src_key: str, dst_key: str) -> bool:
        """Make ``dst_key`` an object with the bytes of ``src_key`` without reading or writing them,
        where this backend can (a hard link in a local folder); False where it cannot."""
        return False

    def read_bytes(self, key: str) -> bytes:
        """The whole content of ``key``."""
        with self.open_read(key) as fh:
            return fh.read()

    def write_bytes(self, key: str, data: bytes) -> None:
        """Atomically replace ``key`` with ``data``."""
        with self.open_write(key) as w:
            w.write(data)
