"""The engine seam: how a database kind is backed up, restored and compared.

An engine reads a consistent snapshot of a database into a :class:`SnapshotWriter` and restores
a :class:`Manifest` into a target; it also reads a live database's rows and schema text outside a
backup (``datasafe scan``, ``datasafe leaks``). Nothing above this layer knows SQL dialects.
"""

from __future__ import annotations

import os
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from datasafe import faultpoints
from datasafe.engines.sampling import Consume, RowSample
from datasafe.engines.schema_text import SchemaText
from datasafe.errors import ConfigError, Interrupted
from datasafe.identity import DatabaseIdentity
from datasafe.progress import NullProgress, Progress
from datasafe.snapshot.chunks import ChunkWriter, Compression
from datasafe.snapshot.manifest import Manifest, SchemaPart, Sequence, TableEntry
from datasafe.snapshot.repository import SnapshotWriter
from datasafe.storage.base import StorageBackend
from datasafe.urls import SECRET_QUERY_KEYS, DatabaseURL

#: tables larger than this (bytes on disk, as the server estimates them) are read in ranges by default
DEFAULT_SPLIT_BYTES = 1 << 30


@dataclass
class BackupOptions:
    jobs: int = 2
    chunk_size: int = 64 << 20
    #: tables larger than this are split into ranges read in parallel; 0: never (see :mod:`.split`)
    split_larger_than: int = DEFAULT_SPLIT_BYTES
    compression: Compression = field(default_factory=Compression)
    progress: Progress = field(default_factory=NullProgress)
    #: settings of one engine's own options, by name (``pg_bin``): see :mod:`datasafe.engines.options`
    engine_settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class BackupResult:
    """What an engine found and wrote; the API turns it into the manifest."""

    server_version: str
    database: str
    consistency: dict[str, Any]
    tables: list[TableEntry]
    schema_parts: list[SchemaPart]
    sequences: list[Sequence] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RestoreOptions:
    tables: list[str] | None = None
    schema_only: bool = False
    data_only: bool = False
    clean: bool = False
    jobs: int = 2
    #: load every table on one connection, its rows in snapshot order, even a split table
    #: (``verify --deep`` re-reads a PostgreSQL table in the order it was loaded in)
    keep_row_order: bool = False
    progress: Progress = field(default_factory=NullProgress)
    #: settings of one engine's own options, by name (``pg_bin``, ``no_owner``): see :mod:`datasafe.engines.options`
    engine_settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class RestorePlan:
    """Everything a restore will do, decided (and validated) before anything is changed."""

    manifest: Manifest
    target: DatabaseURL
    tables: list[TableEntry]
    steps: list[str]
    options: RestoreOptions
    target_exists: bool = True
    target_objects: int = 0
    notes: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    #: the policy decision that allowed it (see datasafe.environments.policy)
    policy: dict[str, Any] | None = None
    #: the environment the caller named, if any: name and class
    environment: dict[str, str] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "snapshot": self.manifest.snapshot_id,
            "source": self.manifest.source,
            "target": str(self.target),
            "target_exists": self.target_exists,
            "target_objects": self.target_objects,
            "tables": [t.name for t in self.tables],
            "rows": sum(t.rows for t in self.tables) if not self.options.schema_only else 0,
            "steps": self.steps,
            "notes": self.notes,
            **({"environment": self.environment} if self.environment else {}),
            **({"policy": self.policy} if self.policy else {}),
        }


#: Server for ``verify --deep`` scratch databases when ``--scratch`` is not given.
SCRATCH_ENV = "DATASAFE_SCRATCH_URL"


def scratch_server(manifest: Manifest, server: DatabaseURL | None) -> DatabaseURL:
    """``--scratch``, else ``$DATASAFE_SCRATCH_URL``, else the snapshot's own server (no password).

    A masked snapshot records no server (its ``source_url`` is only the scheme): it needs one of
    the first two, rather than the client library's default server."""
    if server is not None:
        return server
    env = os.environ.get(SCRATCH_ENV)
    if env:
        return DatabaseURL.parse(env)
    own = DatabaseURL.parse(manifest.source_url)
    # recorded redacted: no password (neither in the user part nor as a query parameter)
    own = own.replace(password=None, query_items=tuple((k, v) for k, v in own.query_items
                                                       if k.lower() not in SECRET_QUERY_KEYS))
    if not (own.host or own.database or own.query_items):
        raise ConfigError(f"snapshot {manifest.snapshot_id} does not record the server it came from",
                          hint=f"name a server for the scratch database with --scratch or ${SCRATCH_ENV}")
    return own


def scratch_name() -> str:
    return f"datasafe_verify_{secrets.token_hex(6)}"


def write_table(
    snapshot: SnapshotWriter,
    ordinal: int,
    entry: TableEntry,
    options: BackupOptions,
    fill: Callable[[Callable[[bytes], None]], None],
    *,
    estimate: int | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Stream one table into chunks: ``fill(write)`` produces its rows; progress, clean-up of a
    partial chunk on failure, and the table entry's chunks, counts and digest are handled here."""
    writer = stream_chunks(snapshot, ordinal, None, entry.name, options, fill, estimate=estimate, stop=stop)
    writer.record(entry)
    faultpoints.reach("backup.table")


def stream_chunks(
    snapshot: SnapshotWriter,
    ordinal: int,
    part: int | None,
    label: str,
    options: BackupOptions,
    fill: Callable[[Callable[[bytes], None]], None],
    *,
    estimate: int | None = None,
    stop: threading.Event | None = None,
) -> ChunkWriter:
    """Stream the rows ``fill(write)`` produces into the chunks of table ``ordinal`` (of its range
    ``part`` for a split table), shown as ``label`` in the progress; a partial chunk is removed on
    failure. Returns the closed writer (its chunks, rows and sizes)."""
    progress = options.progress

    def advance(rows: int, nbytes: int) -> None:
        if stop is not None and stop.is_set():
            raise Interrupted("backup stopped")
        progress.advance(label, rows=rows, nbytes=nbytes)

    writer = snapshot.table_writer(ordinal, options.compression, options.chunk_size, advance, part=part)
    progress.start(label, label, estimate or None)
    try:
        fill(writer.write)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    progress.finish(label)
    return writer


class Engine(ABC):
    """One database kind. Each is named in its package's ``SPEC`` (see :mod:`datasafe.engines.registry`)."""

    name: ClassVar[str]

    @abstractmethod
    def backup(self, url: DatabaseURL, snapshot: SnapshotWriter, options: BackupOptions) -> BackupResult:
        """Write schema and data of ``url`` under ``snapshot``, consistently."""

    @abstractmethod
    def plan_restore(self, manifest: Manifest, target: DatabaseURL, options: RestoreOptions) -> RestorePlan:
        """Check the target and options; raise before anything is changed."""

    @abstractmethod
    def restore(self, plan: RestorePlan, storage: StorageBackend) -> None:
        """Carry out ``plan``; on failure leave the target as empty as it was found."""

    @abstractmethod
    def scratch(self, manifest: Manifest, server: DatabaseURL | None) -> AbstractContextManager[DatabaseURL]:
        """A throw-away empty target for ``verify --deep``, removed on exit."""

    @abstractmethod
    def table_digests(self, url: DatabaseURL, manifest: Manifest) -> Iterator[tuple[str, str]]:
        """(table name, ``content_blake3`` of its rows) for each manifest table, the rows read back in the
        snapshot's encoding and cut at its ``chunk_size``, so that ``verify --deep`` can compare the
        digest with the manifest's (docs/format.md, "Table content digest")."""

    @abstractmethod
    def identity(self, url: DatabaseURL) -> DatabaseIdentity:
        """Which database ``url`` reaches, as its server says (see :mod:`datasafe.identity`).

        The database need not exist (``exists`` is then False); the server must answer
        (ConnectionFailed otherwise)."""

    @abstractmethod
    def describe(self, url: DatabaseURL) -> list[TableEntry]:
        """The tables of a live database as a backup would record them (columns, keys), without rows."""

    @abstractmethod
    def sample(self, url: DatabaseURL, entries: list[TableEntry], *, rows: int, max_bytes: int, seed: int
               ) -> Iterator[RowSample]:
        """A bounded sample of each of ``entries`` (from :meth:`describe`), in that order, read only.

        At most ``rows`` rows and about ``max_bytes`` bytes per table, spread over the table where
        the engine can (not only its first rows); the same ``seed`` gives the same rows. Cells are
        decoded as the engine's row codec decodes its snapshots' rows, so that a column looks the
        same live or stored."""

    @abstractmethod
    def read_rows(self, url: DatabaseURL, entry: TableEntry, limit: int | None, consume: Consume) -> None:
        """The rows of one table (from :meth:`describe`), read only, in the row encoding of the engine's
        snapshots: ``consume`` gets blocks of whole rows, each row with its line end. ``limit``: at
        most that many rows (the first by primary key where the engine can); None: all."""

    @abstractmethod
    def schema_text(self, url: DatabaseURL) -> list[SchemaText]:
        """The schema's own text of a live database, from its catalogs (read only), named as the
        engine's :class:`~datasafe.engines.schema_text.SchemaReader` names the pieces of its snapshots."""
