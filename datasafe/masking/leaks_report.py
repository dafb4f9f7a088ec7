"""What a leak audit found: per original column, where its values turned up, and the verdict.

A :class:`LeakReport` holds counts and column names only, never a value: it
goes into the masked manifest, the audit trail, log lines and ``--json`` output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datasafe.errors import Refused


@dataclass
class Finding:
    """Original values (or significant tokens of them) of one column, found in one output column.

    Attributes:
        original: the masked (looked-for) column, ``table.column`` of the original data.
        found_in: the output column that holds some of them, ``table.column`` of the masked data.
        values: how many distinct items (values, words, numbers, addresses) the two share.
        rows: output rows of ``found_in`` that hold at least one (None: not counted).
        same_row: of those, rows whose own original row holds it: a derived or copied column
            (None: not the same table, or the rows cannot be paired).
        identifying: of ``values``, how many identify on their own (e-mail addresses, long numbers).
        share: the shared whole values as a share of the distinct values of ``found_in`` (when
            all shared items are words of free text: the shared words, of its distinct words).
        words: of ``values``, how many are words of free text.
        accepted: the reason the rules give for accepting this leak, or None.
        same_column: ``datasafe leaks`` only: the column of the same name in the same table
            (generators drawing from the same vocabulary meet originals there by chance).
        leak: whether it counts as a leak (a few names or words shared by chance do not; see
            :func:`datasafe.masking.leaks.judge`).
    """

    original: str
    found_in: str
    values: int
    rows: int | None = None
    same_row: int | None = None
    accepted: str | None = None
    same_column: bool = False
    leak: bool = True
    identifying: int = 0
    share: float | None = None
    words: int = 0

    @property
    def fails(self) -> bool:
        """A leak the rules do not accept."""
        return self.leak and self.accepted is None

    def summary(self) -> str:
        """``public.users.email found in public.users.login (300 values, 300 rows, 300 in the same row)``."""
        parts = [f"{self.values} value{'s' if self.values != 1 else ''}"]
        if self.rows is not None:
            parts.append(f"{self.rows} row{'s' if self.rows != 1 else ''}")
        if self.same_row is not None:
            parts.append(f"{self.same_row} in the same row")
        return f"{self.original} found in {self.found_in} ({', '.join(parts)})"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"original": self.original, "found_in": self.found_in, "values": self.values,
                               "rows": self.rows, "same_row": self.same_row,
                               "where": _where(self.same_row, self.rows)}
        out.update(identifying=self.identifying, share=self.share, words=self.words)
        if self.accepted is not None:
            out["accepted"] = self.accepted
        if self.same_column:
            out["same_column"] = True
        if not self.leak:
            out["leak"] = False
        return out


def _where(same_row: int | None, rows: int | None) -> str:
    if same_row is None:
        return "any row"
    if rows is not None and same_row >= rows:
        return "same row"
    return "same row" if same_row else "other rows"


@dataclass
class ColumnEquality:
    """``datasafe leaks``: the share of paired rows whose value is the original one."""

    column: str
    rows: int
    equal: int

    @property
    def share(self) -> float:
        return self.equal / self.rows if self.rows else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"column": self.column, "rows": self.rows, "equal": self.equal, "share": round(self.share, 4)}


@dataclass
class KAnonymity:
    """``datasafe leaks --quasi``: equivalence classes of quasi-identifiers in the masked data."""

    table: str
    columns: list[str]
    k: int
    rows: int
    classes: int
    smallest: int
    rows_below_k: int

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "columns": self.columns, "k": self.k, "rows": self.rows,
                "classes": self.classes, "smallest_class": self.smallest, "rows_below_k": self.rows_below_k}


@dataclass
class LeakReport:
    """The result of a leak audit.

    Attributes:
        columns: original columns looked for.
        scanned: output columns scanned.
        exposed: distinct significant items seen in the scanned columns.
        findings: every original column found somewhere, leak or not, accepted or not.
        seconds: how long the audit took (its own work, as far as it can be told apart: summed
            over the worker processes, it may exceed the time the run took).
        candidates: exposed items the fingerprints of the originals may hold (masking runs).
        reread: tables whose originals were read again to count those candidates exactly.
        filter_bytes: memory of the fingerprint filters; ``false_positive_rate``: theirs, as
            full as they got (the largest of the tables').
    """

    columns: int = 0
    scanned: int = 0
    exposed: int = 0
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    equality: list[ColumnEquality] = field(default_factory=list)
    k_anonymity: list[KAnonymity] = field(default_factory=list)
    original: str | None = None
    masked: str | None = None
    candidates: int | None = None
    reread: list[str] = field(default_factory=list)
    filter_bytes: int = 0
    false_positive_rate: float | None = None

    @property
    def leaks(self) -> list[Finding]:
        """Findings that fail the audit: leaks the rules do not accept."""
        return [f for f in self.findings if f.fails]

    @property
    def accepted(self) -> list[Finding]:
        return [f for f in self.findings if f.leak and f.accepted is not None]

    @property
    def passed(self) -> bool:
        return not self.leaks

    def record(self) -> dict[str, Any]:
        """What the masked manifest's ``masking.leak_audit`` (and the audit trail) keep."""
        return {"passed": self.passed, "columns": self.columns, "scanned": self.scanned,
                "found": [f.as_dict() for f in self.accepted]}

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"passed": self.passed, "columns": self.columns, "scanned": self.scanned,
                               "exposed": self.exposed, "seconds": round(self.seconds, 3),
                               "leaks": [f.as_dict() for f in self.leaks],
                               "accepted": [f.as_dict() for f in self.accepted],
                               "coincidences": [f.as_dict() for f in self.findings if not f.leak]}
        if self.original is not None:
            out["original"] = self.original
        if self.masked is not None:
            out["masked"] = self.masked
        if self.equality:
            out["equality"] = [e.as_dict() for e in self.equality]
        if self.k_anonymity:
            out["k_anonymity"] = [k.as_dict() for k in self.k_anonymity]
        if self.candidates is not None:
            out["fingerprints"] = {"candidates": self.candidates, "reread": self.reread,
                                   "filter_bytes": self.filter_bytes,
                                   "false_positive_rate": self.false_positive_rate}
        return out

    def message(self) -> str:
        """One line naming the first leak and counting the rest."""
        leaks = self.leaks
        if not leaks:
            return "leak audit passed"
        more = f" and {len(leaks) - 1} more leak(s)" if len(leaks) > 1 else ""
        return f"leak audit: values of {leaks[0].summary()}{more}"


class LeakFound(Refused):
    """Original values of masked columns were found in the masked output (exit code 8)."""

    def __init__(self, report: LeakReport, *, tail: str = "; the masked snapshot was not stored",
                 hint: str = "fix the rules (mask or drop the column that carries them), or accept a leak with "
                             "accept_leaks and a reason; see docs/masking.md, Leak audit") -> None:
        super().__init__(report.message() + tail, hint=hint)
        self.report = report
