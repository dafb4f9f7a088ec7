"""What the leak audit compares, and where it finds it: items cut from cells the same way on both sides.

An item is a lower-cased value as stored, or a significant part of one: an e-mail address, a
number (as written and as its digits), a word of free text (marked :data:`WORD`, so that a name
kept whole never meets the same word inside other text), a JSON string value, an array element.
The original side (:func:`original_items`) takes everything, cheaply; the scanned side
(:func:`exposed_items`) keeps the significant items only, so what is insignificant never meets.
:func:`judge` decides which findings are leaks; :func:`locate` counts their rows.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from operator import methodcaller
from typing import Any

from datasafe.masking import native
from datasafe.masking.leaks_report import Finding
from datasafe.masking.types import column_kind
from datasafe.snapshot.manifest import TableEntry

#: items with fewer letters and digits than this never count: too many coincidences
MIN_LENGTH = 4
#: a number (digits and separators only) needs this many digits
MIN_DIGITS = 6
#: an item found in at least this many rows of its original column, and ...
COMMON_ROWS = 50
#: ... in at least this share of them, identifies no one (a city, a street name, a first name)
COMMON_SHARE = 0.01
_STOP = """
    about above after again against also among another because been before being below between both
    cannot could does doing down during each either else ever every from further have having here
    into itself just many might more most much must neither never none null nothing often once only
    other ought over same shall should since some still such than that their theirs them then there
    these they this those through thus under until upon very want were what when where whether which
    while will with within without would your yours true false nan infinity unknown http https html
    test note notes"""
#: items identify on their own with this many digits (phone, card, account, national id numbers) ...
IDENTIFYING_DIGITS = 9
#: ... or this many bytes (e-mail addresses always)
IDENTIFYING_LENGTH = 20
#: names, places and values found elsewhere are a leak from this share of the found-in column's values
SHARED_SHARE = 0.1
#: words of free text found elsewhere are a leak where this share of the rows holding them holds
#: their own row's words (a column derived from the text)
WORDS_SAME_ROW = 0.1
#: in the column of the same name (``datasafe leaks``): a leak from this share of the paired rows ...
SAME_COLUMN_ROWS = 0.01
#: ... or from this share of its distinct values (values shuffled between rows)
SAME_COLUMN_SHARE = 0.5
#: bytes of scanned cells a table probe remembers, so that a cell met again costs one set lookup
SEEN_BYTES = 4 << 20
#: words too common in any text to mean anything (4 letters or more; shorter ones never count)
STOP_WORDS = frozenset(w.encode() for w in _STOP.split())

# -- items ----------------------------------------------------------------------------------------------
# words: runs of ASCII letters and digits and of non-ASCII bytes (UTF-8 letters); the rest separates
_WORDS = bytes(c + 32 if 65 <= c <= 90 else c if (48 <= c <= 57 or 97 <= c <= 122 or c >= 128) else 32
               for c in range(256))
_SEPARATORS = bytes(c for c in range(128) if not (48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122))
_NOT_DIGITS = bytes(c for c in range(256) if not 48 <= c <= 57)
_NOT_DIGITS_OR_LINE = bytes(c for c in range(256) if not (48 <= c <= 57 or c == 10))
_ELEMENTS = bytes(10 if c in b"{},()" else c for c in range(256))
_EMAIL = re.compile(rb"[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+")
# numbers written with separators: +1 (555) 010-0199, 123-45-6789, 4111 1111 1111 1111; standing
# on their own (digits inside a word, such as a hex digest's, are no number anyone was given)
_DIGIT_GROUP = re.compile(rb"(?<![0-9a-z])[0-9+(][0-9 .()/+\-]{4,}[0-9](?![0-9a-z])")
# JSON strings, in order: those followed by a colon are keys
_JSON_STRING = re.compile(rb'"((?:[^"\\]|\\.)*)"(\s*:)?')
_digits_of = methodcaller("translate", None, _NOT_DIGITS)

#: rules whose original values are matched whole, where they stand whole (a cell, a JSON value,
#: an array element; e-mail addresses and numbers also inside text): as words inside other text,
#: names and places would meet every "Green" and every "Lake Michael". Numbers also count as
#: their digits. Every other rule on a text column is taken for free text, whose words count too.
VALUE_RULES = frozenset({"email", "first_name", "last_name", "name", "company", "city", "street", "address",
                         "postcode", "username", "uuid", "hash", "ip", "date_of_birth", "noise"})
DIGIT_RULES = frozenset({"phone", "national_id", "credit_card", "iban"})
#: rules whose output carries part of the input on: their output is scanned like a kept column's
PARTIAL_RULES = frozenset({"json", "regex", "redact", "template"})
#: column kinds whose cells are compared whole, and scanned only when a masked column has the kind
TYPED_KINDS = frozenset({"int", "decimal", "date", "timestamp", "time", "uuid", "inet"})
#: words of free text are items of their own kind (marked with this byte, which text never has
#: after :data:`_WORDS`): a value meets a word only where the value is a number
WORD = b"\x1f"


def _for_words(text: bytes) -> bytes:
    """Stored text with the common escapes (line ends, tabs) as spaces, e-mail addresses cut out."""
    if b"\\" in text:
        text = text.replace(b"\\n", b" ").replace(b"\\t", b" ").replace(b"\\r", b" ")
    return _EMAIL.sub(b" ", text) if b"@" in text else text


def words(text: bytes) -> list[bytes]:
    """The words of ``text``, every one (significant or not), without the :data:`WORD` mark."""
    return _for_words(text).translate(_WORDS).split()


def original_items(cells: list[bytes], mode: str) -> tuple[list[bytes], list[bytes]]:
    """What is looked for of a block of one original column (lower-cased stored cells): its
    items other than words, and its words (without the :data:`WORD` mark, see
    :class:`Known`), by mode: ``value`` (whole values), ``digits`` (and their digits), ``text``
    (and their words and e-mail addresses), ``json`` (string values, their words and addresses),
    ``all`` (everything).

    Nothing is filtered here (a C loop over every value is all it costs): insignificant items
    never match, because the scanned side keeps only significant ones.
    """
    if mode == "value":
        return cells, []
    if mode == "digits":
        return cells + b"\n".join(cells).translate(None, _NOT_DIGITS_OR_LINE).split(b"\n"), []
    if mode == "all":  # a column of unknown content (``datasafe leaks`` without rules): everything
        values, found = original_items(cells, "text")
        return original_items(cells, "digits")[0] + values[len(cells):], found
    text = b"\n".join(cells)
    if mode == "json":
        items = json_values(text)
        text = b"\n".join(items)
    else:
        items = list(cells)
    if b"@" in text:
        items += _EMAIL.findall(text)
    return items, words(text)


def original_set(cell: bytes, mode: str) -> set[bytes]:
    """The items of one lower-cased original cell, words marked (for the slow paths)."""
    values, found = original_items([cell], mode)
    return {*values, *(WORD + w for w in found)}


class Known:
    """The items seen in the scanned columns, as the originals are tested against them."""

    __slots__ = ("values", "words")

    def __init__(self, items: Iterable[bytes] = ()) -> None:
        items = list(items)
        self.values = frozenset(i for i in items if not i.startswith(WORD))
        self.words = frozenset(i[1:] for i in items if i.startswith(WORD))

    def __bool__(self) -> bool:
        return bool(self.values or self.words)

    def hits(self, values: list[bytes], found: list[bytes]) -> dict[bytes, int]:
        """The items of ``values`` and ``found`` (words) that were seen, with how often they occur."""
        out: dict[bytes, int] = {}
        hit = self.values.intersection(values) if self.values else None
        if hit:
            out.update(Counter(filter(hit.__contains__, values)))
        hit = self.words.intersection(found) if self.words and found else None
        if hit:
            out.update((WORD + w, n) for w, n in Counter(filter(hit.__contains__, found)).items())
        return out


def exposed_items(cells: Iterable[bytes], kind: str) -> list[bytes]:
    """The significant, distinct items of some lower-cased stored cells of a scanned column:
    whole values, JSON string values, array elements, e-mail addresses, numbers (as written and
    as digits), and words."""
    distinct = list(set(cells))
    if kind == "typed":
        return [c for c in distinct if significant(c)]
    text = b"\n".join(distinct)
    if kind == "json":
        items = json_values(text)
        text = b"\n".join(items)
    elif kind == "array":
        items = [e.strip(b'" ') for e in text.translate(_ELEMENTS).split(b"\n")]
    else:
        items = distinct
    if b"@" in text:
        items += _EMAIL.findall(text)
    if any(d in text for d in b"0123456789"):
        groups = _DIGIT_GROUP.findall(text)
        items += groups  # as written, and as digits only
        items += map(_digits_of, groups)
    out = [t for t in set(items) if significant(t) and t not in STOP_WORDS]
    # words are letters and digits only: significant when long enough (and not a short number)
    for w in set(_for_words(text).translate(_WORDS).split()):
        if len(w) >= MIN_LENGTH and w not in STOP_WORDS:
            if not w.isdigit():
                out.append(WORD + w)
            elif len(w) >= MIN_DIGITS:  # a number is a number, in a sentence or on its own
                out += (WORD + w, w)
    return out


def json_values(text: bytes) -> list[bytes]:
    """The string values (not the keys) of JSON documents, as written."""
    return [value for value, colon in _JSON_STRING.findall(text) if not colon]


def identifying(item: bytes) -> bool:
    """Whether an item identifies on its own: an e-mail address, a number of at least
    :data:`IDENTIFYING_DIGITS` digits, a value of at least :data:`IDENTIFYING_LENGTH` bytes. Other
    items (a name, a place, a word) may be shared by chance between unrelated columns."""
    if b"@" in item or len(item) >= IDENTIFYING_LENGTH:
        return True
    return len(item) >= IDENTIFYING_DIGITS and len(item.translate(None, _NOT_DIGITS)) >= IDENTIFYING_DIGITS


def judge(finding: Finding, *, same_column: bool = False, paired: int = 0) -> None:
    """Decide whether a finding is a leak (``finding.leak``), once it is located.

    Items that identify on their own are leaks. Whole values (a name, a place, a value of a JSON
    document) that stay in their row are leaks; found in other rows, they are a leak when they
    make up a good part of the column they were found in (:data:`SHARED_SHARE`, a copy of the
    column): a few of them are what two vocabularies have in common. Words of free text meet
    other text by chance (a product named in a ticket and in the catalogue, a surname in a
    company name), in any number: they are a leak where the column is derived from the text,
    row by row, i.e. in at least :data:`WORDS_SAME_ROW` of the rows that hold them (a
    ``tsvector``, a summary). In the column of the same name (``datasafe leaks``), generators
    meet the originals by chance, even long numbers (a generated national id in its own space
    of a billion values): there it takes :data:`SAME_COLUMN_ROWS` of the ``paired`` rows, or
    :data:`SAME_COLUMN_SHARE` of the values.
    """
    share = finding.share or 0.0
    same_row = finding.same_row or 0
    if same_column:
        in_place = finding.same_row is not None and finding.same_row >= max(1.0, SAME_COLUMN_ROWS * paired)
        finding.leak = in_place or share >= SAME_COLUMN_SHARE
    elif finding.identifying > 0:
        finding.leak = True
    elif finding.words >= finding.values:  # words of free text only
        finding.leak = same_row >= max(2.0, WORDS_SAME_ROW * (finding.rows or 0))
    else:
        finding.leak = same_row > 0 or share >= SHARED_SHARE


def significant(item: bytes) -> bool:
    """At least :data:`MIN_LENGTH` letters or digits; a number needs :data:`MIN_DIGITS` digits."""
    if len(item) < MIN_LENGTH:
        return False
    core = item if item.isalnum() else item.translate(None, _SEPARATORS)
    return len(core) >= MIN_DIGITS or (len(core) >= MIN_LENGTH and not core.isdigit())


def scan_kind(type_name: str) -> str | None:
    """How a column of this declared type is scanned: text, json, array, typed, or not at all."""
    kind = column_kind(type_name)
    if kind == "json":
        return "json"
    if kind == "other":
        t = type_name.strip().lower()
        return "array" if t.endswith("]") or t.startswith("_") else "text"
    if kind == "text":
        return "text"
    return "typed" if kind in TYPED_KINDS else None


def original_mode(type_name: str, rule: str | None) -> str | None:
    """How a column's original values are looked for (None: not at all, e.g. booleans)."""
    kind = column_kind(type_name)
    if kind == "json":
        return "json"
    if kind in TYPED_KINDS:
        return "value"
    if kind not in ("text", "other"):
        return None
    if rule in DIGIT_RULES:
        return "digits"
    return "value" if rule in VALUE_RULES else "text"


def _cell_bytes(value: Any) -> bytes:
    if value is None or isinstance(value, dict):  # NULL, a blob
        return b""
    return (value if isinstance(value, str) else str(value)).encode("utf-8", "surrogateescape")


def block_columns(block: bytes, encoding: str, ncols: int, wanted: tuple[int, ...], *, lower: bool = True
                  ) -> tuple[list[bytes], ...]:
    """The stored cells (lower-cased unless not ``lower``) of the columns ``wanted`` (ascending)
    of a block of whole rows, as bytes: text as the row encoding stores it (escapes and all), a
    SQLite value as its text."""
    if not wanted or not block:
        return tuple([] for _ in wanted)
    if encoding == "jsonl":
        rows = [json.loads(line) for line in block.splitlines() if line]
        cells = tuple([_cell_bytes(r[i]) for r in rows] for i in wanted)
        return tuple(list(map(bytes.lower, c)) for c in cells) if lower else cells
    return native.fields(block.lower() if lower else block, ncols, wanted)


# -- columns, and where findings are ------------------------------------------------------------------
@dataclass(frozen=True)
class Original:
    """A column whose original values are looked for."""

    id: int
    table: str
    column: str
    index: int
    mode: str

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True)
class Scanned:
    """An output column scanned for them (``output``: read from the masked rows, while masking)."""

    id: int
    table: str
    column: str
    index: int
    kind: str
    output: bool = False

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass
class Blocks:
    """Where :func:`locate` reads rows: ``original(entry)`` and ``output(entry)`` give the blocks
    of a table of the original and of the masked data; the entries are looked up by table name."""

    original: Callable[[TableEntry], Iterator[bytes]]
    output: Callable[[TableEntry], Iterator[bytes]]
    original_entries: Mapping[str, TableEntry]
    output_entries: Mapping[str, TableEntry]


def locate(found: Iterable[tuple[Finding, Original, Scanned, set[bytes]]], blocks: Blocks) -> None:
    """Fill in ``rows`` (output rows holding a shared item) and ``same_row`` of each finding.

    Rows pair up only within one table whose output has every row of its original: the n-th
    masked row is the n-th original row. A kept column of such a table is read from the
    original rows (the same bytes). Reads the tables concerned once more, for what was found only.
    """
    for finding, o, s, shared in found:
        out_entry = blocks.output_entries[s.table]
        src_entry = blocks.original_entries.get(s.table)
        whole = src_entry is not None and src_entry.rows == out_entry.rows
        if whole and not s.output and src_entry is not None:
            cells = _cells(blocks.original(src_entry), src_entry, s.index)
        else:
            cells = _cells(blocks.output(out_entry), out_entry, s.index)
        in_entry = blocks.original_entries.get(o.table)
        mine = (_cells(blocks.original(in_entry), in_entry, o.index)
                if whole and o.table == s.table and in_entry is not None else None)
        rows = same = 0
        for cell in cells:
            own = next(mine, None) if mine is not None else None
            items = shared.intersection(exposed_items([cell], s.kind))
            if not items:
                continue
            rows += 1
            if own is not None and not items.isdisjoint(original_set(own, o.mode)):
                same += 1
        finding.rows = rows
        finding.same_row = same if mine is not None else None


def _cells(blocks: Iterator[bytes], entry: TableEntry, index: int) -> Iterator[bytes]:
    for block in blocks:
        (column,) = block_columns(block, entry.encoding, len(entry.columns), (index,))
        yield from column
