"""What the soak runner checks against: the retention policy worked out on its own, and leftovers.

Kept apart from ``scripts/soak.py`` so that the expectation is computed by code that shares
nothing with datasafe's retention module: if both agreed only because they were the same code,
the soak would prove nothing. The rules are restic's, as docs/operations.md states them: the
newest snapshot of each of the last ``n`` days, ISO weeks and months that have snapshots, the
``n`` newest for ``keep_last``, then the rails (the newest verified snapshot, ``min_keep``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

#: marks in the names of what datasafe creates for a while and must remove again: the scratch
#: database of ``verify --deep``, a refresh's new and previous copies, a restore's staging database
SCRATCH_PREFIX = "datasafe_verify_"
TEMP_DB_MARKS = ("__ds_new_", "__ds_old_", "__datasafe_restore_")
SQLITE_TEMP_MARKS = (".ds-new-", ".ds-old-", ".datasafe-restore-")
#: what an unfinished restore leaves in its target (docs/reliability.md)
PG_RESTORE_COMMENT = "datasafe restore in progress"
MYSQL_RESTORE_TABLE = "_datasafe_restore"
LOCAL_TMP_MARK = ".tmp-"
IN_PROGRESS = ".in-progress"


@dataclass(frozen=True)
class Policy:
    """The rules the soak configures (0 = unset), and the ``min_keep`` rail (datasafe's default 1)."""

    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    min_keep: int = 1

    def yaml(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if v and k != "min_keep"}

    def options(self) -> list[str]:
        return [arg for k, v in self.yaml().items() for arg in (f"--{k.replace('_', '-')}", str(v))]


_PERIODS: tuple[tuple[str, Callable[[datetime], Hashable]], ...] = (
    ("keep_daily", lambda t: t.date()),
    ("keep_weekly", lambda t: t.isocalendar()[:2]),
    ("keep_monthly", lambda t: (t.year, t.month)),
)


def expected_keep(snapshots: dict[str, datetime], policy: Policy, verified: Iterable[str] = ()) -> set[str]:
    """The ids ``policy`` keeps among ``snapshots`` (id -> time taken, UTC)."""
    newest_first = sorted(snapshots, key=lambda s: (snapshots[s], s), reverse=True)
    keep: set[str] = set(newest_first[: policy.keep_last] if policy.keep_last > 0 else ())
    for name, period in _PERIODS:
        wanted = getattr(policy, name)
        seen: list[Hashable] = []
        for sid in newest_first:
            key = period(snapshots[sid])
            if key in seen:
                continue  # an older snapshot of a period already represented
            if len(seen) == wanted:
                break
            seen.append(key)
            keep.add(sid)
    ok = set(verified)
    newest_verified = next((s for s in newest_first if s in ok), None)
    if newest_verified is not None:
        keep.add(newest_verified)
    for sid in newest_first:
        if len(keep) >= policy.min_keep:
            break
        keep.add(sid)
    return keep


@dataclass
class History:
    """The snapshots of one source that should exist: added by backups, removed by each prune."""

    policy: Policy
    snapshots: dict[str, datetime] = field(default_factory=dict)

    def add(self, sid: str, taken: datetime) -> None:
        self.snapshots[sid] = taken

    def prune(self) -> None:
        # every snapshot in the history passed its backup's read-back: all count as verified
        keep = expected_keep(self.snapshots, self.policy, self.snapshots)
        self.snapshots = {s: t for s, t in self.snapshots.items() if s in keep}

    def compare(self, actual: Iterable[str]) -> dict[str, Any]:
        have, want = set(actual), set(self.snapshots)
        return {"kept": len(have), "expected": len(want), "match": have == want,
                "unexpected": sorted(have - want), "missing": sorted(want - have)}


# -- leftovers ---------------------------------------------------------------------------------
def local_storage_leftovers(root: Path) -> dict[str, list[str]]:
    """Temporary files and in-progress markers below a storage folder, and folders without a manifest."""
    tmp, markers, incomplete = [], [], []
    for dirpath, _, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        tmp += [str(rel / f) for f in filenames if LOCAL_TMP_MARK in f]
        markers += [str(rel / f) for f in filenames if f == IN_PROGRESS]
        if len(rel.parts) == 2 and not rel.parts[0].startswith(".") and "manifest.json" not in filenames:
            incomplete.append(str(rel))
    return {"temp_files": tmp, "in_progress_markers": markers, "incomplete_snapshots": incomplete}


def s3_storage_leftovers(client: Any, bucket: str, prefix: str) -> dict[str, list[str]]:
    """Unfinished multipart uploads, in-progress markers and folders without a manifest in S3."""
    uploads = []
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        uploads += [f"{u['Key']} ({u['UploadId']})" for u in page.get("Uploads", ())]
    folders: dict[str, bool] = {}
    markers = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", ()):
            parts = obj["Key"][len(prefix):].split("/")
            if parts[-1] == IN_PROGRESS:
                markers.append(obj["Key"])
            if len(parts) >= 3 and not parts[0].startswith("."):
                folder = "/".join(parts[:2])
                folders[folder] = folders.get(folder, False) or parts[2] == "manifest.json"
    return {"multipart_uploads": uploads, "in_progress_markers": markers,
            "incomplete_snapshots": sorted(f for f, has in folders.items() if not has)}


def storage_size(lister: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Bytes and objects in all, and in snapshot folders only (the rest: audit trail, leases, probes)."""
    total = count = snap_bytes = 0
    for key, size in lister:
        total += size
        count += 1
        if not key.startswith("."):
            snap_bytes += size
    return {"bytes_stored": total, "objects": count, "snapshot_bytes": snap_bytes}


def local_objects(root: Path) -> Iterable[tuple[str, int]]:
    for dirpath, _, filenames in os.walk(root):
        for f in filenames:
            path = Path(dirpath) / f
            yield str(path.relative_to(root)), path.stat().st_size


def s3_objects(client: Any, bucket: str, prefix: str) -> Iterable[tuple[str, int]]:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", ()):
            yield obj["Key"][len(prefix):], int(obj["Size"])


def unreleased_leases(read: Callable[[], Iterable[bytes]]) -> int:
    """Lease objects that were never released: a run that ended without letting go of its source."""
    held = 0
    for body in read():
        try:
            held += json.loads(body).get("released_at") is None
        except ValueError:
            held += 1
    return held


def is_temp_database(name: str, ours: str) -> bool:
    """A scratch database of ``verify --deep``, or a temporary copy made beside one of ours.

    For SQLite ``name`` is a file name in the soak's database folder."""
    return (name.startswith(SCRATCH_PREFIX) or (name.startswith(ours) and any(m in name for m in TEMP_DB_MARKS))
            or any(m in name for m in SQLITE_TEMP_MARKS))
