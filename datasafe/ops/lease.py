"""A lease on a source: one backup or prune per source at a time, across hosts sharing a storage.

The lease lives in the storage location itself, as small JSON objects under
``.locks/<source>/`` (the leading dot keeps them out of the snapshot listing), and uses only
:meth:`~datasafe.storage.base.StorageBackend.create_exclusive` (atomic create-if-absent:
``O_EXCL`` on a local file system, ``If-None-Match: *`` on S3), reads, overwrites, deletes and
listings. No ``flock`` and no server are needed, so two cron jobs on two hosts writing to one S3
bucket exclude each other as two jobs on one host do.

How it works
------------
Lease objects are numbered generations, ``lease-0000000001.json``, ``lease-0000000002.json``, ...
Each records its owner (a random id), host, pid, operation, when it was acquired and when it
expires. **The highest generation present decides**: it is either live (held), expired (its
holder stopped renewing it: crashed, killed, host gone) or released.

- *Acquire*: list; if the highest generation is live, the source is locked (:class:`LockHeld`,
  exit code 9). Otherwise create generation ``highest + 1`` with ``create_exclusive``: of several
  contenders only one can create it. The winner lists again and backs off (deletes its object,
  starts over) if an even higher generation appeared meanwhile (a contender that saw an older
  listing can only ever create a number below the current highest one). Then it deletes the
  older generations. Taking over an *expired* lease logs a WARNING naming the previous holder.
- *Renew*: a daemon thread extends ``expires_at`` every ``ttl/3``. Before each renewal it checks
  that no higher generation exists and that its own object still carries its owner id; if not, or
  if renewing fails until the lease has expired by the local clock, the lease is *lost*.
  :meth:`Lease.check`, which long operations call between steps, then raises :class:`LockHeld`.
- *Release*: the holder marks its own object released (a tombstone) instead of deleting it: the
  highest generation number then never goes down, which is what makes a late contender's create
  of an old number harmless (it cannot become the highest). The next acquirer removes the
  tombstone. A failed release is logged, not raised: the lease expires by itself after ``ttl``.

Guarantees and limits
---------------------
- Mutual exclusion holds while every holder renews in time and the clocks of the hosts agree
  (NTP). A holder that stalls for longer than its TTL (a suspended VM, a frozen NFS mount) can be
  taken over; it notices at its next :meth:`Lease.check` (its own lease has expired by its clock)
  or renewal, but may have written for up to ``ttl/3`` meanwhile. Clock skew between hosts
  shortens or lengthens the TTL by the skew: keep it well below the TTL (default 5 minutes).
- A killed holder blocks the source for at most one TTL.
- The storage must be strongly consistent for listings and create-if-absent (local and NFS
  file systems with ``O_EXCL``; AWS S3 and S3-compatible stores that honour ``If-None-Match``).
- Removing lease objects by hand (or by a bucket lifecycle rule) while datasafe runs for that
  source voids the guarantee; remove them only when no datasafe process works on the source.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import random
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any

from datasafe import faultpoints
from datasafe.errors import LockHeld, NotFound
from datasafe.processes import process_alive
from datasafe.snapshot.repository import check_source_name
from datasafe.storage.base import StorageBackend
from datasafe.units import format_duration

log = logging.getLogger(__name__)

LOCKS_PREFIX = ".locks"
DEFAULT_TTL = timedelta(minutes=5)
#: longest pause between two attempts while waiting for a lease
MAX_POLL = timedelta(seconds=5)
_KEY = re.compile(r"^lease-(\d{10})\.json$")
_FORMAT = "datasafe-lease"
#: re-reads of an unreadable lease object before it counts as unreadable (a local create is
#: O_EXCL first, write second: a reader can see it empty for a moment)
_READ_RETRIES = 5
_READ_RETRY_S = 0.05
#: create attempts lost to contenders before acquire() reports the source as locked
_MAX_RACES = 50


def lease_prefix(source: str) -> str:
    """Where the lease objects of ``source`` live: ``.locks/<source>/``."""
    return f"{LOCKS_PREFIX}/{source}/"


def lease_key(source: str, generation: int) -> str:
    return f"{lease_prefix(source)}lease-{generation:010d}.json"


@dataclass(frozen=True)
class LeaseInfo:
    """One lease object: who holds (or held) the lease on a source, and until when."""

    source: str
    generation: int
    owner: str
    host: str
    pid: int
    operation: str
    acquired_at: datetime
    expires_at: datetime
    released_at: datetime | None = None

    @property
    def key(self) -> str:
        return lease_key(self.source, self.generation)

    def is_live(self, now: datetime | None = None) -> bool:
        """Held: not released and not expired at ``now``."""
        now = now or _utcnow()
        return self.released_at is None and self.expires_at > now

    def holder_is_dead(self) -> bool:
        """The holder ran on this host and its process is gone (killed): no need to wait for expiry.

        Only trusted for this host's own processes (same host name and a pid that no longer
        exists); a holder on another host is only ever taken over once its lease expired.
        """
        if self.host != socket.gethostname() or self.pid <= 0:
            return False
        return not process_alive(self.pid)

    def describe(self) -> str:
        """``backup on host db1 (pid 4242)``."""
        return f"{self.operation} on host {self.host} (pid {self.pid})"

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "format": _FORMAT,
            "version": 1,
            "source": self.source,
            "generation": self.generation,
            "owner": self.owner,
            "host": self.host,
            "pid": self.pid,
            "operation": self.operation,
            "acquired_at": self.acquired_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "released_at": self.released_at.isoformat() if self.released_at else None,
        }
        return json.dumps(doc, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LeaseInfo:
        """Raises ValueError when ``data`` is not a complete lease object."""
        try:
            doc = json.loads(data)
            if doc.get("format") != _FORMAT:
                raise ValueError("not a datasafe lease object")
            released = doc.get("released_at")
            return cls(
                source=str(doc["source"]),
                generation=int(doc["generation"]),
                owner=str(doc["owner"]),
                host=str(doc["host"]),
                pid=int(doc["pid"]),
                operation=str(doc["operation"]),
                acquired_at=_parse_time(doc["acquired_at"]),
                expires_at=_parse_time(doc["expires_at"]),
                released_at=_parse_time(released) if released else None,
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a lease object: {exc}") from exc


class _Unreadable(Exception):
    """A lease object exists but does not parse."""


class _Lost(Exception):
    """The renewal found the lease taken over or removed."""


def holder(storage: StorageBackend, source: str, *, include_expired: bool = False) -> LeaseInfo | None:
    """The lease currently held on ``source`` (for status displays), or None when it is free.

    With ``include_expired`` an expired lease that nobody has taken over yet is returned too
    (``info.is_live()`` tells them apart): its holder probably died. An unreadable lease object
    gives None here, although :meth:`Lease.acquire` treats it as held for one TTL.
    """
    check_source_name(source)
    gens = _generations(storage, source)
    if not gens:
        return None
    try:
        info = _read(storage, source, gens[-1])
    except (NotFound, _Unreadable):
        return None
    if info.released_at is not None:
        return None
    if not include_expired and not info.is_live():
        return None
    return info


class Lease:
    """The lease on one source, held by this process.

    Typical use::

        with Lease(storage, "shop", operation="backup").acquire(wait=timedelta(minutes=10)) as lease:
            for table in tables:
                lease.check()   # raises LockHeld if the lease was lost meanwhile
                ...

    Args:
        storage: the storage location the snapshots go to (the lease objects live there too).
        source: the source name.
        operation: what the holder does ("backup", "prune"), shown to whoever finds it locked.
        ttl: how long the lease lives without renewal; renewed every ``ttl/3``.
    """

    def __init__(
        self,
        storage: StorageBackend,
        source: str,
        *,
        operation: str = "backup",
        ttl: timedelta = DEFAULT_TTL,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError(f"lease ttl must be positive, got {format_duration(ttl)}")
        self.storage = storage
        self.source = check_source_name(source)
        self.operation = operation
        self.ttl = ttl
        self.owner = uuid.uuid4().hex
        self._info: LeaseInfo | None = None
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._lost_reason = ""
        self._thread: threading.Thread | None = None
        #: generation -> monotonic time it was first found unreadable
        self._unreadable_since: dict[int, float] = {}

    # -- state ---------------------------------------------------------------------------------
    @property
    def info(self) -> LeaseInfo | None:
        """This process's lease object while held."""
        return self._info

    @property
    def held(self) -> bool:
        return self._info is not None and not self.lost

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def check(self) -> None:
        """Raise :class:`LockHeld` if the lease was lost (taken over, removed, or not renewed in time).

        Cheap (no storage access): call it between tables, chunks or deletions.
        """
        info = self._info
        if info is None:
            raise LockHeld(f"no lock held on source {self.source}")
        if not self._lost.is_set() and _utcnow() >= info.expires_at:
            self._lose(
                f"lost the lock on source {self.source}: its lease expired at {_hms(info.expires_at)} "
                "without being renewed"
            )
        if self._lost.is_set():
            raise LockHeld(self._lost_reason, hint="another datasafe run may be working on this source now")

    # -- acquire / release ---------------------------------------------------------------------
    def acquire(self, wait: timedelta | None = None) -> Lease:
        """Take the lease, waiting up to ``wait`` for the current holder to finish.

        Returns:
            self, so that ``with Lease(...).acquire(wait=...) as lease:`` reads naturally.

        Raises:
            LockHeld: the source is locked (after ``wait``, if given).
            StorageError: the storage cannot be listed or written.
        """
        if self._info is not None:
            raise RuntimeError(f"the lease on source {self.source} is already held")
        deadline = time.monotonic() + (wait.total_seconds() if wait else 0.0)
        poll = min(MAX_POLL, self.ttl / 10).total_seconds()
        while True:
            blocker = self._try_acquire()
            if blocker is None:
                self._start_renewal()
                return self
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._held_error(blocker, wait)
            time.sleep(min(remaining, poll * random.uniform(0.75, 1.25)))

    def release(self) -> None:
        """Give the lease back (idempotent). A failure is logged: the lease expires by itself."""
        info = self._info
        if info is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(self.ttl.total_seconds(), 5.0))
        with self._mutex:
            self._info = None
            if self._lost.is_set():
                return
            try:
                if any(g > info.generation for g in _generations(self.storage, self.source)):
                    return  # taken over after all; the new holder cleans up
                now = _utcnow()
                self.storage.write_bytes(info.key, replace(info, released_at=now, expires_at=now).to_json())
                log.debug("released the lock on source %s (generation %d)", self.source, info.generation)
            except Exception as exc:
                log.warning(
                    "could not release the lock on source %s: %s; it frees itself at %s",
                    self.source, exc, _hms(info.expires_at),
                )

    def __enter__(self) -> Lease:
        if self._info is None:
            self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    # -- internals -----------------------------------------------------------------------------
    def _try_acquire(self) -> LeaseInfo | _UnreadableLease | None:
        """One attempt: None when acquired, else what blocks (the live holder)."""
        blocker: LeaseInfo | _UnreadableLease | None = None
        for _ in range(_MAX_RACES):
            gens = _generations(self.storage, self.source)
            top = gens[-1] if gens else 0
            previous: LeaseInfo | None = None
            if top:
                try:
                    previous = self._read_patiently(top)
                except NotFound:
                    continue  # removed since the listing (a contender backing off): look again
                except _Unreadable as exc:
                    first_seen = self._unreadable_since.setdefault(top, time.monotonic())
                    blocker = _UnreadableLease(lease_key(self.source, top), str(exc))
                    if time.monotonic() - first_seen < self.ttl.total_seconds():
                        return blocker
                    log.warning(
                        "lease object %s of source %s has been unreadable for %s: taking it over",
                        blocker.key, self.source, format_duration(self.ttl),
                    )
                else:
                    if previous.is_live() and not previous.holder_is_dead():
                        return previous
            now = _utcnow()
            mine = LeaseInfo(
                source=self.source, generation=top + 1, owner=self.owner, host=socket.gethostname(),
                pid=os.getpid(), operation=self.operation, acquired_at=now, expires_at=now + self.ttl,
            )
            if not self.storage.create_exclusive(mine.key, mine.to_json()):
                continue  # a contender created this generation first
            if any(g > mine.generation for g in _generations(self.storage, self.source)):
                # we acted on an old listing: a higher generation exists, so ours is not the lease
                self._delete_quietly(mine.key)
                continue
            self._info = mine
            if previous is not None and previous.released_at is None:
                if previous.expires_at > now:
                    log.warning("taking over the lock of source %s from %s: that process is gone",
                                self.source, previous.describe())
                else:
                    log.warning(
                        "taking over expired lock of source %s (held by %s, expired at %s)",
                        self.source, previous.describe(), _hms(previous.expires_at),
                    )
            for g in _generations(self.storage, self.source):
                if g < mine.generation:
                    self._delete_quietly(lease_key(self.source, g))
            log.debug("acquired the lock on source %s (generation %d, ttl %s)",
                      self.source, mine.generation, format_duration(self.ttl))
            return None
        # contenders kept winning: report whoever holds it now
        gens = _generations(self.storage, self.source)
        if gens:
            with contextlib.suppress(NotFound, _Unreadable):
                return _read(self.storage, self.source, gens[-1])
        return blocker or _UnreadableLease(lease_prefix(self.source), "too many contenders")

    def _read_patiently(self, generation: int) -> LeaseInfo:
        for attempt in range(_READ_RETRIES):
            try:
                return _read(self.storage, self.source, generation)
            except _Unreadable:
                if attempt == _READ_RETRIES - 1:
                    raise
                time.sleep(_READ_RETRY_S)
        raise AssertionError("unreachable")

    def _held_error(self, blocker: LeaseInfo | _UnreadableLease, wait: timedelta | None) -> LockHeld:
        waited = f"gave up after waiting {format_duration(wait)}: " if wait else ""
        if isinstance(blocker, _UnreadableLease):
            return LockHeld(
                f"{waited}source {self.source} is locked: lease object {blocker.key} cannot be read "
                f"({blocker.problem})",
                hint=f"if no datasafe process works on {self.source}, delete {blocker.key} from the storage",
            )
        return LockHeld(
            f"{waited}source {self.source} is locked by {blocker.describe()} since {_hms(blocker.acquired_at)}; "
            f"lease expires {_hms(blocker.expires_at)}",
            hint="try again later or pass --wait; if that process is gone, the lock frees itself when "
            "its lease expires",
        )

    def _start_renewal(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._renew_loop, name=f"datasafe-lease-{self.source}", daemon=True
        )
        self._thread.start()

    def _renew_loop(self) -> None:
        every = self.ttl.total_seconds() / 3
        interval = every
        last_error: Exception | None = None
        while not self._stop.wait(interval):
            try:
                with self._mutex:
                    info = self._info
                    if self._stop.is_set() or info is None:
                        return
                    if _utcnow() >= info.expires_at:
                        # too late: someone may have taken it over already, even if we cannot see it yet
                        failed = f" (renewing failed: {last_error})" if last_error else ""
                        raise _Lost(f"lost the lock on source {self.source}: its lease expired at "
                                    f"{_hms(info.expires_at)} before it could be renewed{failed}")
                    self._renew_once(info)
                interval = every
                last_error = None
            except _Lost as exc:
                self._lose(str(exc))
                return
            except Exception as exc:
                last_error = exc
                log.warning("could not renew the lock on source %s (will retry): %s", self.source, exc)
                interval = max(every / 3, 0.05)

    def _renew_once(self, mine: LeaseInfo) -> None:
        gens = _generations(self.storage, self.source)
        higher = [g for g in gens if g > mine.generation]
        if higher:
            raise _Lost(self._lost_to(higher[-1]))
        try:
            current = _read(self.storage, self.source, mine.generation)
        except NotFound:
            raise _Lost(f"lost the lock on source {self.source}: its lease object was removed") from None
        except _Unreadable as exc:
            raise _Lost(f"lost the lock on source {self.source}: its lease object was overwritten ({exc})") from None
        if current.owner != mine.owner:
            raise _Lost(f"lost the lock on source {self.source} to {current.describe()}")
        renewed = replace(mine, expires_at=_utcnow() + self.ttl)
        self.storage.write_bytes(renewed.key, renewed.to_json())
        self._info = renewed

    def _lost_to(self, generation: int) -> str:
        try:
            other = _read(self.storage, self.source, generation)
        except (NotFound, _Unreadable):
            return f"lost the lock on source {self.source} to another process"
        return f"lost the lock on source {self.source} to {other.describe()}"

    def _lose(self, reason: str) -> None:
        if not self._lost.is_set():
            self._lost_reason = reason
            self._lost.set()
            log.warning("%s", reason)

    def _delete_quietly(self, key: str) -> None:
        try:
            self.storage.delete(key)
        except Exception as exc:
            log.warning("could not remove old lease object %s: %s", key, exc)


@dataclass(frozen=True)
class _UnreadableLease:
    key: str
    problem: str


def _generations(storage: StorageBackend, source: str) -> builtins.list[int]:
    prefix = lease_prefix(source)
    found = []
    for key in storage.list(prefix):
        if not key.startswith(prefix):
            continue
        m = _KEY.match(key[len(prefix):])
        if m:
            found.append(int(m.group(1)))
    return sorted(found)


def _read(storage: StorageBackend, source: str, generation: int) -> LeaseInfo:
    """Raises NotFound when the object is gone, _Unreadable when it does not parse."""
    data = storage.read_bytes(lease_key(source, generation))
    try:
        info = LeaseInfo.from_json(data)
    except ValueError as exc:
        raise _Unreadable(str(exc) if data else "empty") from None
    if info.source != source or info.generation != generation:
        raise _Unreadable(f"it names source {info.source!r} generation {info.generation}")
    return info


def _utcnow() -> datetime:
    return datetime.now(timezone.utc) + faultpoints.clock_skew()


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"not a time: {value!r}")
    try:
        t = datetime.fromisoformat(value)
    except ValueError as exc:
        raise TypeError(str(exc)) from None
    if t.tzinfo is None:
        raise TypeError(f"time without timezone: {value!r}")
    return t.astimezone(timezone.utc)


def _hms(t: datetime, now: datetime | None = None) -> str:
    """``02:05:03Z`` today, ``2026-11-25 02:05:03Z`` on another day (UTC)."""
    t = t.astimezone(timezone.utc)
    now = (now or _utcnow()).astimezone(timezone.utc)
    return f"{t:%H:%M:%S}Z" if t.date() == now.date() else f"{t:%Y-%m-%d %H:%M:%S}Z"
