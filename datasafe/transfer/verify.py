"""Verify a stored snapshot: its chunks read back, its folder listing and its provenance; the
result is recorded next to the snapshot (see :mod:`datasafe.snapshot.verification`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from datasafe import faultpoints
from datasafe.errors import ConfigError, IntegrityError
from datasafe.progress import NullProgress, Progress
from datasafe.snapshot import provenance, verification
from datasafe.snapshot.check import VERIFY_MODES, VerifyReport, check_chunks
from datasafe.snapshot.manifest import MANIFEST_NAME, SEALED_NAME, Manifest
from datasafe.snapshot.repository import IN_PROGRESS, Repository
from datasafe.snapshot.verification import VerificationRecord
from datasafe.transfer.compare import deep_compare
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)


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
    check_scratch: Callable[[Manifest, DatabaseURL], None] | None = None,
) -> VerifyReport:
    """Read back every chunk (SHA-256, decompression, row counts); ``deep`` also restores and compares.

    ``mode`` ``stored`` checks only the stored bytes (SHA-256; no key needed for an encrypted
    snapshot), ``metadata`` only what the storage reports (sizes, checksums). ``sample`` checks
    only that percentage of the chunks, chosen at random. ``check_scratch`` may refuse the
    scratch database of ``deep`` before anything is copied into it (the commands pass the policy's
    check). The result is recorded next to the snapshot."""
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
    report = check_chunks(repo.snapshot_storage(manifest), manifest, jobs, progress or NullProgress(), mode=mode,
                          sample=sample)
    faultpoints.reach("verify.chunks")
    check_listing(repo, manifest, report)
    check_provenance(repo, manifest, report)
    if deep and report.ok:
        deep_compare(repo, manifest, scratch, jobs, report, pg_bin, check_scratch)
    faultpoints.reach("verify.record")
    log.info("verify %s: %s", manifest.snapshot_id, "ok" if report.ok else "; ".join(report.problems))
    kind = "deep" if report.deep else "sample" if sample is not None and sample < 100 else mode
    verification.record(repo.storage, manifest.source, manifest.snapshot_id, VerificationRecord(
        verification.now(), kind, report.ok, report.chunks, report.problems[:10],
        sample if kind == "sample" else None, round(time.monotonic() - started, 3)))
    return report


def check_listing(repo: Repository, manifest: Manifest, report: VerifyReport) -> None:
    """Objects in the snapshot folder that the manifest does not list are a sign of tampering."""
    listed = {c.path for c in manifest.chunks()} | {MANIFEST_NAME, IN_PROGRESS}
    records = f"{verification.FOLDER}/"
    if manifest.encrypted:
        listed.add(SEALED_NAME)
    for key in repo.snapshot_storage(manifest).list(""):
        if key not in listed and not key.startswith(records):
            report.problems.append(f"unexpected object {key} is not in the manifest")


def check_provenance(repo: Repository, manifest: Manifest, report: VerifyReport) -> None:
    """A manifest signed with this host's policy key must still verify; otherwise it was edited (the
    self-digest can be recomputed by anyone who can write the storage, the HMAC cannot)."""
    if manifest.is_header:
        return  # no HMAC in a public header: it is compared with the sealed manifest when that is opened
    try:
        provenance.status(manifest, repo.policy_key)
    except IntegrityError as exc:
        report.problems.append(str(exc))
