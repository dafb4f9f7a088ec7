"""A restore killed with SIGKILL in the middle of loading rows never leaves an unmarked half-database.

PostgreSQL builds a new target under a temporary name and renames it at the end, so a killed
restore leaves no target at all, and the next restore drops the marked leftover. MySQL/MariaDB
marks the target with a ``_datasafe_restore`` table, and SQLite renames a finished file into
place. An existing target is marked while it is being restored. The next restore into a marked
target names the interrupted restore in one line (exit 8) and ``--clean`` replaces it; the result
equals the snapshot, table by table (content digests).
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable

import pytest

from datasafe.errors import ExitCode
from datasafe.urls import DatabaseURL
from tests.faults import harness
from tests.faults.harness import World

pytestmark = pytest.mark.faults

ENGINES = [pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("mysql", marks=pytest.mark.mysql),
           "sqlite"]
SERVERS = ENGINES[:2]


def restore_args(world: World, snapshot: str, target: DatabaseURL, *extra: str) -> list[str]:
    confirm = os.path.basename(target.database) if target.engine == "sqlite" else target.database
    return ["restore", snapshot, "--source", "shop", "--target", str(target), "--confirm", confirm, *extra]


def assert_names_interrupted_restore(run: harness.Run, target: DatabaseURL, snapshot: str) -> None:
    assert run.returncode == ExitCode.REFUSED, run.describe()
    assert len(run.lines) == 1, run.describe()
    pattern = (rf"datasafe: error: database {re.escape(target.database)} holds an interrupted restore of snapshot "
               rf"{snapshot} \(started at \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ\); rerun with --clean to drop it")
    assert re.fullmatch(pattern, run.lines[0]), run.lines[0]


@pytest.mark.parametrize("engine", ENGINES)
def test_sigkill_mid_load_into_a_new_database(engine: str, make_world: Callable[..., World]) -> None:
    world = make_world(engine)
    snapshot = harness.newest(world)
    target = world.engine.url(world.engine.new_name("rt"))
    args = restore_args(world, snapshot.snapshot_id, target)

    killed = world.run(*args, fault="restore.load:kill")  # the first table is in, the others are not
    assert killed.returncode == -signal.SIGKILL, killed.describe()
    if engine == "mysql":
        assert world.engine.state(target, snapshot) == "marked"
        assert_names_interrupted_restore(world.run(*args), target, snapshot.snapshot_id)
        done = world.run(*args, "--clean")
    else:
        # no target at all: only a temporary database (file) that says whose it is
        assert world.engine.state(target, snapshot) == "absent"
        (leftover,) = world.engine.leftovers(target)
        assert "__datasafe_restore_" in leftover or ".datasafe-restore-" in leftover
        done = world.run(*args)
    assert done.returncode == 0, done.describe()
    assert world.engine.state(target, snapshot) == "complete"  # every table's digest equals the snapshot's
    assert world.engine.leftovers(target) == []


@pytest.mark.parametrize("engine", SERVERS)
def test_sigkill_mid_load_into_an_existing_empty_database(engine: str, make_world: Callable[..., World]) -> None:
    world = make_world(engine)
    snapshot = harness.newest(world)
    target = world.engine.create("rtex", [])
    if engine == "postgres":
        with world.engine.conn() as conn:  # type: ignore[attr-defined]
            conn.execute(f'COMMENT ON DATABASE "{target.database}" IS \'the shop of the QA team\'')
    args = restore_args(world, snapshot.snapshot_id, target)

    killed = world.run(*args, fault="restore.load:kill")
    assert killed.returncode == -signal.SIGKILL, killed.describe()
    assert world.engine.state(target, snapshot) == "marked"
    assert_names_interrupted_restore(world.run(*args), target, snapshot.snapshot_id)
    # --data-only is refused the same way: its tables are there, but hold what a killed restore left
    assert_names_interrupted_restore(world.run(*args, "--data-only"), target, snapshot.snapshot_id)

    done = world.run(*args, "--clean")
    assert done.returncode == 0, done.describe()
    assert world.engine.state(target, snapshot) == "complete"
    if engine == "postgres":
        with world.engine.conn() as conn:  # type: ignore[attr-defined]
            comment = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                                   "WHERE datname = %s", (target.database,)).fetchone()
        assert comment == ("the shop of the QA team",)  # the database's own comment is back


@pytest.mark.parametrize("engine", SERVERS)
def test_a_running_restore_is_not_cleaned_away(engine: str, make_world: Callable[..., World]) -> None:
    """While the restore that marked a target still runs on this host, even --clean is refused."""
    world = make_world(engine)
    snapshot = harness.newest(world)
    target = world.engine.create("rtrun", [])
    args = restore_args(world, snapshot.snapshot_id, target)
    second: list[harness.Run] = []

    def meanwhile(pid: int) -> None:
        second.append(world.run(*args, "--clean"))
        os.kill(pid, signal.SIGKILL)

    first = world.run_stopped(args, "restore.load", meanwhile)
    assert first.returncode == -signal.SIGKILL
    (refused,) = second
    assert refused.returncode == ExitCode.REFUSED and len(refused.lines) == 1, refused.describe()
    assert f"database {target.database} is being restored from snapshot {snapshot.snapshot_id}" in refused.lines[0]
    assert "right now" in refused.lines[0]
    done = world.run(*args, "--clean")  # its process is gone now: an interrupted restore, replaced
    assert done.returncode == 0, done.describe()
    assert world.engine.state(target, snapshot) == "complete"


def test_sqlite_leftover_of_a_live_restore_stays(make_world: Callable[..., World]) -> None:
    """The next restore removes only temporary files whose process is gone."""
    world = make_world("sqlite")
    snapshot = harness.newest(world)
    target = world.engine.url(world.engine.new_name("rt"))
    path = target.database
    live = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.datasafe-restore-{os.getpid()}-abcd")
    dead = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.datasafe-restore-999999999-abcd")
    for name in (live, dead):
        with open(name, "wb") as fh:
            fh.write(b"partial")
    done = world.run(*restore_args(world, snapshot.snapshot_id, target))
    assert done.returncode == 0, done.describe()
    assert os.path.exists(live) and not os.path.exists(dead)
    os.unlink(live)
