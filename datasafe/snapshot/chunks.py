"""Chunks: bounded pieces of a raw byte stream, zstd-compressed and digested on the way to storage.

A table's data is one stream of newline-terminated rows (every encoding datasafe writes ends a
row with ``\\n`` and escapes newlines inside values). The stream is cut into chunks at row
boundaries once a chunk holds ``chunk_size`` raw bytes, so memory stays bounded by the buffer
size whatever the table size, and each chunk can be verified and restored on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import zstandard
from blake3 import blake3

from datasafe.errors import IntegrityError, NotFound
from datasafe.snapshot.crypto import SnapshotCipher
from datasafe.snapshot.manifest import Chunk, TableEntry
from datasafe.storage.base import ObjectWriter, StorageBackend

#: Raw bytes gathered before a piece is handed to the compressor.
FEED_SIZE = 1 << 20
#: Read size when streaming a stored chunk back.
READ_SIZE = 1 << 20
#: output buffer of a chunk's decompressor: whole blocks of about a read's size, fewer joins
DECOMPRESS_SIZE = 1 << 20


#: zstd job size when zstd's own threads are on: small jobs keep memory low (about 7 MiB per
#: table being written at level 3) and still let reading rows overlap with compressing them.
ZSTD_JOB_SIZE = 1 << 20


@dataclass
class Compression:
    """zstd settings. ``threads`` 0 compresses in the calling thread; N>0 hands the work to zstd's
    own worker threads, so the thread reading rows from the database never waits for compression."""

    level: int = 3
    threads: int = 1

    def compressor(self) -> zstandard.ZstdCompressor:
        if self.threads <= 0:
            return zstandard.ZstdCompressor(level=self.level, write_checksum=True)
        params = zstandard.ZstdCompressionParameters.from_level(
            self.level, threads=self.threads, job_size=ZSTD_JOB_SIZE, write_checksum=True
        )
        return zstandard.ZstdCompressor(compression_params=params)

    def describe(self) -> dict[str, object]:
        return {"algorithm": "zstd", "level": self.level}


class HashingWriter(ObjectWriter):
    """Passes bytes on to ``out`` while taking their SHA-256: the digest of what is stored."""

    def __init__(self, out: ObjectWriter) -> None:
        self._out = out
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> None:
        self.sha256.update(data)
        self._out.write(data)
        self.bytes_written += len(data)

    def commit(self) -> None:
        self._out.commit()
        self.checksum = getattr(self._out, "checksum", None)

    def abort(self) -> None:
        self._out.abort()


@dataclass
class _OpenChunk:
    path: str
    #: where compressed bytes go: the hashing writer, or an encrypting writer in front of it
    out: ObjectWriter | None
    stored: HashingWriter | None
    cobj: zstandard.ZstdCompressionObj | None
    raw_hash: blake3 = field(default_factory=blake3)
    raw_size: int = 0
    rows: int = 0

    def _emit(self, data: bytes) -> None:
        if data and self.out is not None:
            self.out.write(data)

    def feed(self, data: bytes | memoryview, rows: int) -> None:
        self.raw_hash.update(data)
        self.raw_size += len(data)
        self.rows += rows
        if self.cobj is not None:
            self._emit(self.cobj.compress(data))

    def close(self) -> Chunk:
        chunk = Chunk(path=self.path, rows=self.rows, raw_size=self.raw_size, stored_size=0,
                      sha256=hashlib.sha256().hexdigest(), raw_blake3=self.raw_hash.hexdigest())
        if self.cobj is not None and self.out is not None and self.stored is not None:
            self._emit(self.cobj.flush())
            self.out.commit()
            chunk.stored_size = self.stored.bytes_written
            chunk.sha256 = self.stored.sha256.hexdigest()
            if self.stored.checksum:
                chunk.storage_checksum = self.stored.checksum
        return chunk

    def abort(self) -> None:
        if self.out is not None:
            self.out.abort()


def content_digest(chunks: list[Chunk]) -> str:
    """A table's content digest: BLAKE3 over its chunks' raw digests (hex, concatenated), in order.

    Chunk boundaries depend only on the row stream and the chunk size (see :class:`ChunkWriter`),
    so re-reading a restored table with :class:`ChunkWriter` in digest-only mode reproduces it.
    """
    return blake3("".join(c.raw_blake3 for c in chunks).encode()).hexdigest()


class ChunkWriter:
    """Turns one table's raw row stream into chunks under ``prefix``.

    A chunk ends at the first row end at or after ``chunk_size`` raw bytes, wherever the caller's
    :meth:`write` calls fall, so the same rows always give the same chunks. With ``storage=None``
    nothing is compressed or stored: only the digests are computed (``verify --deep``).
    ``on_progress(rows, nbytes)`` is called per fed piece (about every MiB).
    """

    def __init__(
        self,
        storage: StorageBackend | None,
        prefix: str,
        compression: Compression,
        chunk_size: int,
        on_progress: Callable[[int, int], None] | None = None,
        *,
        line_based: bool = True,
        cipher: SnapshotCipher | None = None,
    ) -> None:
        self._storage = storage
        self._cipher = cipher
        self._prefix = prefix.rstrip("/")
        self._cctx = compression.compressor() if storage is not None else None
        self._chunk_size = chunk_size
        self._on_progress = on_progress
        self._line_based = line_based
        self._buf = bytearray()
        self._current: _OpenChunk | None = None
        self.chunks: list[Chunk] = []
        self.rows = 0
        self.raw_size = 0

    def write(self, data: bytes | bytearray | memoryview, rows: int | None = None) -> None:
        """Add ``data`` to the stream; ``rows``, when the caller knows it, is the number of line ends
        in ``data`` (it saves counting them)."""
        if not self._buf and isinstance(data, bytes) and data.endswith(b"\n") and self._line_based:
            self._feed_rows(data, rows)  # whole rows already: no copy into the buffer
            return
        self._buf += data
        if len(self._buf) >= FEED_SIZE:
            self._feed(final=False)

    def _feed(self, final: bool) -> None:
        buf = self._buf
        if not buf:
            return
        if final or not self._line_based:
            cut = len(buf)
        else:
            cut = buf.rfind(b"\n") + 1
            if cut == 0:  # one row longer than the buffer: keep gathering
                return
        data = bytes(buf[:cut])
        del buf[:cut]
        self._feed_rows(data)

    def _feed_rows(self, data: bytes, known_rows: int | None = None) -> None:
        pos, n = 0, len(data)
        while pos < n:
            current = self._current or self._open()
            end = n
            if self._line_based and current.raw_size + (n - pos) >= self._chunk_size:
                need = max(self._chunk_size - current.raw_size, 1)
                newline = data.find(b"\n", pos + need - 1)
                if newline != -1:
                    end = newline + 1
            if not self._line_based:
                rows = 0
            elif known_rows is not None and pos == 0 and end == n:
                rows = known_rows
            else:
                rows = data.count(b"\n", pos, end)
            current.feed(memoryview(data)[pos:end], rows)
            self.rows += rows
            self.raw_size += end - pos
            if self._on_progress is not None:
                self._on_progress(rows, end - pos)
            if self._line_based and current.raw_size >= self._chunk_size:
                self.chunks.append(current.close())
                self._current = None
            pos = end

    def _open(self) -> _OpenChunk:
        path = f"{self._prefix}/{len(self.chunks):06d}.zst"
        if self._storage is None or self._cctx is None:
            self._current = _OpenChunk(path, None, None, None)
        else:
            stored = HashingWriter(self._storage.open_write(path))
            out = self._cipher.writer(stored) if self._cipher is not None else stored
            self._current = _OpenChunk(path, out, stored, self._cctx.compressobj())
        return self._current

    def close(self) -> list[Chunk]:
        """Flush what is buffered and commit the last chunk."""
        self._feed(final=True)
        if self._current is not None:
            self.chunks.append(self._current.close())
            self._current = None
        return self.chunks

    def abort(self) -> None:
        if self._current is not None:
            self._current.abort()
            self._current = None

    def record(self, entry: TableEntry) -> None:
        """Put what was written (chunks, rows, sizes, content digest) into the table's entry."""
        entry.chunks = self.chunks
        entry.rows, entry.raw_size = self.rows, self.raw_size
        entry.stored_size = sum(c.stored_size for c in self.chunks)
        entry.content_blake3 = self.content_blake3

    @property
    def content_blake3(self) -> str:
        return content_digest(self.chunks)


def digester(chunk_size: int) -> ChunkWriter:
    """A ChunkWriter that stores nothing: re-reading a table through it reproduces its digests."""
    return ChunkWriter(None, "", Compression(), chunk_size)


def stored_blocks(storage: StorageBackend, chunk: Chunk, name: str, digest: hashlib._Hash,
                   size: list[int]) -> Iterator[bytes]:
    try:
        fh: BinaryIO = storage.open_read(chunk.path)
    except NotFound as exc:
        raise IntegrityError(f"chunk {name} is missing") from exc
    with fh:
        while block := fh.read(READ_SIZE):
            size[0] += len(block)
            digest.update(block)
            yield block


def read_chunk(storage: StorageBackend, chunk: Chunk, *, label: str | None = None,
               count_rows: bool = False, raw_check: bool = True) -> Iterator[bytes]:
    """Yield the raw bytes of ``chunk`` while checking both digests and the size; with
    ``count_rows`` (a table's chunk) also that it holds as many rows (line ends) as ``chunk.rows``.
    ``raw_check=False`` leaves out the BLAKE3 of the decompressed bytes, for a reader that only
    looks (the leak audit's scan of a copied table): the SHA-256 of the stored bytes, still
    checked, already fixes what they decompress to.

    The row count is checked apart from the digests because a manifest can be rewritten along
    with its digest: a restore must load what the manifest says, not just bytes that match it.
    An encrypted snapshot's objects (a storage view with a ``cipher``) are decrypted on the way.
    Raises IntegrityError naming the chunk after its last byte if anything does not match; a
    consumer must not commit what it received before the generator finished.
    """
    name = label or chunk.path
    stored_hash = hashlib.sha256()
    stored = [0]
    raw_hash = blake3()
    raw = rows = 0
    dobj = zstandard.ZstdDecompressor().decompressobj(write_size=DECOMPRESS_SIZE)
    blocks: Iterator[bytes] = stored_blocks(storage, chunk, name, stored_hash, stored)
    cipher: SnapshotCipher | None = getattr(storage, "cipher", None)
    if cipher is not None:
        blocks = cipher.decrypt(blocks, f"chunk {name}")
    for block in blocks:
        try:
            out = dobj.decompress(block)
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"chunk {name} is corrupt: {exc}") from exc
        if out:
            raw += len(out)
            if raw > chunk.raw_size:  # a few KiB of zstd can expand to gigabytes: stop at the recorded size
                raise IntegrityError(f"chunk {name} decompresses to more than its recorded {chunk.raw_size:,} bytes")
            if raw_check:
                raw_hash.update(out)
            if count_rows:
                rows += out.count(b"\n")
            yield out
    if stored[0] != chunk.stored_size or stored_hash.hexdigest() != chunk.sha256:
        raise IntegrityError(f"chunk {name} does not match its SHA-256 (stored bytes changed)")
    if not dobj.eof:
        raise IntegrityError(f"chunk {name} is truncated")
    if raw != chunk.raw_size or (raw_check and raw_hash.hexdigest() != chunk.raw_blake3):
        raise IntegrityError(f"chunk {name} decompresses to different bytes than were backed up")
    if count_rows and rows != chunk.rows:
        raise IntegrityError(f"chunk {name} holds {rows} rows, the manifest says {chunk.rows}")


def check_stored(storage: StorageBackend, chunk: Chunk, *, label: str | None = None) -> None:
    """Re-read the stored bytes of ``chunk`` and check size and SHA-256 (no decryption or decompression)."""
    name = label or chunk.path
    digest = hashlib.sha256()
    size = [0]
    for _ in stored_blocks(storage, chunk, name, digest, size):
        pass
    if size[0] != chunk.stored_size or digest.hexdigest() != chunk.sha256:
        raise IntegrityError(f"chunk {name} does not match its SHA-256 (stored bytes changed)")


#: largest object :func:`read_whole` holds in memory (a schema part; datasafe's are far smaller)
MAX_WHOLE_BYTES = 1 << 30


def read_whole(storage: StorageBackend, chunk: Chunk, *, label: str | None = None) -> bytes:
    """The raw bytes of a small chunk (schema parts).

    Its size comes from the manifest, which whoever can write the storage can rewrite, so a size
    beyond :data:`MAX_WHOLE_BYTES` is refused before anything is read."""
    if chunk.raw_size > MAX_WHOLE_BYTES:
        raise IntegrityError(f"chunk {label or chunk.path} holds {chunk.raw_size:,} bytes; an object read whole "
                             f"holds at most {MAX_WHOLE_BYTES:,}: refused")
    return b"".join(read_chunk(storage, chunk, label=label))
