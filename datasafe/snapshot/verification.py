"""Verification records: what each check of a snapshot found, stored next to it.

The manifest never changes after a backup. Each verification (the backup's own read-back,
``verify``, ``verify --sample``, ``verify --deep``) adds one small JSON object under
``<source>/<snapshot-id>/verifications/``; ``list``, ``check``, ``verify --since-last`` and the
retention rail "newest verified" read the newest one.
"""

from __future__ import annotations

import builtins
import json
import logging
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from datasafe import __version__, clock
from datasafe.errors import NotFound, StorageError
from datasafe.storage.base import StorageBackend

log = logging.getLogger(__name__)

FOLDER = "verifications"
#: how thorough each mode is; a record satisfies a request for its own mode or a weaker one
STRENGTH = {"metadata": 0, "stored": 1, "sample": 2, "full": 3, "deep": 4}


@dataclass
class VerificationRecord:
    time: datetime
    mode: str
    ok: bool
    chunks: int = 0
    problems: list[str] = field(default_factory=list)
    sample_percent: float | None = None
    #: how long the check took (the restore test included), for the evidence report's trend
    seconds: float | None = None
    host: str = field(default_factory=socket.gethostname)
    datasafe_version: str = __version__

    def to_json(self) -> bytes:
        body = asdict(self)
        body["time"] = self.time.isoformat()
        return json.dumps(body, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> VerificationRecord:
        body: dict[str, Any] = json.loads(data)
        body["time"] = datetime.fromisoformat(body["time"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in body.items() if k in known})

    def satisfies(self, mode: str) -> bool:
        return self.ok and STRENGTH.get(self.mode, 0) >= STRENGTH.get(mode, 0)

    def describe(self) -> str:
        when = self.time.strftime("%Y-%m-%d %H:%M")
        return f"{'ok' if self.ok else 'FAILED'} {when} ({self.mode})"


def _prefix(source: str, snapshot_id: str) -> str:
    return f"{source}/{snapshot_id}/{FOLDER}"


def record(storage: StorageBackend, source: str, snapshot_id: str, rec: VerificationRecord) -> None:
    """Store ``rec``; a storage that refuses (read-only, no rights) only costs a warning."""
    key = f"{_prefix(source, snapshot_id)}/{rec.time:%Y%m%dT%H%M%S%fZ}-{rec.mode}.json"
    try:
        storage.write_bytes(key, rec.to_json())
    except StorageError as exc:
        log.warning("could not record the verification of %s: %s", snapshot_id, exc)


def history(storage: StorageBackend, source: str, snapshot_id: str) -> builtins.list[VerificationRecord]:
    """Every record of one snapshot, oldest first; unreadable ones are skipped."""
    out = []
    for key in storage.list(_prefix(source, snapshot_id)):
        try:
            out.append(VerificationRecord.from_json(storage.read_bytes(key)))
        except (NotFound, ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable verification record %s", key)
    out.sort(key=lambda r: r.time)
    return out


def latest(storage: StorageBackend, source: str, snapshot_id: str) -> VerificationRecord | None:
    found = history(storage, source, snapshot_id)
    return found[-1] if found else None


def now() -> datetime:
    return clock.now()
