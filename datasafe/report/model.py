"""The evidence report as data: what ``datasafe report --format json`` prints and the HTML page shows.

Every field is something read from the storage (manifests, verification records, the audit
trail) or the configuration, or a judgement derived from those by the rules in
:mod:`datasafe.report.collect`. The page and the JSON are two renderings of this one model, so
an auditor who checks the numbers of one finds the same in the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["green", "amber", "red"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SnapshotPoint(_Model):
    """One stored snapshot, as the plots and the per-source facts use it."""

    snapshot_id: str
    started_at: datetime
    finished_at: datetime
    #: finished_at - started_at: the time the backup took to read the database
    backup_seconds: float
    stored_bytes: int
    raw_bytes: int
    rows: int
    tables: int
    tags: list[str] = Field(default_factory=list)
    encrypted: bool = False
    masked: bool = False
    #: the manifest carries an HMAC under the policy key (``provenance``)
    signed: bool = False
    #: the latest verification record's verdict: "ok", "failed" or None (never verified)
    verified: str | None = None


class Verification(_Model):
    """One verification record of a stored snapshot, with what that snapshot holds."""

    snapshot_id: str
    time: datetime
    mode: str
    ok: bool
    chunks: int = 0
    problems: list[str] = Field(default_factory=list)
    sample_percent: float | None = None
    host: str = ""
    #: how long the check took, when the record says so
    seconds: float | None = None
    #: rows and tables of the snapshot the check covered (its manifest's counts)
    rows: int = 0
    tables: int = 0


class TableSeries(_Model):
    """Rows of one table over the snapshots of the period: ``(snapshot started_at, rows)``."""

    name: str
    points: list[tuple[datetime, int]] = Field(default_factory=list)


class Retention(_Model):
    """The retention policy against what is stored."""

    #: the policy in effect (``keep_daily=14 min_keep=3``), None when the source has none
    policy: str | None = None
    stored: int = 0
    #: snapshots the policy keeps (rules and safety rails)
    kept: int = 0
    #: stored snapshots the policy would remove: the next prune removes them
    beyond_policy: int = 0
    #: snapshots the audit trail records as backed up that are no longer stored (pruned or forgotten)
    removed: int = 0
    #: why the policy could not be applied
    problem: str | None = None


class Protection(_Model):
    """Encryption, authentication and Object Lock of the stored snapshots."""

    snapshots: int = 0
    encrypted: int = 0
    #: manifests authenticated with the policy key (``provenance``)
    signed: int = 0
    newest_encrypted: bool = False
    #: whether datasafe.yml has new snapshots encrypted
    encryption_configured: bool = False
    #: ``governance, 30 days`` when Object Lock applies to this storage, else None
    object_lock: str | None = None
    #: snapshots whose lock period has not ended
    locked: int = 0


class SourceReport(_Model):
    """Everything the report says about one source."""

    name: str
    status: Status
    #: why, in words: the first reason decides the status, the others are there too
    reasons: list[str] = Field(default_factory=list)
    configured: bool = False
    #: every snapshot of the source is a masked copy (``datasafe mask``)
    masked_copy: bool = False
    engine: str | None = None
    database: str | None = None
    snapshots: int = 0
    damaged: int = 0
    incomplete: int = 0
    newest: SnapshotPoint | None = None
    #: age of the newest snapshot that passed its latest verification (the one ``check`` judges)
    newest_verified: str | None = None
    verified_age_seconds: float | None = None
    last_verify: Verification | None = None
    last_restore_test: Verification | None = None
    #: failed verifications within the period, newest first
    failures: list[Verification] = Field(default_factory=list)
    last_backup_failure: dict[str, Any] | None = None
    retention: Retention = Field(default_factory=Retention)
    protection: Protection = Field(default_factory=Protection)
    #: the snapshots of the period, oldest first (the plots' points)
    history: list[SnapshotPoint] = Field(default_factory=list)
    #: restore tests (``verify --deep``) of the period, oldest first
    restore_tests: list[Verification] = Field(default_factory=list)
    #: rows of the largest tables over the period
    tables: list[TableSeries] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class MaskEvent(_Model):
    """One ``datasafe mask`` or ``datasafe refresh`` from the audit trail."""

    time: str
    operation: str
    outcome: str
    source: str | None = None
    from_snapshot: str | None = None
    masked_snapshot: str | None = None
    environment: str | None = None
    target: str | None = None
    rules_file: str | None = None
    rules_sha256: str | None = None
    strict: bool | None = None
    #: "passed", "failed", "skipped" or "not recorded"
    leak_audit: str = "not recorded"
    leak_detail: str | None = None
    error: str | None = None
    user: str | None = None
    host: str | None = None


class PolicyEvent(_Model):
    """One decision of the environment policy from the audit trail."""

    time: str
    operation: str
    #: "allowed", "refused" or "overridden"
    verdict: str
    #: the operation's outcome (a decision that allowed a restore that then failed says so)
    outcome: str
    snapshot: str | None = None
    source: str | None = None
    target: str | None = None
    environment: str | None = None
    target_class: str | None = None
    data_class: str | None = None
    confirmed: str | None = None
    reason: str | None = None
    user: str | None = None
    host: str | None = None


class AuditSummary(_Model):
    """What ``datasafe audit --verify`` says about the trail the report was built from."""

    records: int = 0
    ok: bool = True
    #: HMACs were checked with the policy key (False: only the chain)
    hmac_checked: bool = False
    head: str | None = None
    head_sha256: str | None = None
    problems: list[str] = Field(default_factory=list)


class Report(_Model):
    """The whole report."""

    generated_at: datetime
    since: datetime
    period: str
    storage: str
    datasafe_version: str
    max_age_seconds: float
    max_age: str
    restore_test_age: str
    sources: list[SourceReport] = Field(default_factory=list)
    masks: list[MaskEvent] = Field(default_factory=list)
    policy: list[PolicyEvent] = Field(default_factory=list)
    audit: AuditSummary = Field(default_factory=AuditSummary)
    #: snapshots whose manifests were read
    manifests_read: int = 0

    def counts(self) -> dict[str, int]:
        """Sources per status: ``{"green": 3, "amber": 1, "red": 0}``."""
        out = {"green": 0, "amber": 0, "red": 0}
        for s in self.sources:
            out[s.status] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
