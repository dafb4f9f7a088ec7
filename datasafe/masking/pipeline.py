"""Running a masking plan: stream a stored snapshot's chunks through the transformers into a new one.

Tables without masked columns or filters are copied chunk for chunk without decompressing.
Masked tables are read one chunk at a time, row by row; only the fields being masked are
decoded. Memory stays bounded by the chunk size plus, per unique or referenced key, the set of
values seen (8-byte hashes for uniqueness; kept key values for subsetting).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from datasafe.errors import IntegrityError, Refused
from datasafe.masking.codecs import Cell, RowCodec, codec_for
from datasafe.masking.errors import RulesError
from datasafe.masking.plan import MaskPlan, TablePlan
from datasafe.masking.types import column_kind
from datasafe.progress import NullProgress, Progress
from datasafe.snapshot.chunks import Compression, HashingWriter, read_chunk, stored_blocks
from datasafe.snapshot.manifest import Chunk, SchemaPart, TableEntry
from datasafe.snapshot.repository import SnapshotObjects, SnapshotWriter

log = logging.getLogger(__name__)

#: alternatives tried for a unique value before the run fails
MAX_ATTEMPTS = 200
#: rows evaluated against a ``where`` filter at once
FILTER_BATCH = 5000


class _Row:
    """The row view a transformer sees: original cells decoded on demand, masked ones as they are done."""

    __slots__ = ("_cache", "_codec", "_fields", "_names", "masked")

    def __init__(self, fields: list[Any], names: list[str], codec: RowCodec) -> None:
        self._fields = fields
        self._names = names
        self._codec = codec
        self._cache: dict[str, Cell] | None = None
        self.masked: dict[str, Cell] = {}

    @property
    def original(self) -> Mapping[str, Cell]:
        if self._cache is None:
            self._cache = {n: self._codec.decode(f) for n, f in zip(self._names, self._fields, strict=False)}
        return self._cache


def _h(values: Iterable[Cell]) -> bytes:
    digest = hashlib.blake2b(digest_size=8)
    for v in values:
        digest.update(b"\x00N" if v is None else b"\x01" + v.encode())
    return digest.digest()


@dataclass
class _KeySet:
    """The key values (original text) of the kept rows of a table, for children to check against."""

    columns: tuple[int, ...]
    values: set[tuple[Cell, ...]] = field(default_factory=set)


@dataclass
class RunState:
    """What one masking run carries from table to table."""

    #: (table, column) -> {original: masked} for values that needed an alternative (attempt > 0)
    overrides: dict[tuple[str, str], dict[str, Cell]] = field(default_factory=dict)
    #: table -> parent key sets of kept rows; only for tables that lost rows
    kept_keys: dict[str, dict[tuple[str, ...], _KeySet]] = field(default_factory=dict)
    #: tables that lost rows (truncated, excluded, filtered)
    reduced: set[str] = field(default_factory=set)
    rows_in: int = 0
    rows_out: int = 0


class TableMasker:
    """Masks the rows of one table, keeping uniqueness and following filtered parents."""

    def __init__(self, plan: MaskPlan, table: TablePlan, state: RunState) -> None:
        self.plan = plan
        self.table = table
        self.state = state
        self.entry = table.entry
        self.codec = codec_for(self.entry.encoding)
        self.names = [c.name for c in self.entry.columns]
        self.seen: list[set[bytes]] = [set() for _ in table.unique]
        self.masked_idx = {m.index for m in table.masked}
        self.filter = _WhereFilter(self.entry, table.where) if table.where else None
        # parents that lost rows: this table's rows must point at kept parent rows
        self.checks: list[tuple[tuple[int, ...], _KeySet]] = []
        for cols, parent, ref_cols in table.parents:
            if parent in state.reduced:
                keyset = state.kept_keys.get(parent, {}).get(ref_cols)
                self.checks.append((cols, keyset if keyset is not None else _KeySet(())))
        # key sets this table must keep for its children when it loses rows
        self.referenced: dict[tuple[str, ...], _KeySet] = {}
        for other in plan.tables:
            for _cols, parent, ref_cols in other.parents:
                if parent == self.entry.name and all(c in self.names for c in ref_cols):
                    self.referenced.setdefault(ref_cols, _KeySet(tuple(self.names.index(c) for c in ref_cols)))
        self.dropped = 0

    def rows(self, lines: Iterator[bytes]) -> Iterator[bytes]:
        """Masked rows (each with its line end) for the stored rows ``lines``."""
        if self.filter is None:
            for line in lines:
                out = self._row(line)
                if out is not None:
                    yield out
            return
        batch: list[bytes] = []
        for line in lines:
            batch.append(line)
            if len(batch) >= FILTER_BATCH:
                yield from self._filtered(batch)
                batch = []
        if batch:
            yield from self._filtered(batch)

    def _filtered(self, batch: list[bytes]) -> Iterator[bytes]:
        assert self.filter is not None
        decoded = [[self.codec.decode(f) for f in self.codec.split(line.rstrip(b"\n"))] for line in batch]
        keep = self.filter.select(decoded)
        for i, line in enumerate(batch):
            if i in keep:
                out = self._row(line)
                if out is not None:
                    yield out
            else:
                self.dropped += 1

    def _row(self, line: bytes) -> bytes | None:
        codec = self.codec
        fields = codec.split(line[:-1] if line.endswith(b"\n") else line)
        if len(fields) != len(self.names):
            raise IntegrityError(f"table {self.entry.name}: a row has {len(fields)} fields, "
                                 f"the manifest lists {len(self.names)} columns")
        for cols, keyset in self.checks:
            key = tuple(codec.decode(fields[i]) for i in cols)
            if None not in key and key not in keyset.values:
                self.dropped += 1
                return None
        if self.referenced:
            for keyset in self.referenced.values():
                keyset.values.add(tuple(codec.decode(fields[i]) for i in keyset.columns))
        if not self.table.masked:
            return line if line.endswith(b"\n") else codec.join(fields)
        row = _Row(fields, self.names, codec)
        out = list(fields)
        for m in self.table.masked:
            value = codec.decode(fields[m.index])
            override = self.state.overrides.get(m.inherited_from) if m.inherited_from else None
            # a parent value that needed an alternative keeps it in every referencing column
            hit = override is not None and value in override
            masked = override[value] if hit else m.transformer(value, row, 0)  # type: ignore[index]
            row.masked[m.name] = masked
            out[m.index] = (masked, fields[m.index])
        if self.table.unique:
            self._make_unique(row, out, fields)
        return codec.join([codec.encode(*v) if isinstance(v, tuple) else v for v in out])

    def _make_unique(self, row: _Row, out: list[Any], fields: list[Any]) -> None:
        for n, idx in enumerate(self.table.unique):
            cells = [out[i][0] if isinstance(out[i], tuple) else self.codec.decode(fields[i]) for i in idx]
            if any(c is None for c in cells):
                continue  # NULLs never collide in a unique constraint
            h = _h(cells)
            if h not in self.seen[n]:
                self.seen[n].add(h)
                continue
            target = next(m for m in self.table.masked if m.index in idx)
            if target.inherited_from is not None:
                raise RulesError(f"{self.entry.name}.{target.name}: masked values collide in a unique key "
                                 f"inherited from {target.inherited_from[0]}.{target.inherited_from[1]}")
            original = self.codec.decode(fields[target.index])
            for attempt in range(1, MAX_ATTEMPTS + 1):
                candidate = target.transformer(original, row, attempt)
                trial = [candidate if i == target.index else c for i, c in zip(idx, cells, strict=False)]
                h = _h(trial)
                if candidate is not None and h not in self.seen[n]:
                    self.seen[n].add(h)
                    out[target.index] = (candidate, fields[target.index])
                    row.masked[target.name] = candidate
                    if original is not None:
                        self.state.overrides.setdefault((self.entry.name, target.name), {})[original] = candidate
                    break
            else:
                raise Refused(
                    f"{self.entry.name}.{target.name} is unique, but rule {target.transformer.name!r} found no "
                    f"unused value after {MAX_ATTEMPTS} tries: its outputs are too few for this column "
                    f"(use a rule with more outputs, e.g. hash or email)")

    def finish(self) -> None:
        if self.dropped or self.entry.name in self.state.reduced:
            self.state.reduced.add(self.entry.name)
            self.state.kept_keys[self.entry.name] = self.referenced


class _WhereFilter:
    """Evaluates a rules ``where`` expression (SQLite syntax) over decoded rows, a batch at a time."""

    def __init__(self, entry: TableEntry, where: str) -> None:
        self.entry = entry
        self.db = sqlite3.connect(":memory:")
        affinity = {"int": "INTEGER", "decimal": "NUMERIC", "float": "REAL"}
        cols = ", ".join(f'"{c.name}" {affinity.get(column_kind(c.type), "TEXT")}' for c in entry.columns)
        self.db.execute(f"CREATE TABLE t ({cols})")
        marks = ", ".join("?" for _ in entry.columns)
        self.insert = f"INSERT INTO t VALUES ({marks})"
        self.query = f"SELECT rowid - 1 FROM t WHERE ({where})"
        try:
            self.db.execute(self.query + " LIMIT 0")
        except sqlite3.Error as exc:
            raise RulesError(f"table {entry.name}: invalid where filter {where!r}: {exc}") from None

    def select(self, rows: list[list[Cell]]) -> set[int]:
        self.db.execute("DELETE FROM t")
        self.db.executemany(self.insert, rows)
        first = self.db.execute("SELECT min(rowid) FROM t").fetchone()[0] or 1
        try:
            return {r[0] - (first - 1) for r in self.db.execute(self.query)}
        except sqlite3.Error as exc:
            raise RulesError(f"table {self.entry.name}: where filter failed: {exc}") from None


# -- whole chunks ------------------------------------------------------------------------------------
def copy_object(src: SnapshotObjects, dst: SnapshotObjects, chunk: Chunk, label: str) -> Chunk:
    """Copy one stored object without decompressing it (re-encrypting when the keys differ)."""
    digest = hashlib.sha256()
    size = [0]
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


def _lines(objects: SnapshotObjects, entry: TableEntry) -> Iterator[bytes]:
    """The stored rows of a table, one line each (with its line end), chunk by chunk."""
    for chunk in entry.chunks:
        rest = b""
        for block in read_chunk(objects, chunk, label=f"{entry.name} {chunk.path}"):
            data = rest + block if rest else block
            cut = data.rfind(b"\n") + 1
            if cut:
                yield from data[:cut].splitlines(keepends=True)
            rest = data[cut:]
        if rest:
            raise IntegrityError(f"table {entry.name}: chunk {chunk.path} ends inside a row")


def mask_tables(plan: MaskPlan, src: SnapshotObjects, writer: SnapshotWriter, compression: Compression,
                chunk_size: int, progress: Progress | None = None) -> tuple[list[TableEntry], list[SchemaPart]]:
    """Write every table of ``plan`` into ``writer``; returns the new table entries and schema parts."""
    progress = progress or NullProgress()
    state = RunState()
    parts = [SchemaPart.model_validate(copy_object(src, writer.objects, p, f"schema {p.name}").model_dump())
             for p in plan.manifest.schema_parts]
    entries: dict[int, TableEntry] = {}
    total = sum(t.entry.raw_size for t in plan.tables)
    progress.start("mask", f"mask {plan.manifest.snapshot_id}", total)
    for ordinal in plan.order:
        table = plan.tables[ordinal]
        entries[ordinal] = _mask_one(plan, table, state, src, writer, compression, chunk_size, progress)
    progress.finish("mask")
    return [entries[i] for i in range(len(plan.tables))], parts


def _mask_one(plan: MaskPlan, table: TablePlan, state: RunState, src: SnapshotObjects, writer: SnapshotWriter,
              compression: Compression, chunk_size: int, progress: Progress) -> TableEntry:
    entry = table.entry
    new = entry.model_copy(deep=True)
    state.rows_in += entry.rows
    if table.action in ("truncate", "exclude"):
        new.chunks, new.rows, new.raw_size, new.stored_size = [], 0, 0, 0
        from datasafe.snapshot.chunks import content_digest

        new.content_blake3 = content_digest([])
        state.reduced.add(entry.name)
        state.kept_keys[entry.name] = {}
        progress.advance("mask", rows=entry.rows, nbytes=entry.raw_size)
        return new
    parent_reduced = any(parent in state.reduced for _c, parent, _r in table.parents)
    if table.action == "copy" and not parent_reduced:
        new.chunks = [copy_object(src, writer.objects, c, f"{entry.name} {c.path}") for c in entry.chunks]
        new.stored_size = sum(c.stored_size for c in new.chunks)
        state.rows_out += entry.rows
        progress.advance("mask", rows=entry.rows, nbytes=entry.raw_size)
        return new
    masker = TableMasker(plan, table, state)
    out = writer.table_writer(table.ordinal, compression, chunk_size)
    advance: Callable[[int], None] = lambda n: progress.advance("mask", rows=1, nbytes=n)  # noqa: E731
    try:
        buf: list[bytes] = []
        size = 0
        for line in masker.rows(_counted(_lines(src, entry), advance)):
            buf.append(line)
            size += len(line)
            if size >= 1 << 20:
                out.write(b"".join(buf))
                buf, size = [], 0
        if buf:
            out.write(b"".join(buf))
        out.close()
    except BaseException:
        out.abort()
        raise
    out.record(new)
    masker.finish()
    state.rows_out += new.rows
    if masker.dropped:
        log.info("%s: %d of %d rows dropped by the where filter or filtered parents", entry.name,
                 masker.dropped, entry.rows)
    return new


def _counted(lines: Iterator[bytes], advance: Callable[[int], None]) -> Iterator[bytes]:
    for line in lines:
        advance(len(line))
        yield line


def sample(plan: MaskPlan, src: SnapshotObjects, rows: int = 3) -> dict[str, list[tuple[dict[str, Cell],
                                                                                          dict[str, Cell]]]]:
    """A few rows per masked table, before and after (what ``mask --dry-run`` shows)."""
    out: dict[str, list[tuple[dict[str, Cell], dict[str, Cell]]]] = {}
    state = RunState()
    for ordinal in plan.order:
        table = plan.tables[ordinal]
        if table.action != "mask" or not table.masked or not table.entry.chunks:
            continue
        masker = TableMasker(plan, table, state)
        masker.checks = []
        codec = masker.codec
        pairs = []
        for line in _lines(src, table.entry):
            after = masker._row(line)
            if after is None:
                continue
            before_cells = [codec.decode(f) for f in codec.split(line.rstrip(b"\n"))]
            after_cells = [codec.decode(f) for f in codec.split(after.rstrip(b"\n"))]
            shown = [m.name for m in table.masked]
            pairs.append(({n: before_cells[masker.names.index(n)] for n in shown},
                          {n: after_cells[masker.names.index(n)] for n in shown}))
            if len(pairs) >= rows:
                break
        out[table.name] = pairs
    return out
