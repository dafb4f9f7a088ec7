"""The current time of the snapshot history: when snapshots are taken, verified and pruned.

Everything that dates a snapshot or judges its age asks :func:`now`: the snapshot id and the
manifest's ``started_at``/``finished_at`` (backup and mask), verification records, ``prune``
(retention ages, the grace period of incomplete leftovers, object locks as retention sees them)
and ``check --max-age``. Keeping that in one place is what lets a long history be simulated in
minutes: the soak runner (``scripts/soak.py``) replays 90 nights by moving this clock one day
per night.

``DATASAFE_NOW`` (a testing aid, never needed in production): an ISO 8601 instant such as
``2026-01-05T02:00:00Z`` (UTC unless it names an offset). The clock of a process starts there
the first time it is read and then runs on at real speed, so durations inside one run (a
backup's ``started_at`` before its ``finished_at``) stay true.

Deliberately not on this clock, because other parties check them against the real time:
leases (two processes on different clocks must still exclude each other), the audit trail
(records of real events, ordered across hosts), S3 Object Lock dates (enforced by the storage),
the markers of in-progress snapshots (whether their writer is still alive) and metrics
timestamps (read by Prometheus).
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timedelta, timezone

from datasafe.errors import ConfigError

NOW_ENV = "DATASAFE_NOW"

_lock = threading.Lock()
#: the DATASAFE_NOW value last seen, its instant, and the monotonic time it was first read at
_anchor: tuple[str, datetime, float] | None = None


def now() -> datetime:
    """The current time, timezone-aware in UTC (shifted when ``DATASAFE_NOW`` is set)."""
    raw = os.environ.get(NOW_ENV, "").strip()
    if not raw:
        return datetime.now(timezone.utc)
    global _anchor
    with _lock:
        if _anchor is None or _anchor[0] != raw:
            _anchor = (raw, _parse(raw), time.monotonic())
        _, start, started = _anchor
    return start + timedelta(seconds=time.monotonic() - started)


def _parse(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise ConfigError(f"${NOW_ENV}: {raw!r} is not an ISO 8601 time",
                          hint="for example 2026-01-05T02:00:00Z, or unset it") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)
