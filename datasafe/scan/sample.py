"""Bounded, stratified samples of every table's rows: what a scan looks at.

A scan must be quick next to a backup (at most half its time) and small in memory, whatever
the table sizes, yet see more than the first rows of a table: the first thousand customers can
all be test accounts, and a column filled only since last year is empty in its oldest rows.

- **Snapshots.** A table's rows are stored in chunks of 64 MiB (raw) in order. The sample takes
  rows from several chunks spread over the table (all of them up to :data:`MAX_CHUNKS`, else one
  from each of that many equal stretches), each in proportion to its rows, picked at random among
  the first rows of the chunk. A chunk is read (and decompressed) only as far as its share needs,
  and never further than its part of the table's byte budget: zstd cannot seek inside a frame,
  but the start of every stretch costs no more to read than the start of the table. A partial
  read cannot check a chunk's digests; a scan only counts, and ``verify`` is there for that. The
  same seed gives the same sample. An encrypted snapshot is decrypted on the way when the
  repository holds its key.
- **Live databases.** Each engine samples its own way (:meth:`datasafe.engines.base.Engine.sample`):
  PostgreSQL ``TABLESAMPLE SYSTEM`` (random pages; repeatable for a seed), falling back to the
  first rows when the statistics say the table is small or the sample comes back short;
  MySQL/MariaDB and SQLite a few key-ordered probes at evenly spread points of an integer primary
  key (or SQLite's rowid), each an index range read; the first rows otherwise. Values are read in
  the text form the snapshot encodings use, through the same row codecs, so a column looks the
  same to the detectors live or stored.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import random
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import zstandard

from datasafe.engines.registry import codecs, get_engine
from datasafe.engines.sampling import decode_row
from datasafe.errors import IntegrityError, NotFound
from datasafe.snapshot.manifest import Chunk, Column, Manifest, TableEntry
from datasafe.snapshot.repository import Repository, SnapshotObjects
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

#: chunks of one table a sample reads from, at most
MAX_CHUNKS = 8
#: a chunk is read until it gave this many times its share of rows (the share is picked among them)
OVERSAMPLE = 4
#: stored bytes read at a time: small, so that a chunk is decompressed little further than needed
STORED_READ = 1 << 16
#: tables sampled side by side (their samples are handed out in manifest order)
TABLE_THREADS = 4


@dataclass
class TableSample:
    """Sampled rows of one table.

    Attributes:
        table: the qualified display name, as in the manifest (``public.customers``).
        columns: the columns the rows hold, in order.
        rows: decoded cells (None for NULL), row-major, at most the rows asked for.
        total_rows: the table's row count (a snapshot's manifest; a live database's estimate).
    """

    table: str
    columns: list[Column]
    rows: list[list[str | None]]
    total_rows: int


def _want(tables: list[TableEntry], names: list[str] | None, where: str) -> list[TableEntry]:
    if not names:
        return tables
    out = []
    for name in names:
        found = [t for t in tables if t.name == name] or [t for t in tables if t.table == name]
        if len(found) != 1:
            raise NotFound(f"table {name!r} is not in {where}" if not found else
                           f"table name {name!r} is ambiguous in {where}: give schema.table")
        out.append(found[0])
    return out


# -- snapshots ------------------------------------------------------------------------------------
def sample_snapshot(repo: Repository, manifest: Manifest, *, rows: int = 1000, max_bytes_per_table: int = 8 << 20,
                    tables: list[str] | None = None, seed: int = 0) -> Iterator[TableSample]:
    """A sample of each table of a stored snapshot, in manifest order.

    Args:
        rows: rows per table, at most.
        max_bytes_per_table: raw (decompressed) bytes read per table, at most; a row longer than
            this is not sampled.
        tables: only these tables (qualified or unambiguous bare names).
        seed: the same seed gives the same rows.

    Raises:
        NotFound: a table of ``tables`` is not in the snapshot.
        IntegrityError: a chunk is missing or does not decompress; a row does not fit its columns.
        IdentityError: an encrypted snapshot, and no key for it.
    """
    manifest = repo.open(manifest)
    objects = repo.snapshot_storage(manifest)
    entries = iter(_want(manifest.tables, tables, f"snapshot {manifest.snapshot_id}"))

    def one(entry: TableEntry) -> TableSample:
        return sample_table(objects, entry, rows=rows, max_bytes=max_bytes_per_table, seed=seed)

    # a few tables at a time: on S3 every chunk is a request, and waiting for one is most of its cost
    with ThreadPoolExecutor(TABLE_THREADS, thread_name_prefix="datasafe-sample") as pool:
        pending = deque(pool.submit(one, e) for e in itertools.islice(entries, TABLE_THREADS))
        try:
            while pending:
                sample = pending.popleft().result()
                following = next(entries, None)
                if following is not None:
                    pending.append(pool.submit(one, following))
                yield sample
        finally:
            for future in pending:
                future.cancel()


def sample_table(objects: SnapshotObjects, entry: TableEntry, *, rows: int, max_bytes: int, seed: int = 0
                 ) -> TableSample:
    """The sample of one stored table (see the module's docstring)."""
    sample = TableSample(entry.name, list(entry.columns), [], entry.rows)
    chunks = [c for c in entry.chunks if c.rows > 0]
    if rows <= 0 or not chunks:
        return sample
    rng = random.Random(f"{seed}:{entry.name}")  # per table: the same rows whichever tables are chosen
    if len(chunks) > min(MAX_CHUNKS, rows):
        count = min(MAX_CHUNKS, rows)
        step = len(chunks) / count
        chunks = [chunks[min(len(chunks) - 1, int(i * step + rng.random() * step))] for i in range(count)]
    quotas = _shares(min(rows, sum(c.rows for c in chunks)), [c.rows for c in chunks])
    raw = sum(c.raw_size for c in chunks) or 1
    codec_class = codecs().get(entry.encoding)
    if codec_class is None:
        raise IntegrityError(f"table {entry.name}: scan cannot read rows stored as {entry.encoding!r}")
    codec = codec_class()
    for chunk, quota in zip(chunks, quotas, strict=True):
        if quota <= 0:
            continue
        budget = max(1, max_bytes * chunk.raw_size // raw)
        lines = _first_lines(objects, chunk, quota * OVERSAMPLE, budget, max_bytes, f"{entry.name} {chunk.path}")
        if len(lines) > quota:
            lines = [lines[i] for i in sorted(rng.sample(range(len(lines)), quota))]
        sample.rows.extend(decode_row(codec, line, len(entry.columns), entry.name) for line in lines)
    return sample


def _shares(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders), no share above its weight."""
    whole = sum(weights) or 1
    exact = [total * w / whole for w in weights]
    shares = [min(w, math.floor(e)) for w, e in zip(weights, exact, strict=True)]
    order = sorted(range(len(weights)), key=lambda i: exact[i] - shares[i], reverse=True)
    left = total - sum(shares)
    for i in order * 2:
        if left <= 0:
            break
        if shares[i] < weights[i]:
            shares[i] += 1
            left -= 1
    return shares


def _first_lines(objects: SnapshotObjects, chunk: Chunk, want: int, budget: int, limit: int, label: str
                 ) -> list[bytes]:
    """Up to ``want`` whole rows from the first ``budget`` raw bytes of ``chunk`` (a first row longer
    than that is read up to ``limit``)."""
    lines: list[bytes] = []
    rest = b""
    read = used = 0
    for piece in _raw_start(objects, chunk, label):
        read += len(piece)
        parts = (rest + piece).split(b"\n") if rest else piece.split(b"\n")
        rest = parts.pop()
        for line in parts:
            used += len(line) + 1
            if lines and used > budget:
                return lines
            lines.append(line)
            if len(lines) >= want:
                return lines
        if read >= limit:
            if not lines:
                log.debug("%s: no whole row in the first %d bytes: not sampled", label, read)
            break
    return lines


def _raw_start(objects: SnapshotObjects, chunk: Chunk, label: str) -> Iterator[bytes]:
    """The raw bytes of ``chunk`` from its start, decompressed piece by piece as they are consumed.

    Unlike :func:`datasafe.snapshot.chunks.read_chunk` this reads small pieces and checks no digest
    (it is meant to stop early); zstd still checks the frame's checksum when it reaches the end.
    """
    try:
        fh = objects.open_read(chunk.path)
    except NotFound as exc:
        raise IntegrityError(f"chunk {label} is missing") from exc
    blocks: Iterator[bytes] = iter(functools.partial(fh.read, STORED_READ), b"")
    cipher = objects.cipher
    if cipher is not None:
        blocks = cipher.decrypt(blocks, f"chunk {label}")
    dobj = zstandard.ZstdDecompressor().decompressobj()
    try:
        for block in blocks:
            try:
                out = dobj.decompress(block)
            except zstandard.ZstdError as exc:
                raise IntegrityError(f"chunk {label} is corrupt: {exc}") from exc
            if out:
                yield out
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()  # stops the decrypting thread before its source is closed
        fh.close()


# -- live databases -------------------------------------------------------------------------------
def sample_url(url: DatabaseURL, *, rows: int = 1000, tables: list[str] | None = None,
               max_bytes_per_table: int = 8 << 20, seed: int = 0) -> Iterator[TableSample]:
    """A sample of each table of a live database (read only), in the order the engine lists them
    (each engine samples its own way: :meth:`datasafe.engines.base.Engine.sample`).

    Raises:
        DependencyError: the engine's driver is not installed.
        NotFound: the database, or a table of ``tables``, does not exist.
        ConnectionFailed, DatabaseError: the database cannot be read.
    """
    engine = get_engine(url.engine)
    entries = _want(engine.describe(url), tables, str(url))
    found = engine.sample(url, entries, rows=rows, max_bytes=max_bytes_per_table, seed=seed)
    for entry, sample in zip(entries, found, strict=True):
        yield TableSample(entry.name, list(entry.columns), sample.rows, sample.total_rows)
