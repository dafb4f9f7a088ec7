"""A restore into a target of another engine: the plan (every check, nothing written) and its run.

The run creates the tables, loads every table's rows a block of about 128 KiB at a time, converted
column by column (memory stays bounded by a block), then creates indexes, unique constraints and
foreign keys, then sets the identity columns' next values. See docs/cross-engine.md.
"""

from __future__ import annotations

import logging

from datasafe import faultpoints
from datasafe.engines import RestoreOptions, RestorePlan
from datasafe.engines.codec import TabText
from datasafe.engines.registry import codec_for
from datasafe.errors import DatabaseError, DatasafeError, IntegrityError, UsageError
from datasafe.humanize import count as plural
from datasafe.snapshot.chunks import read_chunk
from datasafe.snapshot.manifest import Manifest
from datasafe.storage.base import StorageBackend
from datasafe.transfer.cross.columns import BlockReader, whole_rows
from datasafe.transfer.cross.ddl import TargetTable, build
from datasafe.transfer.cross.schema import read_schema
from datasafe.transfer.cross.targets import Target, make_target
from datasafe.transfer.cross.types import DIALECTS
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

#: the key of :attr:`RestorePlan.state` that marks a cross-engine plan (holds its :class:`Target`)
STATE_KEY = "cross_engine"


def plan_cross(manifest: Manifest, url: DatabaseURL, options: RestoreOptions, storage: StorageBackend) -> RestorePlan:
    """Check a restore of ``manifest`` into ``url`` (another engine) and say what it will do; nothing is written.

    The plan's notes list each column whose type changes (``column t.c: numeric -> NUMERIC(12, 2)
    (...)``) and every object that does not translate (``skipped: view public.v: ...``)."""
    if url.engine not in DIALECTS:
        raise UsageError(f"datasafe cannot restore into a {url.engine} target")
    if options.data_only:
        raise UsageError("--data-only is not available across engines: restore into an empty target")
    tables = manifest.select_tables(options.tables)
    for t in tables:
        codec_for(t.encoding)  # an unknown encoding fails here, before anything is written
    schema = read_schema(manifest, storage)
    target_schema = build(tables, schema, manifest.engine, DIALECTS[url.engine])
    target = make_target(url, target_schema, manifest, options)
    steps = target.check()
    steps.insert(0, f"translate the {manifest.engine} schema of {plural(len(tables), 'table')} for {url.engine}")
    if not options.schema_only:
        steps.append(f"load {plural(len(tables), 'table')}, {plural(sum(t.rows for t in tables), 'row')}")
    steps.append(f"create {plural(len(target_schema.indexes), 'index', 'indexes')} and unique constraints, "
                 f"{plural(len(target_schema.foreign_keys), 'foreign key')}")
    identities = [t for t in target_schema.tables if t.identity]
    if identities:
        steps.append(f"set the next value of {plural(len(identities), 'identity column')}")
    skipped = [*schema.skipped, *target_schema.skipped]
    notes = [f"column {c}" for c in target_schema.columns] + [f"skipped: {s}" for s in skipped]
    plan = RestorePlan(manifest, url, tables, steps, options, target.exists, target.objects, notes,
                       state={STATE_KEY: target})
    return plan


def is_cross(plan: RestorePlan) -> bool:
    return STATE_KEY in plan.state


def run_cross(plan: RestorePlan, storage: StorageBackend) -> None:
    """Carry out a plan of :func:`plan_cross`; on failure the target is left as it was found."""
    target: Target = plan.state[STATE_KEY]
    schema = target.schema
    for s in plan.notes:
        if s.startswith("skipped: "):
            log.warning("%s", s)
    try:
        target.open()
        faultpoints.reach("restore.created")
        target.execute(schema.create_tables())
        faultpoints.reach("restore.schema")
        if not plan.options.schema_only:
            for table in schema.tables:
                _load(target, table, plan, storage)
                faultpoints.reach("restore.load")
        target.execute(schema.create_keys())
        for table in schema.tables:
            if table.identity is not None:
                target.set_identity(table)
        faultpoints.reach("restore.finish")
        target.finish()
    except BaseException as exc:
        target.abort()
        if isinstance(exc, DatasafeError | KeyboardInterrupt | SystemExit):
            raise
        if isinstance(exc, ValueError | KeyError | TypeError | OverflowError):
            raise IntegrityError(f"restoring into {plan.target}: a stored row does not decode: {exc}") from exc
        raise DatabaseError(f"restoring into {plan.target} failed: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(a.decode() if isinstance(a, bytes) else a) for a in getattr(exc, "args", ()) or [exc])
    return (text.strip().splitlines() or [type(exc).__name__])[0]


def _load(target: Target, table: TargetTable, plan: RestorePlan, storage: StorageBackend) -> None:
    entry = table.entry
    codec = codec_for(entry.encoding)
    read = BlockReader(codec if isinstance(codec, TabText) else None, table.types,
                       [f"{entry.name}.{c.name}" for c in entry.columns], target.schema.dialect)
    progress = plan.options.progress
    progress.start(entry.name, entry.name, entry.raw_size or None)
    for chunk in entry.chunks:
        label = f"{entry.name} {chunk.path}"
        blocks = read_chunk(storage, chunk, label=label, count_rows=True)
        try:
            for data in whole_rows(blocks):
                columns = read(data)
                try:
                    target.load(table, columns)
                except DatasafeError:
                    raise
                except Exception as exc:
                    raise DatabaseError(f"loading {label} into {plan.target} failed: {_first_line(exc)}") from exc
                progress.advance(entry.name, rows=len(columns[0]) if columns else data.count(b"\n"),
                                 nbytes=len(data))
        except (ValueError, KeyError, TypeError, OverflowError, UnicodeDecodeError) as exc:
            for _ in blocks:  # the chunk's own digest check names damage better than a decoding error
                pass
            raise IntegrityError(f"chunk {label} holds a row that does not decode: {exc}") from exc
    try:
        target.loaded(table)
    except DatasafeError:
        raise
    except Exception as exc:
        raise DatabaseError(f"loading {entry.name} into {plan.target} failed: {_first_line(exc)}") from exc
    progress.finish(entry.name)
