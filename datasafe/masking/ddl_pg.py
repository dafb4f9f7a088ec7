"""pg_dump custom-format archives, read and written without a server or pg_restore.

A datasafe PostgreSQL schema part is ``pg_dump --schema-only --format=custom --compress=0``
output: a header, then the table of contents (TOC), one entry per object with its SQL text
(``defn``), and no data blocks. :func:`read_archive` parses it into :class:`TocEntry` objects,
:func:`write_archive` serializes them again, byte for byte as pg_dump wrote them when nothing
changed, so masking can leave out an entry (a COMMENT, a dropped view) or rewrite an entry's SQL
and still hand ``pg_restore`` an archive it reads like any other.

The layout follows PostgreSQL's ``pg_backup_archiver.c`` (``WriteHead``/``ReadHead``,
``WriteToc``/``ReadToc``) and ``pg_backup_custom.c`` (the entry's data offset):

- an integer is a sign byte and ``intSize`` bytes, least significant first;
- a string is an integer length (-1: NULL) and that many bytes, in the archive's encoding;
- an offset is a flag byte (1 not set, 2 set, 3 no data) and ``offSize`` bytes.

Archive versions 1.14 (pg_dump 12 to 15), 1.15 (pg_dump 16: the header names the compression
algorithm) and 1.16 (pg_dump 17 and 18: each entry carries its ``relkind``) are read; others are
refused rather than guessed at.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

from datasafe.engines.schema_sql import pg_script_texts
from datasafe.engines.sql_tokens import tokenize
from datasafe.errors import DependencyError, IntegrityError
from datasafe.masking.ddl_sql import SchemaDoc, Span, Unit
from datasafe.scan.model import SchemaText

MAGIC = b"PGDMP"
#: archive versions (major, minor) this module reads and writes
SUPPORTED = ((1, 14), (1, 15), (1, 16))
_CUSTOM_FORMAT = 1
#: entry types that belong to another object and go (or stay) with it
ATTACHED = ("COMMENT", "ACL", "SECURITY LABEL")
_CODECS = {"UTF8": "utf-8", "SQL_ASCII": "utf-8", "WIN1252": "cp1252", "WIN1250": "cp1250", "WIN1251": "cp1251",
           "LATIN1": "latin-1", "LATIN9": "iso8859-15", "EUC_JP": "euc_jp", "SJIS": "shift_jis", "BIG5": "big5",
           "GBK": "gbk", "UHC": "cp949", "KOI8R": "koi8-r"}
_ENCODING = re.compile(r"client_encoding\s*=\s*'([^']+)'")


@dataclass
class TocEntry:
    """One TOC entry. Text fields are kept as the archive's bytes (None: NULL); :attr:`defn` and
    the others decoded are what :class:`Archive` gives out."""

    dump_id: int
    had_dumper: int
    table_oid: bytes | None
    oid: bytes | None
    tag: bytes | None
    desc: bytes | None
    section: int
    defn: bytes | None
    drop_stmt: bytes | None
    copy_stmt: bytes | None
    namespace: bytes | None
    tablespace: bytes | None
    tableam: bytes | None
    relkind: int | None
    owner: bytes | None
    with_oids: bytes | None
    deps: list[bytes] = field(default_factory=list)
    #: the custom format's data offset (flag byte and offSize bytes), kept as stored
    offset: bytes = b""

    @property
    def dependencies(self) -> list[int]:
        return [int(d) for d in self.deps if d.strip().isdigit()]


@dataclass
class Archive:
    """A parsed custom-format archive: the header as stored, the entries, and what follows them."""

    version: tuple[int, int, int]
    int_size: int
    off_size: int
    header: bytes
    entries: list[TocEntry]
    #: bytes after the TOC (data blocks; empty in a schema-only archive)
    trailer: bytes = b""
    encoding: str = "utf-8"
    #: where the TOC ended in the bytes read (the trailer's data offsets count from the start)
    toc_end: int = 0

    def text(self, value: bytes | None) -> str:
        """A string field as text (undecodable bytes survive a round trip)."""
        return "" if value is None else value.decode(self.encoding, "surrogateescape")

    def encode(self, text: str) -> bytes:
        """Text for a string field, in the archive's encoding."""
        try:
            return text.encode(self.encoding, "surrogateescape")
        except UnicodeEncodeError as exc:
            raise IntegrityError(f"the new schema text cannot be written in the archive's encoding "
                                 f"{self.encoding}: {exc.reason}") from None

    def by_id(self) -> dict[int, TocEntry]:
        return {e.dump_id: e for e in self.entries}


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.int_size = 4
        self.off_size = 8

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise IntegrityError("the schema archive ends early: it is truncated or not a pg_dump archive")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def int(self) -> int:
        sign = self.byte()
        value = int.from_bytes(self.take(self.int_size), "little")
        return -value if sign else value

    def str(self) -> bytes | None:
        n = self.int()
        return None if n < 0 else self.take(n)


class _Writer:
    def __init__(self, int_size: int) -> None:
        self.out = bytearray()
        self.int_size = int_size

    def int(self, value: int) -> None:
        self.out.append(1 if value < 0 else 0)
        self.out += abs(value).to_bytes(self.int_size, "little")

    def str(self, value: bytes | None) -> None:
        if value is None:
            self.int(-1)
        else:
            self.int(len(value))
            self.out += value


def read_archive(data: bytes) -> Archive:
    """Parse a custom-format archive.

    Raises:
        IntegrityError: not a custom-format pg_dump archive, or truncated.
        DependencyError: an archive version this datasafe does not know.
    """
    r = _Reader(data)
    if r.take(5) != MAGIC:
        raise IntegrityError("the schema part is not a pg_dump archive (no PGDMP header)")
    version = (r.byte(), r.byte(), r.byte())
    if version[:2] not in SUPPORTED:
        known = ", ".join(f"{a}.{b}" for a, b in SUPPORTED)
        raise DependencyError(f"the schema archive has pg_dump archive version {version[0]}.{version[1]}, which "
                              f"this datasafe cannot rewrite (it knows {known})",
                              hint="mask with a datasafe that knows this archive version")
    r.int_size, r.off_size = r.byte(), r.byte()
    if r.byte() != _CUSTOM_FORMAT:
        raise IntegrityError("the schema archive is not in pg_dump's custom format")
    if version[:2] >= (1, 15):
        r.byte()  # compression algorithm
    else:
        r.int()  # compression level
    for _ in range(7):  # creation time: sec, min, hour, mday, mon, year, isdst
        r.int()
    for _ in range(3):  # database name, server version, pg_dump version
        r.str()
    header = data[:r.pos]
    entries = [_read_entry(r, version) for _ in range(r.int())]
    archive = Archive(version, r.int_size, r.off_size, header, entries, data[r.pos:], toc_end=r.pos)
    for e in entries:
        if e.desc == b"ENCODING" and e.defn:
            m = _ENCODING.search(e.defn.decode("ascii", "replace"))
            if m:
                archive.encoding = _codec(m.group(1))
    return archive


def _codec(pg_name: str) -> str:
    name = _CODECS.get(pg_name.upper())
    if name is None:
        try:
            name = codecs.lookup(pg_name).name
        except LookupError:
            name = "latin-1"  # byte for byte: unchanged text round-trips whatever the encoding
    return name


def _read_entry(r: _Reader, version: tuple[int, int, int]) -> TocEntry:
    dump_id, had_dumper = r.int(), r.int()
    table_oid, oid, tag, desc = r.str(), r.str(), r.str(), r.str()
    section = r.int()
    defn, drop_stmt, copy_stmt, namespace, tablespace, tableam = r.str(), r.str(), r.str(), r.str(), r.str(), r.str()
    relkind = r.int() if version[:2] >= (1, 16) else None
    owner, with_oids = r.str(), r.str()
    deps = []
    while (dep := r.str()) is not None:
        deps.append(dep)
    offset = r.take(1 + r.off_size)
    return TocEntry(dump_id, had_dumper, table_oid, oid, tag, desc, section, defn, drop_stmt, copy_stmt, namespace,
                    tablespace, tableam, relkind, owner, with_oids, deps, offset)


def write_archive(archive: Archive) -> bytes:
    """The archive's bytes: identical to what was read when nothing changed.

    Raises:
        IntegrityError: the archive holds data blocks (their offsets would move); datasafe's schema
            parts never do.
    """
    w = _Writer(archive.int_size)
    w.out += archive.header
    w.int(len(archive.entries))
    for e in archive.entries:
        w.int(e.dump_id)
        w.int(e.had_dumper)
        for value in (e.table_oid, e.oid, e.tag, e.desc):
            w.str(value)
        w.int(e.section)
        for value in (e.defn, e.drop_stmt, e.copy_stmt, e.namespace, e.tablespace, e.tableam):
            w.str(value)
        if archive.version[:2] >= (1, 16):
            w.int(e.relkind or 0)
        w.str(e.owner)
        w.str(e.with_oids)
        for dep in e.deps:
            w.str(dep)
        w.str(None)
        w.out += e.offset
    if archive.trailer and len(w.out) != archive.toc_end:
        raise IntegrityError("the schema archive holds data blocks: only schema-only archives can be rewritten")
    return bytes(w.out) + archive.trailer


# -- the archive as a schema document ---------------------------------------------------------------
#: entry types that can be left out on their own (nothing but their comments and grants need them)
DROPPABLE = frozenset({"VIEW", "FUNCTION", "PROCEDURE", "AGGREGATE", "POLICY", "TRIGGER", "EVENT TRIGGER", "INDEX",
                       "RULE", "DEFAULT", "CHECK CONSTRAINT", "COMMENT"})
_FUNCTIONS = ("FUNCTION ", "PROCEDURE ", "AGGREGATE ")


class PgDoc(SchemaDoc):
    """A ``pg_dump-custom`` schema part: one unit per TOC entry, its text the entry's ``defn``."""

    dialect = "postgresql"

    def __init__(self, raw: bytes) -> None:
        super().__init__(raw)
        self.archive = read_archive(raw)
        self.by_id = self.archive.by_id()
        for e in self.archive.entries:
            desc = self.archive.text(e.desc)
            unit = Unit("", self.archive.text(e.defn), is_comment=desc == "COMMENT", ref=e)
            pieces = self.pieces(unit)
            ns = self.archive.text(e.namespace)
            own = f"{desc.lower()} {ns + '.' if ns else ''}{self.archive.text(e.tag)}"
            unit.name = pieces[0].object if len(pieces) == 1 else own
            if desc == "MATERIALIZED VIEW":
                unit.fixed = "a restore refreshes it (rewrite its query instead)"
            elif desc not in DROPPABLE:
                unit.fixed = f"it is part of {own}"
            self.units.append(unit)

    def _section(self, e: TocEntry, defn: str) -> str:
        a = self.archive
        tag = a.text(e.tag).replace("\n", " ")
        return (f"--\n-- Name: {tag}; Type: {a.text(e.desc)}; Schema: {a.text(e.namespace) or '-'}; "
                f"Owner: {a.text(e.owner)}\n--\n\n{defn}\n\n")

    def _extract(self, unit: Unit) -> list[SchemaText]:
        e: TocEntry = unit.ref
        script = self._section(e, unit.sql)
        parent = self.by_id.get(e.dependencies[0]) if e.dependencies else None
        if unit.is_comment and self.archive.text(e.tag).startswith(_FUNCTIONS) and parent is not None:
            # scan names a function's comment by the function's signature, which only its entry has
            context = pg_script_texts(self._section(parent, self.archive.text(parent.defn)) + script)
            return [t for t in context if t.kind == "comment"]
        return pg_script_texts(script)

    def comments(self, unit: Unit) -> list[Span]:
        if not unit.is_comment:
            return []
        tokens = tokenize(unit.sql, self.dialect)
        for i, t in enumerate(tokens[:-1]):
            if t.kind == "word" and t.key == "IS" and tokens[i + 1].kind == "string":
                s = tokens[i + 1]
                pieces = self.pieces(unit)
                name = pieces[0].object if pieces else unit.name
                return [Span(name, s.value, (0, len(unit.sql)), (s.start, s.end), "string")]
        return []

    def quote(self, unit: Unit, text: str) -> str:
        if "\\" in text:  # E'' reads the same whatever standard_conforming_strings says
            return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
        return "'" + text.replace("'", "''") + "'"

    def label_spans(self, unit: Unit, piece: SchemaText) -> list[tuple[int, int]]:
        tokens = tokenize(unit.sql, self.dialect)
        for i, t in enumerate(tokens[:-1]):
            if t.kind == "word" and t.key == "ENUM" and tokens[i + 1].value == "(":
                out = []
                for s in tokens[i + 2:]:
                    if s.kind == "op" and s.value == ")":
                        break
                    if s.kind == "string":
                        out.append((s.start, s.end))
                return out
        return []

    def drop(self, unit: Unit) -> list[str]:
        unit.removed = True
        dump_id = unit.ref.dump_id
        gone = []
        for other in self.units:
            e = other.ref
            if not other.removed and self.archive.text(e.desc) in ATTACHED and dump_id in e.dependencies:
                other.removed = True
                gone.append(other.name)
        return gone

    def dependents(self) -> list[tuple[Unit, str]]:
        removed = {u.ref.dump_id: u for u in self.units if u.removed}
        return [(removed[d], other.name) for other in self.units if not other.removed
                for d in other.ref.dependencies if d in removed]

    def dump(self) -> bytes:
        if not self.changed:
            return self.raw
        for unit in self.units:
            if unit.edited:
                unit.ref.defn = self.archive.encode(unit.sql)
        self.archive.entries = [u.ref for u in self.units if not u.removed]
        return write_archive(self.archive)
