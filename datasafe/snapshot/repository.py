"""A repository: the snapshots of every source in one storage location.

Layout: ``<source>/<snapshot-id>/manifest.json`` plus ``schema/`` and ``data/`` objects. A snapshot
folder without a manifest is incomplete: it is never listed as restorable, and a later backup
removes it once the process that wrote it is gone.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from datasafe.errors import ConfigError, IntegrityError, NotFound, StorageError
from datasafe.snapshot.chunks import ChunkWriter, Compression
from datasafe.snapshot.manifest import MANIFEST_NAME, Manifest
from datasafe.storage.base import StorageBackend
from datasafe.storage.prefixed import PrefixedStorage

log = logging.getLogger(__name__)

IN_PROGRESS = ".in-progress"
#: An incomplete snapshot whose writer cannot be checked (another host) is removed after this.
STALE_AFTER_S = 24 * 3600
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SNAPSHOT_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


def new_snapshot_id(now: datetime | None = None) -> str:
    """Time-ordered, collision-resistant id such as ``20261126T120500Z-3fa9c1``."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def check_source_name(name: str) -> str:
    if not SOURCE_NAME.match(name):
        raise ConfigError(
            f"invalid source name {name!r}: use letters, digits, '.', '_' or '-' (at most 128 characters)"
        )
    return name


@dataclass
class SnapshotInfo:
    """A listed snapshot: complete ones carry their manifest, others the reason they are not usable."""

    source: str
    snapshot_id: str
    manifest: Manifest | None = None
    problem: str | None = None
    #: a manifest exists but cannot be trusted (edited, truncated): unlike an incomplete snapshot
    #: this is a failure that ``verify --all`` and monitoring must report
    damaged: bool = False

    @property
    def complete(self) -> bool:
        return self.manifest is not None


class SnapshotWriter:
    """Writes the objects of one new snapshot; the manifest goes last via :meth:`commit`."""

    def __init__(self, repo: Repository, source: str, snapshot_id: str) -> None:
        self.repo = repo
        self.storage = repo.storage
        self.source = source
        self.snapshot_id = snapshot_id
        self.prefix = f"{source}/{snapshot_id}"
        #: objects of this snapshot, keyed relative to its folder (as the manifest records them)
        self.objects = PrefixedStorage(repo.storage, self.prefix)
        self._committed = False

    def begin(self) -> None:
        marker = json.dumps(
            {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        ).encode()
        if not self.storage.create_exclusive(f"{self.prefix}/{IN_PROGRESS}", marker):
            raise StorageError(f"snapshot folder {self.prefix} already exists")

    def table_writer(
        self,
        ordinal: int,
        compression: Compression,
        chunk_size: int,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ChunkWriter:
        return ChunkWriter(self.objects, f"data/{ordinal:05d}", compression, chunk_size, on_progress)

    def blob_writer(self, name: str, compression: Compression) -> ChunkWriter:
        return ChunkWriter(self.objects, f"schema/{name}", compression, 1 << 62, line_based=False)

    def commit(self, manifest: Manifest) -> None:
        """Write the manifest atomically; from this moment the snapshot is complete."""
        self.storage.write_bytes(f"{self.prefix}/{MANIFEST_NAME}", manifest.to_json())
        self.storage.delete(f"{self.prefix}/{IN_PROGRESS}")
        self._committed = True

    def abort(self) -> None:
        """Remove everything written so far (best effort)."""
        if self._committed:
            return
        try:
            self.storage.delete_prefix(self.prefix)
        except StorageError as exc:
            log.warning("could not remove incomplete snapshot %s: %s", self.prefix, exc)


class Repository:
    """Finds, reads and creates snapshots in one storage location."""

    def __init__(self, storage: StorageBackend) -> None:
        self.storage = storage

    # -- reading -----------------------------------------------------------------------------
    def sources(self) -> builtins.list[str]:
        return [d for d in self.storage.list_dirs("") if SOURCE_NAME.match(d)]

    def snapshot_ids(self, source: str) -> builtins.list[str]:
        return [d for d in self.storage.list_dirs(source) if SNAPSHOT_ID.match(d)]

    def load_manifest(self, source: str, snapshot_id: str) -> Manifest:
        key = f"{source}/{snapshot_id}/{MANIFEST_NAME}"
        try:
            data = self.storage.read_bytes(key)
        except NotFound as exc:
            raise IntegrityError(f"snapshot {snapshot_id} of {source} is incomplete (no manifest)") from exc
        manifest = Manifest.from_json(data, f"{source}/{snapshot_id}")
        if manifest.snapshot_id != snapshot_id or manifest.source != source:
            raise IntegrityError(f"manifest {key} belongs to another snapshot ({manifest.snapshot_id})")
        return manifest

    def list(self, source: str | None = None, *, include_incomplete: bool = False) -> builtins.list[SnapshotInfo]:
        """Snapshots, oldest first; incomplete or damaged ones only when asked."""
        if source is not None:
            check_source_name(source)
        if not self.storage.exists(""):
            raise StorageError(f"storage {self.storage.url} does not exist", hint="check --storage")
        out: builtins.list[SnapshotInfo] = []
        for src in [source] if source else self.sources():
            for sid in self.snapshot_ids(src):
                try:
                    info = SnapshotInfo(src, sid, manifest=self.load_manifest(src, sid))
                except IntegrityError as exc:
                    damaged = self.storage.exists(f"{src}/{sid}/{MANIFEST_NAME}")
                    info = SnapshotInfo(src, sid, problem=str(exc), damaged=damaged)
                if info.complete or include_incomplete:
                    out.append(info)
        out.sort(key=_taken_order)
        return out

    def resolve(self, ref: str, source: str | None = None) -> Manifest:
        """Find a snapshot by id (or unique id prefix), ``latest``, or tag (newest carrying it)."""
        if source is None and "/" in ref:
            source, ref = ref.split("/", 1)
        complete = self.list(source)
        if ref == "latest":
            candidates = complete
            if source is None and len({i.source for i in candidates}) > 1:
                names = ", ".join(sorted({i.source for i in candidates}))
                raise ConfigError(f"'latest' is ambiguous: several sources ({names}); name one with --source")
            if not candidates:
                where = f"source {source!r}" if source else self.storage.url
                raise NotFound(f"no complete snapshot in {where}")
            newest = candidates[-1]
            for info in self.list(source, include_incomplete=True):
                if info.damaged and _taken_order(info) > _taken_order(newest):
                    log.warning("snapshot %s is newer than 'latest' but damaged: %s", info.snapshot_id, info.problem)
            return newest.manifest  # type: ignore[return-value]
        by_id = [i for i in complete if i.snapshot_id == ref] or [
            i for i in complete if i.snapshot_id.startswith(ref) and len(ref) >= 8
        ]
        if len(by_id) == 1:
            return by_id[0].manifest  # type: ignore[return-value]
        if len(by_id) > 1:
            raise ConfigError(f"snapshot id prefix {ref!r} is ambiguous: give more characters")
        tagged = [i for i in complete if i.manifest is not None and ref in i.manifest.tags]
        if tagged:
            return tagged[-1].manifest  # type: ignore[return-value]
        if SNAPSHOT_ID.match(ref):
            for src in [source] if source else self.sources():
                if ref in self.snapshot_ids(src):
                    self.load_manifest(src, ref)  # raises the precise IntegrityError
        raise NotFound(f"no snapshot, tag or id prefix {ref!r} in {self.storage.url}")

    def snapshot_storage(self, manifest: Manifest) -> PrefixedStorage:
        """The objects of one snapshot, keyed as its manifest lists them."""
        return PrefixedStorage(self.storage, f"{manifest.source}/{manifest.snapshot_id}")

    # -- writing -----------------------------------------------------------------------------
    def new_snapshot(self, source: str) -> SnapshotWriter:
        check_source_name(source)
        self.storage.check_writable()
        writer = SnapshotWriter(self, source, new_snapshot_id())
        writer.begin()
        return writer

    def cleanup_incomplete(self, source: str) -> builtins.list[str]:
        """Remove incomplete snapshots of ``source`` whose writer is gone; returns their ids."""
        removed: builtins.list[str] = []
        for sid in self.snapshot_ids(source):
            prefix = f"{source}/{sid}"
            if self.storage.exists(f"{prefix}/{MANIFEST_NAME}"):
                continue
            if self._writer_alive(prefix):
                continue
            log.info("removing incomplete snapshot %s of %s (left by an interrupted backup)", sid, source)
            self.storage.delete_prefix(prefix)
            removed.append(sid)
        return removed

    def _writer_alive(self, prefix: str) -> bool:
        try:
            marker = json.loads(self.storage.read_bytes(f"{prefix}/{IN_PROGRESS}"))
        except (NotFound, ValueError):
            return False
        if marker.get("host") == socket.gethostname():
            return _pid_alive(int(marker.get("pid", 0)))
        return bool(time.time() - float(marker.get("started", 0)) < STALE_AFTER_S)


def _taken_order(info: SnapshotInfo) -> tuple[float, str, str]:
    """Oldest first by start time (ids only resolve to the second), then id and source."""
    if info.manifest is not None:
        started = info.manifest.started_at.timestamp()
    else:
        started = datetime.strptime(info.snapshot_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    return started, info.snapshot_id, info.source


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
