"""What a leak audit saw and found: the items of the scanned columns and where, the originals found among them;
and :class:`TableProbe`, which cuts one table's blocks into those items.

Kept apart from :mod:`datasafe.masking.leaks` (a masking run's audit) because ``datasafe leaks``
(:mod:`datasafe.masking.leaks_compare`) keeps the same books over two snapshots or databases.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from datasafe.masking import fingerprints
from datasafe.masking.fingerprints import Fingerprints
from datasafe.masking.leaks_items import (
    COMMON_ROWS,
    COMMON_SHARE,
    SEEN_BYTES,
    WORD,
    Known,
    Original,
    Scanned,
    block_columns,
    exposed_items,
    identifying,
    original_items,
)
from datasafe.masking.leaks_report import Finding
from datasafe.snapshot.manifest import TableEntry

#: whole rows as stored: a block, or a view into a decompressed buffer (the copied tables' scan)
Rows = bytes | memoryview


@dataclass
class Hits:
    """What one block contributes: its rows, per original column the items found with how often
    they occur, per output-read scanned column the items seen there."""

    rows: int
    found: list[dict[bytes, int]]
    exposed: list[list[bytes]]
    seconds: float = 0.0


class Ledger:
    """Items seen in the scanned columns (with the columns they were seen in) and items found
    among the originals (with how often). Fed by one thread at a time."""

    def __init__(self, originals: list[Original], scanned: list[Scanned]) -> None:
        self.originals = originals
        self.scanned = scanned
        self.where: dict[bytes, int] = {}  # item -> bit mask of scanned column ids
        self.found: list[Counter[bytes]] = [Counter() for _ in originals]
        self.rows = [0 for _ in originals]
        self.seconds = 0.0

    def expose(self, scanned: list[Scanned], items: list[list[bytes]]) -> list[bytes]:
        """Record items of scanned columns; returns those the ledger had not seen anywhere."""
        where, new = self.where, []
        for s, column in zip(scanned, items, strict=True):
            bit = 1 << s.id
            for item in column:
                old = where.get(item)
                if old is None:
                    new.append(item)
                    where[item] = bit
                elif not old & bit:
                    where[item] = old | bit
        return new

    def hits(self, probe: TableProbe, hits: Hits, *, count_rows: bool = True) -> list[bytes]:
        """Record a block's :class:`Hits`; returns the late items new to the ledger."""
        self.seconds += hits.seconds
        for o, found in zip(probe.originals, hits.found, strict=True):
            if count_rows:
                self.rows[o.id] += hits.rows
            if found:
                self.found[o.id].update(found)
        return self.expose(probe.late, hits.exposed)

    def findings(self, accepted: Mapping[str, str], *, own_column: bool = False
                 ) -> list[tuple[Finding, Original, Scanned, set[bytes]]]:
        """Each (original column, scanned column) sharing items not common in the original
        column; ``own_column``: a column's own output counts too."""
        # distinct items per scanned column, words and other items apart (a column of single words
        # has each as a value and as a word)
        distinct: Counter[tuple[int, bool]] = Counter()
        for item, mask in self.where.items():
            word = item.startswith(WORD)
            distinct.update((i, word) for i in range(mask.bit_length()) if mask >> i & 1)
        out = []
        for o in self.originals:
            limit = max(COMMON_ROWS, COMMON_SHARE * self.rows[o.id])
            rare = [item for item, n in self.found[o.id].items() if n < limit]
            for s in self.scanned:
                if not own_column and (s.table, s.index) == (o.table, o.index):
                    continue  # a rule that keeps part of its input (json paths, regex) keeps it on purpose
                bit = 1 << s.id
                shared = {item for item in rare if self.where[item] & bit}
                if shared:
                    words = sum(1 for item in shared if item.startswith(WORD))
                    # the share of whole values when there are any (words of free text meet other
                    # text by chance: see judge), else of words
                    share = ((len(shared) - words) / max(1, distinct[(s.id, False)]) if words < len(shared)
                             else words / max(1, distinct[(s.id, True)]))
                    finding = Finding(o.name, s.name, len(shared), accepted=accepted.get(o.name),
                                      identifying=sum(map(identifying, shared)), share=round(share, 4),
                                      words=words)
                    out.append((finding, o, s, shared))
        return out


class TableProbe:
    """Cuts one table's blocks into items: scanned columns (:meth:`expose`) and originals (:meth:`test`)."""

    def __init__(self, entry: TableEntry, originals: list[Original], scanned: list[Scanned]) -> None:
        self.entry = entry
        self.originals = originals
        self.early = [s for s in scanned if not s.output]
        self.late = [s for s in scanned if s.output]
        self.ncols = len(entry.columns)
        # cells already scanned: most columns repeat a few values (a status, a user agent, a JSON
        # template), whose items are known already; a cell met again costs one set lookup
        self._seen: dict[int, set[bytes]] = {s.id: set() for s in scanned}
        self._seen_bytes = 0
        # ... and before that, in C, by the hashes of the cells met (see fingerprints.distinct):
        # made in the process that scans (a forked worker gets its own)
        self._tables: dict[int, bytearray] = {}
        self._seed = int.from_bytes(os.urandom(8), "little")
        self._modes = sorted((o.index, o.mode) for o in originals)

    def _new(self, s: Scanned, cells: list[bytes]) -> set[bytes]:
        seen = self._seen[s.id]
        if seen and seen.issuperset(cells):
            return set()
        new = set(cells)
        if seen:
            new -= seen
        if new and self._seen_bytes < SEEN_BYTES:
            seen |= new
            self._seen_bytes += sum(map(len, new))
        return new

    def _exposed(self, block: Rows, scanned: list[Scanned], into: Fingerprints | None = None
                 ) -> list[list[bytes]]:
        """The new items of the ``scanned`` columns of ``block``; with ``into``, the originals of
        the block's masked columns go into it in the same walk of the block."""
        # distinct cells as stored (not lower-cased: most repeat, and only new ones are worth the work)
        wanted = tuple(sorted({s.index for s in scanned}))
        if not block or (not wanted and into is None):
            return [[] for _ in scanned]
        if self.entry.encoding == "jsonl":
            if into is not None:
                self.fingerprint(bytes(block), into)
            columns = block_columns(bytes(block), self.entry.encoding, self.ncols, wanted, lower=False)
        else:
            by_index = {s.index: s.id for s in scanned}
            tables = tuple(self._table(by_index[i]) for i in wanted)
            if into is not None and self.originals:
                columns = into.add_block_scanning(block, self.ncols, self._modes, wanted, tables, self._seed)
            else:
                columns = fingerprints.distinct(block, self.ncols, wanted, tables, self._seed)
        cols = dict(zip(wanted, columns, strict=True))
        return [exposed_items(map(bytes.lower, self._new(s, cols[s.index])), s.kind) for s in scanned]

    def _table(self, sid: int) -> bytearray:
        table = self._tables.get(sid)
        if table is None:
            table = self._tables[sid] = bytearray(8 * fingerprints.SEEN_SLOTS)
        return table

    def fingerprint(self, block: bytes, into: Fingerprints) -> None:
        """Add the items of the block's original values of the masked columns to ``into``."""
        if not self.originals or not block:
            return
        if self.entry.encoding != "jsonl":
            into.add_block(block, self.ncols, self._modes)
            return
        wanted = tuple(sorted({o.index for o in self.originals}))
        cols = dict(zip(wanted, block_columns(block, self.entry.encoding, self.ncols, wanted), strict=True))
        for o in self.originals:
            values, words = original_items(cols[o.index], o.mode)
            into.add(values + [WORD + w for w in words])

    def expose(self, block: Rows) -> list[list[bytes]]:
        """The new items of the scanned columns read from the original rows, per column."""
        return self._exposed(block, self.early)

    def audit(self, block: bytes, output: bytes, into: Fingerprints | None, early: bool
              ) -> tuple[list[list[bytes]], list[list[bytes]]]:
        """What masking a block gives the audit: its originals into ``into``; the new items of
        the scanned columns, read from the original rows (if ``early``) and from ``output``."""
        if early:
            exposed = self._exposed(block, self.early, into)
        else:
            if into is not None:
                self.fingerprint(block, into)
            exposed = [[] for _ in self.early]
        late = self._exposed(output, self.late) if self.late and output else [[] for _ in self.late]
        return exposed, late

    def test(self, block: bytes, output: bytes | None, known: Known) -> Hits:
        """The items of ``block``'s originals that ``known`` holds; the items of ``output``'s
        late-scanned columns (``output``: the masked rows)."""
        started = time.perf_counter()
        found: list[dict[bytes, int]] = []
        rows = 0
        if self.originals:
            wanted = tuple(sorted({o.index for o in self.originals}))
            cols = dict(zip(wanted, block_columns(block, self.entry.encoding, self.ncols, wanted), strict=True))
            rows = len(cols[wanted[0]])
            for o in self.originals:
                found.append(known.hits(*original_items(cols[o.index], o.mode)) if known else {})
        exposed = self._exposed(output, self.late) if self.late and output else [[] for _ in self.late]
        return Hits(rows, found, exposed, time.perf_counter() - started)
