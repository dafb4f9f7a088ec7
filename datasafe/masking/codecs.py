"""Row codecs: split a chunk's raw rows into fields and put them back, per snapshot row encoding.

Masking touches only some columns. A codec therefore works on one line at a time and decodes
only the fields it is asked for: the rest travel as the exact bytes they were stored as.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from datasafe.errors import IntegrityError

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
class _TabText(RowCodec):
    null = b"\\N"
    _unescape_map: ClassVar[dict[str, str]]
    _escape_re: ClassVar[re.Pattern[str]]
    _escape_map: ClassVar[dict[str, str]]
    _unescape_re = re.compile(r"\\(.)", re.S)

    def split(self, line: bytes) -> list[Any]:
        return line.split(b"\t")

    def decode(self, field: Any) -> Cell:
        if field == self.null:
            return None
        text = bytes(field).decode("utf-8")
        if "\\" not in text:
            return text
        return self._unescape_re.sub(lambda m: self._unescape_map.get(m.group(1), m.group(1)), text)

    def encode(self, cell: Cell, original: Any) -> Any:
        if cell is None:
            return self.null
        return self._escape_re.sub(lambda m: self._escape_map[m.group(0)], cell).encode("utf-8")

    def join(self, fields: Sequence[Any]) -> bytes:
        return b"\t".join(fields) + b"\n"


class PgCopyText(_TabText):
    """``COPY ... TO STDOUT`` text format."""

    encoding = "pg-copy-text"
    _unescape_map: ClassVar[dict[str, str]] = {
        "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
    _escape_map: ClassVar[dict[str, str]] = {
        "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f", "\v": "\\v"}
    _escape_re = re.compile(r"[\\\n\r\t\b\f\v]")


class MysqlTsv(_TabText):
    """``LOAD DATA`` default text format."""

    encoding = "mysql-tsv"
    _unescape_map: ClassVar[dict[str, str]] = {
        "0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a", "\\": "\\"}
    _escape_map: ClassVar[dict[str, str]] = {
        "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0", "\x1a": "\\Z"}
    _escape_re = re.compile(r"[\\\n\r\t\0\x1a]")


# -- JSON lines (SQLite) -------------------------------------------------------------------------------
class JsonLines(RowCodec):
    """One JSON array per row; values keep their SQLite storage class."""

    encoding = "jsonl"

    def split(self, line: bytes) -> list[Any]:
        row = json.loads(line)
        if not isinstance(row, list):
            raise IntegrityError("a jsonl row is not a JSON array")
        return row

    def decode(self, field: Any) -> Cell:
        if field is None:
            return None
        if isinstance(field, dict):  # blob
            return str(field.get("$b", ""))
        if isinstance(field, float) and field.is_integer() and abs(field) < 1e16:
            return repr(field)
        return field if isinstance(field, str) else str(field)

    def encode(self, cell: Cell, original: Any) -> Any:
        if cell is None:
            return None
        if isinstance(original, bool) or original is None or isinstance(original, str):
            return cell
        if isinstance(original, int):
            try:
                return int(cell)
            except ValueError:
                return cell
        if isinstance(original, float):
            try:
                return float(cell)
            except ValueError:
                return cell
        if isinstance(original, dict):
            return {"$b": cell}
        return cell

    def join(self, fields: Sequence[Any]) -> bytes:
        return json.dumps(list(fields), ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


CODECS: dict[str, type[RowCodec]] = {c.encoding: c for c in (PgCopyText, MysqlTsv, JsonLines)}


def codec_for(encoding: str) -> RowCodec:
    try:
        return CODECS[encoding]()
    except KeyError:
        raise IntegrityError(f"cannot mask rows stored as {encoding!r} (known: {', '.join(CODECS)})") from None
