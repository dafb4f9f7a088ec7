"""The audit trail: one record per backup, restore, mask and refresh, kept in the storage.

Records live under ``.audit/`` next to the snapshots, one small JSON object each (object
stores cannot append; one object per event also means concurrent writers never collide). Each
holds when, which operation, which snapshot, which rules (SHA-256), which target (password
removed), the outcome and the operating-system user and host. ``datasafe audit`` shows them as
JSON lines or a table. Writing a record never fails the operation it describes: a storage that
refuses it costs a warning.
"""

from __future__ import annotations

import getpass
import json
import logging
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from datasafe.errors import DatasafeError, NotFound, StorageError
from datasafe.redact import redact
from datasafe.storage.base import StorageBackend

log = logging.getLogger(__name__)

PREFIX = ".audit"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def append(storage: StorageBackend, operation: str, outcome: str, **fields: Any) -> dict[str, Any]:
    """Store one audit record; returns it."""
    now = datetime.now(timezone.utc)
    entry: dict[str, Any] = {"time": now.isoformat(), "operation": operation, "outcome": outcome,
                             "user": _user(), "host": socket.gethostname()}
    entry.update({k: redact(str(v)) if k in ("target", "error") and v is not None else v
                  for k, v in fields.items()})
    key = f"{PREFIX}/{now:%Y%m%dT%H%M%S%fZ}-{operation}-{secrets.token_hex(3)}.json"
    try:
        storage.write_bytes(key, json.dumps(entry, sort_keys=True).encode() + b"\n")
    except (StorageError, OSError) as exc:
        log.warning("could not write the audit record of this %s: %s", operation, exc)
    return entry


@contextmanager
def audited(storage: StorageBackend, operation: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Record ``operation`` when the block ends: ``ok``, or ``failed`` with the error and exit code.

    The block may add fields (e.g. the snapshot id once it is known) to the yielded dict.
    """
    extra: dict[str, Any] = dict(fields)
    try:
        yield extra
    except BaseException as exc:
        code = exc.exit_code if isinstance(exc, DatasafeError) else 130 if isinstance(exc, KeyboardInterrupt) else 1
        append(storage, operation, "failed", error=str(exc) or type(exc).__name__, exit_code=int(code), **extra)
        raise
    append(storage, operation, "ok", **extra)


def read(storage: StorageBackend, *, operation: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The audit records, oldest first (the last ``limit`` only, when given)."""
    keys = [k for k in storage.list(PREFIX) if k.endswith(".json")]
    if operation:
        keys = [k for k in keys if f"-{operation}-" in k.rsplit("/", 1)[-1]]
    if limit is not None:
        keys = keys[-limit:]
    out = []
    for key in keys:
        try:
            out.append(json.loads(storage.read_bytes(key)))
        except (NotFound, ValueError):
            log.warning("skipping unreadable audit record %s", key)
    return out
