"""The audit trail: one record per backup, restore, mask, refresh and policy decision, kept in the storage.

Records live under ``.audit/`` next to the snapshots, one small JSON object each (object
stores cannot append; one object per event also means concurrent writers never collide). Each
holds when, which operation, which snapshot, which rules (SHA-256), which target (password
removed), the outcome (``ok``, ``failed``, ``refused`` or a decision's own word), any fields the
caller adds (``decision``, ``identities``, ...) and the operating-system user and host.
``datasafe audit`` shows them as JSON lines or a table. Writing a record never fails the
operation it describes: a storage that refuses it costs a warning.

The records form a hash chain. A new record names the newest record present when it is written
(``prev``, its object name) and the SHA-256 of that record's stored bytes (``prev_sha256``), so
a record edited or deleted after a later one was written is noticed by :func:`verify`. With the
policy key (a secret held outside the storage) each record also carries an HMAC-SHA256 of its
canonical JSON (``hmac``) and the key's id (``key_id``): someone who can write the storage but
lacks the key cannot forge, insert or edit a record without it showing.

What the chain cannot show by itself: the newest records deleted (tail truncation) leave a
shorter but valid chain, and so does a fork tip no later record names; compare
:attr:`AuditReport.head` with a value noted earlier. Whoever holds both write access to the
storage and the policy key can rewrite the whole trail.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import logging
import re
import secrets
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from datasafe.errors import DatasafeError, NotFound, Refused, StorageError
from datasafe.policykey import key_id as policy_key_id
from datasafe.redact import redact
from datasafe.storage.base import StorageBackend

log = logging.getLogger(__name__)

PREFIX = ".audit"
#: the kinds of operation that leave records (``policy``: a decision of the environment policy)
OPERATIONS = ("backup", "restore", "mask", "refresh", "policy")
#: fields the trail itself sets; a caller's value for them is ignored
CHAIN_FIELDS = ("prev", "prev_sha256", "key_id", "hmac")
_STAMP = "%Y%m%dT%H%M%S%fZ"
#: writers that start together on an empty trail each write a root; roots this close to the
#: first record are not taken for insertions
ROOT_WINDOW = timedelta(seconds=60)
_STAMP_LEN = len("20260101T000000000000Z")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def is_record(key: str) -> bool:
    """Whether a storage key is an audit record (anything else under ``.audit/`` is ignored)."""
    return key.startswith(f"{PREFIX}/") and key.endswith(".json")


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes the HMAC covers: the record without ``hmac`` as sorted, compact, ASCII JSON."""
    body = {k: v for k, v in record.items() if k != "hmac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def record_hmac(record: Mapping[str, Any], key: bytes) -> str:
    """HMAC-SHA256 under ``key`` of :func:`canonical` ``(record)``, hex."""
    return hmac.new(key, canonical(record), "sha256").hexdigest()


def _stamp_of(key: str) -> datetime | None:
    name = key.rsplit("/", 1)[-1]
    try:
        return datetime.strptime(name[:_STAMP_LEN], _STAMP).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _record_key(now: datetime, operation: str, after: str | None) -> str:
    """A new record's object name: later than ``after``, so names sort in chain order even when
    this host's clock is behind the one that wrote ``after``."""
    stamp = now
    prev_stamp = _stamp_of(after) if after else None
    if prev_stamp is not None and prev_stamp >= stamp:
        stamp = prev_stamp + timedelta(microseconds=1)
    kind = re.sub(r"[^a-z0-9_]", "_", operation.lower()) or "event"
    return f"{PREFIX}/{stamp.strftime(_STAMP)}-{kind}-{secrets.token_hex(3)}.json"


def head(storage: StorageBackend) -> str | None:
    """The name of the newest record, or None when there is none.

    Lists ``.audit/`` (names sort by time); the storage interface has no "list after", so the
    cost grows with the trail. Prune old records into an archive if that ever matters.
    """
    newest: str | None = None
    for key in storage.list(PREFIX):
        if is_record(key) and (newest is None or key > newest):
            newest = key
    return newest


def append(storage: StorageBackend, operation: str, outcome: str, *, key: bytes | None = None,
           **fields: Any) -> dict[str, Any]:
    """Store one audit record, chained to the newest one present; returns it.

    Args:
        storage: where the trail lives.
        operation: what happened (one of :data:`OPERATIONS`; also part of the object name).
        outcome: ``ok``, ``failed``, ``refused`` (a safety check said no), or a decision record's word.
        key: the policy key; when given the record carries ``key_id`` and ``hmac``.
        **fields: anything JSON-able (``snapshot``, ``target``, ``decision={...}``, ``identities={...}``);
            ``target`` and ``error`` lose any password; values JSON cannot hold are stored as strings.
    """
    now = datetime.now(timezone.utc)
    entry: dict[str, Any] = {"time": now.isoformat(), "operation": operation, "outcome": outcome,
                             "user": _user(), "host": socket.gethostname()}
    entry.update({k: redact(str(v)) if k in ("target", "error") and v is not None else v
                  for k, v in fields.items() if k not in CHAIN_FIELDS})
    # what is signed must be what a reader parses back
    entry = json.loads(json.dumps(entry, default=str))
    try:
        prev = head(storage)
        entry["prev"] = prev
        entry["prev_sha256"] = hashlib.sha256(storage.read_bytes(prev)).hexdigest() if prev else None
        if key is not None:
            entry["key_id"] = policy_key_id(key)
            entry["hmac"] = record_hmac(entry, key)
        name = _record_key(now, operation, prev)
        storage.write_bytes(name, json.dumps(entry, sort_keys=True, ensure_ascii=False).encode() + b"\n")
    except (StorageError, NotFound, OSError) as exc:
        log.warning("could not write the audit record of this %s: %s", operation, exc)
    return entry


@contextmanager
def audited(storage: StorageBackend, operation: str, *, key: bytes | None = None,
            **fields: Any) -> Iterator[dict[str, Any]]:
    """Record ``operation`` when the block ends: ``ok``; ``refused`` when a safety check raised
    :class:`~datasafe.errors.Refused`; else ``failed``; the latter two with the error and exit code.

    The block may add fields (e.g. the snapshot id once it is known) to the yielded dict.
    """
    extra: dict[str, Any] = dict(fields)
    try:
        yield extra
    except BaseException as exc:
        code = exc.exit_code if isinstance(exc, DatasafeError) else 130 if isinstance(exc, KeyboardInterrupt) else 1
        outcome = "refused" if isinstance(exc, Refused) else "failed"
        append(storage, operation, outcome, key=key, error=str(exc) or type(exc).__name__, exit_code=int(code),
               **extra)
        raise
    append(storage, operation, "ok", key=key, **extra)


def read(storage: StorageBackend, *, operation: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The audit records, oldest first (the last ``limit`` only, when given)."""
    keys = [k for k in storage.list(PREFIX) if is_record(k)]
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


# -- verification --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditProblem:
    """One thing wrong with the trail, about one record (which may be missing)."""

    record: str
    message: str

    def __str__(self) -> str:
        return f"{self.record}: {self.message}"


@dataclass
class AuditReport:
    """What :func:`verify` found."""

    #: records read (legacy ones included)
    records: int = 0
    #: records at the start of the trail written before records were chained (not protected)
    legacy: int = 0
    #: records that carry an hmac
    signed: int = 0
    #: id of the policy key the hmacs were checked with; None when they were not checked
    key_id: str | None = None
    #: records naming a predecessor another record names too (concurrent writers; not a problem)
    forks: int = 0
    #: the newest record and the SHA-256 of its bytes: note them to detect a later truncation
    head: str | None = None
    head_sha256: str | None = None
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "legacy": self.legacy, "signed": self.signed,
                "key_id": self.key_id, "forks": self.forks, "head": self.head, "head_sha256": self.head_sha256,
                "problems": [{"record": p.record, "problem": p.message} for p in self.problems]}


def _before(time: object, stamp: datetime | None) -> bool:
    """Whether an ISO ``time`` lies before ``stamp``."""
    if not isinstance(time, str) or stamp is None:
        return False
    try:
        return datetime.fromisoformat(time) < stamp
    except ValueError:
        return False


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            # two parsers could read two different records from these bytes
            raise ValueError(f"duplicate field {k!r}")
        out[k] = v
    return out


def _parse(data: bytes) -> dict[str, Any]:
    rec = json.loads(data, object_pairs_hook=_no_duplicates)
    if not isinstance(rec, dict):
        raise ValueError("not a JSON object")
    return rec


def verify(storage: StorageBackend, key: bytes | None = None) -> AuditReport:
    """Check the trail's hash chain and, with the policy key, every record's hmac.

    Problems found: a record that is not a JSON object; a predecessor whose bytes no longer have
    the SHA-256 a later record recorded (edited); a predecessor that no longer exists (deleted);
    a predecessor that is not older than the record naming it; a chained record without ``prev``
    or a new chain start after chained records (inserted); with ``key``, an hmac that does not
    verify, or a record without hmac after the first one with (inserted or forged without the key).

    Accepted: records without ``prev`` at the start of the trail (written before records were
    chained; counted as :attr:`AuditReport.legacy`), and several records naming the same
    predecessor: writers on several hosts each chain to the newest record they saw, so the
    chain forks where they ran at the same time.

    Not detectable from the storage alone: deleting the newest records, or a fork tip no later
    record names. Compare :attr:`AuditReport.head` and ``head_sha256`` with values noted earlier.
    """
    report = AuditReport(key_id=policy_key_id(key) if key is not None else None)
    keys = sorted(k for k in storage.list(PREFIX) if is_record(k))
    digests: dict[str, str] = {}
    named: set[str] = set()
    chained = False  # a record with prev has been seen: records without one are no longer legacy
    linked: datetime | None = None  # when the first record with a non-null prev was written
    first: datetime | None = None  # when the first record was written
    signed = False  # with key: a record with an hmac has been seen

    def problem(record: str, message: str) -> None:
        report.problems.append(AuditProblem(record, message))

    for name in keys:
        try:
            data = storage.read_bytes(name)
        except NotFound:
            continue  # removed while we listed: the record naming it, if any, will say so
        digests[name] = hashlib.sha256(data).hexdigest()
        if first is None:
            first = _stamp_of(name)
        report.records += 1
        report.head, report.head_sha256 = name, digests[name]
        try:
            rec = _parse(data)
        except ValueError as exc:
            problem(name, f"is not a valid record ({exc})")
            continue

        mac = rec.get("hmac")
        if mac is not None:
            report.signed += 1
        if key is not None:
            if mac is not None:
                signed = True
                if not isinstance(mac, str) or not hmac.compare_digest(record_hmac(rec, key).encode(), mac.encode()):
                    if rec.get("key_id") != report.key_id:
                        problem(name, f"is signed with another key (key id {rec.get('key_id')}, the policy key's "
                                      f"is {report.key_id}): forged, or written with a different policy key")
                    else:
                        problem(name, "hmac does not verify: the record was edited or forged")
            elif signed:
                problem(name, "carries no hmac although older records do: inserted or forged without the policy key")

        if "prev" not in rec:
            if chained:
                problem(name, "is not chained (no prev) although older records are: inserted, or written by a "
                              "datasafe from before the chain")
            else:
                report.legacy += 1
            continue
        chained = True
        prev, prev_sha = rec["prev"], rec.get("prev_sha256")
        if prev is None:
            # a root is a writer that saw an empty trail: writers that started together on an empty
            # trail all write roots, so a root within ROOT_WINDOW of the first record is fine
            if linked is not None and not _before(rec.get("time"), first + ROOT_WINDOW if first else None):
                problem(name, "starts a new chain (prev null) after chained records: inserted, or its writer "
                              "could not see the trail")
            continue
        if linked is None:
            linked = _stamp_of(name)
        if not isinstance(prev, str) or not isinstance(prev_sha, str):
            problem(name, "has a malformed prev or prev_sha256")
            continue
        if prev in named:
            report.forks += 1
        named.add(prev)
        if prev >= name:
            problem(name, f"names {prev} as its predecessor, which is not older")
        elif prev not in digests:
            problem(prev, f"is missing (deleted?): {name} names it as its predecessor")
        elif digests[prev] != prev_sha:
            problem(prev, f"was changed after {name} was written (sha256 now {digests[prev][:16]}…, "
                          f"{name} recorded {prev_sha[:16]}…)")
    return report
