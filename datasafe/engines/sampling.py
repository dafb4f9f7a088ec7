"""Reading a live database's rows outside a backup: bounded samples (``datasafe scan``) and whole
tables (``datasafe leaks``), both in the row encoding of the engine's snapshots.

Each engine reads its own rows (:meth:`~datasafe.engines.base.Engine.sample`,
:meth:`~datasafe.engines.base.Engine.read_rows`); this module holds what they share: the sample of
one table (:class:`RowSample`), the key ranges of probes, and the decoding of a stored row.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from datasafe.engines.codec import Cell, RowCodec
from datasafe.errors import IntegrityError

#: probes of a key range per table (engines that sample by key)
PROBES = 10
#: PostgreSQL: pages sampled for about this many times the rows wanted
SAMPLE_MARGIN = 2

#: takes one block of whole rows (each with its line end) in the engine's row encoding
Consume = Callable[[bytes], None]


@dataclass
class RowSample:
    """The sampled rows of one table.

    Attributes:
        total_rows: the table's row count as the database estimates it (or counts it).
        rows: decoded cells (None for NULL), row-major, at most the rows asked for.
    """

    total_rows: int
    rows: list[list[Cell]] = field(default_factory=list)


def probe_ranges(lo: int, hi: int, rng: random.Random) -> list[tuple[int, int]]:
    """[start, end) key ranges of the probes: one random start in each of :data:`PROBES` equal stretches."""
    span = hi - lo + 1
    count = max(1, min(PROBES, span))
    edges = [lo + span * i // count for i in range(count + 1)]
    return [(a + int(rng.random() * max(0, b - a - 1)), b) for a, b in itertools.pairwise(edges)]


def decode_row(codec: RowCodec, line: bytes, width: int, table: str) -> list[Cell]:
    """The cells of one stored row (without its line end) of a table of ``width`` columns.

    Text that is not UTF-8 is decoded with replacement characters: a reader of samples still gets text.

    Raises:
        IntegrityError: the row does not have ``width`` fields.
    """
    fields = codec.split(line)
    if len(fields) != width:
        raise IntegrityError(f"table {table}: a stored row has {len(fields)} fields for {width} columns")
    out: list[Cell] = []
    for f in fields:
        try:
            out.append(codec.decode(f))
        except UnicodeDecodeError:  # a database whose text is not UTF-8: the detectors still get text
            out.append(bytes(f).decode("utf-8", "replace"))
    return out
