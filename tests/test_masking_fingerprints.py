"""The leak audit's fingerprints: the C filter holds every item the Python cut gives, and lookups agree.

A false negative here is a leak the audit cannot see, so the property tested is containment: for
any cells and any mode, every item :func:`~datasafe.masking.leaks_items.original_items` cuts
(at least ``MIN_LENGTH`` bytes) is found in the filter the C module built from the raw block,
and the C filter has every bit the Python twin sets.
"""

from __future__ import annotations

import importlib
import mmap
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datasafe.masking import fingerprints as fp
from datasafe.masking.fingerprints import Fingerprints
from datasafe.masking.leaks_items import MIN_LENGTH, WORD, original_items
from datasafe.masking.native import WidthError

try:
    C: Any = importlib.import_module("datasafe.masking._native")
except ImportError:  # pragma: no cover - depends on the install
    C = None

needs_c = pytest.mark.skipif(C is None, reason="the C module datasafe.masking._native was not built")

# cells as stored text: letters of both cases, digits, separators, escapes, addresses, JSON, UTF-8
_PIECES = ["Ann", "O'Brien", "Zoë", "Łukasz", "x@y.org", "John.Doe@Example.COM", "+1 (555) 010-0199", "4111 1111",
           "\\n", "\\t", "\\\\", "\\r", '"', '{"name": "Ann Lee", "mail": "a.lee@mail.test"}', ":", " ", ".", "@",
           "-", "123456789", "日本語", "é", "a@b", "a@b.", "@x.com", '\\"', "key", '"k":', "Secret Value"]
_cell = st.lists(st.sampled_from(_PIECES) | st.text(alphabet="aZ09@.-_ é\\\"{}:", max_size=6), max_size=8).map(
    lambda parts: "".join(parts).replace("\t", " ").replace("\n", " ").encode())
_MODES = list(fp.MODES)


def _filter() -> mmap.mmap:
    return mmap.mmap(-1, 1 << 16)


def _ones(bloom: mmap.mmap) -> int:
    return int.from_bytes(bloom[:], "little")


def _items(cells: list[bytes], mode: str) -> list[bytes]:
    """The items of each cell on its own (JSON strings do not run from one row's cell into the next)."""
    out = []
    for cell in cells:
        values, words = original_items([cell.lower()], mode)
        out += [i for i in values if len(i) >= MIN_LENGTH] + [WORD + w for w in words if len(w) >= MIN_LENGTH]
    return out


@needs_c
@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(_cell, _cell), min_size=1, max_size=6), mode=st.sampled_from(_MODES))
def test_c_filter_holds_every_item_python_cuts(rows: list[tuple[bytes, bytes]], mode: str) -> None:
    block = b"".join(b"1\t" + a + b"\t" + b + b"\n" for a, b in rows)
    columns = ((1, fp.MODES[mode]), (2, fp.MODES[mode]))
    c_filter, py_filter = _filter(), _filter()
    C.bloom_add_block(c_filter, block, 3, columns, MIN_LENGTH)
    fp.py_bloom_add_block(py_filter, block, 3, columns, MIN_LENGTH)
    if mode != "json":  # the twin cuts a column's cells joined, as the exact count does
        ours, twin = _ones(c_filter), _ones(py_filter)
        assert ours & twin == twin  # every bit the twin sets, C sets too
    wanted = _items([a for a, _ in rows] + [b for _, b in rows], mode)
    assert C.bloom_find(c_filter, wanted) == list(range(len(wanted)))


@needs_c
@settings(max_examples=200, deadline=None)
@given(items=st.lists(st.binary(max_size=40).map(bytes.lower), max_size=30))
def test_item_filters_are_the_same_bytes(items: list[bytes]) -> None:
    c_filter, py_filter = _filter(), _filter()
    C.bloom_add(c_filter, items, MIN_LENGTH)
    fp.py_bloom_add(py_filter, items, MIN_LENGTH)
    assert c_filter[:] == py_filter[:]
    assert C.bloom_find(c_filter, items) == fp.py_bloom_find(py_filter, items)


def test_false_positives_stay_rare_when_sized_as_planned() -> None:
    rnd = random.Random(7)
    items = [b"item-%d-%d" % (i, rnd.getrandbits(40)) for i in range(50_000)]
    others = [b"other-%d-%d" % (i, rnd.getrandbits(40)) for i in range(50_000)]
    filt = Fingerprints(Fingerprints.size_for(len(items)))
    try:
        filt.add(items)
        assert filt.find(items) == list(range(len(items)))
        false = len(filt.find(others))
        assert false <= 12, false  # about 6e-5 expected: 3 of 50,000
        assert 0.3 < filt.fill() < 0.6 and filt.false_positive_rate() < 1e-4
    finally:
        filt.close()


@needs_c
def test_distinct_leaves_out_what_the_table_saw() -> None:
    block = b"anna\txavier\nbert\txavier\nanna\tyvonne\nANNA\txavier\n"
    assert C.distinct(block, 2, (0, 1)) == ([b"anna", b"bert", b"ANNA"], [b"xavier", b"yvonne"])
    assert fp.py_distinct(block, 2, (0, 1)) == ([b"anna", b"bert", b"ANNA"], [b"xavier", b"yvonne"])
    tables = (bytearray(8 * 64), bytearray(8 * 64))
    assert C.distinct(block, 2, (0, 1), tables, 42) == ([b"anna", b"bert", b"ANNA"], [b"xavier", b"yvonne"])
    assert C.distinct(b"anna\tzelda\ncarl\txavier\n", 2, (0, 1), tables, 42) == ([b"carl"], [b"zelda"])
    # a full table remembers nothing more, but still answers for what it holds
    small = (bytearray(8 * 2),)
    assert C.distinct(b"pete\nquin\n", 1, (0,), small, 1) == ([b"pete", b"quin"],)
    assert C.distinct(b"pete\nquin\n", 1, (0,), small, 1) == ([b"quin"],)
    # fields without a significant item are never returned: short ones, numbers of 5 digits
    assert C.distinct(b"ab\n12345\n1-2-3-4\n123456\nab12\n", 1, (0,)) == ([b"123456", b"ab12"],)
    with pytest.raises(ValueError, match="power of two"):
        C.distinct(block, 2, (0, 1), (bytearray(24), bytearray(8 * 64)))


@pytest.mark.parametrize("impl", ["c", "python"])
def test_a_row_of_the_wrong_width_is_a_width_error(impl: str) -> None:
    if impl == "c" and C is None:
        pytest.skip("the C module was not built")
    add = fp.py_bloom_add_block if impl == "python" else None
    filt = Fingerprints(4096)
    try:
        with pytest.raises(WidthError) as caught:
            if add is not None:
                add(filt.bloom, b"a\tb\nc\n", 2, ((0, 0),), MIN_LENGTH)
            else:
                filt.add_block(b"a\tb\nc\n", 2, [(0, "value")])
        assert (caught.value.row, caught.value.found) == (1, 1)
    finally:
        filt.close()


@needs_c
def test_bad_filters_and_modes_are_refused() -> None:
    with pytest.raises(ValueError, match="64-byte"):
        C.bloom_add(bytearray(100), [b"abcd"], 4)
    with pytest.raises(ValueError, match="unknown mode"):
        C.bloom_add_block(_filter(), b"a\n", 1, ((0, 9),), 4)
    with pytest.raises(TypeError):
        C.bloom_find(_filter(), [b"ok", "not bytes"])


@needs_c
@settings(max_examples=400, deadline=None)
@given(cell=st.text(alphabet="ab1234567890\u00e9@.-_ \\\"{}:,+()", max_size=12).map(str.encode))
def test_distinct_leaves_out_only_fields_without_significant_items(cell: bytes) -> None:
    """A field distinct() leaves out as insignificant gives no item the audit would look for."""
    from datasafe.masking.leaks_items import exposed_items

    (kept,) = C.distinct(cell + b"\n", 1, (0,))
    if not kept:
        for kind in ("text", "json", "array", "typed"):
            assert exposed_items([cell.lower()], kind) == []


@needs_c
@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(_cell, _cell, _cell), min_size=1, max_size=8), mode=st.sampled_from(_MODES),
       scanned=st.sampled_from([(), (0,), (1, 2), (0, 2)]))
def test_audit_block_is_add_block_then_distinct(rows: list[tuple[bytes, bytes, bytes]], mode: str,
                                                scanned: tuple[int, ...]) -> None:
    """One walk of the block does what the two calls do: the same filter bits, the same new
    fields, the same tables of fields seen."""
    block = b"".join(b"\t".join(row) + b"\n" for row in rows)
    columns = ((1, fp.MODES[mode]),)
    one, two = _filter(), _filter()
    seen_one, seen_two = (tuple(bytearray(8 * 64) for _ in scanned) for _ in range(2))
    got = C.audit_block(one, block, 3, columns, MIN_LENGTH, scanned, seen_one, 7)
    C.bloom_add_block(two, block, 3, columns, MIN_LENGTH)
    assert got == C.distinct(block, 3, scanned, seen_two, 7)
    assert one[:] == two[:] and seen_one == seen_two
    # without a filter: distinct alone
    assert C.audit_block(None, block, 3, (), MIN_LENGTH, scanned) == C.distinct(block, 3, scanned)
    with pytest.raises(ValueError, match="need a filter"):
        C.audit_block(None, block, 3, columns, MIN_LENGTH, scanned)


@needs_c
@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.lists(st.binary(max_size=150).map(lambda b: b.replace(b"\t", b" ").replace(b"\n", b" ")),
                              min_size=3, max_size=3), min_size=1, max_size=6),
       extra=st.integers(min_value=0, max_value=2))
def test_fields_are_found_across_every_64_byte_boundary(rows: list[list[bytes]], extra: int) -> None:
    """The walk reads the block 64 bytes at a time: fields and rows of any length, starting
    anywhere, come out as a split would give them, and a row of another width is refused."""
    block = b"".join(b"\t".join(row) + b"\n" for row in rows)
    assert C.fields(block, 3, (0, 1, 2)) == tuple([row[i] for row in rows] for i in range(3))
    bad = block + b"\t".join([b"x" * 70] * (3 + extra)) + b"\n" if extra else block + b"short\n"
    with pytest.raises(ValueError):
        C.fields(bad, 3, (0, 2))


def _stored_table(directory: str, chunks: list[list[bytes]]) -> tuple[Any, Any, bytes]:
    """A table of ``chunks`` (lists of rows) written as a snapshot writes it; (storage, entry, rows)."""
    from types import SimpleNamespace

    from datasafe.snapshot.chunks import ChunkWriter, Compression
    from datasafe.storage.local import LocalStorage

    storage = LocalStorage(directory)
    written = []
    for i, rows in enumerate(chunks):
        writer = ChunkWriter(storage, f"t{i}", Compression(level=1), 1 << 30)
        data = b"".join(row + b"\n" for row in rows)
        writer.write(data, len(rows))
        writer.close()
        written.extend(writer.chunks)
    entry = SimpleNamespace(name="t", chunks=written)
    return storage, entry, b"".join(row + b"\n" for rows in chunks for row in rows)


@settings(max_examples=150, deadline=None)
@given(chunks=st.lists(st.lists(st.binary(max_size=90).map(lambda b: b.replace(b"\n", b"\t")), min_size=1,
                                max_size=12), min_size=1, max_size=3),
       buffer=st.integers(min_value=1, max_value=200))
def test_row_views_are_the_rows_cut_at_line_ends(chunks: list[list[bytes]], buffer: int) -> None:
    """The audit reads tables as views into one buffer that zstd decompresses into: whatever
    the buffer's size (rows longer than it included), every view ends at a line end and together
    they are the table's rows."""
    import tempfile

    from datasafe.masking import pipeline

    with tempfile.TemporaryDirectory() as directory, pytest.MonkeyPatch.context() as patch:
        storage, entry, rows = _stored_table(directory, chunks)
        patch.setattr(pipeline, "VIEW_SIZE", buffer)
        views = [bytes(v) for v in pipeline.row_views(storage, entry)]
    assert all(v.endswith(b"\n") for v in views)
    assert b"".join(views) == rows


@pytest.mark.parametrize("damage", ["flip", "truncate", "append"])
def test_row_views_check_the_stored_bytes(tmp_path: Any, damage: str) -> None:
    """A look-only read checks the stored bytes' SHA-256 and size: a changed, cut or lengthened
    chunk fails it with IntegrityError, never a quiet short read."""
    from datasafe.errors import IntegrityError
    from datasafe.masking import pipeline

    rows = [b"%d\tname %d\tsomeone%d@example.org" % (i, i, i) for i in range(20000)]
    storage, entry, _ = _stored_table(str(tmp_path), [rows])
    path = tmp_path / entry.chunks[0].path
    data = path.read_bytes()
    changed = {"flip": data[:100] + bytes([data[100] ^ 1]) + data[101:], "truncate": data[: len(data) // 2],
               "append": data + b"\0" * 16}[damage]
    path.write_bytes(changed)
    with pytest.raises(IntegrityError):
        for _ in pipeline.row_views(storage, entry):
            pass


def test_a_look_only_read_still_checks_the_stored_bytes(tmp_path: Any) -> None:
    """The audit's read of a copied table leaves out the decompressed bytes' BLAKE3, not the
    stored bytes' SHA-256: a changed chunk still fails it."""
    from datasafe.errors import IntegrityError
    from datasafe.snapshot.chunks import ChunkWriter, Compression, read_chunk
    from datasafe.storage.local import LocalStorage

    storage = LocalStorage(str(tmp_path))
    writer = ChunkWriter(storage, "t", Compression(level=1), 1 << 20)
    data = b"".join(b"%d\tname %d\n" % (i, i) for i in range(5000))
    writer.write(data, 5000)
    writer.close()
    (chunk,) = writer.chunks
    assert b"".join(read_chunk(storage, chunk, raw_check=False)) == data
    path = tmp_path / chunk.path
    stored = bytearray(path.read_bytes())
    stored[-5] ^= 1
    path.write_bytes(bytes(stored))
    with pytest.raises(IntegrityError):
        b"".join(read_chunk(storage, chunk, raw_check=False))
