"""``list``, ``show``, ``diff`` and ``tag``: reading the snapshots of a repository, and their tags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datasafe.commands.repository import open_repository
from datasafe.commands.settings import apply_object_lock, lock_settings
from datasafe.config import LoadedConfig
from datasafe.diff.snapshots import SnapshotDiff
from datasafe.diff.snapshots import diff as compare
from datasafe.ops.tagging import TagChange, tag_job, tag_plan
from datasafe.snapshot import provenance
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository, SnapshotInfo
from datasafe.snapshot.verification import VerificationRecord
from datasafe.snapshot.verification import latest as latest_check


def manifest_summary(m: Manifest) -> dict[str, Any]:
    """A snapshot in a few fields (what ``backup --json`` and ``list --json`` print)."""
    return {
        "snapshot": m.snapshot_id, "source": m.source, "engine": m.engine, "database": m.database,
        "finished_at": m.finished_at.isoformat(), "tables": m.table_count, "rows": m.rows,
        "raw_bytes": m.raw_size, "stored_bytes": m.stored_size, "tags": m.tags,
    }


def verified_summary(rec: VerificationRecord | None) -> dict[str, Any] | None:
    """A snapshot's latest verification in a few fields (None: never verified)."""
    if rec is None:
        return None
    return {"ok": rec.ok, "time": rec.time.isoformat(), "mode": rec.mode, "problems": rec.problems}


@dataclass
class SnapshotList:
    """The snapshots of a storage, oldest first, each with its latest verification."""

    location: str
    snapshots: list[SnapshotInfo]
    checks: dict[tuple[str, str], VerificationRecord | None] = field(default_factory=dict)
    #: False only for a local storage folder that does not exist (yet)
    exists: bool = True

    def check_of(self, info: SnapshotInfo) -> VerificationRecord | None:
        return self.checks.get((info.source, info.snapshot_id))

    def as_list(self) -> list[dict[str, Any]]:
        return [
            {**manifest_summary(i.manifest), "complete": True, "verified": verified_summary(self.check_of(i))}
            if i.manifest else
            {"snapshot": i.snapshot_id, "source": i.source, "complete": False, "problem": i.problem}
            for i in self.snapshots
        ]


def local_storage_exists(repo: Repository) -> bool:
    """False only for a local storage folder that does not exist (S3: True, its bucket is checked on use)."""
    return repo.storage.scheme != "file" or repo.storage.exists("")


def list_snapshots(config: LoadedConfig, source: str | None = None, *, include_incomplete: bool = False,
                   missing_ok: bool = False, repo: Repository | None = None) -> SnapshotList:
    """Complete snapshots, oldest first (incomplete ones too when asked), with their latest verification.

    A storage location that does not exist is a :class:`~datasafe.errors.StorageError`; with
    ``missing_ok``, a local folder that does not exist yet (no backup has been stored on this
    machine) holds no snapshots instead."""
    repo = repo or open_repository(None, config)
    if missing_ok and not local_storage_exists(repo):
        return SnapshotList(repo.storage.url, [], exists=False)
    infos = repo.list(source, include_incomplete=include_incomplete)
    checks = {(i.source, i.snapshot_id): latest_check(repo.storage, i.source, i.snapshot_id)
              for i in infos if i.manifest}
    return SnapshotList(repo.storage.url, infos, checks)


@dataclass
class ShownSnapshot:
    """A snapshot's manifest and what its provenance says."""

    manifest: Manifest
    #: the provenance in words, or ``FAILS (...)`` when its signature does not verify
    provenance: str


def show(config: LoadedConfig, ref: str, source: str | None = None, *, repo: Repository | None = None
         ) -> ShownSnapshot:
    """The manifest of a snapshot given by id, ``latest``, tag or ``SOURCE@TIME``.

    Raises:
        IntegrityError: the manifest is signed with this host's policy key and was edited since (a
            forged tag, time or origin), as for any other damage to it.
    """
    repo = repo or open_repository(None, config)
    m = repo.resolve(ref, source)
    status = provenance.status(m, repo.policy_key)
    return ShownSnapshot(m, provenance.describe(status, m))


def diff(config: LoadedConfig, ref_a: str, ref_b: str, source: str | None = None, *,
         repo: Repository | None = None) -> SnapshotDiff:
    """Compare snapshot ``ref_a`` with ``ref_b``: per table, rows, bytes, content and schema (nothing restored)."""
    return compare(repo or open_repository(None, config), ref_a, ref_b, source)


def tag(config: LoadedConfig, ref: str, *, add: list[str] | None = None, remove: list[str] | None = None,
        source: str | None = None, wait: str | None = None, dry_run: bool = False,
        repo: Repository | None = None) -> TagChange:
    """Add or remove tags of a snapshot after it was taken, holding its source's lease (see
    :mod:`datasafe.ops.tagging`)."""
    repo = repo or open_repository(None, config)
    plan = tag_plan(repo, ref, add=list(add or []), remove=list(remove or []), source=source)
    if not dry_run:
        apply_object_lock(config, repo.storage, plan.source)
    return tag_job(repo, plan, dry_run=dry_run, lock=lock_settings(config, wait))

