"""The deep check of ``verify --deep``: restore a snapshot into a scratch database and compare
every table's content digest with the manifest's."""

from __future__ import annotations

from collections.abc import Callable

from datasafe.engines import get_engine
from datasafe.errors import UsageError
from datasafe.snapshot.check import VerifyReport
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.transfer.restore import restore_options
from datasafe.urls import DatabaseURL


def deep_compare(repo: Repository, manifest: Manifest, scratch: str | None, jobs: int, report: VerifyReport,
                 pg_bin: str | None, check_scratch: Callable[[Manifest, DatabaseURL], None] | None = None) -> None:
    """Restore ``manifest`` into a scratch database (on ``scratch``, default: the engine's choice)
    and add a problem to ``report`` for every table whose content differs. ``check_scratch`` sees
    the scratch database before anything is copied into it, and may refuse it by raising."""
    engine = get_engine(manifest.engine)
    server = DatabaseURL.parse(scratch) if scratch else None
    if server is not None and server.engine != manifest.engine:
        raise UsageError(f"--scratch {server} is a {server.engine} server; snapshot {manifest.snapshot_id} is a "
                         f"{manifest.engine} snapshot")
    report.deep = True
    with engine.scratch(manifest, server) as target:
        if check_scratch is not None:
            check_scratch(manifest, target)
        plan = engine.plan_restore(manifest, target, restore_options(None, manifest.source, jobs=jobs, no_owner=True,
                                                                     pg_bin=pg_bin, keep_row_order=True))
        engine.restore(plan, repo.snapshot_storage(manifest))
        expected = {t.name: t.content_blake3 for t in manifest.tables}
        for name, digest in engine.table_digests(target, manifest):
            report.tables_compared += 1
            if digest != expected[name]:
                report.problems.append(f"table {name}: restored content differs from the snapshot")
