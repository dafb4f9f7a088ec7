"""Masking a stored snapshot into a new, masked snapshot: :func:`mask`; and :func:`rules_init`.

The masked snapshot is written by the pipeline (:mod:`datasafe.masking.pipeline`), checked for
leaks, read back and committed like a backup (:meth:`SnapshotWriter.finish`). Whether its output
may go into an environment is the mask command's part (:mod:`datasafe.commands.mask`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasafe import __version__, audit, clock, faultpoints
from datasafe.engines import RestorePlan
from datasafe.masking import parallel
from datasafe.masking.codecs import Cell
from datasafe.masking.ddl import SchemaReport, check_schema, mask_schema
from datasafe.masking.leaks import LeakAudit
from datasafe.masking.leaks_items import Blocks
from datasafe.masking.leaks_report import LeakFound, LeakReport
from datasafe.masking.masking_key import MaskingKey
from datasafe.masking.pipeline import MAX_WORKERS, mask_tables, row_views, sample, table_blocks
from datasafe.masking.plan import MaskPlan, column_infos, plan_masking
from datasafe.masking.rules import load_rules, rules_sha256
from datasafe.masking.suggest import suggest_rules
from datasafe.progress import NullProgress, Progress
from datasafe.snapshot.chunks import Compression
from datasafe.snapshot.manifest import Manifest, TableEntry
from datasafe.snapshot.repository import Repository, SnapshotObjects, SnapshotWriter, check_source_name

log = logging.getLogger(__name__)

#: the storage name of masked snapshots of SOURCE, unless one is given
MASKED_SUFFIX = ".masked"


@dataclass
class MaskResult:
    """What a masking run did (or, with ``dry_run``, would do)."""

    source: Manifest
    plan: MaskPlan
    manifest: Manifest | None = None
    samples: dict[str, list[tuple[dict[str, Cell], dict[str, Cell]]]] = field(default_factory=dict)
    #: with a target (the mask command): the policy decision taken before masking, and the restore afterwards
    policy: dict[str, Any] | None = None
    restored: RestorePlan | None = None
    #: the leak audit's result (None: not run, with ``leak_audit=False`` or ``dry_run``)
    leak_report: LeakReport | None = None
    #: what happens to the schema's own text (comments, defaults, view bodies, ...)
    schema: SchemaReport | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "from_snapshot": self.source.snapshot_id, "from_source": self.source.source,
            "strict": self.plan.strict,
            "tables": {t.name: {"action": t.action, "where": t.where, "columns": t.strategies}
                       for t in self.plan.tables},
        }
        if self.manifest is not None:
            out.update(snapshot=self.manifest.snapshot_id, source=self.manifest.source,
                       rows=self.manifest.rows, stored_bytes=self.manifest.stored_size)
        if self.policy is not None:
            out["policy"] = self.policy
        if self.restored is not None:
            out["restored"] = self.restored.describe()
        if self.leak_report is not None:
            out["leak_audit"] = self.leak_report.describe()
        if self.schema is not None:
            out["schema"] = self.schema.describe()
        if self.samples:
            out["samples"] = {t: [{"before": b, "after": a} for b, a in pairs] for t, pairs in self.samples.items()}
        return out


def mask(repo: Repository, ref: str | Manifest, rules_path: str | Path, key: MaskingKey, *,
         source: str | None = None, name: str | None = None, tags: list[str] | None = None,
         strict: bool | None = None, compression: Compression | None = None, dry_run: bool = False,
         sample_rows: int = 3, progress: Progress | None = None, workers: int | None = None,
         leak_audit: bool = True, check_target: Callable[[MaskResult], None] | None = None) -> MaskResult:
    """Turn a stored snapshot into a masked snapshot (named ``<source>.masked`` unless ``name``).

    The rules are checked against the snapshot's schema before anything is written; with
    ``dry_run`` nothing is written and a few rows per masked table are returned before/after.
    ``workers`` processes mask large tables (default: one per usable CPU); the output is the
    same for any number.

    ``check_target`` is called with the planned result before any masking work, in ``dry_run``
    too: the mask command decides there whether the masked output (strict or not) may go into
    its target, so that a run that would be refused stores nothing.

    Before the masked snapshot is committed, the leak audit (:mod:`datasafe.masking.leaks`)
    looks for original values of the masked columns anywhere in the output; a leak the rules do
    not accept (``accept_leaks``) raises :class:`~datasafe.masking.leaks_report.LeakFound` and
    nothing is stored. ``leak_audit=False`` skips it (logged, and recorded in the manifest).
    """
    manifest = repo.open(ref) if isinstance(ref, Manifest) else repo.resolve(ref, source)
    rules = load_rules(rules_path)
    if strict is False and rules.strict:
        log.warning("strict coverage turned off for this run: columns the rules do not mention are copied unmasked")
    plan = plan_masking(manifest, rules, key.secret, strict=strict)
    leaks = LeakAudit.for_plan(plan) if leak_audit else None  # checks accept_leaks, before anything is written
    if not leak_audit:
        log.warning("leak audit turned off for this run: the masked snapshot is not checked for original values "
                    "(recorded in its manifest as leak_audit: false)")
    result = MaskResult(manifest, plan)
    if check_target is not None:
        check_target(result)
    objects = repo.snapshot_storage(manifest)
    result.schema = check_schema(manifest, objects, plan.rules, strict=plan.strict)  # stops before any write
    if dry_run:
        result.samples = sample(plan, objects, sample_rows)
        return result
    out_name = check_source_name(name or f"{manifest.source}{MASKED_SUFFIX}")
    digest = rules_sha256(rules_path)
    with audit.audited(repo.storage, "mask", key=repo.audit_key, source=manifest.source,
                       from_snapshot=manifest.snapshot_id, rules_sha256=digest, key_id=key.key_id,
                       random_key=key.is_random, strict=plan.strict) as record:
        writer = repo.new_snapshot(out_name)
        record["snapshot"] = writer.snapshot_id
        try:
            masked = _write(repo, manifest, plan, objects, writer, rules_path, digest, key, tags, compression,
                            progress, workers, leaks)
        except LeakFound as exc:
            record["leak_audit"] = exc.report.record()
            raise
        record["leak_audit"] = (masked.masking or {}).get("leak_audit")
    result.manifest = masked
    result.leak_report = leaks.report if leaks is not None else None
    log.info("masked snapshot %s of %s complete: %d rows of %d kept", masked.snapshot_id, out_name, masked.rows,
             manifest.rows)
    return result


def _write(repo: Repository, manifest: Manifest, plan: MaskPlan, objects: SnapshotObjects, writer: SnapshotWriter,
           rules_path: str | Path, digest: str, key: MaskingKey, tags: list[str] | None,
           compression: Compression | None, progress: Progress | None, workers: int | None,
           leaks: LeakAudit | None = None) -> Manifest:
    out_name = writer.source
    log.info("masking snapshot %s of %s with %s (key %s) into %s as %s", manifest.snapshot_id, manifest.source,
             Path(rules_path).name, key.key_id, out_name, writer.snapshot_id)
    started = clock.now()
    try:
        if leaks is not None:  # the kept columns and copied tables, before masking looks for originals in them
            leaks.expose(lambda e: row_views(objects, e),
                         min(parallel.usable_cpus(), MAX_WORKERS) if workers is None else workers)
        faultpoints.reach("mask.begin")
        tables, parts = mask_tables(plan, objects, writer, compression or Compression(), manifest.chunk_size,
                                    progress or NullProgress(), workers, leaks)
        faultpoints.reach("mask.tables")
        parts, schema = mask_schema(manifest, parts, objects, writer, plan.rules, strict=plan.strict,
                                    compression=compression)
        if leaks is not None:  # before anything is committed: a leak leaves no masked snapshot behind
            found = leaks.finish(Blocks(lambda e: table_blocks(objects, e), lambda e: table_blocks(writer.objects, e),
                                        {t.name: t for t in manifest.tables}, {t.name: t for t in tables}))
            if not found.passed:
                raise LeakFound(found)
        body = manifest.model_dump()
        for drop in ("encryption", "sealed", "summary", "objects", "masking", "manifest_sha256", "provenance"):
            body.pop(drop, None)
        body.update(
            # where production lives (host, port, user, database or file) stays out of the masked
            # snapshot: the scheme tells the engine; ``origin`` (an identity digest) stays for the policy
            source_url=masked_source_url(manifest.source_url),
            datasafe_version=__version__, snapshot_id=writer.snapshot_id, source=out_name, started_at=started,
            finished_at=clock.now(), tags=list(tags or []),
            compression=(compression or Compression()).describe(), tables=tables, schema_parts=parts,
            masking={
                "masked": True, "strict": plan.strict, "rules_file": Path(rules_path).name,
                "rules_sha256": digest, "key_id": key.key_id,
                "from": {"source": manifest.source, "snapshot_id": manifest.snapshot_id},
                "tables": {t.name: {"action": t.action, **({"where": t.where} if t.where else {}),
                                    "columns": t.strategies} for t in plan.tables},
                "schema": schema.describe(),
                "leak_audit": leaks.report.record() if leaks is not None and leaks.report is not None else False,
            },
        )
        masked = Manifest.model_validate(body)
        writer.finish(masked, read_back="stored", failure="read-back of the masked snapshot failed",
                      before_commit=lambda: faultpoints.reach("mask.commit"))
    except BaseException:
        writer.abort()
        if leaks is not None:
            leaks.close()
        raise
    return masked


def masked_source_url(url: str) -> str:
    """What a masked manifest records as ``source_url``: only the scheme (``postgresql://``)."""
    return url.partition("://")[0] + "://"


def rules_init(source: Manifest | list[TableEntry]) -> str:
    """A starter rules file for the tables of a snapshot (or of a live database's
    :meth:`~datasafe.engines.base.Engine.describe`): every column listed."""
    tables = source.tables if isinstance(source, Manifest) else source
    return suggest_rules([(t.name, column_infos(t)) for t in tables])
