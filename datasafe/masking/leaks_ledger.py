"""What a leak audit saw and found: the items of the scanned columns and where, the originals found among them.

Kept apart from :mod:`datasafe.masking.leaks` (a masking run's audit) because ``datasafe leaks``
(:mod:`datasafe.masking.leaks_compare`) keeps the same books over two snapshots or databases.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from datasafe.masking.leaks_items import COMMON_ROWS, COMMON_SHARE, WORD, Original, Scanned, identifying
from datasafe.masking.leaks_report import Finding

if TYPE_CHECKING:
    from datasafe.masking.leaks import TableProbe


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
