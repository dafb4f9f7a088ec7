"""Large tables split into ranges, read and loaded in parallel (docs/format.md, "Split tables").

A table larger than the split threshold is read as several ranges (PostgreSQL: of heap pages,
by CTID; MySQL/MariaDB: of primary-key values), each by whichever worker is free, all inside the
backup's one consistent snapshot. Each range is its own run of chunks, stored under
``data/<ordinal>/<range>/``; the table's chunks are the ranges' chunks in range order, so the
table's rows, read chunk after chunk, are in the same order as an unsplit read would give them.
A restore loads the ranges of a table over several connections and builds the table's indexes
once, after its last range. Engines decide where the ranges fall; this module holds what they
share: how many ranges, writing one, assembling the table entry, cutting a restore into pieces,
and re-reading a split table's digest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from datasafe import faultpoints
from datasafe.engines.base import DEFAULT_SPLIT_BYTES, BackupOptions, stream_chunks
from datasafe.snapshot.chunks import content_digest, digester
from datasafe.snapshot.manifest import Chunk, TableEntry, TableRange
from datasafe.snapshot.repository import SnapshotWriter

__all__ = ["DEFAULT_SPLIT_BYTES", "MAX_RANGES", "Part", "Piece", "PieceCounter", "RangeCollector",
           "TableDigester", "in_ranges", "pieces", "range_count"]

#: at most this many ranges per table
MAX_RANGES = 256
#: a split table gets about one range per this fraction of the threshold (at least 2 ranges)
RANGES_PER_THRESHOLD = 4


def range_count(size: int, threshold: int) -> int:
    """How many ranges a table of ``size`` bytes is read in: 1 (whole) at or below ``threshold``
    or when ``threshold`` is 0; else one range per quarter of the threshold, from 2 to :data:`MAX_RANGES`."""
    if threshold <= 0 or size <= threshold:
        return 1
    piece = max(1, threshold // RANGES_PER_THRESHOLD)
    return max(2, min(MAX_RANGES, -(-size // piece)))


@dataclass(frozen=True)
class Part:
    """One work item of a backup: a whole table (``count`` 1) or one range of a split table.

    ``start`` and ``end`` are the range's bounds as the manifest records them (None: open)."""

    ordinal: int
    entry: TableEntry
    index: int = 0
    count: int = 1
    start: list[Any] | None = None
    end: list[Any] | None = None
    estimate: int = 0

    @property
    def label(self) -> str:
        return self.entry.name if self.count == 1 else f"{self.entry.name} [{self.index + 1}/{self.count}]"


@dataclass
class _Written:
    chunks: list[Chunk]
    rows: int
    raw_size: int


@dataclass
class RangeCollector:
    """Collects the ranges of split tables as workers finish them; :meth:`record` builds each
    split table's entry once every range is written."""

    _done: dict[tuple[str, int], _Written] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, snapshot: SnapshotWriter, part: Part, options: BackupOptions,
              fill: Callable[[Callable[[bytes], None]], None], stop: threading.Event | None = None) -> None:
        """Stream one range into its own chunks under ``data/<ordinal>/<range>/``."""
        writer = stream_chunks(snapshot, part.ordinal, part.index, part.label, options, fill,
                               estimate=part.estimate, stop=stop)
        with self._lock:
            self._done[(part.entry.name, part.index)] = _Written(writer.chunks, writer.rows, writer.raw_size)
        faultpoints.reach("backup.table")

    def record(self, parts: list[Part], split_by: str) -> None:
        """Fill the entry of every split table of ``parts`` from its ranges, in range order."""
        for part in parts:
            if part.count == 1 or part.index != 0:
                continue
            entry = part.entry
            ranges = sorted((p for p in parts if p.entry is entry), key=lambda p: p.index)
            written = [self._done[(entry.name, p.index)] for p in ranges]
            entry.chunks = [c for w in written for c in w.chunks]
            entry.rows = sum(w.rows for w in written)
            entry.raw_size = sum(w.raw_size for w in written)
            entry.stored_size = sum(c.stored_size for c in entry.chunks)
            entry.content_blake3 = content_digest(entry.chunks)
            entry.split_by = split_by
            entry.ranges = [TableRange(start=p.start, end=p.end, chunks=len(w.chunks), rows=w.rows)
                            for p, w in zip(ranges, written, strict=True)]


# -- restore ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Piece:
    """What one restore worker loads at a time: a table's chunks, all of them or one range's."""

    table: TableEntry
    chunks: list[Chunk]
    index: int = 0
    count: int = 1

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.chunks)

    @property
    def raw_size(self) -> int:
        return sum(c.raw_size for c in self.chunks)

    @property
    def label(self) -> str:
        return self.table.name if self.count == 1 else f"{self.table.name} [{self.index + 1}/{self.count}]"


def pieces(tables: list[TableEntry], jobs: int, *, whole: bool = False, whole_tables: Collection[str] = ()
           ) -> list[Piece]:
    """The pieces of ``tables`` (in their order): a split table's ranges, each one piece, when
    more than one job loads and neither ``whole`` nor ``whole_tables`` (by name) says otherwise;
    every other table whole."""
    out: list[Piece] = []
    for t in tables:
        if not t.ranges or jobs <= 1 or whole or t.name in whole_tables:
            out.append(Piece(t, list(t.chunks)))
            continue
        first = 0
        for i, r in enumerate(t.ranges):
            out.append(Piece(t, t.chunks[first:first + r.chunks], i, len(t.ranges)))
            first += r.chunks
    return out


def in_ranges(tables: list[TableEntry], jobs: int) -> str:
    """What a restore plan's load step adds about split tables: `` (t in 8 ranges)``, or nothing."""
    split = [f"{t.name} in {len(t.ranges)} ranges" for t in tables if t.ranges]
    return f" ({', '.join(split)})" if split and jobs > 1 else ""


class PieceCounter:
    """Tells which finished piece was its table's last (thread-safe)."""

    def __init__(self) -> None:
        self._left: dict[str, int] = {}
        self._lock = threading.Lock()

    def finished(self, piece: Piece) -> bool:
        with self._lock:
            left = self._left.get(piece.table.name, piece.count) - 1
            self._left[piece.table.name] = left
            return left == 0


# -- re-reading a table's digest ----------------------------------------------------------------------
class TableDigester:
    """The content digest of a table re-read as one row stream in snapshot order: the stream is
    cut into chunks at ``chunk_size`` within each range, each range (by its recorded row count)
    starting a new chunk, as the backup cut it. An unsplit table is one range."""

    def __init__(self, entry: TableEntry, chunk_size: int) -> None:
        self._chunk_size = chunk_size
        self._rows_left = [r.rows for r in entry.ranges] if entry.ranges else []
        self._current = digester(chunk_size)
        self._chunks: list[Chunk] = []
        self._split = bool(entry.ranges)

    def write(self, data: bytes) -> None:
        if not self._split:
            self._current.write(data)
            return
        pos, size = 0, len(data)
        while pos < size:
            if not self._rows_left:  # more rows than the ranges recorded: the digest will differ
                self._current.write(data[pos:])
                return
            need = self._rows_left[0]
            held = data.count(b"\n", pos)
            if held < need:
                self._rows_left[0] -= held
                self._current.write(data[pos:] if pos else data)
                return
            cut = pos
            for _ in range(need):
                cut = data.index(b"\n", cut) + 1
            self._current.write(data[pos:cut])
            pos = cut
            self._next_range()

    def _next_range(self) -> None:
        self._rows_left.pop(0)
        self._chunks.extend(self._current.close())
        self._current = digester(self._chunk_size)

    def close(self) -> str:
        """The content digest (BLAKE3 over the chunks' raw digests)."""
        while self._split and self._rows_left and self._rows_left[0] == 0:
            self._next_range()
        self._chunks.extend(self._current.close())
        return content_digest(self._chunks)

