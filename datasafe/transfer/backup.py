"""Backup into a repository: a source's rows read by its engine, stored, read back and committed."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterable, Iterator
from typing import Protocol

from datasafe import __version__, audit, clock, faultpoints
from datasafe.config import Source
from datasafe.engines import BackupOptions, Engine, get_engine
from datasafe.engines.base import DEFAULT_SPLIT_BYTES
from datasafe.errors import ConfigError
from datasafe.humanize import count, size
from datasafe.identity import DatabaseIdentity
from datasafe.progress import NullProgress, Progress
from datasafe.redact import redact
from datasafe.snapshot.chunks import Compression
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository, SnapshotWriter

log = logging.getLogger(__name__)

#: what is re-read from storage before a new snapshot's manifest is written
READ_BACK_MODES = ("digest", "full", "none")


class HeldLock(Protocol):
    """A lock on a source that can tell whether it is still held (:class:`datasafe.ops.lease.Lease`)."""

    def check(self) -> None:
        """Raise when the lock was lost."""


def backup(
    source: Source,
    repo: Repository,
    *,
    tags: Iterable[str] = (),
    jobs: int | None = None,
    compression: Compression | None = None,
    chunk_size: int = 64 << 20,
    read_back: str = "digest",
    progress: Progress | None = None,
    lease: HeldLock | None = None,
) -> Manifest:
    """Take a consistent snapshot of ``source``; returns its manifest once it is stored and checked.

    ``read_back`` decides what is re-read from storage before the manifest is written: ``digest``
    (default) re-reads every stored byte and checks sizes and SHA-256; ``full`` also decompresses
    and checks raw digests and row counts (what ``verify`` does); ``none`` skips the check. The
    check is recorded as the snapshot's first verification. With a ``lease`` (see
    :mod:`datasafe.ops.lease`), the snapshot is only committed while the lease is still held.
    The run is recorded in the audit trail.
    """
    if read_back not in READ_BACK_MODES:
        raise ConfigError(f"read_back must be one of {', '.join(READ_BACK_MODES)}, not {read_back!r}")
    if not source.url.database:
        raise ConfigError(f"{source.url} names no database")
    engine = get_engine(source.url.engine)
    tags = check_tags(tags)
    removed = repo.cleanup_incomplete(source.name)
    if removed:
        log.info("removed %s of %s", count(len(removed), "incomplete snapshot"), source.name)
    options = BackupOptions(
        jobs=jobs or source.jobs or 2,
        chunk_size=chunk_size,
        compression=compression or Compression(),
        split_larger_than=DEFAULT_SPLIT_BYTES if source.split_larger_than is None else source.split_larger_than,
        engine_settings={"pg_bin": source.pg_bin},
        progress=progress or NullProgress(),
    )
    with audit.audited(repo.storage, "backup", key=repo.audit_key, source=source.name) as record:
        # the rows' origin, as the server says: the policy classifies the snapshot by it, never by its name
        origin = engine.identity(source.url)
        record["origin"] = origin.as_dict()
        writer = repo.new_snapshot(source.name)
        record["snapshot"] = writer.snapshot_id
        return _backup(source, repo, engine, writer, options, tags, chunk_size, read_back, lease, origin)


def _backup(source: Source, repo: Repository, engine: Engine, writer: SnapshotWriter, options: BackupOptions,
            tags: list[str], chunk_size: int, read_back: str, lease: HeldLock | None,
            origin: DatabaseIdentity) -> Manifest:
    log.info("backup of %s (%s) started as snapshot %s", source.name, source.url, writer.snapshot_id)
    started = clock.now()

    def before_commit() -> None:
        faultpoints.reach("backup.commit")
        if lease is not None:
            lease.check()  # never commit a snapshot after losing the source's lock

    try:
        faultpoints.reach("backup.begin")
        with _gc_paused():
            result = engine.backup(source.url, writer, options)
        manifest = Manifest(
            datasafe_version=__version__,
            snapshot_id=writer.snapshot_id,
            source=source.name,
            source_url=redact(str(source.url)),
            engine=engine.name,
            server_version=result.server_version,
            database=result.database,
            started_at=started,
            finished_at=clock.now(),
            consistency=result.consistency,
            tags=tags,
            compression=options.compression.describe(),
            chunk_size=chunk_size,
            settings=result.settings,
            schema_parts=result.schema_parts,
            tables=result.tables,
            sequences=result.sequences,
            extra=result.extra,
            origin=origin.as_dict(),
        )
        faultpoints.reach("backup.readback")
        writer.finish(manifest, read_back=None if read_back == "none" else "full" if read_back == "full" else "stored",
                      jobs=options.jobs, before_commit=before_commit,
                      after_commit=lambda: faultpoints.reach("backup.committed"))
        # re-read what was stored; an encrypted snapshot's header is checked, its sealed part was
        # just written from ``manifest`` (the backup side holds no key to open it)
        stored = repo.load_manifest(source.name, writer.snapshot_id)
        if stored.is_header:
            stored = writer.attach(manifest)
    except BaseException:
        writer.abort()
        raise
    log.info(
        "snapshot %s of %s complete: %s, %s, %s stored",
        stored.snapshot_id, source.name, count(len(stored.tables), "table"), count(stored.rows, "row"),
        size(stored.stored_size),
    )
    return stored


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Millions of short-lived row objects trigger the cyclic collector constantly; reading a
    database creates no reference cycles worth collecting, so pause it meanwhile."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def check_tags(tags: Iterable[str]) -> list[str]:
    """``tags`` as a list, each checked: no spaces or '/', and not ``latest``."""
    out = []
    for tag in tags:
        if not tag or tag == "latest" or any(c.isspace() or c == "/" for c in tag):
            raise ConfigError(f"invalid tag {tag!r}: no spaces or '/', and not 'latest'")
        out.append(tag)
    return out
