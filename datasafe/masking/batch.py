"""Masking a block of rows at once: the pipeline's hot loop.

Most masked tables need nothing but each masked cell's own value: no ``where`` filter, no parent
that lost rows, no rule that reads the rest of the row. Their rows are masked a block (about a
MiB of whole rows) at a time by a :class:`BatchMasker`, in this process or in a forked worker
(:mod:`datasafe.masking.parallel`): each masked column is one function of its stored field, and
fields that are not masked are never decoded.

Tab-separated blocks are masked a column at a time: the masked fields of every row are taken
out of the block at once, masked as a list, and put back (:mod:`datasafe.masking.native`);
pooled rules (names, streets) and the HMACs of digest-based rules (e-mail, cards, text) are
computed for the whole list in C where it was built. Should anything in a block go wrong that
way, the block is masked again row by row, which finds the row and the error to report.

Uniqueness needs every earlier row, so it is not decided here: for each unique key the batch
reports an 8-byte hash of each row's key values, and the table's masker checks them in row
order (:meth:`datasafe.masking.masker.TableMasker.accept`).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from datasafe.errors import IntegrityError
from datasafe.masking import native
from datasafe.masking.codecs import Cell, RowCodec, TabText
from datasafe.masking.plan import MaskedColumn, TablePlan
from datasafe.masking.transformers import kernels
from datasafe.masking.transformers.base import MEMO_MAX_VALUE, MEMO_SIZE, Transformer

#: a memo that answered fewer than this share of a column's last MEMO_SIZE values is turned off ...
MEMO_MIN_HITS = 0.25
#: ... for this many blocks, then tried again
MEMO_PAUSE = 64
_NO_HASH = bytes(8)
#: the white space that a stored field escapes (encoded pool values never hold it)
_CONTROL = re.compile(rb"[\t\n\r\x0b\x0c]")


@dataclass
class BatchResult:
    """The masked form of a block of rows.

    Attributes:
        data: the masked rows, each with its line end.
        rows: how many rows ``data`` holds: all of the block, unless ``error``.
        hashes: per unique key of the table, 8 bytes per row: the hash of the row's key values
            (as :func:`datasafe.masking.masker.key_hash` takes it; zeros for rows in ``nulls``).
        nulls: per unique key, the rows with a NULL in the key (NULLs never collide).
        error: what stopped the block at row ``rows`` (raised by the caller after that row).
    """

    data: bytes
    rows: int
    hashes: list[bytes] = field(default_factory=list)
    nulls: list[list[int]] = field(default_factory=list)
    error: Exception | None = None


class _Column:
    """One masked column's function of its stored field, with a memo that turns itself off."""

    __slots__ = ("hits", "index", "memo", "memoized", "pause", "plain")

    def __init__(self, index: int, plain: Callable[[Any], Any]) -> None:
        self.index = index
        self.plain = plain
        memo = functools.lru_cache(maxsize=MEMO_SIZE)(plain)
        self.memo = memo
        limit = MEMO_MAX_VALUE
        self.memoized: Callable[[Any], Any] = lambda f: plain(f) if f is None or len(f) > limit else memo(f)
        self.pause = 0
        self.hits = (0, 0)

    def function(self) -> Callable[[Any], Any]:
        return self.plain if self.pause else self.memoized

    def after_block(self) -> None:
        # A memo costs more than it saves on a column whose values hardly repeat. It is judged once
        # it has seen as many values as it holds: repeats further apart than that it cannot catch.
        if self.pause:
            self.pause -= 1
            return
        info = self.memo.cache_info()
        hits, misses = info.hits - self.hits[0], info.misses - self.hits[1]
        if hits + misses < MEMO_SIZE:
            return
        if hits < MEMO_MIN_HITS * (hits + misses):
            self.memo.cache_clear()
            self.pause = MEMO_PAUSE
            info = self.memo.cache_info()
        self.hits = (info.hits, info.misses)


def _stored_function(t: Transformer[Any], codec: TabText, override: Mapping[str, Cell] | None,
                     table: list[Cell] | None) -> Callable[[bytes], bytes]:
    """Stored field -> masked stored field, for the tab-separated encodings."""
    null = codec.null
    encode = codec.encode_cell
    unescape = codec.unescape_bytes
    null_out = encode(t.null_choice())
    if table is not None:
        return _pool_function([encode(cell) for cell in table], null_out, t.key, codec, t.keeps_blank)
    first = t.first_choice()
    if override:
        # a parent value that needed an alternative keeps it in every referencing column
        own = first
        first = lambda value: override[value] if value in override else own(value)  # noqa: E731

    def masked(f: bytes) -> bytes:
        if b"\\" in f:  # NULL, or escapes to undo
            return null_out if f == null else encode(first(unescape(f).decode()))
        out = first(f.decode())
        # encode_cell, inlined: every character to escape is a backslash or a control character
        if out is None or "\\" in out or not out.isprintable():
            return encode(out)
        return out.encode()

    return masked


def _pool_function(table: list[bytes], null_out: bytes, key: bytes, codec: TabText, keeps_blank: bool
                   ) -> Callable[[bytes], bytes]:
    # the value's UTF-8 text is all the HMAC needs: a field without escapes is used as it is stored
    null, unescape, pick = codec.null, codec.unescape_bytes, native.pick

    def masked(f: bytes) -> bytes:
        stored = f
        if b"\\" in f:
            if f == null:
                return null_out
            f = unescape(f)
        out: bytes = pick(key, [f], table, keeps_blank)[0]
        return stored if out is f else out  # a blank value stays as it is (see Transformer.keeps_blank)

    return masked


ColumnFunc = Callable[[list[bytes]], list[bytes]]


def _column_function(t: Transformer[Any], codec: TabText, override: Mapping[str, Cell] | None,
                     table: list[Cell] | None) -> ColumnFunc | None:
    """Stored fields -> masked stored fields, a list at a time, for pooled and digest-based rules.

    The one place that chooses how a column's first choices are computed: ``table`` is the rule's
    :meth:`~Transformer.first_choice_table` (when no override applies), picked from in C or Python
    (:func:`native.pick`); else, for a :attr:`~Transformer.digest_based` rule, its C kernel where
    there is one (:func:`~datasafe.masking.transformers.kernels.kernel`), with the values it leaves
    to the Python driver: the block's HMACs at once, then the rule's
    :meth:`~Transformer.first_from_digest` per value. None for the other rules: their columns are
    masked value by value (with a memo).
    """
    digested = t.first_choice_digested() if table is None else None
    if table is None and digested is None:
        return None
    null, escapes, encode, key = codec.null, codec.unescape_table, codec.encode_cell, t.key
    null_out = encode(t.null_choice())
    if table is not None:
        pool = [encode(cell) for cell in table]
        keep_blank = t.keeps_blank  # a blank value is its own pick (see Transformer.keeps_blank)

        def pooled(values: list[bytes]) -> list[bytes]:
            return native.pick(key, values, pool, keep_blank)

        def unescaped(values: list[bytes]) -> list[bytes]:
            # a blank value comes back unescaped: one with a tab or a line break is escaped again
            outs = native.pick(key, values, pool, keep_blank)
            if keep_blank and _CONTROL.search(b"".join(outs)):
                return [encode(out.decode()) if out is v else out for v, out in zip(values, outs, strict=True)]
            return outs

        return _with_escapes(pooled, null, null_out, escapes, unescaped)
    assert digested is not None

    def digest_based(values: list[bytes]) -> list[bytes]:
        texts = list(map(bytes.decode, values))
        outs = list(map(digested, texts, native.hmac_sha256(key, values)))
        if override and not override.keys().isdisjoint(texts):
            # a parent value that needed an alternative keeps it in every referencing column
            outs = [override.get(text, out) for text, out in zip(texts, outs, strict=True)]
        return _encode_all(outs, encode)

    in_c = kernels.kernel(t)
    if in_c is None:
        return _with_escapes(digest_based, null, null_out, escapes)

    def c_based(values: list[bytes]) -> list[bytes]:
        outs, missing = in_c(values)
        if missing:  # values the C code leaves to Python (outputs to escape or cut, other layouts)
            for k, out in zip(missing, digest_based([values[k] for k in missing]), strict=True):
                outs[k] = out
        done = cast("list[bytes]", outs)  # no None is left
        if override:
            # a parent value that needed an alternative keeps it in every referencing column
            stored = {text.encode(): encode(cell) for text, cell in override.items()}
            if not stored.keys().isdisjoint(values):
                return [stored.get(v, out) for v, out in zip(values, done, strict=True)]
        return done

    return _with_escapes(c_based, null, null_out, escapes)


def _with_escapes(masked: ColumnFunc, null: bytes, null_out: bytes, escapes: bytes,
                  unescaped: ColumnFunc | None = None) -> ColumnFunc:
    """``masked`` (of fields without escapes) for any stored fields: NULLs and escapes handled here;
    ``escapes`` is the codec's :attr:`~datasafe.masking.codecs.TabText.unescape_table`. ``unescaped``
    (default: ``masked``) takes the values of a block whose escapes were undone."""
    undone = unescaped or masked

    def column(values: list[bytes]) -> list[bytes]:
        if b"\\" not in b"".join(values):
            return masked(values)
        if null not in values:
            return undone(native.unescape(values, escapes))
        nulls = [k for k, f in enumerate(values) if f == null]
        outs = undone(native.unescape([f for f in values if f != null], escapes))
        it = iter(outs)
        null_at = set(nulls)
        return [null_out if k in null_at else next(it) for k in range(len(values))]

    return column


def _encode_all(cells: Sequence[Cell], encode: Callable[[Cell], bytes]) -> list[bytes]:
    """``[encode(cell) for cell in cells]``, at C speed when no cell needs escaping (the usual case)."""
    try:
        joined = "".join(cells)  # type: ignore[arg-type]
    except TypeError:  # a None (NULL) among them
        return [encode(cell) for cell in cells]
    if "\\" in joined or not joined.isprintable():
        return [encode(cell) for cell in cells]
    return list(map(str.encode, cells))  # type: ignore[arg-type]


def _cell_function(t: Transformer[Any], override: Mapping[str, Cell] | None) -> Callable[[Cell], Cell]:
    """Decoded cell -> masked cell, for the other encodings."""
    null_out = t.null_choice()
    first = t.first_choice()

    def masked(value: Cell) -> Cell:
        if value is None:
            return null_out
        if override and value in override:
            return override[value]
        return first(value)

    return masked


class BatchMasker:
    """Masks blocks of one table's rows; see the module documentation for which tables qualify."""

    def __init__(self, table: TablePlan, codec: RowCodec, overrides: Mapping[tuple[str, str], dict[str, Cell]]
                 ) -> None:
        self.table = table
        self.codec = codec
        self.ncols = len(table.entry.columns)
        self.keys = list(table.unique)
        self.tab = codec if isinstance(codec, TabText) else None
        self.columns: list[_Column] = []
        #: per masked column (tab-separated text): its function of a list of fields, or None (value by value)
        self.column_functions: list[ColumnFunc | None] = []
        for m in table.masked:
            override = overrides.get(m.inherited_from) if m.inherited_from else None
            if self.tab is not None:
                outputs = m.transformer.first_choice_table() if not override else None
                fn: Callable[[Any], Any] = _stored_function(m.transformer, self.tab, override, outputs)
                self.column_functions.append(_column_function(m.transformer, self.tab, override, outputs))
            else:
                fn = _cell_function(m.transformer, override)
            self.columns.append(_Column(m.index, fn))
        # a column at a time: tab-separated text, and unique keys of one column each
        self.by_columns = self.tab is not None and all(len(key) == 1 for key in self.keys)
        masked = sorted(c.index for c in self.columns)
        self.masked_indexes = tuple(masked)
        self.wanted = tuple(sorted(set(masked) | {key[0] for key in self.keys}))

    @staticmethod
    def qualifies(table: TablePlan) -> bool:
        """Whether every masked column of ``table`` depends on its own value only."""
        return bool(table.masked) and not any(_own_value_is_not_enough(m, table) for m in table.masked)

    def warm_up(self, block: bytes) -> None:
        """Mask the first row of ``block`` and forget it: builds lazy tables (Faker pools) before a fork."""
        first = block[:block.find(b"\n") + 1]
        if first:
            self.mask(first)
            for c in self.columns:
                c.memo.cache_clear()

    def mask(self, block: bytes) -> BatchResult:
        """Mask ``block``: whole rows, each ending with a line end."""
        result = self._mask_by_columns(block) if self.by_columns else None
        if result is None:
            result = self._mask_by_rows(block)
        for c in self.columns:
            c.after_block()
        return result

    def _mask_by_columns(self, block: bytes) -> BatchResult | None:
        """The block masked a column at a time; None when anything went wrong (rows will tell what)."""
        assert self.tab is not None
        try:
            fields = dict(zip(self.wanted, native.fields(block, self.ncols, self.wanted), strict=True))
            for c, column in zip(self.columns, self.column_functions, strict=True):
                values = fields[c.index]
                fields[c.index] = column(values) if column is not None else list(map(c.function(), values))
            hashes: list[bytes] = []
            nulls: list[list[int]] = []
            for (i,) in self.keys:
                h, n = self._hash_column(fields[i])
                hashes.append(h)
                nulls.append(n)
            data = native.replace(block, self.ncols, self.masked_indexes,
                                  tuple(fields[i] for i in self.masked_indexes))
        except Exception:
            return None
        return BatchResult(data, len(fields[self.masked_indexes[0]]), hashes, nulls)

    def _hash_column(self, values: list[bytes]) -> tuple[bytes, list[int]]:
        """The key hashes of a one-column unique key's stored fields, and the rows where it is NULL."""
        assert self.tab is not None
        if b"\\" not in b"".join(values):
            return native.hash8(values), []
        null = self.tab.null
        nulls = [k for k, f in enumerate(values) if f == null]
        hashes = native.hash8(native.unescape([b"" if f == null else f for f in values], self.tab.unescape_table))
        if nulls:
            parts = bytearray(hashes)
            for k in nulls:
                parts[8 * k:8 * k + 8] = _NO_HASH
            hashes = bytes(parts)
        return hashes, nulls

    def _mask_by_rows(self, block: bytes) -> BatchResult:
        lines = block.split(b"\n")
        lines.pop()  # after the last line end
        columns = [(c.index, c.function()) for c in self.columns]
        hashes = [bytearray() for _ in self.keys]
        nulls: list[list[int]] = [[] for _ in self.keys]
        out: list[bytes] = []
        error: Exception | None = None
        try:
            if self.tab is not None:
                self._mask_tab(lines, columns, out, hashes, nulls)
            else:
                self._mask_cells(lines, columns, out, hashes, nulls)
        except Exception as exc:  # reported after the rows done before it
            error = exc
        return BatchResult(b"\n".join(out) + b"\n" if out else b"", len(out), [bytes(h) for h in hashes], nulls,
                           error)

    def _mask_tab(self, lines: list[bytes], columns: list[tuple[int, Callable[[bytes], bytes]]],
                  out: list[bytes], hashes: list[bytearray], nulls: list[list[int]]) -> None:
        ncols, append, sha256 = self.ncols, out.append, hashlib.sha256
        if len(columns) == 1 and not self.keys:  # a child table's foreign key, an address: the loop unrolled
            (i, fn), = columns
            for line in lines:
                fields = line.split(b"\t")
                if len(fields) != ncols:
                    raise _wrong_width(self.table, len(fields))
                fields[i] = fn(fields[i])
                append(b"\t".join(fields))
            return
        single = [(n, key[0]) for n, key in enumerate(self.keys) if len(key) == 1]
        multi = [(n, key) for n, key in enumerate(self.keys) if len(key) > 1]
        for line in lines:
            fields = line.split(b"\t")
            if len(fields) != ncols:
                raise _wrong_width(self.table, len(fields))
            for i, fn in columns:
                fields[i] = fn(fields[i])
            for n, i in single:  # key_hash of one cell, inlined for a field without escapes
                f = fields[i]
                if b"\\" in f:
                    self._hash_key(n, (i,), fields, len(out), hashes, nulls)
                else:
                    hashes[n] += sha256(b"\x01" + f).digest()[:8]
            for n, key in multi:
                self._hash_key(n, key, fields, len(out), hashes, nulls)
            append(b"\t".join(fields))

    def _hash_key(self, n: int, key: tuple[int, ...], fields: list[bytes], row: int, hashes: list[bytearray],
                  nulls: list[list[int]]) -> None:
        """Append the hash of one row's values of unique key ``n`` (stored fields) to ``hashes[n]``."""
        assert self.tab is not None
        parts = []
        for i in key:
            f = fields[i]
            if b"\\" in f:
                if f == self.tab.null:
                    nulls[n].append(row)
                    hashes[n] += _NO_HASH
                    return
                f = self.tab.unescape_bytes(f)
            parts.append(b"\x01" + f)
        hashes[n] += hashlib.sha256(b"".join(parts)).digest()[:8]

    def _mask_cells(self, lines: list[bytes], columns: list[tuple[int, Callable[[Cell], Cell]]],
                    out: list[bytes], hashes: list[bytearray], nulls: list[list[int]]) -> None:
        codec, ncols, keys = self.codec, self.ncols, self.keys
        decode, encode = codec.decode, codec.encode
        for line in lines:
            fields = codec.split(line)
            if len(fields) != ncols:
                raise _wrong_width(self.table, len(fields))
            cells: dict[int, Cell] = {}
            for i, fn in columns:
                cell = cells[i] = fn(decode(fields[i]))
                fields[i] = encode(cell, fields[i])
            for n, key in enumerate(keys):
                values = [cells[i] if i in cells else decode(fields[i]) for i in key]
                if any(v is None for v in values):
                    nulls[n].append(len(out))
                    hashes[n] += _NO_HASH
                else:
                    hashes[n] += hashlib.sha256(b"".join(b"\x01" + v.encode() for v in values
                                                         if v is not None)).digest()[:8]
            out.append(codec.join(fields)[:-1])


def _own_value_is_not_enough(m: MaskedColumn, table: TablePlan) -> bool:
    # rules that read the row, and columns that inherit alternatives found in this very table
    # (a self-reference), must see each earlier row's outcome: those tables go row by row
    return m.transformer.uses_row or (m.inherited_from is not None and m.inherited_from[0] == table.name)


def _wrong_width(table: TablePlan, found: int) -> IntegrityError:
    return IntegrityError(f"table {table.name}: a row has {found} fields, the manifest lists "
                          f"{len(table.entry.columns)} columns")
