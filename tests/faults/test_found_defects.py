"""Defects the fault-injection matrix found, each pinned by a test that does not depend on timing.

* A prune that failed half-way through removing a snapshot (``rmtree`` in directory order, S3 in
  key order, where ``data/`` comes before ``manifest.json``) could leave a snapshot that ``list``
  showed as complete with its chunks gone. The manifest now goes first.
* A local write that failed when its file was renamed into place (the storage turned read-only)
  tried to remove its temporary file, failed again, and that second OSError escaped as an
  internal error (exit 1) instead of the storage error (exit 5).
* On S3, ``mask`` with more than one worker (and so ``refresh``, which uses one per CPU) failed
  without any fault: the leak audit's background scan runs in a forked process, which reused the
  parent's pooled HTTP connections, so the two processes' responses were garbled on shared
  sockets ("does not match its SHA-256", "was replaced while it was being read"). A forked
  process now makes its own S3 client.
* A MySQL restore whose connection was cut tried to drop what it had created over that same
  connection: a second error line, and the half-restored database stayed. It now reconnects
  (covered by ``test_fault[restore-mysql-local-dbreset@load]``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from datasafe.errors import ExitCode, StorageError
from datasafe.storage.local import LocalStorage
from tests.faults import harness
from tests.faults.harness import World

pytestmark = pytest.mark.faults


def test_prune_stopped_inside_a_snapshot_leaves_it_invisible(make_world: Callable[..., World]) -> None:
    world = make_world("sqlite")
    repo = Path(world.storage_url)
    # oldest first, as prune orders them: by start time (two snapshots may share their id's second)
    ids = sorted((p.name for p in (repo / "shop").iterdir()),
                 key=lambda i: (json.loads((repo / "shop" / i / "manifest.json").read_text())["started_at"], i))
    oldest = repo / "shop" / ids[0]
    stuck = oldest / "schema"  # its objects cannot be removed: the removal stops inside the snapshot
    harness.make_readonly(stuck)
    try:
        failed = world.run("prune", "shop")
    finally:
        harness.undo_readonly(stuck)
    harness.assert_one_line_failure(failed)
    assert failed.returncode == ExitCode.STORAGE, failed.describe()
    listed = world.run("list", "--json")
    assert ids[0] not in [e["snapshot"] for e in json.loads(listed.stdout)], "a half-removed snapshot is listed"
    assert not (oldest / "manifest.json").exists()
    again = world.run("prune", "shop")
    assert again.returncode == 0, again.describe()
    assert sorted(p.name for p in (repo / "shop").iterdir()) == [ids[-1]]


def test_local_write_failing_on_a_read_only_storage_is_a_storage_error(tmp_path: Path) -> None:
    folder = tmp_path / "repo"
    (folder / "shop").mkdir(parents=True)
    writer = LocalStorage(str(folder)).open_write("shop/chunk.zst")
    writer.write(b"rows")
    harness.make_readonly(folder / "shop")  # the open file stays writable; the rename cannot happen
    try:
        with pytest.raises(StorageError, match="Read-only file system"):
            writer.commit()
    finally:
        harness.undo_readonly(folder / "shop")
    assert not (folder / "shop" / "chunk.zst").exists()


def test_mask_with_workers_on_s3(make_world: Callable[..., World]) -> None:
    world = make_world("sqlite", "s3")
    snapshot = harness.newest(world).snapshot_id
    masked = world.run("mask", snapshot, "--source", "shop", "--rules", "rules.yml", "--workers", "2")
    assert masked.returncode == 0, masked.describe()
    checked = world.run("verify", masked.stdout.strip(), "--source", "shop.masked")
    assert checked.returncode == 0, checked.describe()
