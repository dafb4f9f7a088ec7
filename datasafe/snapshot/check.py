"""Chunk checking: what ``verify`` and every read-back reports about a snapshot's stored chunks.

:func:`check_chunks` reads the chunks a manifest lists, in one of :data:`VERIFY_MODES`, and
returns a :class:`VerifyReport` naming every problem found (it raises nothing for a bad chunk).
"""

from __future__ import annotations

import math
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from datasafe.errors import IntegrityError, NotFound
from datasafe.humanize import count
from datasafe.progress import Progress
from datasafe.snapshot.chunks import check_stored, read_chunk
from datasafe.snapshot.manifest import Chunk, Manifest, TableEntry
from datasafe.storage.base import StorageBackend

#: what a check reads: every byte decrypted and decompressed; every stored byte's SHA-256 (no key
#: needed); or only the storage's metadata (sizes and checksums, no object is downloaded)
VERIFY_MODES = ("full", "stored", "metadata")


@dataclass
class VerifyReport:
    """The outcome of checking one snapshot: totals read, and every problem found."""

    snapshot_id: str
    source: str
    chunks: int = 0
    stored_bytes: int = 0
    raw_bytes: int = 0
    rows: int = 0
    deep: bool = False
    tables_compared: int = 0
    mode: str = "full"
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot_id, "source": self.source, "ok": self.ok, "chunks": self.chunks,
            "stored_bytes": self.stored_bytes, "raw_bytes": self.raw_bytes, "rows": self.rows,
            "deep": self.deep, "tables_compared": self.tables_compared, "mode": self.mode,
            "problems": self.problems,
        }


def check_chunks(objects: StorageBackend, manifest: Manifest, jobs: int, progress: Progress, *,
                 mode: str = "full", sample: float | None = None) -> VerifyReport:
    """Check the chunks of ``manifest`` stored in ``objects`` (the snapshot's own objects).

    ``mode`` ``full`` decrypts, decompresses and counts rows; ``stored`` checks size and SHA-256
    of the stored bytes; ``metadata`` only what the storage reports. ``sample`` checks only that
    percentage of the chunks, chosen at random."""
    report = VerifyReport(manifest.snapshot_id, manifest.source, mode=mode)
    owner: dict[str, TableEntry] = {c.path: t for t in manifest.tables for c in t.chunks}

    def check(chunk: Chunk) -> tuple[Chunk, int, int, str | None]:
        table = owner.get(chunk.path)
        label = f"{table.name} {chunk.path}" if table else chunk.path
        rows = raw = 0
        try:
            if mode == "metadata":
                return chunk, chunk.raw_size, chunk.rows, check_metadata(objects, chunk, label)
            if mode == "stored":
                check_stored(objects, chunk, label=label)
                return chunk, chunk.raw_size, chunk.rows, None
            for block in read_chunk(objects, chunk, label=label):
                raw += len(block)
                if table is not None:
                    rows += block.count(b"\n")
        except IntegrityError as exc:
            return chunk, raw, rows, str(exc)
        if table is not None and rows != chunk.rows:
            return chunk, raw, rows, f"chunk {label} holds {count(rows, 'row')}, the manifest says {chunk.rows:,}"
        return chunk, raw, rows, None

    chunks = manifest.chunks()
    if sample is not None and sample < 100 and chunks:
        picked = set(random.sample(range(len(chunks)), max(1, math.ceil(len(chunks) * sample / 100))))
        chunks = [c for i, c in enumerate(chunks) if i in picked]
    progress.start("verify", f"verify {manifest.snapshot_id}", sum(c.raw_size for c in chunks))
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for chunk, raw, rows, problem in pool.map(check, chunks):
            report.chunks += 1
            report.stored_bytes += chunk.stored_size
            report.raw_bytes += raw
            report.rows += rows
            progress.advance("verify", rows=rows, nbytes=raw)
            if problem:
                report.problems.append(problem)
    progress.finish("verify")
    for t in manifest.tables:
        if sample is None and sum(c.rows for c in t.chunks) != t.rows:
            report.problems.append(f"table {t.name}: chunk rows do not add up to {t.rows:,}")
    return report


def check_metadata(objects: StorageBackend, chunk: Chunk, label: str) -> str | None:
    """What the storage reports of ``chunk`` (size, checksum) against its manifest entry."""
    try:
        stat = objects.stat(chunk.path)
    except NotFound:
        return f"chunk {label} is missing"
    if stat.size != chunk.stored_size:
        return f"chunk {label} has {stat.size} bytes stored, the manifest says {chunk.stored_size}"
    if stat.checksum and chunk.storage_checksum and stat.checksum != chunk.storage_checksum:
        return f"chunk {label}: the storage checksum differs from the manifest (stored bytes changed)"
    return None
