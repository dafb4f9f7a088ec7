"""Cells as ``mask --dry-run`` shows them: long text cut, binary data as its size.

A sample row is for reading: a 70 KB document or an image in a ``bytea`` column would bury it.
Text longer than :data:`PREVIEW_CHARS` characters is cut and says how long it was
(``'lorem ipsum…(70012 chars)'``); binary data (a ``bytes`` column: PostgreSQL ``\\x`` hex, MySQL
hex, SQLite base64; or a long value of another column that is ``\\x`` hex or base64) is shown as
``<binary, N bytes>``.
"""

from __future__ import annotations

import base64
import binascii
import re

from datasafe.masking.codecs import Cell

#: characters of a text cell shown
PREVIEW_CHARS = 80
_CUT = re.compile(r"(?s)(.*)…\((\d+) chars\)")
_BINARY = re.compile(r"<binary, (\d+) bytes>")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def preview(cell: Cell, kind: str = "text") -> Cell:
    """``cell`` (of a column of ``kind``, see :data:`~datasafe.masking.types.KINDS`) as a sample shows it."""
    if cell is None:
        return None
    size = binary_size(cell, kind)
    if size is not None:
        return f"<binary, {size} bytes>"
    if len(cell) > PREVIEW_CHARS:
        return f"{cell[:PREVIEW_CHARS]}…({len(cell)} chars)"
    return cell


def binary_size(cell: str, kind: str) -> int | None:
    """The bytes that ``cell`` encodes, when it is binary data (see the module documentation); else None."""
    if cell.startswith("\\x") and _HEX.fullmatch(cell, 2) and (kind == "bytes" or len(cell) > PREVIEW_CHARS):
        return (len(cell) - 2) // 2
    if kind == "bytes":
        if _HEX.fullmatch(cell):  # MySQL writes binary columns in hex
            return len(cell) // 2
        size = _base64_size(cell) if _BASE64.fullmatch(cell) else None  # SQLite writes blobs in base64
        return size if size is not None else len(cell.encode())
    if len(cell) > PREVIEW_CHARS and _BASE64.fullmatch(cell) and not _HEX.fullmatch(cell) and (
            "+" in cell or "/" in cell or cell.endswith("=") or not cell.isalpha()):
        return _base64_size(cell)
    return None


def _base64_size(cell: str) -> int | None:
    if len(cell) % 4:
        return None
    try:
        return len(base64.b64decode(cell, validate=True))
    except (binascii.Error, ValueError):
        return None


def describe(cell: Cell) -> str:
    """A previewed cell for a line of text: quoted, a cut text's length and a binary size after it."""
    if cell is None:
        return "None"
    if _BINARY.fullmatch(cell):
        return cell
    cut = _CUT.fullmatch(cell)
    if cut is not None and len(cut.group(1)) == PREVIEW_CHARS:
        return f"{cut.group(1)!r}…({cut.group(2)} chars)"
    return repr(cell)
