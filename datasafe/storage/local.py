"""Local filesystem storage: temp file, fsync, rename."""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import secrets
import shutil
import stat as stat_mode
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel

from datasafe.errors import NotFound, StorageError
from datasafe.storage.base import ObjectStat, ObjectWriter, StorageBackend

TMP_MARK = ".tmp-"


def _storage_error(action: str, path: Path, exc: OSError) -> StorageError:
    reason = exc.strerror or str(exc)
    hint = None
    if exc.errno == errno.ENOSPC:
        hint = "free space on the storage volume or point --storage elsewhere"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "check the permissions of the storage folder"
    return StorageError(f"cannot {action} {path}: {reason}", hint=hint)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _LocalWriter(ObjectWriter):
    def __init__(self, final: Path) -> None:
        self._final = final
        self._tmp = final.with_name(f"{final.name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
        self._done = False
        self._committed = False
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._fh: BinaryIO | None = open(self._tmp, "xb")  # noqa: SIM115 - closed in commit/abort
        except OSError as exc:
            raise _storage_error("create", self._tmp, exc) from exc
        self.bytes_written = 0

    def write(self, data: bytes | memoryview) -> None:
        assert self._fh is not None, "write after commit/abort"
        try:
            self._fh.write(data)
        except OSError as exc:
            self.abort()
            raise _storage_error("write", self._final, exc) from exc
        self.bytes_written += len(data)

    def commit(self) -> None:
        if self._done:
            if not self._committed:
                raise StorageError(f"commit of {self._final} after it was aborted")
            return
        assert self._fh is not None
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
            os.replace(self._tmp, self._final)
            _fsync_dir(self._final.parent)
        except OSError as exc:
            self.abort()
            raise _storage_error("write", self._final, exc) from exc
        self._done = self._committed = True

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        # best effort: the error that made us abort (a read-only or failing file system) matters more
        with contextlib.suppress(OSError):
            self._tmp.unlink()


class LocalStorage(StorageBackend):
    """Objects are files below a root folder."""

    scheme = "file"

    def __init__(self, location: str) -> None:
        if location.startswith("file://"):
            parts = urlsplit(location)
            location = unquote(parts.netloc + parts.path)
        self.root = Path(location).expanduser().absolute()

    @classmethod
    def from_location(cls, location: str, settings: BaseModel | None = None) -> LocalStorage:
        if settings is not None:
            raise TypeError(f"file storage has no settings, got {type(settings).__name__}")
        return cls(location)

    @property
    def url(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        clean = key.strip("/")
        if ".." in clean.split("/"):
            raise StorageError(f"invalid object key {key!r}")
        return self.root / clean if clean else self.root

    def open_write(self, key: str) -> ObjectWriter:
        return _LocalWriter(self._path(key))

    def open_read(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"{path} does not exist") from exc
        except OSError as exc:
            raise _storage_error("read", path, exc) from exc

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def size(self, key: str) -> int:
        path = self._path(key)
        try:
            return path.stat().st_size
        except FileNotFoundError as exc:
            raise NotFound(f"{path} does not exist") from exc

    def stat(self, key: str) -> ObjectStat:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError as exc:
            raise NotFound(f"{path} does not exist") from exc
        except OSError as exc:
            raise _storage_error("read", path, exc) from exc
        if stat_mode.S_ISDIR(st.st_mode):
            raise NotFound(f"{path} is a folder, not an object")
        return ObjectStat(size=st.st_size, checksum=None)

    def list(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return
        keys: builtins.list[str] = []
        for dirpath, _dirnames, filenames in os.walk(base):
            keys.extend(Path(dirpath, n).relative_to(self.root).as_posix() for n in filenames if TMP_MARK not in n)
        # sorted as whole keys (not folder by folder) so every backend lists in the same order
        yield from sorted(keys)

    def list_dirs(self, prefix: str) -> builtins.list[str]:
        base = self._path(prefix)
        try:
            return sorted(e.name for e in os.scandir(base) if e.is_dir())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _storage_error("list", base, exc) from exc

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _storage_error("delete", self._path(key), exc) from exc

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix)

        def gone_is_fine(_func: object, _name: str, exc_info: tuple[type[BaseException], BaseException, object]
                         ) -> None:
            # an entry removed meanwhile (a writer aborting its temporary file) must not stop the rest
            if not isinstance(exc_info[1], FileNotFoundError):
                raise exc_info[1]

        for _ in range(3):
            try:
                shutil.rmtree(path, onerror=gone_is_fine)
            except OSError as exc:
                if isinstance(exc, FileNotFoundError):
                    continue
                if exc.errno == errno.ENOTEMPTY:  # a file appeared while removing: once more
                    continue
                raise _storage_error("delete", path, exc) from exc
            if not path.exists():
                return

    def remove_folder_if_empty(self, prefix: str) -> None:
        path = self._path(prefix)
        if path == self.root:
            return
        try:
            path.rmdir()  # atomic, and only when empty: a snapshot begun meanwhile keeps its folder
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise _storage_error("delete", path, exc) from exc

    def create_exclusive(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise _storage_error("create", path, exc) from exc
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def link(self, src_key: str, dst_key: str) -> bool:
        # objects are never changed once written (a new version is a new file renamed into place),
        # so two keys may share one file; the source was made durable when it was written
        src, final = self._path(src_key), self._path(dst_key)
        tmp = final.with_name(f"{final.name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, tmp)
        except FileNotFoundError as exc:
            raise NotFound(f"{src} does not exist") from exc
        except OSError:  # no hard links here (another file system, a share): the caller copies
            return False
        try:
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise _storage_error("write", final, exc) from exc
        return True

    def check_writable(self) -> None:
        probe = self._path(f".datasafe-probe{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")  # one per thread too
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise _storage_error("write to", self.root, exc) from exc
