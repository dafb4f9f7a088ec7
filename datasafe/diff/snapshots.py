"""``datasafe diff``: what changed between two snapshots, read from their manifests and schema parts.

Nothing is restored and no row is read, so the answer costs two manifests and the schema parts,
whatever the size of the data. What that can and cannot tell, precisely:

- **Content**: a table's content digest covers every byte of its rows. Equal digests mean equal
  rows. Different digests mean different rows when both snapshots cut chunks at the same size
  (or each holds the table in one chunk): the digest depends on where chunks end (see
  docs/format.md). Otherwise, with equal counts and sizes, the answer is ``unknown``.
- **Rows**: manifests count rows; they do not say which. ``net_rows`` is B's count minus A's: a
  table can gain 100 rows and lose 100 and show 0 (its content digest still says ``changed``).
- **Chunks**: chunks with the same raw digest hold the same rows; ``same_chunks`` counts B's
  chunks that are identical to one of A's (rows appended at the end of a large table leave the
  earlier chunks identical). A lower bound of what stayed, not a row-by-row diff.
- **Schema**: columns, keys and indexes as the manifest records them, and every object of the
  schema parts (see :mod:`datasafe.diff.schema_objects`) by its definition.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from datasafe.diff.schema_objects import SchemaObject, schema_objects
from datasafe.errors import DatasafeError, UsageError
from datasafe.humanize import size
from datasafe.snapshot import provenance
from datasafe.snapshot.manifest import Manifest, TableEntry
from datasafe.snapshot.repository import Repository

log = logging.getLogger(__name__)


@dataclass
class TableDiff:
    """One table in A, B or both."""

    name: str
    change: str  #: ``added``, ``removed``, ``changed``, ``unchanged`` or ``unknown``
    content: str  #: ``same``, ``different``, ``unknown``, or ``-`` (the table is on one side only)
    a: TableEntry | None
    b: TableEntry | None
    same_chunks: int | None = None  #: chunks of B identical to one of A's (None: not comparable)
    rows_in_same_chunks: int | None = None
    schema: list[str] = field(default_factory=list)  #: column, key, index and definition differences
    note: str | None = None

    @property
    def net_rows(self) -> int:
        return (self.b.rows if self.b else 0) - (self.a.rows if self.a else 0)

    def as_dict(self) -> dict[str, Any]:
        def side(t: TableEntry | None, key: str) -> int | None:
            return None if t is None else int(getattr(t, key))

        return {
            "table": self.name, "change": self.change, "content": self.content,
            "rows_a": side(self.a, "rows"), "rows_b": side(self.b, "rows"), "net_rows": self.net_rows,
            "raw_bytes_a": side(self.a, "raw_size"), "raw_bytes_b": side(self.b, "raw_size"),
            "stored_bytes_a": side(self.a, "stored_size"), "stored_bytes_b": side(self.b, "stored_size"),
            "chunks_a": len(self.a.chunks) if self.a else None, "chunks_b": len(self.b.chunks) if self.b else None,
            "same_chunks": self.same_chunks, "rows_in_same_chunks": self.rows_in_same_chunks,
            "schema": self.schema, "note": self.note,
        }


@dataclass
class SnapshotDiff:
    """Everything :func:`diff` found; ``schema`` holds differences that belong to no table."""

    a: Manifest
    b: Manifest
    tables: list[TableDiff]
    schema: list[str] = field(default_factory=list)
    #: ``objects`` (every schema part decoded), ``digest`` (some only by digest) or ``none`` (no parts)
    schema_compared: str = "objects"
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.schema and all(t.change == "unchanged" for t in self.tables)

    def counts(self) -> Counter[str]:
        return Counter(t.change for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "a": _side(self.a), "b": _side(self.b), "same_source": self.a.source == self.b.source,
            "identical": self.identical,
            "totals": {
                **{f"tables_{k}": counts.get(k, 0) for k in ("added", "removed", "changed", "unchanged", "unknown")},
                "net_rows": self.b.rows - self.a.rows, "raw_bytes_delta": self.b.raw_size - self.a.raw_size,
                "stored_bytes_delta": self.b.stored_size - self.a.stored_size,
            },
            "tables": [t.as_dict() for t in self.tables],
            "schema": {"compared": self.schema_compared, "differences": self.schema},
            "notes": self.notes,
        }


def _side(m: Manifest) -> dict[str, Any]:
    return {"snapshot": m.snapshot_id, "source": m.source, "engine": m.engine, "database": m.database,
            "started_at": m.started_at.isoformat(), "finished_at": m.finished_at.isoformat(),
            "chunk_size": m.chunk_size, "tags": m.tags}


def diff(repo: Repository, ref_a: str, ref_b: str, source: str | None = None) -> SnapshotDiff:
    """Compare snapshot ``ref_a`` (the older, usually) with ``ref_b``; read-only.

    Both are references as ``show`` takes them (``--source`` applies to both). Snapshots of two
    sources are compared, with a note; snapshots of two engines are not (their rows are encoded
    differently, so nothing would compare).

    Raises:
        UsageError: the snapshots come from different engines.
        IntegrityError: a manifest was edited after it was signed with this host's policy key.
        NotFound, UsageError: as :meth:`Repository.resolve` for a reference.
    """
    a, b = repo.resolve(ref_a, source), repo.resolve(ref_b, source)
    for m in (a, b):
        provenance.status(m, repo.policy_key)  # an edited manifest is refused, as by show
    if a.engine != b.engine:
        raise UsageError(f"snapshot {a.snapshot_id} is a {a.engine} snapshot and {b.snapshot_id} a {b.engine} "
                         "snapshot: snapshots of different engines cannot be compared")
    result = SnapshotDiff(a, b, [])
    if a.source != b.source:
        result.notes.append(f"the snapshots are of different sources ({a.source}, {b.source}): tables are "
                            "matched by name")
        log.warning("comparing snapshots of different sources: %s and %s", a.source, b.source)
    if a.chunk_size != b.chunk_size:
        result.notes.append(f"the snapshots were cut into chunks of different sizes ({size(a.chunk_size)}, "
                            f"{size(b.chunk_size)}): the content of a table stored in several chunks cannot "
                            "be compared by digest")
    ddl = _schema_differences(repo, result)
    names = [t.name for t in a.tables] + [t.name for t in b.tables if _exact(a, t.name) is None]
    for name in names:
        result.tables.append(_table(name, _exact(a, name), _exact(b, name), a.chunk_size == b.chunk_size,
                                    ddl.pop(name, [])))
    result.schema = [line for lines in ddl.values() for line in lines]
    return result


def _exact(m: Manifest, name: str) -> TableEntry | None:
    return next((t for t in m.tables if t.name == name), None)


def _table(name: str, a: TableEntry | None, b: TableEntry | None, same_cut: bool, ddl: list[str]) -> TableDiff:
    if a is None or b is None:
        return TableDiff(name, "added" if a is None else "removed", "-", a, b, schema=ddl)
    found = TableDiff(name, "unchanged", _content(a, b, same_cut), a, b, schema=_merged(_structure(a, b), ddl))
    if same_cut:
        theirs = Counter(c.raw_blake3 for c in a.chunks)
        same = []
        for c in b.chunks:
            if theirs[c.raw_blake3] > 0:
                theirs[c.raw_blake3] -= 1
                same.append(c)
        found.same_chunks, found.rows_in_same_chunks = len(same), sum(c.rows for c in same)
    if found.content == "different" or found.schema:
        found.change = "changed"
    elif found.content == "unknown":
        found.change = "unknown"
        found.note = "same rows and size, but chunked differently: content not comparable by digest"
    return found


def _merged(structure: list[str], ddl: list[str]) -> list[str]:
    """The manifest's differences and the schema part's, without telling twice that an index came or
    went (the schema part names it with its schema: ``index public.orders_idx added``)."""
    def bare(line: str) -> str:
        name, _, change = line.removeprefix("index ").rpartition(" ")
        return f"{name.rsplit('.', 1)[-1]} {change}"

    told = {bare(line) for line in ddl if line.startswith("index ")}
    return [line for line in structure if not (line.startswith("index ") and bare(line) in told)] + ddl


def _content(a: TableEntry, b: TableEntry, same_cut: bool) -> str:
    if a.content_blake3 == b.content_blake3:
        return "same"
    if a.rows != b.rows or a.raw_size != b.raw_size or a.encoding != b.encoding:
        return "different"
    if same_cut or (len(a.chunks) <= 1 and len(b.chunks) <= 1):
        return "different"
    return "unknown"


def _structure(a: TableEntry, b: TableEntry) -> list[str]:
    """Differences of the table entries themselves: columns, keys, indexes, row encoding."""
    out = []
    cols_a, cols_b = {c.name: c for c in a.columns}, {c.name: c for c in b.columns}
    for c in b.columns:
        if c.name not in cols_a:
            out.append(f"column {c.name} added ({c.type}{'' if c.nullable else ' not null'})")
    for c in a.columns:
        other = cols_b.get(c.name)
        if other is None:
            out.append(f"column {c.name} removed")
        elif other.type != c.type:
            out.append(f"column {c.name}: type {c.type} -> {other.type}")
        elif other.nullable != c.nullable:
            out.append(f"column {c.name}: {'now nullable' if other.nullable else 'now not null'}")
    kept = [n for n in cols_a if n in cols_b]
    if kept != [n for n in cols_b if n in cols_a]:
        out.append("column order changed")
    if a.primary_key != b.primary_key:
        out.append(f"primary key ({', '.join(a.primary_key) or '-'}) -> ({', '.join(b.primary_key) or '-'})")
    uniq_a, uniq_b = {tuple(u) for u in a.unique}, {tuple(u) for u in b.unique}
    out += [f"unique ({', '.join(u)}) added" for u in sorted(uniq_b - uniq_a)]
    out += [f"unique ({', '.join(u)}) removed" for u in sorted(uniq_a - uniq_b)]
    fks_a, fks_b = {f.name: f for f in a.foreign_keys}, {f.name: f for f in b.foreign_keys}
    for fk_name in sorted(fks_a.keys() | fks_b.keys()):
        fa, fb = fks_a.get(fk_name), fks_b.get(fk_name)
        if fa is None or fb is None:
            out.append(f"foreign key {fk_name} {'added' if fa is None else 'removed'}")
        elif (fa.columns, fa.ref_table, fa.ref_columns) != (fb.columns, fb.ref_table, fb.ref_columns):
            out.append(f"foreign key {fk_name} changed")
    out += [f"index {i} added" for i in sorted(set(b.indexes) - set(a.indexes))]
    out += [f"index {i} removed" for i in sorted(set(a.indexes) - set(b.indexes))]
    if a.encoding != b.encoding:
        out.append(f"row encoding {a.encoding} -> {b.encoding}")
    return out


def _schema_differences(repo: Repository, result: SnapshotDiff) -> dict[str, list[str]]:
    """Differences between the schema parts' objects, keyed by the table they belong to ("" for
    none). Parts with equal raw digests are equal and not read."""
    a, b = result.a, result.b
    if not a.schema_parts and not b.schema_parts:
        result.schema_compared = "none"
        return {}
    parts_b = {p.name: p for p in b.schema_parts}
    out: dict[str, list[str]] = {}
    for part in a.schema_parts:
        other = parts_b.pop(part.name, None)
        if other is None:
            out.setdefault("", []).append(f"schema part {part.name} removed")
            continue
        if other.raw_blake3 == part.raw_blake3:
            continue
        try:
            mine = schema_objects(a, part, repo.snapshot_storage(a))
            theirs = schema_objects(b, other, repo.snapshot_storage(b))
        except DatasafeError as exc:
            result.schema_compared = "digest"
            out.setdefault("", []).append(f"schema part {part.name} differs (not compared object by object: {exc})")
            continue
        for table, line in _object_changes(mine, theirs):
            out.setdefault(table or "", []).append(line)
    for name in parts_b:
        out.setdefault("", []).append(f"schema part {name} added")
    return out


def _object_changes(a: dict[str, SchemaObject], b: dict[str, SchemaObject]) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    for key in sorted(a.keys() | b.keys()):
        oa, ob = a.get(key), b.get(key)
        if oa is not None and ob is not None and oa.text == ob.text:
            continue
        change = "added" if oa is None else "removed" if ob is None else "changed"
        table = (ob or oa).table  # type: ignore[union-attr]
        out.append((table, f"{key} {change}"))
    return out
