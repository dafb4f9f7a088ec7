"""Row codecs: split a chunk's raw rows into fields and put them back, one codec per snapshot row encoding.

Masking touches only some columns. A codec therefore works on one line at a time and decodes
only the fields it is asked for: the rest travel as the exact bytes they were stored as. Each
engine declares the codec of the rows it writes (its ``SPEC.codec``); this module holds the seam
and the tab-separated text that PostgreSQL and MySQL share.
"""

from __future__ import annotations

import codecs
import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

Cell = str | None
#: a masking function per column index: gets the decoded cells of the row, returns the new cell
RowFunc = Callable[[list[Cell]], list[Cell]]


class RowCodec(ABC):
    """Decodes and encodes the rows of one row encoding."""

    encoding: ClassVar[str]

    @abstractmethod
    def split(self, line: bytes) -> list[Any]:
        """The fields of one row (without its line end), in their stored form."""

    @abstractmethod
    def decode(self, field: Any) -> Cell:
        """A stored field as text (None for NULL)."""

    @abstractmethod
    def encode(self, cell: Cell, original: Any) -> Any:
        """``cell`` in stored form; ``original`` is the field it replaces (keeps its type)."""

    @abstractmethod
    def join(self, fields: Sequence[Any]) -> bytes:
        """One stored row, with its line end."""


# -- tab-separated text (PostgreSQL COPY, MySQL LOAD DATA) --------------------------------------------
class TabText(RowCodec):
    """Tab-separated text: a field is stored as its text with backslash escapes, or `\\N` for NULL."""

    null = b"\\N"
    _unescape_map: ClassVar[dict[str, str]]
    _escape_re: ClassVar[re.Pattern[str]]
    _escape_map: ClassVar[dict[str, str]]
    _unescape_re = re.compile(r"\\(.)", re.S)
    _replacements: ClassVar[tuple[tuple[str, str], ...]]
    #: (once escaped backslashes are out of the way) an escape that means something else in a Python bytes literal
    _other_escape: ClassVar[re.Pattern[bytes]]

    def split(self, line: bytes) -> list[Any]:
        return line.split(b"\t")

    def decode(self, field: Any) -> Cell:
        if field == self.null:
            return None
        if b"\\" not in field:
            return bytes(field).decode("utf-8")
        return self.unescape_bytes(field).decode("utf-8")

    def unescape_bytes(self, field: bytes) -> bytes:
        """The UTF-8 text of a field that contains backslash escapes (not NULL)."""
        # Python's bytes-literal unescaping is fast and agrees with this encoding's on the escapes
        # the database writes; a field with any other escape takes the slow way
        if self._other_escape.search(field.replace(b"\\\\", b"")):
            return self.unescape(field.decode("utf-8")).encode("utf-8")
        return codecs.escape_decode(field)[0]

    @functools.cached_property
    def unescape_table(self) -> bytes:
        """:meth:`unescape_bytes` as a table (for :func:`datasafe.masking.native.unescape`): the byte
        that each character after a backslash stands for."""
        table = bytearray(range(256))
        for escape, char in self._unescape_map.items():
            table[ord(escape)] = ord(char)
        return bytes(table)

    def unescape(self, text: str) -> str:
        """The text of a field that contains backslash escapes."""
        # the common escapes by plain replacement between escaped backslashes; others by the regex
        parts = text.split("\\\\")
        for i, part in enumerate(parts):
            if "\\" in part:
                for escape, char in self._replacements:
                    if escape in part:
                        part = part.replace(escape, char)
                if "\\" in part:
                    return self._unescape_re.sub(lambda m: self._unescape_map.get(m.group(1), m.group(1)), text)
                parts[i] = part
        return "\\".join(parts)

    def encode(self, cell: Cell, original: Any) -> Any:
        return self.encode_cell(cell)

    def encode_cell(self, cell: Cell) -> bytes:
        """``cell`` in stored form (the original field does not matter in this encoding)."""
        if cell is None:
            return self.null
        if "\\" in cell or not cell.isprintable():  # every character to escape is a control character
            return self._escape_re.sub(lambda m: self._escape_map[m.group(0)], cell).encode("utf-8")
        return cell.encode("utf-8")

    def join(self, fields: Sequence[Any]) -> bytes:
        return b"\t".join(fields) + b"\n"
