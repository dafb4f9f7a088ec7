"""Masking one table's rows: uniqueness, subsetting, and the rows that need the whole row.

:class:`TableMasker` owns what a table carries from row to row: the hashes of the unique keys
seen so far, the key values kept for child tables, the rows dropped. Tables whose masked columns
need only their own values are masked a block at a time (:mod:`datasafe.masking.batch`) and
their unique keys checked here in row order; the others go row by row through :meth:`rows`.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from datasafe.errors import IntegrityError, Refused
from datasafe.masking.batch import BatchMasker, BatchResult
from datasafe.masking.codecs import Cell, RowCodec, codec_for
from datasafe.masking.errors import RulesError
from datasafe.masking.plan import MaskPlan, TablePlan
from datasafe.masking.types import column_kind
from datasafe.snapshot.manifest import TableEntry

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


def key_hash(values: Iterable[Cell]) -> int:
    """The 8-byte hash of a unique key's values that collision checks compare (as a native integer)."""
    digest = hashlib.sha256()
    for v in values:
        digest.update(b"\x00N" if v is None else b"\x01" + v.encode())
    return int.from_bytes(digest.digest()[:8], sys.byteorder)


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
        #: per unique key, the hashes of the values written so far
        self.seen: list[set[int]] = [set() for _ in table.unique]
        self.filter = _WhereFilter(self.entry, table.where) if table.where else None
        # parents that lost rows: this table's rows must point at kept parent rows
        self.checks: list[tuple[tuple[int, ...], _KeySet]] = []
        for cols, parent, ref_cols in table.parents:
            if parent in state.reduced:
                keyset = state.kept_keys.get(parent, {}).get(ref_cols)
                self.checks.append((cols, keyset if keyset is not None else _KeySet(())))
        # key sets this table must keep for its children, needed only if it can lose rows
        self.referenced: dict[tuple[str, ...], _KeySet] = {}
        if self.filter is not None or self.checks:
            for other in plan.tables:
                for _cols, parent, ref_cols in other.parents:
                    if parent == self.entry.name and all(c in self.names for c in ref_cols):
                        self.referenced.setdefault(ref_cols,
                                                   _KeySet(tuple(self.names.index(c) for c in ref_cols)))
        self.dropped = 0

    @property
    def by_block(self) -> bool:
        """Whether the rows can be masked a block at a time (:meth:`batch` and :meth:`accept`)."""
        return self.filter is None and not self.checks and BatchMasker.qualifies(self.table)

    def batch(self) -> BatchMasker:
        """The block masker of this table (only when :attr:`by_block`)."""
        return BatchMasker(self.table, self.codec, self.state.overrides)

    def accept(self, block: bytes, result: BatchResult) -> bytes:
        """The rows of a masked block as they are written: checked for uniqueness in row order.

        A row whose unique key collides with an earlier one is masked again here, with
        alternatives, exactly as :meth:`rows` would; the error that stopped the block (if any)
        is raised after the rows before it.
        """
        data = result.data
        if self.table.unique and result.rows:
            hashes = [memoryview(h).cast("Q").tolist() for h in result.hashes]
            fresh: list[set[int]] = []
            for n, seen in enumerate(self.seen):
                nulls = set(result.nulls[n])
                values = [h for i, h in enumerate(hashes[n]) if i not in nulls] if nulls else hashes[n]
                distinct = set(values)
                if len(distinct) != len(values) or not seen.isdisjoint(distinct):
                    data = self._resolve(block, result, hashes)
                    break
                fresh.append(distinct)
            else:
                for seen, distinct in zip(self.seen, fresh, strict=True):
                    seen |= distinct
        if result.error is not None:
            raise result.error
        return data

    def _resolve(self, block: bytes, result: BatchResult, hashes: list[list[int]]) -> bytes:
        """Check a block's unique keys row by row, masking colliding rows again."""
        lines = block.split(b"\n")
        out = result.data.split(b"\n")
        nulls = [set(n) for n in result.nulls]
        for r in range(result.rows):
            for n, seen in enumerate(self.seen):
                if r in nulls[n]:
                    continue
                if hashes[n][r] in seen:
                    fields = self.codec.split(lines[r])
                    row, cells = self._mask_fields(fields)
                    self._make_unique(row, cells, fields, start=n)
                    out[r] = self._join(cells, fields)[:-1]
                    break
                seen.add(hashes[n][r])
        return b"\n".join(out[:result.rows]) + b"\n"

    def rows(self, lines: Iterator[bytes]) -> Iterator[bytes]:
        """Masked rows (each with its line end) for the stored rows ``lines`` (each with its line end)."""
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
        for keyset in self.referenced.values():
            keyset.values.add(tuple(codec.decode(fields[i]) for i in keyset.columns))
        if not self.table.masked:
            return line if line.endswith(b"\n") else codec.join(fields)
        row, cells = self._mask_fields(fields)
        if self.table.unique:
            self._make_unique(row, cells, fields)
        return self._join(cells, fields)

    def _mask_fields(self, fields: list[Any]) -> tuple[_Row, dict[int, Cell]]:
        """The masked cells of a row (attempt 0), by column index."""
        row = _Row(fields, self.names, self.codec)
        cells: dict[int, Cell] = {}
        for m in self.table.masked:
            value = self.codec.decode(fields[m.index])
            override = self.state.overrides.get(m.inherited_from) if m.inherited_from else None
            # a parent value that needed an alternative keeps it in every referencing column
            hit = override is not None and value in override
            masked = override[value] if hit else m.transformer(value, row, 0)  # type: ignore[index]
            row.masked[m.name] = cells[m.index] = masked
        return row, cells

    def _join(self, cells: dict[int, Cell], fields: list[Any]) -> bytes:
        encode = self.codec.encode
        return self.codec.join([encode(cells[i], f) if i in cells else f for i, f in enumerate(fields)])

    def _make_unique(self, row: _Row, cells: dict[int, Cell], fields: list[Any], start: int = 0) -> None:
        for n in range(start, len(self.table.unique)):
            idx = self.table.unique[n]
            values = [cells[i] if i in cells else self.codec.decode(fields[i]) for i in idx]
            if any(c is None for c in values):
                continue  # NULLs never collide in a unique constraint
            h = key_hash(values)
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
                trial = [candidate if i == target.index else c for i, c in zip(idx, values, strict=False)]
                h = key_hash(trial)
                if candidate is not None and h not in self.seen[n]:
                    self.seen[n].add(h)
                    cells[target.index] = candidate
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
