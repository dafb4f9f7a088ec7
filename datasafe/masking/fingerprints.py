"""Fingerprints of the original values of masked columns: a Bloom filter the leak audit tests the output against.

Every item of every original value of a masked table (:func:`~datasafe.masking.leaks_items.original_items`
cuts them) goes into its table's :class:`Fingerprints` while the table is masked, in the worker
that masks the block; nothing else of the originals is kept. Once masking is done, the distinct
items of the output (a few thousand on most schemas) are looked up in it: an item that is not
there is not an original, for certain; an item that is there is a *candidate*, and only the
tables with candidates are read again, to count exactly where each one stands
(:meth:`datasafe.masking.leaks.LeakAudit.finish`).

**The filter** is a blocked Bloom filter: an item sets 16 bits in one 64-byte block (four in
each of four of its eight 64-bit words, chosen by the item's hash), so adding or finding one
touches one cache line, and takes four atomic ORs. It is sized at
:data:`BITS_PER_ITEM` bits for each item expected from the table's size (at most
:data:`MAX_BYTES` for all tables of a run). Filled as planned, about 6 items in 100,000 that
are not originals are taken for one (:meth:`Fingerprints.false_positive_rate` says how full it
really got; fewer items than planned make it far lower); a false positive costs one more read of
its table, never a wrong verdict: the read decides. The filter lives in memory shared with the
masking workers, which set its bits with an atomic OR.

Each function has a pure-Python twin, used where the C module was not built; the C form may set
a few more bits (it also keeps addresses it cuts out of free text), never fewer.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Sequence
from typing import Any

from datasafe.masking import native
from datasafe.masking.leaks_items import MIN_LENGTH, WORD, original_items

#: bits of filter per expected item: about 6e-5 false positives when filled as planned
BITS_PER_ITEM = 24
#: the filters of one run take at most this much memory together
MAX_BYTES = 64 << 20
#: the smallest filter (a small table)
MIN_BYTES = 4096
#: mode names (:func:`~datasafe.masking.leaks_items.original_mode`) as the C module numbers them
MODES = {"value": 0, "digits": 1, "text": 2, "json": 3, "all": 4}

_SEED_VALUE = 0x76616C7565
_SEED_WORD = 0x776F7264
_M64 = (1 << 64) - 1


def _mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _hash(item: bytes, seed: int) -> int:
    n = len(item)
    h = (0xCBF29CE484222325 ^ seed ^ ((n * 0xFF51AFD7ED558CCD) & _M64)) & _M64
    for i in range(0, n, 8):
        h = ((h ^ int.from_bytes(item[i:i + 8], "little")) * 0x9E3779B97F4A7C15) & _M64
        h ^= h >> 29
    return _mix64(h)


#: the 70 choices of four of a block's eight words (bit w: word w), ascending
_HALVES = [m for m in range(256) if m.bit_count() == 4]


def _probe(words: memoryview, h: int) -> tuple[int, list[tuple[int, int]]]:
    """The first word of an item's 64-byte block, and the four words it uses with the four bits
    it sets in each (bit positions: ten from ``g0``, six from ``g1``; the words: ``g1``'s top 24
    bits modulo 70)."""
    block = (h * (len(words) // 8)) >> 64
    g0, g1 = _mix64(h ^ 0x9E3779B97F4A7C15), _mix64((h + 0x632BE59BD9B4E019) & _M64)
    half = _HALVES[(g1 >> 40) % 70]
    chosen = [w for w in range(8) if half >> w & 1]
    masks = []
    for j, w in enumerate(chosen):
        m = 0
        for b in range(4):
            field = 4 * j + b
            m |= 1 << (((g0 >> (6 * field)) if field < 10 else (g1 >> (6 * (field - 10)))) & 63)
        masks.append((w, m))
    return block * 8, masks


def _item_hash(item: bytes) -> tuple[int, int]:
    """The hash of an item and its length (a leading :data:`WORD` mark: a word, the mark not counted)."""
    if item[:1] == WORD:
        return _hash(item[1:], _SEED_WORD), len(item) - 1
    return _hash(item, _SEED_VALUE), len(item)


def py_bloom_add(bloom: Any, items: list[bytes], min_length: int) -> None:
    """Add ``items`` (a leading :data:`WORD` marks a word) to the filter; shorter ones are left out."""
    words = memoryview(bloom).cast("B").cast("Q")
    for item in items:
        h, n = _item_hash(item)
        if n >= min_length:
            at, masks = _probe(words, h)
            for w, m in masks:
                words[at + w] |= m


def py_bloom_find(bloom: Any, items: list[bytes]) -> list[int]:
    """The indexes of the ``items`` the filter may hold."""
    words = memoryview(bloom).cast("B").cast("Q")
    out = []
    for i, item in enumerate(items):
        at, masks = _probe(words, _item_hash(item)[0])
        if all(words[at + w] & m == m for w, m in masks):
            out.append(i)
    return out


def py_bloom_add_block(bloom: Any, block: bytes, ncols: int, columns: tuple[tuple[int, int], ...],
                       min_length: int) -> None:
    """Add the items of the values of ``columns`` ((index, mode number) pairs) of every row."""
    names = {n: name for name, n in MODES.items()}
    cells = native.fields(block.lower(), ncols, tuple(i for i, _mode in columns))
    for column, (_index, mode) in zip(cells, columns, strict=True):
        values, words = original_items(column, names[mode])
        py_bloom_add(bloom, values + [WORD + w for w in words], min_length)


def py_distinct(block: bytes, ncols: int, wanted: tuple[int, ...], seen: tuple[Any, ...] | None = None,
                seed: int = 0) -> tuple[list[bytes], ...]:
    """The distinct fields of the columns ``wanted`` of the rows of ``block``, in first-row order.

    The C form also leaves out the fields whose hashes the tables ``seen`` hold (met in blocks
    before); this twin keeps no tables, and returns them all: callers keep their own set too.
    """
    return tuple(list(dict.fromkeys(column)) for column in native.fields(block, ncols, wanted))


def py_audit_block(bloom: Any, block: bytes, ncols: int, columns: tuple[tuple[int, int], ...], min_length: int,
                   wanted: tuple[int, ...], seen: tuple[Any, ...] | None = None, seed: int = 0
                   ) -> tuple[list[bytes], ...]:
    """:func:`py_bloom_add_block` (unless ``bloom`` is None), then :func:`py_distinct`."""
    if bloom is not None and columns:
        py_bloom_add_block(bloom, block, ncols, columns, min_length)
    return py_distinct(block, ncols, wanted, seen, seed)


bloom_add: Callable[[Any, list[bytes], int], None] = py_bloom_add
bloom_find: Callable[[Any, list[bytes]], list[int]] = py_bloom_find
bloom_add_block: Callable[[Any, bytes, int, tuple[tuple[int, int], ...], int], None] = py_bloom_add_block
distinct: Callable[..., tuple[list[bytes], ...]] = py_distinct
audit_block: Callable[..., tuple[list[bytes], ...]] = py_audit_block
#: slots of a table of hashes of fields met before (:func:`distinct`'s ``seen``): 128 KiB, half
#: of which are used before new fields are no longer remembered
SEEN_SLOTS = 1 << 14


def use_native(enabled: bool = True) -> bool:
    """Switch between the C module and the Python twins (follows :func:`datasafe.masking.native.use_native`)."""
    global bloom_add, bloom_find, bloom_add_block, distinct, audit_block
    c = native.RULES if enabled and native.NATIVE else None
    if c is None or not hasattr(c, "audit_block"):
        bloom_add, bloom_find, bloom_add_block, distinct = py_bloom_add, py_bloom_find, py_bloom_add_block, py_distinct
        audit_block = py_audit_block
        return False

    def c_add_block(bloom: Any, block: bytes, ncols: int, columns: tuple[tuple[int, int], ...],
                    min_length: int) -> None:
        try:
            c.bloom_add_block(bloom, block, ncols, columns, min_length)
        except ValueError as exc:
            raise native.width_error(exc) from None

    def c_distinct(block: bytes, ncols: int, wanted: tuple[int, ...], seen: tuple[Any, ...] | None = None,
                   seed: int = 0) -> tuple[list[bytes], ...]:
        try:
            return c.distinct(block, ncols, wanted, seen, seed)  # type: ignore[no-any-return]
        except ValueError as exc:
            raise native.width_error(exc) from None

    def c_audit_block(bloom: Any, block: bytes, ncols: int, columns: tuple[tuple[int, int], ...], min_length: int,
                      wanted: tuple[int, ...], seen: tuple[Any, ...] | None = None, seed: int = 0
                      ) -> tuple[list[bytes], ...]:
        try:
            return c.audit_block(bloom, block, ncols, columns, min_length, wanted, seen, seed)  # type: ignore[no-any-return]
        except ValueError as exc:
            raise native.width_error(exc) from None

    bloom_add, bloom_find, bloom_add_block, distinct = c.bloom_add, c.bloom_find, c_add_block, c_distinct
    audit_block = c_audit_block
    return True


use_native()


class Fingerprints:
    """The Bloom filter of one table's original items, in memory shared with forked workers."""

    def __init__(self, size: int) -> None:
        self.size = max(MIN_BYTES, size // 64 * 64)
        self.bloom = mmap.mmap(-1, self.size)  # anonymous and shared: forked workers write into it

    @staticmethod
    def size_for(items: int) -> int:
        """Bytes of filter for ``items`` expected items."""
        return max(MIN_BYTES, items * BITS_PER_ITEM // 8 // 64 * 64)

    def add_block(self, block: bytes, ncols: int, columns: Sequence[tuple[int, str]]) -> None:
        """Every item of ``columns`` ((index, mode) pairs, indexes ascending) of a block of rows."""
        bloom_add_block(self.bloom, block, ncols, tuple((i, MODES[m]) for i, m in columns), MIN_LENGTH)

    def add_block_scanning(self, block: bytes | memoryview, ncols: int, columns: Sequence[tuple[int, str]],
                           wanted: tuple[int, ...], seen: tuple[Any, ...], seed: int) -> tuple[list[bytes], ...]:
        """:meth:`add_block`, and :func:`distinct` of the columns ``wanted``, in one walk of the block."""
        return audit_block(self.bloom, block, ncols, tuple((i, MODES[m]) for i, m in columns), MIN_LENGTH, wanted,
                           seen, seed)

    def add(self, items: list[bytes]) -> None:
        """Items cut by :func:`~datasafe.masking.leaks_items.original_items` (words marked)."""
        bloom_add(self.bloom, items, MIN_LENGTH)

    def find(self, items: list[bytes]) -> list[int]:
        """The indexes of ``items`` that may be originals (every original, a few others by chance)."""
        return bloom_find(self.bloom, items) if items else []

    def fill(self) -> float:
        """The share of the filter's bits that are set (counted in one word of every 64)."""
        sample = memoryview(self.bloom).cast("Q")[::64]
        ones, words = sum(map(int.bit_count, sample)), len(sample)
        sample.release()
        return ones / (words * 64)

    def false_positive_rate(self) -> float:
        """About how often an item that is not an original is taken for one, as full as the filter
        is (16 bits set: the share of set bits to the 16th power; blocks filled more than the mean
        make it somewhat higher)."""
        return float(self.fill() ** 16)

    def close(self) -> None:
        if not self.bloom.closed:
            self.bloom.close()
