"""``datasafe leaks ORIGINAL MASKED``: the leak audit of any masked copy, made by any tool.

The same comparison as every ``datasafe mask`` run (:mod:`datasafe.masking.leaks`),
over two stored snapshots or two live databases: every text-like column of ORIGINAL (or the
columns named, or those a rules file masks) is looked for, every column of MASKED is scanned.
Then, per table present on both sides with the same primary key, rows are paired by key: how
often a column keeps its original value (equality share), and whether a finding sits in the
row it came from. Optionally the k-anonymity of quasi-identifiers in MASKED.

Findings are judged as in a masking run (:func:`datasafe.masking.leaks.judge`); in the column of
the same name, what generators drawing from the same vocabulary (names, cities) produce by chance
is reported as a coincidence, unless values stay in their rows or most of them are originals
(values shuffled between rows).
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from datasafe.engines.kinds import column_kind
from datasafe.engines.registry import get_engine
from datasafe.engines.sampling import Consume
from datasafe.errors import ConfigError
from datasafe.masking.leaks_items import (
    Known,
    Original,
    Scanned,
    block_columns,
    exposed_items,
    judge,
    original_mode,
    original_set,
    scan_kind,
)
from datasafe.masking.leaks_ledger import Ledger, TableProbe
from datasafe.masking.leaks_report import ColumnEquality, Finding, KAnonymity, LeakReport
from datasafe.masking.pipeline import table_blocks
from datasafe.masking.rules import Rules, bare_name
from datasafe.snapshot.manifest import Column, Manifest, TableEntry
from datasafe.snapshot.repository import Repository
from datasafe.urls import DatabaseURL


@dataclass
class Side:
    """One database as the audit reads it: its tables, and their rows in blocks of whole lines."""

    label: str
    entries: list[TableEntry]
    read: Callable[[TableEntry, int | None, Consume], None]

    def table(self, name: str) -> TableEntry | None:
        for e in self.entries:
            if e.name == name:
                return e
        bare = [e for e in self.entries if bare_name(e.name) == bare_name(name)]
        return bare[0] if len(bare) == 1 else None


def snapshot_side(repo: Repository, manifest: Manifest) -> Side:
    """A stored snapshot (opened with the repository's keys when encrypted)."""
    manifest = repo.open(manifest)
    objects = repo.snapshot_storage(manifest)

    def read(entry: TableEntry, limit: int | None, consume: Consume) -> None:
        for block in _limited(table_blocks(objects, entry), limit):
            consume(block)

    return Side(f"snapshot {manifest.snapshot_id} of {manifest.source}", list(manifest.tables), read)


def url_side(url: DatabaseURL) -> Side:
    """A live database: its catalog, and its rows read as a backup reads them (read-only)."""
    engine = get_engine(url.engine)
    entries = engine.describe(url)
    return Side(str(url), entries, lambda entry, limit, consume: engine.read_rows(url, entry, limit, consume))


def _limited(blocks: Iterator[bytes], limit: int | None) -> Iterator[bytes]:
    if limit is None:
        yield from blocks
        return
    left = limit
    for block in blocks:
        rows = block.count(b"\n")
        if rows >= left:
            end = 0
            for _ in range(left):
                end = block.index(b"\n", end) + 1
            yield block[:end]
            return
        left -= rows
        yield block


# -- the audit --------------------------------------------------------------------------------------------
def audit_snapshots(repo: Repository, original: str | Manifest, masked: str | Manifest, *,
                    source: str | None = None, masked_source: str | None = None, columns: list[str] | None = None,
                    rules: Rules | None = None, sample: int | None = None,
                    quasi: list[tuple[str, list[str]]] | None = None, k: int = 5) -> LeakReport:
    """:func:`audit` of two stored snapshots (ids, prefixes, ``latest`` or tags, or manifests);
    ``source`` and ``masked_source`` narrow the lookups to one source each."""
    first = original if isinstance(original, Manifest) else repo.resolve(original, source)
    second = masked if isinstance(masked, Manifest) else repo.resolve(masked, masked_source)
    return audit(snapshot_side(repo, first), snapshot_side(repo, second), columns=columns, rules=rules,
                 sample=sample, quasi=quasi, k=k)


def audit_urls(original: str | DatabaseURL, masked: str | DatabaseURL, *, columns: list[str] | None = None,
               rules: Rules | None = None, sample: int | None = None,
               quasi: list[tuple[str, list[str]]] | None = None, k: int = 5) -> LeakReport:
    """:func:`audit` of two live databases (read-only: the catalog and the rows)."""
    first = original if isinstance(original, DatabaseURL) else DatabaseURL.parse(original)
    second = masked if isinstance(masked, DatabaseURL) else DatabaseURL.parse(masked)
    return audit(url_side(first), url_side(second), columns=columns, rules=rules, sample=sample, quasi=quasi, k=k)


def audit(original: Side, masked: Side, *, columns: list[str] | None = None, rules: Rules | None = None,
          sample: int | None = None, quasi: list[tuple[str, list[str]]] | None = None, k: int = 5) -> LeakReport:
    """Look for the originals of ``original``'s columns anywhere in ``masked``.

    Args:
        columns: ``table.column`` names to look for (default: every text-like column, or the
            columns ``rules`` mask).
        rules: a masking rules file's rules: the columns it masks, how (the rule decides what
            is looked for) and its ``accept_leaks``.
        sample: read at most this many rows per table on each side (default: all).
        quasi: ``(table, [columns])`` of MASKED whose k-anonymity is measured.
        k: rows in equivalence classes smaller than this are counted.

    Raises:
        ConfigError: a named table or column does not exist.
    """
    started = time.monotonic()
    originals, accepted = _originals(original, columns, rules)
    kinds = {column_kind(_column(original, o).type) for o in originals}
    scanned: list[Scanned] = []
    for entry in masked.entries:
        for i, col in enumerate(entry.columns):
            kind = scan_kind(col.type)
            if kind is None or (kind == "typed" and column_kind(col.type) not in kinds):
                continue
            scanned.append(Scanned(len(scanned), entry.name, col.name, i, kind))
    ledger = Ledger(originals, scanned)
    for entry in masked.entries:  # what MASKED holds, first ...
        mine = [s for s in scanned if s.table == entry.name]
        if mine:
            probe = TableProbe(entry, [], mine)
            masked.read(entry, sample, _exposing(ledger, probe))
    known = Known(ledger.where)
    for entry in original.entries:  # ... then the originals, looked for in it
        mine_o = [o for o in originals if o.table == entry.name]
        if mine_o and known:
            probe = TableProbe(entry, mine_o, [])
            original.read(entry, sample, _testing(ledger, probe, known))
    report = LeakReport(columns=len(originals), scanned=len(scanned), exposed=len(ledger.where),
                        original=original.label, masked=masked.label)
    findings = ledger.findings(accepted, own_column=True)
    _pair(original, masked, findings, report, sample, quasi or [], k)
    for finding, o, s, _shared in findings:
        finding.same_column = _same_table(original, masked, o.table, s.table) and o.column == s.column
        judge(finding, same_column=finding.same_column,
              paired=next((e.rows for e in report.equality if e.column == s.name), 0))
        report.findings.append(finding)
    report.seconds = time.monotonic() - started
    return report


def _exposing(ledger: Ledger, probe: TableProbe) -> Consume:
    def consume(block: bytes) -> None:
        ledger.expose(probe.early, probe.expose(block))

    return consume


def _testing(ledger: Ledger, probe: TableProbe, known: Known) -> Consume:
    def consume(block: bytes) -> None:
        ledger.hits(probe, probe.test(block, None, known))

    return consume


def _same_table(original: Side, masked: Side, a: str, b: str) -> bool:
    mine = masked.table(a)
    return mine is not None and mine.name == b


def _column(side: Side, o: Original) -> Column:
    entry = side.table(o.table)
    assert entry is not None
    return entry.columns[o.index]


def _originals(side: Side, columns: list[str] | None, rules: Rules | None
               ) -> tuple[list[Original], dict[str, str]]:
    out: list[Original] = []
    accepted: dict[str, str] = {}

    def add(entry: TableEntry, index: int, mode: str | None) -> None:
        if mode is not None:
            out.append(Original(len(out), entry.name, entry.columns[index].name, index, mode))

    if columns:
        for spec in columns:
            table, _, column = spec.rpartition(".")
            entry = side.table(table) if table else None
            if entry is None:
                raise ConfigError(f"--columns {spec}: no table {table or spec!r} in {side.label}")
            names = [c.name for c in entry.columns]
            if column not in names:
                raise ConfigError(f"--columns {spec}: no column {column!r} in {entry.name}")
            index = names.index(column)
            add(entry, index, _unknown_mode(entry.columns[index].type) or "value")
        return out, accepted
    for entry in side.entries:
        rule = rules.rule_for(entry.name, entry.table) if rules is not None else None
        for i, col in enumerate(entry.columns):
            if rules is None:
                add(entry, i, _unknown_mode(col.type) if column_kind(col.type) in ("text", "json", "other") else None)
            elif rule is not None and col.name in rule.columns:
                add(entry, i, original_mode(col.type, rule.columns[col.name].transformer))
        if rule is not None:
            accepted.update({f"{entry.name}.{c}": reason for c, reason in rule.accept_leaks.items()})
    return out, accepted


def _unknown_mode(type_name: str) -> str | None:
    """How a column is looked for when no rule says what it holds: everything of text."""
    kind = column_kind(type_name)
    return "json" if kind == "json" else "all" if kind in ("text", "other") else original_mode(type_name, None)


# -- rows paired by primary key ---------------------------------------------------------------------------
def _pair(original: Side, masked: Side, findings: list[tuple[Finding, Original, Scanned, set[bytes]]],
          report: LeakReport, sample: int | None, quasi: list[tuple[str, list[str]]], k: int) -> None:
    """Equality shares, the rows and same-row counts of findings, and k-anonymity: one more read
    of each table concerned. Rows pair up by primary key (kept on disk, as 8-byte hashes)."""
    wanted = {s.table for _f, _o, s, _h in findings} | {masked_table(masked, t) for t, _c in quasi}
    for f, _o, _s, _h in findings:
        f.rows = 0
    with tempfile.TemporaryDirectory(prefix="datasafe-leaks-") as tmp:
        db = sqlite3.connect(str(Path(tmp) / "pairs.db"))
        with contextlib.closing(db):
            for mine in masked.entries:
                theirs = original.table(mine.name)
                key = mine.primary_key if theirs is not None and theirs.primary_key == mine.primary_key else []
                common = [c.name for c in mine.columns if theirs is not None and c.name in
                          {x.name for x in theirs.columns}] if key else []
                if mine.name not in wanted and not common:
                    continue
                _pair_table(db, original, masked, theirs, mine, key, common,
                            [x for x in findings if x[2].table == mine.name], report, sample,
                            [cols for t, cols in quasi if masked_table(masked, t) == mine.name], k)


_BLANK = 0
_BLANKS = frozenset({b"", b"\\N"})


def _value(cell: bytes) -> int:
    """A cell's hash for the equality share; :data:`_BLANK` for NULL and empty cells."""
    if cell in _BLANKS or cell.isspace():
        return _BLANK
    return hash(cell) or 1


def masked_table(masked: Side, name: str) -> str:
    entry = masked.table(name)
    if entry is None:
        raise ConfigError(f"--quasi {name}: no table {name!r} in {masked.label}")
    return entry.name


def _pair_table(db: sqlite3.Connection, original: Side, masked: Side, theirs: TableEntry | None,
                mine: TableEntry, key: list[str], common: list[str],
                findings: list[tuple[Finding, Original, Scanned, set[bytes]]], report: LeakReport,
                sample: int | None, quasi: list[list[str]], k: int) -> None:
    db.execute("DROP TABLE IF EXISTS o")
    db.execute("DROP TABLE IF EXISTS m")
    db.execute("CREATE TABLE o (k INTEGER PRIMARY KEY, v BLOB)")
    db.execute("CREATE TABLE m (k INTEGER PRIMARY KEY, v BLOB)")
    # findings whose original column is of this very table: their rows can be paired
    own = {n: x for n, x in enumerate(findings) if key and theirs is not None and x[1].table == theirs.name}
    # original rows holding a finding's shared items, by key: few (what was found)
    holding: dict[tuple[int, int], set[bytes]] = {}
    if key and theirs is not None:
        kidx = [[c.name for c in theirs.columns].index(c) for c in key]
        cidx = [[c.name for c in theirs.columns].index(c) for c in common]

        def on_original(block: bytes) -> None:
            assert theirs is not None
            cols = block_columns(block, theirs.encoding, len(theirs.columns), tuple(range(len(theirs.columns))),
                                 lower=False)
            rows = []
            for r, row in enumerate(zip(*cols, strict=True)):
                h = hash(b"\x1f".join(row[i] for i in kidx))
                rows.append((h, array("q", [_value(row[i]) for i in cidx]).tobytes()))
                for n, (_f, o, _s, shared) in own.items():
                    hit = shared.intersection(original_set(cols[o.index][r].lower(), o.mode))
                    if hit:
                        holding[(n, h)] = hit
            db.executemany("INSERT OR REPLACE INTO o VALUES (?, ?)", rows)

        original.read(theirs, sample, on_original)
    names = [c.name for c in mine.columns]
    mkidx = [names.index(c) for c in key]
    mcidx = [names.index(c) for c in common]
    for cols in quasi:
        for c in cols:
            if c not in names:
                raise ConfigError(f"--quasi {mine.name}:{','.join(cols)}: no column {c!r} in {mine.name}")
    qidx = [[names.index(c) for c in cols] for cols in quasi]
    classes: list[Counter[int]] = [Counter() for _ in quasi]
    same = [0 for _ in findings]

    def on_masked(block: bytes) -> None:
        cols = block_columns(block, mine.encoding, len(mine.columns), tuple(range(len(mine.columns))), lower=False)
        rows = []
        for r, row in enumerate(zip(*cols, strict=True)):
            h = hash(b"\x1f".join(row[i] for i in mkidx)) if key else 0
            if key:
                rows.append((h, array("q", [_value(row[i]) for i in mcidx]).tobytes()))
            for n, (finding, _o, s, shared) in enumerate(findings):
                hit = shared.intersection(exposed_items([cols[s.index][r].lower()], s.kind))
                if hit:
                    finding.rows = (finding.rows or 0) + 1
                    if n in own and not hit.isdisjoint(holding.get((n, h), ())):
                        same[n] += 1
            for q, idx in enumerate(qidx):
                classes[q][hash(b"\x1f".join(row[i] for i in idx))] += 1
        if rows:
            db.executemany("INSERT OR REPLACE INTO m VALUES (?, ?)", rows)

    masked.read(mine, sample, on_masked)
    for n, (finding, _o, _s, _h) in enumerate(findings):
        finding.same_row = same[n] if n in own else None
    if key:
        equal = [0 for _ in common]
        paired = [0 for _ in common]
        for a, b in db.execute("SELECT o.v, m.v FROM o JOIN m USING (k)"):
            for i, (x, y) in enumerate(zip(array("q", a), array("q", b), strict=True)):
                if x != _BLANK:  # a row without a value keeps nothing
                    paired[i] += 1
                    equal[i] += x == y
        report.equality.extend(ColumnEquality(f"{mine.name}.{c}", paired[i], equal[i]) for i, c in enumerate(common))
    for cols, counter in zip(quasi, classes, strict=True):
        sizes = list(counter.values())
        report.k_anonymity.append(KAnonymity(mine.name, cols, k, sum(sizes), len(sizes), min(sizes, default=0),
                                             sum(n for n in sizes if n < k)))
