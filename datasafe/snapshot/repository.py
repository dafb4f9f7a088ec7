"""A repository: the snapshots of every source in one storage location.

Layout: ``<source>/<snapshot-id>/manifest.json`` plus ``schema/`` and ``data/`` objects. A snapshot
folder without a manifest is incomplete: it is never listed as restorable, and a later backup
removes it once the process that wrote it is gone.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from datasafe import clock
from datasafe.errors import ConfigError, IntegrityError, NotFound, StorageError, UsageError
from datasafe.policykey import PolicyKey
from datasafe.processes import process_alive
from datasafe.progress import NullProgress
from datasafe.snapshot import provenance, verification
from datasafe.snapshot.check import VerifyReport, check_chunks
from datasafe.snapshot.chunks import ChunkWriter, Compression
from datasafe.snapshot.crypto import EncryptionSettings, KeyRing, SnapshotCipher
from datasafe.snapshot.manifest import MANIFEST_NAME, MAX_MANIFEST_BYTES, SEALED_NAME, Manifest
from datasafe.storage.base import StorageBackend
from datasafe.storage.prefixed import PrefixedStorage

log = logging.getLogger(__name__)

IN_PROGRESS = ".in-progress"
#: An incomplete snapshot whose writer cannot be checked (another host) is removed after this.
STALE_AFTER_S = 24 * 3600
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SNAPSHOT_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
#: the name ``datasafe mask`` gives a masked copy of a source by default
MASKED_SUFFIX = ".masked"
#: how often, and how long apart, a header is read again when its sealed manifest does not match
REOPEN_ATTEMPTS, REOPEN_DELAY_S = 3, 0.2


def new_snapshot_id(now: datetime | None = None) -> str:
    """Time-ordered, collision-resistant id such as ``20261126T120500Z-3fa9c1``."""
    now = now or clock.now()
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def check_source_name(name: str) -> str:
    if not SOURCE_NAME.match(name):
        raise ConfigError(
            f"invalid source name {name!r}: use letters, digits, '.', '_' or '-' (at most 128 characters)"
        )
    return name


@dataclass
class SnapshotInfo:
    """A listed snapshot: complete ones carry their manifest, others the reason they are not usable."""

    source: str
    snapshot_id: str
    manifest: Manifest | None = None
    problem: str | None = None
    #: a manifest exists but cannot be trusted (edited, truncated): unlike an incomplete snapshot
    #: this is a failure that ``verify --all`` and monitoring must report
    damaged: bool = False

    @property
    def complete(self) -> bool:
        return self.manifest is not None


class SnapshotObjects(PrefixedStorage):
    """The objects of one snapshot, keyed as its manifest lists them; ``cipher`` when encrypted."""

    def __init__(self, inner: StorageBackend, prefix: str, cipher: SnapshotCipher | None = None) -> None:
        super().__init__(inner, prefix)
        self.cipher = cipher


class SnapshotWriter:
    """Writes the objects of one new snapshot; the manifest goes last via :meth:`commit`."""

    def __init__(self, repo: Repository, source: str, snapshot_id: str,
                 encryption: EncryptionSettings | None = None) -> None:
        self.repo = repo
        self.storage = repo.storage
        self.source = source
        self.snapshot_id = snapshot_id
        self.prefix = f"{source}/{snapshot_id}"
        self.cipher: SnapshotCipher | None = None
        #: the manifest's ``encryption`` section (None: plaintext snapshot)
        self.encryption: dict[str, object] | None = None
        if encryption is not None and encryption.enabled:
            self.cipher = SnapshotCipher.generate()
            self.encryption = encryption.envelope(self.cipher)
        #: objects of this snapshot, keyed relative to its folder (as the manifest records them)
        self.objects = SnapshotObjects(repo.storage, self.prefix, self.cipher)
        self._committed = False

    def begin(self) -> None:
        marker = json.dumps(
            {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
        ).encode()
        if not self.storage.create_exclusive(f"{self.prefix}/{IN_PROGRESS}", marker):
            raise StorageError(f"snapshot folder {self.prefix} already exists")

    def table_writer(
        self,
        ordinal: int,
        compression: Compression,
        chunk_size: int,
        on_progress: Callable[[int, int], None] | None = None,
        *,
        part: int | None = None,
    ) -> ChunkWriter:
        """Chunks of table ``ordinal`` under ``data/<ordinal>/``; with ``part``, of one range of a
        split table, under ``data/<ordinal>/<part>/``."""
        folder = f"data/{ordinal:05d}" if part is None else f"data/{ordinal:05d}/{part:04d}"
        return ChunkWriter(self.objects, folder, compression, chunk_size, on_progress, cipher=self.cipher)

    def blob_writer(self, name: str, compression: Compression) -> ChunkWriter:
        return ChunkWriter(self.objects, f"schema/{name}", compression, 1 << 62, line_based=False,
                           cipher=self.cipher)

    def attach(self, manifest: Manifest) -> Manifest:
        """Mark ``manifest`` as this snapshot's: its encryption section and key."""
        manifest.encryption = self.encryption
        manifest._cipher = self.cipher
        return manifest

    def commit(self, manifest: Manifest) -> None:
        """Write the manifest atomically; from this moment the snapshot is complete.

        An encrypted snapshot stores its full manifest sealed (``manifest.age``) and, last, a
        public header as ``manifest.json`` that lists only totals and the stored objects."""
        self.attach(manifest)
        if self.repo.policy_key is not None:
            provenance.sign(manifest, self.repo.policy_key)
        if self.cipher is not None:
            sealed = self.cipher.seal(manifest.to_json())
            self.storage.write_bytes(f"{self.prefix}/{SEALED_NAME}", sealed)
            self.storage.write_bytes(f"{self.prefix}/{MANIFEST_NAME}", manifest.header_json(sealed))
        else:
            self.storage.write_bytes(f"{self.prefix}/{MANIFEST_NAME}", manifest.to_json())
        self._committed = True
        try:
            self.storage.delete(f"{self.prefix}/{IN_PROGRESS}")
        except StorageError as exc:  # e.g. a backup role without delete rights: the manifest decides
            log.warning("snapshot %s is complete, but its .in-progress marker stays: %s", self.snapshot_id, exc)

    def finish(self, manifest: Manifest, *, read_back: str | None = "stored", jobs: int = 2,
               failure: str | None = None, before_commit: Callable[[], None] | None = None,
               after_commit: Callable[[], None] | None = None) -> VerifyReport | None:
        """The one way a new snapshot is committed: attach ``manifest``, read back what was stored,
        commit, and record the read-back as the snapshot's first verification.

        ``read_back`` is a mode of :func:`~datasafe.snapshot.check.check_chunks` (None: no check);
        a failed check raises :class:`~datasafe.errors.IntegrityError` (its message starts with
        ``failure``) and nothing is committed. ``before_commit`` runs just before the manifest is
        written (a lease check: never commit after losing the lock), ``after_commit`` just after
        it, before the verification record. The caller aborts the writer on any error."""
        self.attach(manifest)
        report = None
        if read_back is not None:
            report = check_chunks(self.repo.snapshot_storage(manifest), manifest, jobs, NullProgress(),
                                  mode=read_back)
            if not report.ok:
                raise IntegrityError(f"{failure or f'read-back check of snapshot {self.snapshot_id} failed'}: "
                                     + "; ".join(report.problems))
        if before_commit is not None:
            before_commit()
        self.commit(manifest)
        if after_commit is not None:
            after_commit()
        if report is not None:
            verification.record(self.storage, self.source, self.snapshot_id, verification.VerificationRecord(
                verification.now(), report.mode, True, report.chunks))
        return report

    def abort(self) -> None:
        """Remove everything written so far (best effort)."""
        if self._committed:
            return
        try:
            self.storage.delete_prefix(self.prefix)
            # a failed first backup leaves no empty source folder (which would look like a source)
            self.storage.remove_folder_if_empty(self.source)
        except StorageError as exc:
            log.warning("could not remove incomplete snapshot %s: %s", self.prefix, exc)


class Repository:
    """Finds, reads and creates snapshots in one storage location."""

    def __init__(self, storage: StorageBackend, keyring: KeyRing | None = None,
                 encryption: EncryptionSettings | None = None, policy_key: PolicyKey | None = None) -> None:
        self.storage = storage
        #: keys to open encrypted snapshots with (the restore side)
        self.keyring = keyring or KeyRing()
        #: recipients new snapshots are encrypted to (the backup side)
        self.encryption = encryption
        #: authenticates new manifests and audit records; checks what the policy reads
        self.policy_key: PolicyKey | None = policy_key

    @property
    def audit_key(self) -> bytes | None:
        """The secret audit records are authenticated with (the policy key's)."""
        return self.policy_key.secret if self.policy_key is not None else None

    # -- reading -----------------------------------------------------------------------------
    def sources(self) -> builtins.list[str]:
        return [d for d in self.storage.list_dirs("") if SOURCE_NAME.match(d)]

    def snapshot_ids(self, source: str) -> builtins.list[str]:
        return [d for d in self.storage.list_dirs(source) if SNAPSHOT_ID.match(d)]

    def load_manifest(self, source: str, snapshot_id: str) -> Manifest:
        key = f"{source}/{snapshot_id}/{MANIFEST_NAME}"
        try:
            data = _read_capped(self.storage, key)
        except NotFound as exc:
            raise IntegrityError(f"snapshot {snapshot_id} of {source} is incomplete (no manifest)") from exc
        manifest = Manifest.from_json(data, f"{source}/{snapshot_id}")
        if manifest.snapshot_id != snapshot_id or manifest.source != source:
            raise IntegrityError(f"manifest {key} belongs to another snapshot ({manifest.snapshot_id})")
        return manifest

    def open(self, manifest: Manifest) -> Manifest:
        """The full manifest of a snapshot: an encrypted one's header is opened with the keyring."""
        if not manifest.is_header:
            return manifest
        where = f"{manifest.source}/{manifest.snapshot_id}"
        cipher = self.keyring.unwrap(manifest.encryption or {}, f"snapshot {manifest.snapshot_id}")
        sealed_info = manifest.sealed or {}
        try:
            sealed = _read_capped(self.storage, f"{where}/{sealed_info.get('path', SEALED_NAME)}")
        except NotFound as exc:
            raise IntegrityError(f"snapshot {where}: the sealed manifest is missing") from exc
        if hashlib.sha256(sealed).hexdigest() != sealed_info.get("sha256"):
            return self._reopen(manifest, where)
        full = Manifest.from_json(cipher.open(sealed, f"manifest of {where}"), where)
        full.check_header(manifest, where)
        full._cipher = cipher
        return full

    def _reopen(self, manifest: Manifest, where: str) -> Manifest:
        """The sealed manifest is not the one the header names. ``datasafe tag`` rewrites both, the
        sealed one first: read the header again, a few times, before calling it edited."""
        for _ in range(REOPEN_ATTEMPTS):
            time.sleep(REOPEN_DELAY_S)
            fresh = self.load_manifest(manifest.source, manifest.snapshot_id)
            if fresh.sealed != manifest.sealed:
                return self.open(fresh)
        raise IntegrityError(f"snapshot {where}: the sealed manifest does not match its header")

    def list(self, source: str | None = None, *, include_incomplete: bool = False) -> builtins.list[SnapshotInfo]:
        """Snapshots, oldest first; incomplete or damaged ones only when asked."""
        if source is not None:
            check_source_name(source)
        if not self.storage.exists(""):
            raise StorageError(f"storage {self.storage.url} does not exist", hint="check --storage")
        out: builtins.list[SnapshotInfo] = []
        for src in [source] if source else self.sources():
            for sid in self.snapshot_ids(src):
                try:
                    info = SnapshotInfo(src, sid, manifest=self.load_manifest(src, sid))
                except IntegrityError as exc:
                    damaged = self.storage.exists(f"{src}/{sid}/{MANIFEST_NAME}")
                    info = SnapshotInfo(src, sid, problem=str(exc), damaged=damaged)
                if info.complete or include_incomplete:
                    out.append(info)
        out.sort(key=_taken_order)
        return out

    def resolve(self, ref: str, source: str | None = None, *, content: bool = True) -> Manifest:
        """Find a snapshot by id (or unique id prefix), ``latest``, or tag (newest carrying it).

        With ``content`` an encrypted snapshot is opened (its full manifest); without it, its
        public header is enough (stored-bytes checks, retention)."""
        found = self._find(ref, source)
        return self.open(found) if content else found

    def _find(self, ref: str, source: str | None) -> Manifest:
        if source is None and "/" in ref:
            source, ref = ref.split("/", 1)
        at = _as_of(ref)
        if at is not None:  # SOURCE@TIME: the newest snapshot taken at or before TIME
            name, when = ref.split("@", 1)[0] or source, at
            if source is not None and name not in (None, source):
                raise UsageError(f"{ref!r} names source {name!r}, --source says {source!r}")
            complete = self.list(name)
            candidates = complete if name is not None else _without_masked_copies(complete)
            if name is None and len({i.source for i in candidates}) > 1:
                names = sorted({i.source for i in candidates})
                raise UsageError(f"{ref!r} is ambiguous: several sources ({', '.join(names)})",
                                  hint=f"name one as SOURCE@TIME, e.g. {names[0]}{ref}")
            before = [i for i in candidates if i.manifest is not None and i.manifest.started_at <= when]
            if not before:
                raise NotFound(f"no complete snapshot of {name or 'any source'} taken at or before "
                               f"{when:%Y-%m-%d %H:%M:%S} UTC")
            return max(before, key=lambda i: i.manifest.started_at).manifest  # type: ignore[union-attr,return-value]
        complete = self.list(source)
        if ref == "latest":
            candidates = complete if source is not None else _without_masked_copies(complete)
            if source is None and len({i.source for i in candidates}) > 1:
                names = sorted({i.source for i in candidates})
                raise UsageError(f"'latest' is ambiguous: several sources ({', '.join(names)})",
                                  hint=f"name one as SOURCE/latest, e.g. {names[0]}/latest, or with --source")
            if not candidates:
                where = f"source {source!r}" if source else self.storage.url
                raise NotFound(f"no complete snapshot in {where}")
            newest = candidates[-1]
            for info in self.list(source, include_incomplete=True):
                if info.damaged and _taken_order(info) > _taken_order(newest):
                    log.warning("snapshot %s is newer than 'latest' but damaged: %s", info.snapshot_id, info.problem)
            return newest.manifest  # type: ignore[return-value]
        by_id = [i for i in complete if i.snapshot_id == ref] or [
            i for i in complete if i.snapshot_id.startswith(ref) and len(ref) >= 8
        ]
        if len(by_id) == 1:
            return by_id[0].manifest  # type: ignore[return-value]
        if len(by_id) > 1:
            raise UsageError(f"snapshot id prefix {ref!r} is ambiguous: give more characters")
        tagged = [i for i in complete if i.manifest is not None and ref in i.manifest.tags]
        if tagged:
            return tagged[-1].manifest  # type: ignore[return-value]
        if SNAPSHOT_ID.match(ref):
            for src in [source] if source else self.sources():
                if ref in self.snapshot_ids(src):
                    self.load_manifest(src, ref)  # raises the precise IntegrityError
        raise NotFound(f"no snapshot, tag or id prefix {ref!r} in {self.storage.url}")

    def snapshot_storage(self, manifest: Manifest) -> SnapshotObjects:
        """The objects of one snapshot, keyed as its manifest lists them."""
        return SnapshotObjects(self.storage, f"{manifest.source}/{manifest.snapshot_id}", manifest._cipher)

    # -- writing -----------------------------------------------------------------------------
    def new_snapshot(self, source: str) -> SnapshotWriter:
        check_source_name(source)
        self.storage.check_writable()
        writer = SnapshotWriter(self, source, new_snapshot_id(), self.encryption)
        writer.begin()
        return writer

    def cleanup_incomplete(self, source: str) -> builtins.list[str]:
        """Remove incomplete snapshots of ``source`` whose writer is gone; returns their ids."""
        removed: builtins.list[str] = []
        for sid in self.snapshot_ids(source):
            prefix = f"{source}/{sid}"
            if self.storage.exists(f"{prefix}/{MANIFEST_NAME}"):
                continue
            if self._writer_alive(prefix):
                continue
            log.info("removing incomplete snapshot %s of %s (left by an interrupted backup)", sid, source)
            try:
                self.storage.delete_prefix(prefix)
            except StorageError as exc:
                log.warning("could not remove incomplete snapshot %s of %s: %s", sid, source, exc)
                continue
            removed.append(sid)
        return removed

    def _writer_alive(self, prefix: str) -> bool:
        try:
            marker = json.loads(self.storage.read_bytes(f"{prefix}/{IN_PROGRESS}"))
        except (NotFound, ValueError):
            return False
        if marker.get("host") == socket.gethostname():
            return process_alive(int(marker.get("pid", 0)))
        return bool(time.time() - float(marker.get("started", 0)) < STALE_AFTER_S)


def _read_capped(storage: StorageBackend, key: str) -> bytes:
    """A manifest's bytes, or one byte more than the largest a reader accepts (never read whole)."""
    with storage.open_read(key) as fh:
        return fh.read(MAX_MANIFEST_BYTES + 1)


def _without_masked_copies(infos: builtins.list[SnapshotInfo]) -> builtins.list[SnapshotInfo]:
    """``infos`` less the snapshots of sources that are only masked copies of another source among them.

    A source is a masked copy of ``B`` when every snapshot of it is masked from ``B`` by its manifest
    (``masking.from.source``), or, for an encrypted one whose public header does not tell, when it is
    named ``B.masked``. So a bare ``latest`` means the unmasked source when the only other candidates
    are its masked derivatives; it stays ambiguous between genuinely different sources.
    """
    sources = {i.source for i in infos}
    if len(sources) < 2:
        return infos

    def base(info: SnapshotInfo) -> str | None:
        m = info.manifest
        if m is None:
            return None
        if m.is_header:
            return info.source.removesuffix(MASKED_SUFFIX) if info.source.endswith(MASKED_SUFFIX) else None
        origin = (m.masking or {}).get("from") or {}
        return str(origin.get("source")) if (m.masking or {}).get("masked") and origin.get("source") else None

    copies = set()
    for src in sources:
        bases = {base(i) for i in infos if i.source == src}
        if len(bases) == 1 and (b := next(iter(bases))) is not None and b != src and b in sources:
            copies.add(src)
    return [i for i in infos if i.source not in copies] if copies != sources else infos


def _taken_order(info: SnapshotInfo) -> tuple[float, str, str]:
    """Oldest first by start time (ids only resolve to the second), then id and source."""
    if info.manifest is not None:
        started = info.manifest.started_at.timestamp()
    else:
        started = datetime.strptime(info.snapshot_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    return started, info.snapshot_id, info.source


def _as_of(ref: str) -> datetime | None:
    """The time of a ``[SOURCE]@TIME`` reference (ISO 8601 date or date and time; UTC unless it
    says otherwise), or None when ``ref`` is not one."""
    if "@" not in ref:
        return None
    text = ref.split("@", 1)[1].strip()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    try:
        return when.astimezone(timezone.utc)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last representable time (or before the first)
        return datetime.max.replace(tzinfo=timezone.utc) if when.year > 1 else datetime.min.replace(tzinfo=timezone.utc)

