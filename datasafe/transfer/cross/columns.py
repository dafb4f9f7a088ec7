"""Stored rows into the target's values a block at a time, a column at a time.

A block of whole rows is split into fields at once (its text, ``str.split``, one transpose);
NULLs and escapes are undone only in the columns that hold a backslash; each column is
converted by one function chosen once per column (:func:`column_function`), or not at all
where the stored text is the target's value. The per-value converters of :mod:`.values` define
every value: a column function maps one over the column, or is a faster form of it for the
values a check of the whole column admits (a column the check refuses takes the per-value
converter). Most of the work thus runs in C (splitting, ``map``, ``join``), not once per value in
Python.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from itertools import repeat
from typing import Any

from datasafe.engines.codec import TabText
from datasafe.transfer.cross.types import MYSQL, POSTGRESQL, SQLITE, ColType
from datasafe.transfer.cross.values import Convert, converter, is_plain

#: a column's values (not NULL) -> the target's values
ColumnFunc = Callable[[Sequence[Any]], list[Any]]
#: stored fields of a column (NULLs and escapes as stored) -> the target's values
RawFunc = Callable[[Sequence[str]], list[Any]]
#: what joins a column's fields to undo their escapes at once (a NUL in or out of a field is noticed)
_SEP = "\x00"
#: bytes of whole rows read at a time, about (a longer row comes on its own); small enough to stay in the
#: CPU caches while it is split, converted and inserted (faster than larger blocks)
BLOCK_BYTES = 1 << 17


def whole_rows(blocks: Iterator[bytes], size: int = BLOCK_BYTES) -> Iterator[bytes]:
    """A table's raw bytes as pieces of whole rows, each ending with its line end, of about ``size`` bytes."""
    rest = b""
    for block in blocks:
        data = rest + block if rest else block
        start = 0
        while len(data) - start > size:
            end = data.rfind(b"\n", start, start + size)
            if end < 0:  # a row longer than size
                end = data.find(b"\n", start + size)
                if end < 0:
                    break
            yield data[start:end + 1]
            start = end + 1
        end = data.rfind(b"\n", start)
        if end >= 0:
            yield data[start:end + 1]
            start = end + 1
        rest = data[start:]
    if rest:
        raise ValueError("the rows end inside a row")


class BlockReader:
    """Whole rows of one table (see :func:`whole_rows`) -> its columns of the target's values."""

    def __init__(self, codec: TabText | None, cts: list[ColType], columns: list[str], target: str) -> None:
        """``codec`` None: the rows are ``jsonl``; ``columns``: the columns' names, for messages."""
        self.codec, self.width = codec, len(cts)
        self.functions = [column_function(ct, target, col) for ct, col in zip(cts, columns, strict=True)]
        self.raw: list[RawFunc | None] = [None] * len(cts)
        if codec is not None:
            self.raw = [raw_function(ct, target, col, codec) for ct, col in zip(cts, columns, strict=True)]

    def __call__(self, data: bytes) -> list[Sequence[Any]]:
        """The columns of the rows in ``data`` (one list per column, one value per row)."""
        if self.codec is None:
            return self._from_json(data)
        text = data.decode("utf-8")  # the whole block at once: a tab and a line end are one byte in UTF-8
        columns = self._split(text)
        escaped = "\\" in text  # a NULL or an escape somewhere
        out: list[Sequence[Any]] = []
        for fields, f, raw in zip(columns, self.functions, self.raw, strict=True):
            if raw is not None and escaped:
                out.append(raw(fields))
                continue
            column: Sequence[Any] = fields
            if escaped and "\\" in "".join(fields):
                column = _unescaped(fields, self.codec)
                if None in column:
                    out.append(column if f is None else _with_nulls(f, column))
                    continue
            out.append(column if f is None else f(column))
        return out

    def _split(self, text: str) -> list[list[str]]:
        """The fields of the rows in ``text`` (each ending with a line end), a list per column.

        One split for the whole block: each line end becomes a field of its own between two rows,
        so that every row has ``width`` fields exactly when each ``width + 1``-th field is a line end."""
        width, rows = self.width, text.count("\n")
        fields = text.replace("\n", "\t\n\t").split("\t")
        fields.pop()  # after the last line end
        if len(fields) != rows * (width + 1) or fields[width::width + 1].count("\n") != rows:
            found = next(len(f) for f in (line.split("\t") for line in text.split("\n")) if len(f) != width)
            raise ValueError(f"a row holds {found} fields, not {width}")
        return [fields[i::width + 1] for i in range(width)]

    def _from_json(self, data: bytes) -> list[Sequence[Any]]:
        lines = data.split(b"\n")
        lines.pop()  # after the last line end
        rows = [json.loads(line) for line in lines]
        for row in rows:
            if not isinstance(row, list) or len(row) != self.width:
                raise ValueError(f"a row holds {len(row) if isinstance(row, list) else 'no'} fields, "
                                 f"not {self.width}")
        if not rows:
            return [[] for _ in range(self.width)]
        return [column if f is None else _with_nulls(f, column) if None in column else f(column)
                for column, f in zip(zip(*rows, strict=True), self.functions, strict=True)]


def _unescaped(fields: list[str], codec: TabText) -> list[str | None]:
    """Stored fields -> their text (None for NULL): the escapes of the whole column undone at once
    (:meth:`TabText.unescape_bytes`), its fields joined by a NUL, where no field ends with a
    backslash and no NUL comes in or out; else field by field."""
    null = codec.null.decode("ascii")
    nulls = null in fields
    joined = _SEP.join([s if s != null else "" for s in fields] if nulls else fields)
    if "\\" + _SEP not in joined:
        texts = codec.unescape_bytes(joined.encode("utf-8")).decode("utf-8").split(_SEP)
        if len(texts) == len(fields):
            if nulls:
                return [None if s == null else t for s, t in zip(fields, texts, strict=True)]
            return list(texts)
    unescape = codec.unescape
    return [None if s == null else unescape(s) if "\\" in s else s for s in fields]


def _with_nulls(f: ColumnFunc, column: Sequence[Any]) -> list[Any]:
    values = iter(f([v for v in column if v is not None]))
    return [None if v is None else next(values) for v in column]


def _mapped(convert: Convert) -> ColumnFunc:
    def column(values: Sequence[Any]) -> list[Any]:
        return list(map(convert, values))
    return column


def column_function(ct: ColType, target: str, column: str) -> ColumnFunc | None:
    """A column's values (decoded by the source codec, not NULL) -> the target's values; None where
    the decoded text is the target's value."""
    if is_plain(ct, target):
        return None
    convert = converter(ct, target, column)
    if ct.engine == POSTGRESQL and ct.kind == "timestamptz" and target in (MYSQL, SQLITE):
        return _utc_text(convert, ":00" if target == SQLITE else None)
    if ct.engine == POSTGRESQL and ct.kind == "array" and ct.element == "text" and target in (MYSQL, SQLITE):
        return _text_arrays(convert)
    return _mapped(convert)


def _utc_text(convert: Convert, suffix: str | None) -> ColumnFunc:
    """PostgreSQL timestamptz text (the session's time zone is UTC: ``...+00``) -> ``convert``'s
    value: ``...+00:00`` (``suffix`` ":00": SQLite) or without the offset (None: MySQL)."""
    def column(values: Sequence[str]) -> list[Any]:
        joined = "\n".join(values) + "\n"
        n = len(values)
        # every value ends with +00 when each of its n line ends (and no other) follows a +00
        if joined.count("\n") != n or joined.count("+00\n") != n:
            return list(map(convert, values))
        out = joined.replace("+00\n", "\n" if suffix is None else "+00" + suffix + "\n").split("\n")
        out.pop()  # after the last line end
        return out
    return column


def _text_arrays(convert: Convert) -> ColumnFunc:
    """PostgreSQL arrays of text -> the JSON text of ``convert``: ``{a,b}`` -> ``["a", "b"]`` where no
    value holds a quote, a backslash, a NULL, bounds, another dimension or a character JSON escapes."""
    def column(values: Sequence[str]) -> list[Any]:
        joined = "\n".join(values) + "\n"
        n = len(values)
        plain = not ('"' in joined or "\\" in joined or "NULL" in joined or "[" in joined) and all(
            map(str.isprintable, values))  # no line end inside a value either
        # each value is {...} with no other brace: its n braces each way open and close a value
        if not (plain and joined.startswith("{") and joined.count("\n{") == n - 1 and joined.count("{") == n
                and joined.count("}\n") == n and joined.count("}") == n):
            return list(map(convert, values))
        # {} is [] (JSON's ["" is no value of these: an empty element is quoted, and quotes are out)
        text = joined.replace(",", '", "').replace("{", '["').replace("}", '"]').replace('[""]', "[]")
        out = text.split("\n")
        out.pop()  # after the last line end
        return out
    return column


def raw_function(ct: ColType, target: str, column: str, codec: TabText) -> RawFunc | None:
    """Stored fields -> the target's values, for the columns whose escapes are faster left to the
    conversion: PostgreSQL's bytea (``\\\\x00ff``, its backslash escaped) into MySQL or SQLite."""
    if not (ct.engine == POSTGRESQL and ct.kind in ("bytes", "geometry") and target in (MYSQL, SQLITE)):
        return None
    convert = converter(ct, target, column)  # bytes.fromhex of the unescaped text after its "\x"
    null, unescape, fromhex = codec.null.decode("ascii"), codec.unescape, bytes.fromhex

    def one(s: str) -> Any:
        if s.startswith("\\\\x") and s.find("\\", 3) < 0:
            return fromhex(s[3:])
        return None if s == null else convert(unescape(s) if "\\" in s else s)

    def fields(values: Sequence[str]) -> list[Any]:
        n = len(values)
        if sum(map(str.startswith, values, repeat("\\\\x"))) == n and "".join(values).count("\\") == 2 * n:
            return [fromhex(s[3:]) for s in values]
        return list(map(one, values))
    return fields
