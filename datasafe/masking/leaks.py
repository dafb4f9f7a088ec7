"""Leak audit: do original values of masked columns turn up anywhere in the masked output?

Masking rewrites the columns the rules name; a copy of their values elsewhere (a kept ``login``
equal to the masked ``email``, a ``tsvector`` built from a masked description, customers'
addresses inside a kept ``notes`` column, a copied log table) survives it. Every masking run
looks for them before the masked snapshot is committed (:meth:`LeakAudit.finish`).

**Exposure first.** The output columns that can carry originals are scanned before masking
starts: kept columns and copied tables, read from the snapshot (their bytes are the output's),
a block at a time in the masking worker processes, each distinct cell once. Masked columns whose
rule makes the whole value from the key (names, e-mail, phone, text, hash, ...) are not
scanned: whatever they hold is the generator's. Columns whose output is known only after
masking (rules that pass part of the input on: ``json``, ``regex``, ``redact``, ``template``;
tables that lose rows to a filter) are scanned as they are masked. What the scan keeps is the
set of significant items (:mod:`~datasafe.masking.leaks_items`) with the columns they were seen
in: the distinct values of the output, usually small.

**Originals streamed through it.** While masking, each worker cuts the original values of the
masked columns of its block into items and intersects them with that set, in C: nothing of the
originals is kept but what is found (the items that the output holds anyway), with how often.
Items seen only after masking (see above) are checked afterwards by one more read of the
masked columns, when there are any. Items common in their original column (in at least
:data:`COMMON_ROWS` rows and :data:`COMMON_SHARE` of them) identify no one and are dropped.

**Findings** are located row by row (:func:`locate`): how many output rows hold them, and how
many of those hold their own row's original (a derived column), then judged (:func:`judge`).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from datasafe.errors import IntegrityError
from datasafe.masking import parallel, stages
from datasafe.masking.batch import BatchMasker, BatchResult
from datasafe.masking.errors import RulesError
from datasafe.masking.leaks_items import (
    COMMON_ROWS,
    COMMON_SHARE,
    PARTIAL_RULES,
    SEEN_BYTES,
    WORD,
    Blocks,
    Known,
    Original,
    Scanned,
    block_columns,
    exposed_items,
    identifying,
    judge,
    locate,
    original_items,
    original_mode,
    scan_kind,
)
from datasafe.masking.leaks_report import Finding, LeakReport
from datasafe.masking.plan import MaskPlan, TablePlan
from datasafe.masking.types import column_kind
from datasafe.snapshot.manifest import TableEntry

if TYPE_CHECKING:
    from datasafe.masking.masker import TableMasker

log = logging.getLogger(__name__)

#: tables at least this big (raw bytes) are scanned by worker processes, as masking does
PARALLEL_MIN_BYTES = 16 << 20


@dataclass
class Hits:
    """What one block contributes: its rows, per original column the items found with how often
    they occur, per output-read scanned column the items seen there."""

    rows: int
    found: list[dict[bytes, int]]
    exposed: list[list[bytes]]
    seconds: float = 0.0


class TableProbe:
    """Cuts one table's blocks into items: scanned columns (:meth:`expose`) and originals (:meth:`test`)."""

    def __init__(self, entry: TableEntry, originals: list[Original], scanned: list[Scanned]) -> None:
        self.entry = entry
        self.originals = originals
        self.early = [s for s in scanned if not s.output]
        self.late = [s for s in scanned if s.output]
        self.ncols = len(entry.columns)
        # cells already scanned: most columns repeat a few values (a status, a user agent, a JSON
        # template), whose items are known already; a cell met again costs one set lookup
        self._seen: dict[int, set[bytes]] = {s.id: set() for s in scanned}
        self._seen_bytes = 0

    def _new(self, s: Scanned, cells: list[bytes]) -> set[bytes]:
        seen = self._seen[s.id]
        if seen and seen.issuperset(cells):
            return set()
        new = set(cells)
        if seen:
            new -= seen
        if new and self._seen_bytes < SEEN_BYTES:
            seen |= new
            self._seen_bytes += sum(map(len, new))
        return new

    def _exposed(self, block: bytes, scanned: list[Scanned]) -> list[list[bytes]]:
        # cells as stored (not lower-cased: most repeat, and only new ones are worth the work)
        wanted = tuple(sorted({s.index for s in scanned}))
        cols = dict(zip(wanted, block_columns(block, self.entry.encoding, self.ncols, wanted, lower=False),
                        strict=True))
        return [exposed_items(map(bytes.lower, self._new(s, cols[s.index])), s.kind) for s in scanned]

    def expose(self, block: bytes) -> list[list[bytes]]:
        """The new items of the scanned columns read from the original rows, per column."""
        return self._exposed(block, self.early)

    def test(self, block: bytes, output: bytes | None, known: Known) -> Hits:
        """The items of ``block``'s originals that ``known`` holds; the items of ``output``'s
        late-scanned columns (``output``: the masked rows)."""
        started = time.perf_counter()
        found: list[dict[bytes, int]] = []
        rows = 0
        if self.originals:
            wanted = tuple(sorted({o.index for o in self.originals}))
            cols = dict(zip(wanted, block_columns(block, self.entry.encoding, self.ncols, wanted), strict=True))
            rows = len(cols[wanted[0]])
            for o in self.originals:
                found.append(known.hits(*original_items(cols[o.index], o.mode)) if known else {})
        exposed = self._exposed(output, self.late) if self.late and output else [[] for _ in self.late]
        return Hits(rows, found, exposed, time.perf_counter() - started)


@dataclass
class AuditedResult(BatchResult):
    """A masked block and, taken in the same worker, what the audit needs of it."""

    hits: Hits | None = None
    exposed: list[list[bytes]] | None = None


class AuditedBatch(BatchMasker):
    """A :class:`BatchMasker` that also tests each block's originals, where it masks the block
    (in a worker process: only what is found travels back)."""

    def __init__(self, masker: TableMasker, probe: TableProbe, known: Known) -> None:
        super().__init__(masker.table, masker.codec, masker.state.overrides)
        self._probe = probe
        self._known = known

    def mask(self, block: bytes) -> BatchResult:
        result = super().mask(block)
        hits = None
        if result.error is None:
            try:
                hits = self._probe.test(block, result.data, self._known)
            except Exception:  # the parent tests the block again, and reports what it meets
                hits = None
        return AuditedResult(result.data, result.rows, result.hashes, result.nulls, result.error, hits=hits)


class _ExposingBatch(BatchMasker):
    """Scans blocks in :func:`parallel.masked_blocks`' worker processes (which call ``mask``
    only): nothing is masked, the answer is the block's new exposed items."""

    def __init__(self, probe: TableProbe) -> None:  # no transformers to build: nothing is masked
        self._probe = probe

    def mask(self, block: bytes) -> BatchResult:
        try:
            return AuditedResult(b"", block.count(b"\n"), exposed=self._probe.expose(block))
        except Exception as exc:  # a malformed row: said in the parent, which stops the scan
            return AuditedResult(b"", 0, error=exc)


# -- what was seen, what was found ----------------------------------------------------------------------
class Ledger:
    """Items seen in the scanned columns (with the columns they were seen in) and items found
    among the originals (with how often). Fed by one thread at a time."""

    def __init__(self, originals: list[Original], scanned: list[Scanned]) -> None:
        self.originals = originals
        self.scanned = scanned
        self.where: dict[bytes, int] = {}  # item -> bit mask of scanned column ids
        self.found: list[Counter[bytes]] = [Counter() for _ in originals]
        self.rows = [0 for _ in originals]
        self.seconds = 0.0

    def expose(self, scanned: list[Scanned], items: list[list[bytes]]) -> list[bytes]:
        """Record items of scanned columns; returns those the ledger had not seen anywhere."""
        where, new = self.where, []
        for s, column in zip(scanned, items, strict=True):
            bit = 1 << s.id
            for item in column:
                old = where.get(item)
                if old is None:
                    new.append(item)
                    where[item] = bit
                elif not old & bit:
                    where[item] = old | bit
        return new

    def hits(self, probe: TableProbe, hits: Hits, *, count_rows: bool = True) -> list[bytes]:
        """Record a block's :class:`Hits`; returns the late items new to the ledger."""
        self.seconds += hits.seconds
        for o, found in zip(probe.originals, hits.found, strict=True):
            if count_rows:
                self.rows[o.id] += hits.rows
            if found:
                self.found[o.id].update(found)
        return self.expose(probe.late, hits.exposed)

    def findings(self, accepted: Mapping[str, str], *, own_column: bool = False
                 ) -> list[tuple[Finding, Original, Scanned, set[bytes]]]:
        """Each (original column, scanned column) sharing items not common in the original
        column; ``own_column``: a column's own output counts too."""
        # distinct items per scanned column, words and other items apart (a column of single words
        # has each as a value and as a word)
        distinct: Counter[tuple[int, bool]] = Counter()
        for item, mask in self.where.items():
            word = item.startswith(WORD)
            distinct.update((i, word) for i in range(mask.bit_length()) if mask >> i & 1)
        out = []
        for o in self.originals:
            limit = max(COMMON_ROWS, COMMON_SHARE * self.rows[o.id])
            rare = [item for item, n in self.found[o.id].items() if n < limit]
            for s in self.scanned:
                if not own_column and (s.table, s.index) == (o.table, o.index):
                    continue  # a rule that keeps part of its input (json paths, regex) keeps it on purpose
                bit = 1 << s.id
                shared = {item for item in rare if self.where[item] & bit}
                if shared:
                    words = sum(1 for item in shared if item.startswith(WORD))
                    share = max(words / max(1, distinct[(s.id, True)]),
                                (len(shared) - words) / max(1, distinct[(s.id, False)]))
                    finding = Finding(o.name, s.name, len(shared), accepted=accepted.get(o.name),
                                      identifying=sum(map(identifying, shared)), share=round(share, 4))
                    out.append((finding, o, s, shared))
        return out


# -- masking runs ---------------------------------------------------------------------------------------
class LeakAudit:
    """The leak audit of one masking run (see :func:`datasafe.masking.api.mask`).

    Built from the plan before anything is written (:meth:`for_plan` checks ``accept_leaks``);
    :meth:`expose` scans the output columns known before masking; the pipeline feeds it every
    masked block (:meth:`batch`, :meth:`masked`); :meth:`finish` judges, before the commit.
    """

    def __init__(self, plan: MaskPlan, ledger: Ledger, accepted: dict[str, str]) -> None:
        self.plan = plan
        self.ledger = ledger
        self.accepted = accepted
        self.probes: dict[str, TableProbe] = {}
        for t in plan.tables:
            originals = [o for o in ledger.originals if o.table == t.name]
            scanned = [s for s in ledger.scanned if s.table == t.name]
            if originals or scanned:
                self.probes[t.name] = TableProbe(t.entry, originals, scanned)
        self.known = Known()
        self._late: set[bytes] = set()  # seen only while masking: not yet looked for in earlier blocks
        self._unread: dict[str, IntegrityError] = {}
        #: the result, once :meth:`finish` ran
        self.report: LeakReport | None = None

    @classmethod
    def for_plan(cls, plan: MaskPlan) -> LeakAudit:
        """The columns to look for and to scan; raises RulesError for a bad ``accept_leaks``."""
        originals: list[Original] = []
        candidates: list[tuple[TablePlan, int, str, bool]] = []
        accepted: dict[str, str] = {}
        lossy = _may_lose_rows(plan)
        for t in plan.tables:
            if t.action in ("truncate", "exclude"):
                continue
            masked = {m.index: m for m in t.masked}
            for i, col in enumerate(t.entry.columns):
                m = masked.get(i)
                if m is not None and m.inherited_from is None:  # an inherited rule: its parent column covers it
                    mode = original_mode(col.type, m.transformer.name)
                    if mode is not None:
                        originals.append(Original(len(originals), t.name, col.name, i, mode))
                kind = scan_kind(col.type)
                if kind is not None and (m is None or m.transformer.name in PARTIAL_RULES):
                    # read from the output: a rule's output, or a masked table that may lose rows (a
                    # copied table is read from the snapshot: its output is its rows, or fewer)
                    candidates.append((t, i, kind, m is not None or (t.action == "mask" and t.name in lossy)))
            accepted.update(_accepted(plan, t, {o.column for o in originals if o.table == t.name}))
        entries = {t.name: t.entry for t in plan.tables}
        kinds = {column_kind(entries[o.table].columns[o.index].type) for o in originals}
        scanned: list[Scanned] = []
        for t, i, kind, output in candidates:
            if kind == "typed" and column_kind(t.entry.columns[i].type) not in kinds:
                continue  # integers, dates, ... only where a masked column has the kind
            scanned.append(Scanned(len(scanned), t.name, t.entry.columns[i].name, i, kind, output))
        return cls(plan, Ledger(originals, scanned), accepted)

    def expose(self, read: Callable[[TableEntry], Iterator[bytes]], workers: int) -> None:
        """Scan the output columns whose bytes are the snapshot's (kept columns, copied tables),
        large tables in ``workers`` processes; before masking, which looks for originals in them."""
        started = time.monotonic()
        for name, probe in self.probes.items():
            if not probe.early or not probe.entry.chunks:
                continue
            try:
                self._expose(probe, read, workers)
            except IntegrityError as exc:
                # a damaged chunk: masking or copying the table reports it as it always does (and
                # stops the run); should the run get as far as the verdict, it fails there
                self._unread.setdefault(name, exc)
            log.debug("leak audit: %s scanned", name)
        self.known = Known(self.ledger.where)
        self.ledger.seconds += time.monotonic() - started

    def _expose(self, probe: TableProbe, read: Callable[[TableEntry], Iterator[bytes]], workers: int) -> None:
        entry = probe.entry
        if workers > 1 and parallel.can_fork() and entry.raw_size >= PARALLEL_MIN_BYTES:
            for _block, result in parallel.masked_blocks(_ExposingBatch(probe), stages.prefetched(read(entry)),
                                                         workers):
                if result.error is not None:
                    raise IntegrityError(f"table {entry.name}: {result.error}")
                assert isinstance(result, AuditedResult) and result.exposed is not None
                self.ledger.expose(probe.early, result.exposed)
        else:
            for block in read(entry):
                self.ledger.expose(probe.early, probe.expose(block))

    def batch(self, masker: TableMasker) -> BatchMasker:
        """The block masker for ``masker``'s table: one that also tests its originals."""
        probe = self.probes.get(masker.table.name)
        return masker.batch() if probe is None else AuditedBatch(masker, probe, self.known)

    def masked(self, table: TablePlan, block: bytes, result: BatchResult | bytes) -> None:
        """A block of a masked table and its masked rows (tested by :class:`AuditedBatch`, or here)."""
        probe = self.probes.get(table.name)
        if probe is None:
            return
        if isinstance(result, AuditedResult) and result.hits is not None:
            hits = result.hits
        else:
            hits = probe.test(block, result.data if isinstance(result, BatchResult) else result, self.known)
        self._late.update(self.ledger.hits(probe, hits))

    def finish(self, blocks: Blocks) -> LeakReport:
        """Look for the items seen only while masking, locate what was found, judge; the caller
        refuses to commit a failed audit."""
        started = time.monotonic()
        for exc in self._unread.values():
            raise exc
        ledger = self.ledger
        late = Known(self._late)
        if late:  # one more read of the masked columns, for what they were not tested against
            for probe in self.probes.values():
                if probe.originals and probe.entry.chunks:
                    for block in blocks.original(probe.entry):
                        ledger.hits(probe, probe.test(block, None, late), count_rows=False)
        found = ledger.findings(self.accepted)
        locate([f for f in found if f[0].accepted is None], blocks)  # accepted ones are not worth a read
        # a copied table is scanned as its snapshot has it: rows its filtered parents took away
        # along with them are not in the output
        found = [f for f in found if f[0].rows != 0]
        for finding, *_ in found:
            judge(finding)
        report = LeakReport(columns=len(ledger.originals), scanned=len(ledger.scanned), exposed=len(ledger.where),
                            findings=[f for f, *_ in found], seconds=ledger.seconds + time.monotonic() - started)
        self.report = report
        for f in report.accepted:
            log.warning("leak audit: %s: accepted by the rules (%s)", f.summary(), f.accepted)
        log.info("leak audit: %d masked column(s) looked for in %d output column(s) (%d distinct items), "
                 "%d finding(s), %d leak(s), %.2f s", report.columns, report.scanned, report.exposed,
                 len(report.findings), len(report.leaks), report.seconds)
        return report


def _may_lose_rows(plan: MaskPlan) -> set[str]:
    """Tables whose output may lack rows of the snapshot: a ``where`` filter, or a parent that
    is filtered, truncated or excluded (children follow their parents)."""
    lossy = {t.name for t in plan.tables if t.where is not None or t.action in ("truncate", "exclude")}
    changed = True
    while changed:
        changed = False
        for t in plan.tables:
            if t.name not in lossy and any(parent in lossy for _cols, parent, _ref in t.parents):
                lossy.add(t.name)
                changed = True
    return lossy


def _accepted(plan: MaskPlan, t: TablePlan, originals: set[str]) -> dict[str, str]:
    rule = plan.rules.rule_for(t.name, t.entry.table)
    accepted: Mapping[str, str] = rule.accept_leaks if rule is not None else {}
    names = {c.name for c in t.entry.columns}
    out = {}
    for column, reason in accepted.items():
        if column not in names:
            raise RulesError(f"{plan.rules.path}: tables.{t.name}.accept_leaks: no column {column!r} in {t.name}")
        if column not in originals:
            raise RulesError(f"{plan.rules.path}: tables.{t.name}.accept_leaks: {t.name}.{column} is not masked by "
                             "a rule of its own, so no leak of it is audited")
        out[f"{t.name}.{column}"] = reason
    return out
