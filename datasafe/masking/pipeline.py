"""Running a masking plan: stream a stored snapshot's chunks through the transformers into a new one.

Tables without masked columns or filters are copied chunk for chunk without decompressing.
Masked tables are read in blocks of whole rows; only the fields being masked are decoded.
Large tables whose masked columns need only their own values are masked by worker processes
(:mod:`datasafe.masking.parallel`), the rest in this process; the output is the same either way.
Memory stays bounded by a few blocks per worker plus, per unique or referenced key, the set of
values seen (8-byte hashes for uniqueness; kept key values for subsetting).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import logging
import time
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, cast

import zstandard

from datasafe.errors import IntegrityError, NotFound
from datasafe.masking import parallel, stages
from datasafe.masking.batch import BatchResult
from datasafe.masking.codecs import Cell
from datasafe.masking.masker import RunState, TableMasker
from datasafe.masking.plan import MaskPlan, TablePlan
from datasafe.masking.preview import preview
from datasafe.masking.types import column_kind
from datasafe.progress import NullProgress, Progress
from datasafe.snapshot.chunks import READ_SIZE, Compression, HashingWriter, content_digest, read_chunk, stored_blocks
from datasafe.snapshot.manifest import Chunk, SchemaPart, TableEntry
from datasafe.snapshot.repository import SnapshotObjects, SnapshotWriter

if TYPE_CHECKING:
    from datasafe.masking.leaks import LeakAudit

log = logging.getLogger(__name__)

#: raw bytes of whole rows masked as one block
BLOCK_SIZE = 1 << 20
#: tables smaller than this (raw bytes) are masked in this process: forking costs more than it saves
PARALLEL_MIN_BYTES = 16 << 20
#: default number of worker processes on large machines: beyond it, reading and compressing in
#: the parent process limits the speed, not masking
MAX_WORKERS = 8


# -- whole chunks ------------------------------------------------------------------------------------
def copy_object(src: SnapshotObjects, dst: SnapshotObjects, chunk: Chunk, label: str) -> Chunk:
    """Copy one stored object without decompressing it (re-encrypting when the keys differ).

    Plaintext objects are linked where the storage can (a hard link in a local repository): the
    source's bytes are then only read, to check their SHA-256, and never written again.
    """
    digest = hashlib.sha256()
    size = [0]
    try:
        linked = src.cipher is None and dst.cipher is None and dst.link_from(src, chunk.path)
    except NotFound as exc:
        raise IntegrityError(f"chunk {label} is missing") from exc
    if linked:
        try:
            for _ in stored_blocks(src, chunk, label, digest, size):
                pass
            if size[0] != chunk.stored_size or digest.hexdigest() != chunk.sha256:
                raise IntegrityError(f"chunk {label} does not match its SHA-256 (stored bytes changed)")
        except BaseException:
            dst.delete(chunk.path)
            raise
        return chunk.model_copy()
    blocks: Iterator[bytes] = stored_blocks(src, chunk, label, digest, size)
    if src.cipher is not None:
        blocks = src.cipher.decrypt(blocks, f"chunk {label}")
    stored = HashingWriter(dst.open_write(chunk.path))
    out = dst.cipher.writer(stored) if dst.cipher is not None else stored
    try:
        for block in blocks:
            out.write(block)
        if size[0] != chunk.stored_size or digest.hexdigest() != chunk.sha256:
            raise IntegrityError(f"chunk {label} does not match its SHA-256 (stored bytes changed)")
        out.commit()
    except BaseException:
        out.abort()
        raise
    return chunk.model_copy(update={"stored_size": stored.bytes_written, "sha256": stored.sha256.hexdigest(),
                                    "storage_checksum": stored.checksum})


def table_blocks(objects: SnapshotObjects, entry: TableEntry, size: int | None = None) -> Iterator[bytes]:
    """The stored rows of a table in blocks of whole rows (each with its line end) of about ``size`` bytes."""
    size = size or BLOCK_SIZE
    for chunk in entry.chunks:
        rest = b""  # the start of a row that continues in the next piece
        for piece in read_chunk(objects, chunk, label=f"{entry.name} {chunk.path}"):
            start = 0
            while start < len(piece):
                cut = piece.find(b"\n", start + max(size - len(rest), 1) - 1) + 1
                if not cut:
                    cut = piece.rfind(b"\n", start) + 1
                    if not cut:
                        break
                yield rest + piece[start:cut] if rest else piece[start:cut]
                rest, start = b"", cut
            rest += piece[start:]
        if rest:
            raise IntegrityError(f"table {entry.name}: chunk {chunk.path} ends inside a row")


#: the buffer :func:`row_views` decompresses into (it grows for a longer row)
VIEW_SIZE = 4 << 20


class _Source:
    """The stored (decrypted) blocks of a chunk as the file zstd reads."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks

    def read(self, size: int = -1) -> bytes:
        return next(self._blocks, b"")


def row_views(objects: SnapshotObjects, entry: TableEntry) -> Iterator[memoryview]:
    """The stored rows of a table, whole rows at a time, as views into one buffer that zstd
    decompresses into and that the next view reuses: for readers that only look (the leak audit),
    done with a view before they ask for the next. The stored bytes' SHA-256 and size are checked
    (they fix what the bytes decompress to), and the decompressed size; see :func:`read_chunk`."""
    buf = bytearray(VIEW_SIZE)
    for chunk in entry.chunks:
        label = f"{entry.name} {chunk.path}"
        digest = hashlib.sha256()
        size = [0]
        blocks: Iterator[bytes] = stored_blocks(objects, chunk, label, digest, size)
        cipher = getattr(objects, "cipher", None)  # an encrypted snapshot's objects decrypt on the way
        if cipher is not None:
            blocks = cipher.decrypt(blocks, f"chunk {label}")
        reader = zstandard.ZstdDecompressor().stream_reader(cast("IO[bytes]", _Source(blocks)), read_size=READ_SIZE)
        held = raw = 0
        while True:
            if held == len(buf):  # one row longer than the buffer
                buf.extend(bytes(len(buf)))
            with memoryview(buf) as view:
                try:
                    n = reader.readinto(view[held:])
                except zstandard.ZstdError as exc:
                    raise IntegrityError(f"chunk {label} is corrupt: {exc}") from exc
                if not n:
                    break
                raw += n
                if raw > chunk.raw_size:  # a few KiB of zstd can expand to gigabytes
                    raise IntegrityError(f"chunk {label} decompresses to more than its recorded "
                                         f"{chunk.raw_size:,} bytes")
                end = held + n
                last = buf.rfind(b"\n", held, end) + 1
                if not last:
                    held = end
                    continue
                rows = view[:last]
                yield rows
                rows.release()
            buf[:end - last] = buf[last:end]
            held = end - last
        if size[0] != chunk.stored_size or digest.hexdigest() != chunk.sha256:
            raise IntegrityError(f"chunk {label} does not match its SHA-256 (stored bytes changed)")
        if raw != chunk.raw_size:
            raise IntegrityError(f"chunk {label} decompresses to different bytes than were backed up")
        if held:
            raise IntegrityError(f"table {entry.name}: chunk {chunk.path} ends inside a row")


def _lines(objects: SnapshotObjects, entry: TableEntry) -> Iterator[bytes]:
    """The stored rows of a table, one line each (with its line end)."""
    for block in table_blocks(objects, entry):
        yield from _split_lines(block)


def _split_lines(block: bytes) -> list[bytes]:
    """The rows of a block, each with its line end."""
    lines = [line + b"\n" for line in block.split(b"\n")]
    lines.pop()  # after the last line end
    return lines


def mask_tables(plan: MaskPlan, src: SnapshotObjects, writer: SnapshotWriter, compression: Compression,
                chunk_size: int, progress: Progress | None = None, workers: int | None = None,
                audit: LeakAudit | None = None) -> tuple[list[TableEntry], list[SchemaPart]]:
    """Write every table of ``plan`` into ``writer``; returns the new table entries and schema parts.

    ``workers`` processes mask the rows of large tables (default: one per usable CPU, at most
    :data:`MAX_WORKERS`; 1 masks everything in this process). The output does not depend on it.
    ``audit`` (:mod:`datasafe.masking.leaks`) sees every masked block, where it is masked.
    """
    progress = progress or NullProgress()
    workers = min(parallel.usable_cpus(), MAX_WORKERS) if workers is None else workers
    if not parallel.can_fork():
        workers = 1
    if 0 < compression.threads < workers:
        # the masked rows arrive as fast as the workers mask them: compress them with as many of
        # zstd's threads (its output is the same for any number of threads above zero)
        compression = dataclasses.replace(compression, threads=workers)
    state = RunState()
    parts = [SchemaPart.model_validate(copy_object(src, writer.objects, p, f"schema {p.name}").model_dump())
             for p in plan.manifest.schema_parts]
    entries: dict[int, TableEntry] = {}
    total = sum(t.entry.raw_size for t in plan.tables)
    progress.start("mask", f"mask {plan.manifest.snapshot_id}", total)
    # tables copied chunk for chunk (reading, hashing, writing: no CPU-bound Python) are copied
    # by a helper thread while the masked tables are masked
    copies: dict[int, Future[TableEntry]] = {}
    copier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="datasafe-copy")
    try:
        for ordinal in plan.order:
            table = plan.tables[ordinal]
            if table.action == "copy" and not any(parent in state.reduced for _c, parent, _r in table.parents):
                state.rows_in += table.entry.rows
                state.rows_out += table.entry.rows
                copies[ordinal] = copier.submit(_copy_table, src, writer, table.entry)
                continue
            entries[ordinal] = _mask_one(plan, table, state, src, writer, compression, chunk_size, progress,
                                         workers, audit)
        for ordinal, copy in copies.items():
            entries[ordinal] = copy.result()
            progress.advance("mask", rows=entries[ordinal].rows, nbytes=entries[ordinal].raw_size)
    finally:
        copier.shutdown(cancel_futures=True)
    progress.finish("mask")
    return [entries[i] for i in range(len(plan.tables))], parts


def _copy_table(src: SnapshotObjects, writer: SnapshotWriter, entry: TableEntry) -> TableEntry:
    """The entry of a table whose chunks are copied as they are stored."""
    new = entry.model_copy(deep=True)
    new.chunks = [copy_object(src, writer.objects, c, f"{entry.name} {c.path}") for c in entry.chunks]
    new.stored_size = sum(c.stored_size for c in new.chunks)
    return new


def _mask_one(plan: MaskPlan, table: TablePlan, state: RunState, src: SnapshotObjects, writer: SnapshotWriter,
              compression: Compression, chunk_size: int, progress: Progress, workers: int,
              audit: LeakAudit | None = None) -> TableEntry:
    entry = table.entry
    new = entry.model_copy(deep=True)
    new.split_by, new.ranges = None, []  # its chunks are written again, as one run
    state.rows_in += entry.rows
    if table.action in ("truncate", "exclude"):
        new.chunks, new.rows, new.raw_size, new.stored_size = [], 0, 0, 0
        new.content_blake3 = content_digest([])
        state.reduced.add(entry.name)
        state.kept_keys[entry.name] = {}
        progress.advance("mask", rows=entry.rows, nbytes=entry.raw_size)
        return new
    started = time.monotonic()
    masker = TableMasker(plan, table, state)
    out = writer.table_writer(table.ordinal, compression, chunk_size)
    # reading and writing run beside the masking when it has worker processes (see stages)
    threaded = workers > 1 and masker.by_block and entry.raw_size >= PARALLEL_MIN_BYTES
    blocks = stages.prefetched(table_blocks(src, entry)) if threaded else table_blocks(src, entry)
    sink = stages.BackgroundWriter(out) if threaded else out
    try:
        for data, rows in _masked(masker, blocks, progress, workers, audit):
            sink.write(data, rows)
        if isinstance(sink, stages.BackgroundWriter):
            sink.close()
        out.close()
    except BaseException:
        if isinstance(sink, stages.BackgroundWriter):
            sink.stop()
        out.abort()
        raise
    out.record(new)
    masker.finish()
    state.rows_out += new.rows
    if masker.dropped:
        log.info("%s: %d of %d rows dropped by the where filter or filtered parents", entry.name,
                 masker.dropped, entry.rows)
    log.debug("%s: %d rows masked in %.1f s", entry.name, new.rows, time.monotonic() - started)
    return new


def _masked(masker: TableMasker, blocks: Iterator[bytes], progress: Progress, workers: int,
            audit: LeakAudit | None = None) -> Iterator[tuple[bytes, int | None]]:
    """The masked rows of ``blocks``, a block at a time, with their number where it is known."""
    if not masker.by_block:
        for block in blocks:
            progress.advance("mask", rows=block.count(b"\n"), nbytes=len(block))
            out = b"".join(masker.rows(iter(_split_lines(block))))
            if audit is not None:
                audit.masked(masker.table, block, out)
            yield out, None
        return
    batch = masker.batch() if audit is None else audit.batch(masker)
    first = next(blocks, None)
    if first is None:
        return
    blocks = itertools.chain([first], blocks)
    results: Generator[tuple[bytes, BatchResult], None, None]
    if workers > 1 and masker.entry.raw_size >= PARALLEL_MIN_BYTES:
        batch.warm_up(first)
        results = parallel.masked_blocks(batch, blocks, workers)
    else:
        results = ((block, batch.mask(block)) for block in blocks)
    try:
        for block, result in results:
            progress.advance("mask", rows=result.rows, nbytes=len(block))
            data = masker.accept(block, result)
            if audit is not None:
                audit.masked(masker.table, block, result)
            yield data, result.rows
    finally:
        results.close()  # when accept() raises, the workers stop now, not when the traceback goes


def sample(plan: MaskPlan, src: SnapshotObjects, rows: int = 3) -> dict[str, list[tuple[dict[str, Cell],
                                                                                          dict[str, Cell]]]]:
    """A few rows per masked table, before and after (what ``mask --dry-run`` shows), as
    :func:`~datasafe.masking.preview.preview` shows cells."""
    out: dict[str, list[tuple[dict[str, Cell], dict[str, Cell]]]] = {}
    state = RunState()
    for ordinal in plan.order:
        table = plan.tables[ordinal]
        if table.action != "mask" or not table.masked or not table.entry.chunks:
            continue
        masker = TableMasker(plan, table, state)
        masker.checks = []
        codec = masker.codec
        kinds = {c.name: column_kind(c.type) for c in table.entry.columns}
        pairs = []
        for line in _lines(src, table.entry):
            after = masker._row(line)
            if after is None:
                continue
            before_cells = [codec.decode(f) for f in codec.split(line.rstrip(b"\n"))]
            after_cells = [codec.decode(f) for f in codec.split(after.rstrip(b"\n"))]
            shown = [m.name for m in table.masked]
            # long text cut, binary data as its size (see preview)
            pairs.append(({n: preview(before_cells[masker.names.index(n)], kinds[n]) for n in shown},
                          {n: preview(after_cells[masker.names.index(n)], kinds[n]) for n in shown}))
            if len(pairs) >= rows:
                break
        out[table.name] = pairs
    return out
