"""The per-value work of masking, a block of rows at a time: in C where it was built, else in Python.

Splitting rows into fields, one HMAC per value and joining the rows again cost more than most
transformers' own logic. :mod:`datasafe.masking._native` does them in C over whole blocks; this
module exposes it, and a pure-Python twin of every function with the same results, which is
used where the C module was not built (see ``setup.py``). :data:`NATIVE` tells which is in use.

A block is whole rows, each ending with ``\\n``, fields separated by ``\\t`` (the stored text of
PostgreSQL COPY and MySQL LOAD DATA); escapes are left to the caller.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Callable, Sequence
from typing import Any

from datasafe.masking import keyed


class WidthError(ValueError):
    """A row of a block does not have the expected number of fields."""

    def __init__(self, row: int, found: int) -> None:
        super().__init__(row, found)
        self.row = row
        self.found = found


def py_fields(block: bytes, ncols: int, wanted: tuple[int, ...]) -> tuple[list[bytes], ...]:
    """The fields at the indexes ``wanted`` (ascending) of every row of ``block``, one list per index.

    Raises:
        WidthError: a row does not have ``ncols`` fields.
    """
    rows = _rows(block, ncols)
    return tuple([row[i] for row in rows] for i in wanted)


def py_replace(block: bytes, ncols: int, wanted: tuple[int, ...], columns: tuple[list[bytes], ...]) -> bytes:
    """``block`` with row r's field ``wanted[w]`` replaced by ``columns[w][r]``.

    Raises:
        WidthError: a row does not have ``ncols`` fields.
    """
    rows = _rows(block, ncols)
    for i, column in zip(wanted, columns, strict=True):
        if len(column) != len(rows):
            raise ValueError("every list of new fields must have one item per row")
        for row, value in zip(rows, column, strict=True):
            row[i] = value
    return b"".join(b"\t".join(row) + b"\n" for row in rows)


def _rows(block: bytes, ncols: int) -> list[list[bytes]]:
    if block and not block.endswith(b"\n"):
        raise ValueError("a block must end with a line end")
    lines = bytes(block).split(b"\n")
    lines.pop()
    rows = [line.split(b"\t") for line in lines]
    for r, row in enumerate(rows):
        if len(row) != ncols:
            raise WidthError(r, len(row))
    return rows


def py_hmac_sha256(key: bytes, values: list[bytes]) -> list[bytes]:
    """HMAC-SHA256(key, value) of every value."""
    inner_copy, outer_copy = keyed.hmac_states(key)
    out = []
    for value in values:
        inner = inner_copy()
        inner.update(value)
        outer = outer_copy()
        outer.update(inner.digest())
        out.append(outer.digest())
    return out


def py_pick(key: bytes, values: list[bytes], pool: list[Any], keep_blank: bool = False) -> list[Any]:
    """``pool[int.from_bytes(HMAC-SHA256(key, value)[:8], "big") % len(pool)]`` for every value.

    With ``keep_blank``, a value that is empty or white space only (``str.isspace`` of its UTF-8
    text) is its own pick: masking keeps such values as they are.
    """
    if not pool:
        raise ValueError("empty pool")
    size = len(pool)
    picked = [pool[int.from_bytes(d[:8], "big") % size] for d in py_hmac_sha256(key, values)]
    if keep_blank:
        for i, value in enumerate(values):
            if not value or (value[0] in _BLANK_STARTS and _blank(value)):
                picked[i] = value
    return picked


#: the first bytes of the UTF-8 form of the characters of str.isspace()
_BLANK_STARTS = frozenset(b" \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\xc2\xe1\xe2\xe3")


def _blank(value: bytes) -> bool:
    try:
        return value.decode().isspace()
    except UnicodeDecodeError:
        return False


def py_hash8(values: list[bytes]) -> bytes:
    """SHA-256(b"\\x01" + value)[:8] of every value, concatenated (see masker.key_hash)."""
    return b"".join(hashlib.sha256(b"\x01" + v).digest()[:8] for v in values)


_ESCAPE = re.compile(rb"\\(.)", re.S)


def py_unescape(values: list[bytes], table: bytes) -> list[bytes]:
    """Every value with each backslash and the byte ``c`` after it replaced by ``table[c]`` (a
    backslash at the end stays); see :attr:`datasafe.masking.codecs.TabText.unescape_table`."""
    if len(table) != 256:
        raise ValueError("the table must have 256 bytes")
    return [_ESCAPE.sub(lambda m: table[m[1][0]:m[1][0] + 1], v) if b"\\" in v else v for v in values]

fields: Callable[[bytes, int, tuple[int, ...]], tuple[list[bytes], ...]] = py_fields
replace: Callable[[bytes, int, tuple[int, ...], tuple[list[bytes], ...]], bytes] = py_replace
hmac_sha256: Callable[[bytes, list[bytes]], list[bytes]] = py_hmac_sha256
pick: Callable[..., list[Any]] = py_pick
hash8: Callable[[list[bytes]], bytes] = py_hash8
unescape: Callable[[list[bytes], bytes], list[bytes]] = py_unescape
NATIVE = False
#: the C module, for its transformers' first choices (``ssn_us``, ``card``, ``email``, ``lorem``,
#: ``phone``: see _native_rules.c, _native_phone.c); None where it is not in use. They have no Python twins here:
#: each is the C form of a transformer's ``first_from_digest``, which is the definition
#: (:mod:`datasafe.masking.transformers.kernels` binds them).
RULES: Any = None
#: a kernel of RULES bound to a rule: the UTF-8 text of a list of values -> (each value's first choice in
#: stored form, or None where the value is left to Python; the indexes of those Nones)
NativeFirst = Callable[[list[bytes]], tuple[list[bytes | None], list[int]]]


def use_native(enabled: bool = True) -> bool:
    """Switch between the C module (when it was built) and the Python twins; returns whether C is in use."""
    global fields, replace, hmac_sha256, pick, hash8, unescape, NATIVE, RULES
    c: Any = None
    if enabled:
        try:
            c = importlib.import_module("datasafe.masking._native")
        except ImportError:
            c = None
    if c is None:
        fields, replace, hmac_sha256, pick, hash8 = py_fields, py_replace, py_hmac_sha256, py_pick, py_hash8
        unescape = py_unescape
        NATIVE = False
        RULES = None
        return False

    def c_fields(block: bytes, ncols: int, wanted: tuple[int, ...]) -> tuple[list[bytes], ...]:
        try:
            return c.fields(block, ncols, wanted)  # type: ignore[no-any-return]
        except ValueError as exc:
            raise width_error(exc) from None

    def c_replace(block: bytes, ncols: int, wanted: tuple[int, ...], columns: tuple[list[bytes], ...]) -> bytes:
        try:
            return c.replace(block, ncols, wanted, columns)  # type: ignore[no-any-return]
        except ValueError as exc:
            raise width_error(exc) from None

    fields, replace, hmac_sha256, pick, hash8 = c_fields, c_replace, c.hmac_sha256, c.pick, c.hash8
    unescape = c.unescape
    NATIVE = True
    RULES = c
    return True


def width_error(exc: ValueError) -> ValueError:
    args: Sequence[Any] = exc.args
    if len(args) == 2 and all(isinstance(a, int) for a in args):
        return WidthError(args[0], args[1])
    return exc


use_native()
