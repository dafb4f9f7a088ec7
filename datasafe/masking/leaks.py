"""Leak audit: do original values of masked columns turn up anywhere in the masked output?

Masking rewrites the columns the rules name; a copy of their values elsewhere (a kept ``login``
equal to the masked ``email``, a ``tsvector`` built from a masked description, customers'
addresses inside a kept ``notes`` column, a copied log table) survives it. Every masking run
looks for them before the masked snapshot is committed (:meth:`LeakAudit.finish`).

**What the output holds.** The output columns that can carry originals are scanned, each
distinct cell once, and cut into significant items (:mod:`~datasafe.masking.leaks_items`),
kept with the columns they were seen in: the distinct values of the output, usually small.
Kept columns of masked tables are scanned where the table is masked, in the worker that masks
the block (from the original rows: their bytes are the output's); tables copied chunk for chunk
are scanned before masking starts, by worker processes when large. Masked columns whose rule
makes the whole value from the key (names, e-mail, phone, text, hash, ...) are not scanned:
whatever they hold is the generator's. Columns whose output is known only after masking (rules
that pass part of the input on: ``json``, ``regex``, ``redact``, ``template``; tables that lose
rows to a filter) are scanned in their masked form.

**What the originals were.** While a block is masked, every item of its original values goes
into the table's :class:`~datasafe.masking.fingerprints.Fingerprints` (a Bloom filter, in C);
nothing else of the originals is kept. Once every table is masked, the output's items are looked
up in the filters: most schemas give no candidate at all, and the run is done. A table with
candidates (real ones, or the filter's rare false positives) is read once more, and its
originals are counted exactly against the candidates only. Items common in their original column
(in at least :data:`COMMON_ROWS` rows and :data:`COMMON_SHARE` of them) identify no one and are
dropped.

**Findings** are located row by row (:func:`locate`): how many output rows hold them, and how
many of those hold their own row's original (a derived column), then judged (:func:`judge`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from datasafe.errors import IntegrityError
from datasafe.masking import fingerprints, parallel
from datasafe.masking.batch import BatchMasker, BatchResult
from datasafe.masking.errors import RulesError
from datasafe.masking.fingerprints import Fingerprints
from datasafe.masking.leaks_items import (
    PARTIAL_RULES,
    Blocks,
    Known,
    Original,
    Scanned,
    judge,
    locate,
    original_mode,
    scan_kind,
)
from datasafe.masking.leaks_ledger import Ledger, Rows, TableProbe
from datasafe.masking.leaks_report import LeakReport
from datasafe.masking.plan import MaskPlan, TablePlan
from datasafe.masking.types import column_kind
from datasafe.snapshot.manifest import TableEntry

if TYPE_CHECKING:
    from datasafe.masking.masker import TableMasker

log = logging.getLogger(__name__)

#: the copied tables' scan runs at this lower priority, on the CPU time masking leaves over (its
#: parent process reads and compresses while the workers wait, and the other way round)
BACKGROUND_NICE = 19


@dataclass
class AuditedResult(BatchResult):
    """A masked block and, taken in the same worker, the new items of its scanned columns: those
    read from the original rows (``exposed``) and those read from the masked rows (``late``)."""

    exposed: list[list[bytes]] | None = None
    late: list[list[bytes]] | None = None


class AuditedBatch(BatchMasker):
    """A :class:`BatchMasker` that also fingerprints each block's originals and scans its
    output columns, where it masks the block (in a worker process: only new items travel back)."""

    def __init__(self, masker: TableMasker, probe: TableProbe, into: Fingerprints | None, early: bool) -> None:
        super().__init__(masker.table, masker.codec, masker.state.overrides)
        self._probe = probe
        self._into = into
        self._early = early
        self._warming = False

    def warm_up(self, block: bytes) -> None:
        """As :meth:`BatchMasker.warm_up`, without auditing: what the audit would remember of the
        first row (cells already seen) would be inherited by the workers and the row skipped."""
        self._warming = True
        try:
            super().warm_up(block)
        finally:
            self._warming = False

    def mask(self, block: bytes) -> BatchResult:
        result = super().mask(block)
        if result.error is not None or self._warming:
            return result
        try:
            exposed, late = self._probe.audit(block, result.data, self._into, self._early)
        except Exception:  # the parent audits the block again, and reports what it meets
            return result
        return AuditedResult(result.data, result.rows, result.hashes, result.nulls, result.error, exposed=exposed,
                             late=late)


# -- masking runs ---------------------------------------------------------------------------------------
class LeakAudit:
    """The leak audit of one masking run (see :func:`datasafe.masking.masked_snapshot.mask`).

    Built from the plan before anything is written (:meth:`for_plan` checks ``accept_leaks``);
    :meth:`expose` makes the fingerprint filters and scans the tables that are copied; the
    pipeline feeds it every masked block (:meth:`batch`, :meth:`masked`); :meth:`finish` looks
    the output's items up in the filters, counts the candidates and judges, before the commit.
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
        #: per table with masked columns: the fingerprints of its originals (made by :meth:`expose`)
        self.fingerprints: dict[str, Fingerprints] = {}
        #: tables whose kept columns expose() scans, apart from the masking (copied tables)
        self._apart: set[str] = set()
        self._background: parallel.Background | None = None
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

    def expose(self, read: Callable[[TableEntry], Iterator[Rows]], workers: int) -> None:
        """Make the fingerprint filters (before the workers are forked: they share them) and scan
        the output columns of the tables that are not masked (their bytes are the snapshot's).

        With ``workers`` > 1 that scan runs in a process of its own beside the masking, at the
        lowest priority: masking leaves CPU time over (its parent reads and compresses while the
        workers wait, and the other way round). Otherwise it runs here and now. Masked tables are
        audited where they are masked, block by block, which reads them once.
        """
        started = time.monotonic()
        sizes = {name: Fingerprints.size_for(_expected_items(p)) for name, p in self.probes.items() if p.originals}
        scale = min(1.0, fingerprints.MAX_BYTES / max(1, sum(sizes.values())))
        for name, size in sizes.items():
            self.fingerprints[name] = Fingerprints(int(size * scale))
        masked = {t.name for t in self.plan.tables if t.action == "mask"}
        copied = [p for name, p in self.probes.items() if name not in masked and p.early and p.entry.chunks]
        self._apart.update(p.entry.name for p in copied)
        if workers > 1 and parallel.can_fork() and copied:
            self._background = parallel.Background("datasafe-leak-scan", functools.partial(_read_apart, copied, read),
                                                   nice=BACKGROUND_NICE)
        else:
            for probe in copied:
                try:
                    for block in read(probe.entry):
                        self.ledger.expose(probe.early, probe.expose(block))
                except IntegrityError as exc:
                    # a damaged chunk: copying the table reports it as it always does (and stops
                    # the run); should the run get as far as the verdict, it fails there
                    self._unread.setdefault(probe.entry.name, exc)
        self.ledger.seconds += time.monotonic() - started

    def close(self) -> None:
        """Stop the background scan and free the filters (a run that ends early)."""
        if self._background is not None:
            self._background.stop()
            self._background = None
        for filt in self.fingerprints.values():
            filt.close()

    def batch(self, masker: TableMasker) -> BatchMasker:
        """The block masker for ``masker``'s table: one that also audits each block."""
        name = masker.table.name
        probe = self.probes.get(name)
        if probe is None or (name in self._apart and not probe.late):
            return masker.batch()
        apart = name in self._apart
        return AuditedBatch(masker, probe, None if apart else self.fingerprints.get(name), not apart)

    def masked(self, table: TablePlan, block: bytes, result: BatchResult | bytes) -> None:
        """A block of a masked table and its masked rows (audited by :class:`AuditedBatch`, or here)."""
        probe = self.probes.get(table.name)
        if probe is None:
            return
        if isinstance(result, AuditedResult) and result.exposed is not None and result.late is not None:
            exposed, late = result.exposed, result.late
        else:
            started = time.perf_counter()
            output = result.data if isinstance(result, BatchResult) else result
            apart = table.name in self._apart
            exposed, late = probe.audit(block, output, None if apart else self.fingerprints.get(table.name),
                                        not apart)
            self.ledger.seconds += time.perf_counter() - started
        self.ledger.expose(probe.early, exposed)
        self.ledger.expose(probe.late, late)

    def finish(self, blocks: Blocks) -> LeakReport:
        """Look the output's items up in the fingerprints, count the candidates in the tables
        that may hold them, locate what was found, judge; the caller refuses to commit a failed audit."""
        started = time.monotonic()
        ledger = self.ledger
        by_id = {s.id: s for s in ledger.scanned}
        if self._background is not None:
            scanned, errors, seconds = self._background.result()
            self._background = None
            ledger.seconds += seconds
            for sid, found in scanned.items():
                ledger.expose([by_id[sid]], [found])
            for name, message in errors.items():
                self._unread.setdefault(name, IntegrityError(message))
        for exc in self._unread.values():
            raise exc
        items = list(ledger.where)
        candidates: set[bytes] = set()
        reread: list[str] = []
        for name, probe in self.probes.items():
            filt = self.fingerprints.get(name)
            if filt is None or not probe.entry.chunks:
                continue
            maybe = [items[i] for i in filt.find(items)]
            if not maybe:
                continue
            candidates.update(maybe)
            reread.append(name)
            known = Known(maybe)  # the originals of this table, counted against its candidates only
            for block in blocks.original(probe.entry):
                ledger.hits(probe, probe.test(block, None, known))
        found = ledger.findings(self.accepted)
        locate([f for f in found if f[0].accepted is None], blocks)  # accepted ones are not worth a read
        # a copied table is scanned as its snapshot has it: rows its filtered parents took away
        # along with them are not in the output
        found = [f for f in found if f[0].rows != 0]
        for finding, *_ in found:
            judge(finding)
        report = LeakReport(columns=len(ledger.originals), scanned=len(ledger.scanned), exposed=len(ledger.where),
                            findings=[f for f, *_ in found], seconds=ledger.seconds + time.monotonic() - started,
                            candidates=len(candidates), reread=reread,
                            filter_bytes=sum(f.size for f in self.fingerprints.values()),
                            false_positive_rate=max((f.false_positive_rate() for f in self.fingerprints.values()),
                                                    default=0.0))
        self.close()
        self.report = report
        for f in report.accepted:
            log.warning("leak audit: %s: accepted by the rules (%s)", f.summary(), f.accepted)
        log.info("leak audit: %d masked column(s) looked for in %d output column(s) (%d distinct items, %d "
                 "candidate(s), %d table(s) read again), %d finding(s), %d leak(s), %.2f s", report.columns,
                 report.scanned, report.exposed, len(candidates), len(reread), len(report.findings),
                 len(report.leaks), report.seconds)
        return report


def _read_apart(probes: list[TableProbe], read: Callable[[TableEntry], Iterator[Rows]]
                ) -> tuple[dict[int, list[bytes]], dict[str, str], float]:
    """The scan of the copied tables, in a process of its own: per scanned column id the distinct
    items of the kept columns; per table that could not be read, the error; the seconds it took."""
    started = time.monotonic()
    found: dict[int, set[bytes]] = {}
    errors: dict[str, str] = {}
    for probe in probes:
        try:
            for block in read(probe.entry):
                for s, items in zip(probe.early, probe.expose(block), strict=True):
                    found.setdefault(s.id, set()).update(items)
        except (IntegrityError, ValueError) as exc:
            errors[probe.entry.name] = f"table {probe.entry.name}: {exc}"
    return {sid: list(items) for sid, items in found.items()}, errors, time.monotonic() - started


def _expected_items(probe: TableProbe) -> int:
    """About how many items a table's originals give: one per value, two for numbers, and for
    free text and JSON one per few bytes of the row's share of the table."""
    entry = probe.entry
    per_cell = max(1, entry.raw_size // max(1, entry.rows) // max(1, len(entry.columns)))
    items = 0
    for o in probe.originals:
        items += {"value": 1, "digits": 2}.get(o.mode, 2 + per_cell // 4)
    return max(1, entry.rows) * items


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
