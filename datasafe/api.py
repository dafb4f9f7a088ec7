"""The library API: one plain function per command. The CLI is a thin layer over these.

Example::

    from datasafe import api
    from datasafe.config import load_config, resolve_source

    cfg = load_config()
    storage = api.open_repository("./datasafe-backups")
    manifest = api.backup(resolve_source(cfg, "sqlite:///shop.db"), storage)
    api.restore(storage, manifest.snapshot_id, "sqlite:///copy.db", config=cfg, confirm="copy.db")
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import random
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datasafe import __version__, audit, clock, faultpoints
from datasafe.config import Config, LoadedConfig, Source
from datasafe.engines import BackupOptions, Engine, RestoreOptions, RestorePlan, get_engine
from datasafe.environments import Environment, resolve_target
from datasafe.environments.policy import Policy, PolicyDecision, PolicyRefused
from datasafe.errors import ConfigError, DatasafeError, IntegrityError, NotFound, Refused, UsageError
from datasafe.humanize import count, size
from datasafe.identity import DatabaseIdentity
from datasafe.policykey import load_policy_key
from datasafe.progress import NullProgress, Progress
from datasafe.redact import redact
from datasafe.snapshot import provenance, verification
from datasafe.snapshot.chunks import Compression, check_stored, read_chunk
from datasafe.snapshot.manifest import MANIFEST_NAME, SEALED_NAME, Chunk, Manifest, TableEntry
from datasafe.snapshot.repository import IN_PROGRESS, Repository, SnapshotInfo, SnapshotWriter
from datasafe.snapshot.verification import VerificationRecord
from datasafe.storage import StorageBackend, open_storage
from datasafe.storage.s3_settings import S3Settings
from datasafe.urls import DatabaseURL

if TYPE_CHECKING:
    from datasafe.ops.lease import Lease

log = logging.getLogger(__name__)

READ_BACK_MODES = ("digest", "full", "none")
#: what verify reads: every byte decrypted and decompressed; every stored byte's SHA-256 (no key
#: needed); or only the storage's metadata (sizes and checksums, no object is downloaded)
VERIFY_MODES = ("full", "stored", "metadata")


def open_repository(location: str, s3: S3Settings | None = None, *, config: LoadedConfig | None = None
                    ) -> Repository:
    """The snapshots stored at a storage URL or path (``s3``: settings for ``s3://`` locations).

    The repository carries the policy key of ``config`` (see :mod:`datasafe.policykey`; the
    default key file is created on first use): it signs new manifests and audit records and
    authenticates what the policy reads."""
    return Repository(open_storage(location, s3), policy_key=load_policy_key(config, create=True))


# -- backup --------------------------------------------------------------------------------------
def backup(
    source: Source,
    repo: Repository,
    *,
    tags: Iterable[str] = (),
    jobs: int | None = None,
    compression: Compression | None = None,
    chunk_size: int = 64 << 20,
    read_back: str = "digest",
    progress: Progress | None = None,
    lease: Lease | None = None,
) -> Manifest:
    """Take a consistent snapshot of ``source``; returns its manifest once it is stored and checked.

    ``read_back`` decides what is re-read from storage before the manifest is written: ``digest``
    (default) re-reads every stored byte and checks sizes and SHA-256; ``full`` also decompresses
    and checks raw digests and row counts (what ``verify`` does); ``none`` skips the check. The
    check is recorded as the snapshot's first verification. With a ``lease`` (see
    :mod:`datasafe.ops.lease`), the snapshot is only committed while the lease is still held.
    """
    if read_back not in READ_BACK_MODES:
        raise ConfigError(f"read_back must be one of {', '.join(READ_BACK_MODES)}, not {read_back!r}")
    if not source.url.database:
        raise ConfigError(f"{source.url} names no database")
    engine = get_engine(source.url.engine)
    tags = _check_tags(tags)
    removed = repo.cleanup_incomplete(source.name)
    if removed:
        log.info("removed %s of %s", count(len(removed), "incomplete snapshot"), source.name)
    options = BackupOptions(
        jobs=jobs or source.jobs or 2,
        chunk_size=chunk_size,
        compression=compression or Compression(),
        pg_bin=source.pg_bin,
        progress=progress or NullProgress(),
    )
    with audit.audited(repo.storage, "backup", key=repo.audit_key, source=source.name) as record:
        # the rows' origin, as the server says: the policy classifies the snapshot by it, never by its name
        origin = engine.identity(source.url)
        record["origin"] = origin.as_dict()
        writer = repo.new_snapshot(source.name)
        record["snapshot"] = writer.snapshot_id
        return _backup(source, repo, engine, writer, options, tags, chunk_size, read_back, lease, origin)


def _backup(source: Source, repo: Repository, engine: Engine, writer: SnapshotWriter, options: BackupOptions,
            tags: list[str], chunk_size: int, read_back: str, lease: Lease | None,
            origin: DatabaseIdentity) -> Manifest:
    log.info("backup of %s (%s) started as snapshot %s", source.name, source.url, writer.snapshot_id)
    started = clock.now()
    try:
        faultpoints.reach("backup.begin")
        with _gc_paused():
            result = engine.backup(source.url, writer, options)
        manifest = Manifest(
            datasafe_version=__version__,
            snapshot_id=writer.snapshot_id,
            source=source.name,
            source_url=redact(str(source.url)),
            engine=engine.name,
            server_version=result.server_version,
            database=result.database,
            started_at=started,
            finished_at=clock.now(),
            consistency=result.consistency,
            tags=tags,
            compression=options.compression.describe(),
            chunk_size=chunk_size,
            settings=result.settings,
            schema_parts=result.schema_parts,
            tables=result.tables,
            sequences=result.sequences,
            extra=result.extra,
            origin=origin.as_dict(),
        )
        writer.attach(manifest)
        report = None
        faultpoints.reach("backup.readback")
        if read_back != "none":
            mode = "full" if read_back == "full" else "stored"
            report = _check_chunks(repo, manifest, options.jobs, NullProgress(), mode=mode)
            if not report.ok:
                raise IntegrityError(f"read-back check of snapshot {manifest.snapshot_id} failed: "
                                     + "; ".join(report.problems))
        faultpoints.reach("backup.commit")
        if lease is not None:
            lease.check()  # never commit a snapshot after losing the source's lock
        writer.commit(manifest)
        faultpoints.reach("backup.committed")
        if report is not None:
            verification.record(repo.storage, source.name, writer.snapshot_id, VerificationRecord(
                verification.now(), report.mode, True, report.chunks))
        # re-read what was stored; an encrypted snapshot's header is checked, its sealed part was
        # just written from ``manifest`` (the backup side holds no key to open it)
        stored = repo.load_manifest(source.name, writer.snapshot_id)
        if stored.is_header:
            stored = writer.attach(manifest)
    except BaseException:
        writer.abort()
        raise
    log.info(
        "snapshot %s of %s complete: %s, %s, %s stored",
        stored.snapshot_id, source.name, count(len(stored.tables), "table"), count(stored.rows, "row"),
        size(stored.stored_size),
    )
    return stored


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Millions of short-lived row objects trigger the cyclic collector constantly; reading a
    database creates no reference cycles worth collecting, so pause it meanwhile."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _check_tags(tags: Iterable[str]) -> list[str]:
    out = []
    for tag in tags:
        if not tag or tag == "latest" or any(c.isspace() or c == "/" for c in tag):
            raise ConfigError(f"invalid tag {tag!r}: no spaces or '/', and not 'latest'")
        out.append(tag)
    return out


# -- list / show ---------------------------------------------------------------------------------
def list_snapshots(repo: Repository, source: str | None = None, *, include_incomplete: bool = False,
                   missing_ok: bool = False) -> list[SnapshotInfo]:
    """Complete snapshots, oldest first (incomplete ones too when asked).

    A storage location that does not exist is a :class:`~datasafe.errors.StorageError`; with
    ``missing_ok``, a local folder that does not exist yet (no backup has been stored on this
    machine) holds no snapshots instead."""
    if missing_ok and not local_storage_exists(repo):
        return []
    return repo.list(source, include_incomplete=include_incomplete)


def local_storage_exists(repo: Repository) -> bool:
    """False only for a local storage folder that does not exist (S3: True, its bucket is checked on use)."""
    return repo.storage.scheme != "file" or repo.storage.exists("")


def show(repo: Repository, ref: str, source: str | None = None) -> Manifest:
    """The manifest of a snapshot given by id, ``latest`` or tag.

    Raises:
        IntegrityError: the manifest is signed with this host's policy key and was edited since (a
            forged tag, time or origin), as for any other damage to it.
    """
    manifest = repo.resolve(ref, source)
    provenance.status(manifest, repo.policy_key)
    return manifest


# -- verify --------------------------------------------------------------------------------------
@dataclass
class VerifyReport:
    snapshot_id: str
    source: str
    chunks: int = 0
    stored_bytes: int = 0
    raw_bytes: int = 0
    rows: int = 0
    deep: bool = False
    tables_compared: int = 0
    mode: str = "full"
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot_id, "source": self.source, "ok": self.ok, "chunks": self.chunks,
            "stored_bytes": self.stored_bytes, "raw_bytes": self.raw_bytes, "rows": self.rows,
            "deep": self.deep, "tables_compared": self.tables_compared, "mode": self.mode,
            "problems": self.problems,
        }


def verify(
    repo: Repository,
    ref: str | Manifest,
    *,
    source: str | None = None,
    deep: bool = False,
    scratch: str | None = None,
    jobs: int = 2,
    pg_bin: str | None = None,
    progress: Progress | None = None,
    mode: str = "full",
    sample: float | None = None,
    config: LoadedConfig | None = None,
) -> VerifyReport:
    """Read back every chunk (SHA-256, decompression, row counts); ``deep`` also restores and compares.

    ``mode`` ``stored`` checks only the stored bytes (SHA-256; no key needed for an encrypted
    snapshot), ``metadata`` only what the storage reports (sizes, checksums). ``sample`` checks
    only that percentage of the chunks, chosen at random. The result is recorded next to the
    snapshot (see :mod:`datasafe.snapshot.verification`)."""
    if sample is not None and not 0 < sample <= 100:
        raise ConfigError(f"--sample must be a percentage above 0 and at most 100, not {sample:g}")
    if mode not in VERIFY_MODES:
        raise ConfigError(f"verify mode must be one of {', '.join(VERIFY_MODES)}, not {mode!r}")
    if deep and mode != "full":
        raise ConfigError("--deep needs the full mode")
    content = mode == "full"
    started = time.monotonic()
    if isinstance(ref, Manifest):
        manifest = repo.open(ref) if content else ref
    else:
        manifest = repo.resolve(ref, source, content=content)
    faultpoints.reach("verify.begin")
    report = _check_chunks(repo, manifest, jobs, progress or NullProgress(), mode=mode, sample=sample)
    faultpoints.reach("verify.chunks")
    _check_listing(repo, manifest, report)
    _check_provenance(repo, manifest, report)
    if deep and report.ok:
        _deep_compare(repo, manifest, scratch, jobs, report, pg_bin, config)
    faultpoints.reach("verify.record")
    log.info("verify %s: %s", manifest.snapshot_id, "ok" if report.ok else "; ".join(report.problems))
    kind = "deep" if report.deep else "sample" if sample is not None and sample < 100 else mode
    verification.record(repo.storage, manifest.source, manifest.snapshot_id, VerificationRecord(
        verification.now(), kind, report.ok, report.chunks, report.problems[:10],
        sample if kind == "sample" else None, round(time.monotonic() - started, 3)))
    return report


def _check_chunks(repo: Repository, manifest: Manifest, jobs: int, progress: Progress, *, mode: str = "full",
                  sample: float | None = None) -> VerifyReport:
    report = VerifyReport(manifest.snapshot_id, manifest.source, mode=mode)
    owner: dict[str, TableEntry] = {c.path: t for t in manifest.tables for c in t.chunks}
    objects = repo.snapshot_storage(manifest)

    def check(chunk: Chunk) -> tuple[Chunk, int, int, str | None]:
        table = owner.get(chunk.path)
        label = f"{table.name} {chunk.path}" if table else chunk.path
        rows = raw = 0
        try:
            if mode == "metadata":
                return chunk, chunk.raw_size, chunk.rows, _check_metadata(objects, chunk, label)
            if mode == "stored":
                check_stored(objects, chunk, label=label)
                return chunk, chunk.raw_size, chunk.rows, None
            for block in read_chunk(objects, chunk, label=label):
                raw += len(block)
                if table is not None:
                    rows += block.count(b"\n")
        except IntegrityError as exc:
            return chunk, raw, rows, str(exc)
        if table is not None and rows != chunk.rows:
            return chunk, raw, rows, f"chunk {label} holds {count(rows, 'row')}, the manifest says {chunk.rows:,}"
        return chunk, raw, rows, None

    chunks = manifest.chunks()
    if sample is not None and sample < 100 and chunks:
        picked = set(random.sample(range(len(chunks)), max(1, math.ceil(len(chunks) * sample / 100))))
        chunks = [c for i, c in enumerate(chunks) if i in picked]
    progress.start("verify", f"verify {manifest.snapshot_id}", sum(c.raw_size for c in chunks))
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for chunk, raw, rows, problem in pool.map(check, chunks):
            report.chunks += 1
            report.stored_bytes += chunk.stored_size
            report.raw_bytes += raw
            report.rows += rows
            progress.advance("verify", rows=rows, nbytes=raw)
            if problem:
                report.problems.append(problem)
    progress.finish("verify")
    for t in manifest.tables:
        if sample is None and sum(c.rows for c in t.chunks) != t.rows:
            report.problems.append(f"table {t.name}: chunk rows do not add up to {t.rows:,}")
    return report


def _check_metadata(objects: StorageBackend, chunk: Chunk, label: str) -> str | None:
    try:
        stat = objects.stat(chunk.path)
    except NotFound:
        return f"chunk {label} is missing"
    if stat.size != chunk.stored_size:
        return f"chunk {label} has {stat.size} bytes stored, the manifest says {chunk.stored_size}"
    if stat.checksum and chunk.storage_checksum and stat.checksum != chunk.storage_checksum:
        return f"chunk {label}: the storage checksum differs from the manifest (stored bytes changed)"
    return None


def _check_listing(repo: Repository, manifest: Manifest, report: VerifyReport) -> None:
    """Objects in the snapshot folder that the manifest does not list are a sign of tampering."""
    listed = {c.path for c in manifest.chunks()} | {MANIFEST_NAME, IN_PROGRESS}
    records = f"{verification.FOLDER}/"
    if manifest.encrypted:
        listed.add(SEALED_NAME)
    for key in repo.snapshot_storage(manifest).list(""):
        if key not in listed and not key.startswith(records):
            report.problems.append(f"unexpected object {key} is not in the manifest")


def _check_provenance(repo: Repository, manifest: Manifest, report: VerifyReport) -> None:
    """A manifest signed with this host's policy key must still verify; otherwise it was edited (the
    self-digest can be recomputed by anyone who can write the storage, the HMAC cannot)."""
    if manifest.is_header:
        return  # no HMAC in a public header: it is compared with the sealed manifest when that is opened
    try:
        provenance.status(manifest, repo.policy_key)
    except IntegrityError as exc:
        report.problems.append(str(exc))


def _deep_compare(repo: Repository, manifest: Manifest, scratch: str | None, jobs: int,
                  report: VerifyReport, pg_bin: str | None, config: LoadedConfig | None) -> None:
    engine = get_engine(manifest.engine)
    server = DatabaseURL.parse(scratch) if scratch else None
    if server is not None and server.engine != manifest.engine:
        raise UsageError(f"--scratch {server} is a {server.engine} server; snapshot {manifest.snapshot_id} is a "
                         f"{manifest.engine} snapshot")
    report.deep = True
    with engine.scratch(manifest, server) as target:
        _check_scratch(repo, manifest, target, config)
        plan = engine.plan_restore(manifest, target, RestoreOptions(jobs=jobs, no_owner=True, pg_bin=pg_bin))
        engine.restore(plan, repo.snapshot_storage(manifest))
        expected = {t.name: t.content_blake3 for t in manifest.tables}
        for name, digest in engine.table_digests(target, manifest):
            report.tables_compared += 1
            if digest != expected[name]:
                report.problems.append(f"table {name}: restored content differs from the snapshot")


def _check_scratch(repo: Repository, manifest: Manifest, target: DatabaseURL, config: LoadedConfig | None) -> None:
    """Production data goes into a scratch database only on a production server: the origin's, or
    that of a configured production source or environment (asked by identity)."""
    if manifest.engine == "sqlite":
        return  # a temporary file on this host
    policy = Policy(config or LoadedConfig(Config(), None), repo.policy_key)
    data = policy.data_class(manifest)
    if not data.production:
        return
    found = policy.resolver.lookup(target)
    if isinstance(found, DatasafeError):
        raise Refused(f"cannot tell which server the scratch database {target} is on: {found}")
    servers = [policy.resolver.lookup(k.url) for k in policy.known if k.url is not None and k.env_class ==
               "production" and k.url.engine == manifest.engine]
    if data.origin is not None:
        servers.append(DatabaseIdentity.from_dict(data.origin, f"snapshot {manifest.snapshot_id}"))
    if not any(isinstance(s, DatabaseIdentity) and s.same_server(found) for s in servers):
        raise Refused(f"verify --deep would copy the production data of snapshot {manifest.snapshot_id} onto "
                      f"{target.replace(database='')}, which is not a production server",
                      hint="use --scratch on the server the snapshot came from (the default), or on a server of a "
                           "production source or environment")


# -- restore -------------------------------------------------------------------------------------
def plan_restore(repo: Repository, ref: str | Manifest, target: str, options: RestoreOptions,
                 source: str | None = None) -> RestorePlan:
    """Decide and validate a restore's steps without changing anything; no policy (see :func:`restore`)."""
    manifest = repo.open(ref) if isinstance(ref, Manifest) else repo.resolve(ref, source)
    url = DatabaseURL.parse(target)
    _check_request(manifest, url, options)
    return get_engine(manifest.engine).plan_restore(manifest, url, options)


def _check_request(manifest: Manifest, url: DatabaseURL, options: RestoreOptions) -> None:
    """What can be told wrong without asking any server."""
    if options.schema_only and options.data_only:
        raise UsageError("--schema-only and --data-only exclude each other")
    if url.engine != manifest.engine:
        raise UsageError(
            f"snapshot {manifest.snapshot_id} is a {manifest.engine} snapshot; "
            f"it cannot be restored into a {url.engine} target"
        )


def restore(repo: Repository, ref: str | Manifest, target: str, options: RestoreOptions | None = None, *,
            config: LoadedConfig | None = None, confirm: str | None = None, source: str | None = None,
            dry_run: bool = False, policy: Policy | None = None) -> RestorePlan:
    """Restore a snapshot into ``target`` (an environment name of ``config``, or a database URL).

    The policy (:mod:`datasafe.environments.policy`) is decided first, from the identities the
    servers confirm: a refusal raises :class:`~datasafe.errors.Refused` (exit 8) and is recorded
    in the audit trail. ``confirm`` is ``--confirm``. Then the target is checked (empty, or
    ``clean``); with ``dry_run`` nothing is changed. Without ``config``, no environment is
    configured and every snapshot's data counts as production: an unconfigured target then
    needs ``confirm`` with its database name.
    """
    options = options or RestoreOptions()
    cfg = config or LoadedConfig(Config(), None)
    manifest = repo.open(ref) if isinstance(ref, Manifest) else repo.resolve(ref, source)
    url, env = resolve_target(cfg, target)
    _check_request(manifest, url, options)
    decision = decide(repo, policy or Policy(cfg, repo.policy_key), manifest, url, env, confirm, "restore")
    plan = plan_restore(repo, manifest, url.render(hide_password=False), options)
    plan.policy = decision.record()
    plan.notes[:0] = decision.notes
    if decision.environment is not None:
        plan.environment = {"name": decision.environment, "class": str(decision.env_class)}
    if dry_run:
        return plan
    return run_restore(repo, plan, operation="restore")


def decide(repo: Repository, policy: Policy, manifest: Manifest, url: DatabaseURL, env: Environment | None,
           confirm: str | None, operation: str, *, will_mask: bool | None = None) -> PolicyDecision:
    """:meth:`Policy.decide`, with a refusal recorded in the audit trail before it is raised."""
    try:
        return policy.decide(manifest, url, env, confirm, will_mask=will_mask)
    except PolicyRefused as exc:
        audit.append(repo.storage, operation, "refused", key=repo.audit_key, snapshot=manifest.snapshot_id,
                     source=manifest.source, target=str(url), error=str(exc), exit_code=int(exc.exit_code),
                     decision=exc.decision.record())
        if exc.exit_code == IntegrityError.exit_code:
            raise IntegrityError(exc.message, hint=exc.hint) from None
        raise


def run_restore(repo: Repository, plan: RestorePlan, *, operation: str = "restore", **record: Any) -> RestorePlan:
    """Carry out a planned restore whose policy was decided (its decision is in ``plan.policy``)."""
    m = plan.manifest
    with audit.audited(repo.storage, operation, key=repo.audit_key, snapshot=m.snapshot_id, source=m.source,
                       target=str(plan.target), masked=bool(m.masking),
                       rules_sha256=(m.masking or {}).get("rules_sha256"), decision=plan.policy, **record):
        log.info("restoring snapshot %s of %s into %s", m.snapshot_id, m.source, plan.target)
        faultpoints.reach("restore.begin")
        get_engine(m.engine).restore(plan, repo.snapshot_storage(m))
        log.info("restore of snapshot %s into %s complete", m.snapshot_id, plan.target)
    return plan
