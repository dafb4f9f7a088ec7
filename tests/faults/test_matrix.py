"""The fault-injection matrix: operation x engine x storage x fault, each a real ``datasafe`` process.

Test ids are ``test_fault[<operation>-<engine>-<storage>-<kind>@<phase>]`` (scripts read them from
the junit report). Without ``DATASAFE_FAULTS=full`` only a fixed fast subset is collected (one
fault per operation and engine on local storage, and a few on S3); ``scripts/faults.sh`` runs
the full matrix. What each fault kind does and which invariants are checked: tests/faults/harness.py
and docs/reliability.md.
"""

# The fixtures imported from tests.s3server are test parameters by design.

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from datasafe.errors import ExitCode
from datasafe.urls import DatabaseURL
from tests.faults import harness
from tests.faults.harness import Run, World
from tests.s3server import Fault, FaultyProxy

pytestmark = [pytest.mark.faults, pytest.mark.timeout(400)]

FULL = os.environ.get("DATASAFE_FAULTS") == "full"
OPERATIONS = ("backup", "restore", "verify", "mask", "refresh", "prune")
ENGINES = ("postgres", "mysql", "sqlite")
STORAGES = ("local", "s3")
PHASES = {
    "backup": ["backup.begin", "backup.table", "backup.readback", "backup.commit", "backup.committed"],
    "restore": ["restore.begin", "restore.created", "restore.schema", "restore.load", "restore.finish"],
    "verify": ["verify.begin", "verify.chunks", "verify.record"],
    "mask": ["mask.begin", "mask.tables", "mask.commit"],
    "refresh": ["refresh.masked", "restore.load", "refresh.restored", "refresh.swap"],
    "prune": ["prune.delete", "prune.delete#2"],
}
#: where the faults that are not injected at every phase go, per operation
STORAGE_PHASE = {"backup": "backup.table", "restore": "restore.load", "verify": "verify.begin",
                 "mask": "mask.tables", "refresh": "mask.tables", "prune": "prune.delete"}
S3_PHASE = {**STORAGE_PHASE, "mask": "mask.begin", "refresh": "refresh.masked"}
DB_PHASE = {"backup": "backup.table", "restore": "restore.load", "refresh": "restore.load"}
CLOCK_PHASES = {"backup": ["backup.table", "backup.readback"], "prune": ["prune.delete"]}


def short(phase: str) -> str:
    """``backup.table`` -> ``table``, ``prune.delete#2`` -> ``delete2`` (ids use no dashes)."""
    name, _, nth = phase.partition("#")
    return name.rsplit(".", 1)[-1] + nth


@dataclass(frozen=True)
class Case:
    operation: str
    engine: str
    storage: str
    kind: str
    phase: str  # a fault point, or "random<n>"

    @property
    def id(self) -> str:
        return f"{self.operation}-{self.engine}-{self.storage}-{self.kind}@{short(self.phase)}"


def full_matrix() -> list[Case]:
    cases = []
    for op in OPERATIONS:
        for engine in ENGINES:
            phases = [p for p in PHASES[op] if not (engine == "mysql" and p == "restore.schema")]
            # local storage: every phase boundary, killed and stopped, and the faults of the database,
            # the file system and the lease clock
            for phase in phases:
                cases += [Case(op, engine, "local", "kill9", phase), Case(op, engine, "local", "sigterm", phase)]
            cases.append(Case(op, engine, "local", "kill9", "random1"))
            if engine != "sqlite" and op in DB_PHASE:
                cases.append(Case(op, engine, "local", "dbreset", DB_PHASE[op]))
            cases += [Case(op, engine, "local", kind, STORAGE_PHASE[op]) for kind in ("diskfull", "readonly")]
            cases += [Case(op, engine, "local", "clock", p) for p in CLOCK_PHASES.get(op, [])]
            # S3: the same operations killed mid-way, and the faults of S3 itself
            cases += [Case(op, engine, "s3", "kill9", phases[len(phases) // 2]),
                      Case(op, engine, "s3", "kill9", "random2")]
            cases += [Case(op, engine, "s3", kind, S3_PHASE[op]) for kind in ("s3_5xx", "s3_throttle", "s3_truncated")]
    return cases


FAST = [
    *[Case(op, engine, "local", kind, phase) for engine in ENGINES for op, kind, phase in [
        ("backup", "kill9", "backup.table"), ("restore", "kill9", "restore.load"),
        ("verify", "sigterm", "verify.chunks"), ("mask", "kill9", "mask.tables"),
        ("refresh", "kill9", "restore.load"), ("prune", "kill9", "prune.delete")]],
    Case("backup", "sqlite", "s3", "s3_5xx", "backup.table"),
    Case("restore", "postgres", "s3", "s3_truncated", "restore.load"),
    Case("prune", "mysql", "s3", "kill9", "prune.delete"),
    Case("verify", "sqlite", "s3", "s3_throttle", "verify.begin"),
]
CASES = full_matrix() if FULL else FAST


def _marks(case: Case) -> list[pytest.MarkDecorator]:
    return {"postgres": [pytest.mark.postgres], "mysql": [pytest.mark.mysql]}.get(case.engine, [])


@pytest.fixture
def world(case: Case, make_world: Callable[..., World]) -> World:
    return make_world(case.engine, case.storage, tmpfs=case.kind in ("diskfull", "readonly"),
                      qa=case.operation == "refresh")


# -- the test ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_marks(c)) for c in CASES])
def test_fault(case: Case, world: World) -> None:
    before = world.complete_snapshots()
    latest = harness.newest(world)
    args, target = _arguments(case, world, latest.snapshot_id)
    removable = {sid for (src, sid) in before if src == "shop" and sid != latest.snapshot_id}
    run = _inject(case, world, args)
    harness.assert_one_line_failure(run)
    _assert_fault_happened(case, run)
    harness.assert_snapshots_kept(world, before, removable if case.operation == "prune" else set())
    harness.assert_listing_sound(world, before)
    _assert_target(case, world, target, run)
    _next_run_succeeds(case, world, args, target)


def _arguments(case: Case, world: World, snapshot: str) -> tuple[list[str], DatabaseURL | None]:
    op = case.operation
    if op == "backup":
        return ["backup", "shop"], None
    if op == "restore":
        target = world.engine.url(world.engine.new_name("rt"))
        confirm = Path(target.database).name if case.engine == "sqlite" else target.database
        return ["restore", snapshot, "--source", "shop", "--target", str(target), "--confirm", confirm], target
    if op == "verify":
        return ["verify", snapshot, "--source", "shop"], None
    if op == "mask":
        return ["mask", snapshot, "--source", "shop", "--rules", "rules.yml", "--workers", "1"], None
    if op == "refresh":
        return ["refresh", "qa"], world.qa
    return ["prune", "shop"], None


def _inject(case: Case, world: World, args: list[str]) -> Run:
    kind, phase = case.kind, case.phase
    if phase.startswith("random"):
        return world.run_killed_at_random(args, case.id)
    if kind == "kill9":
        return world.run(*args, fault=f"{phase}:kill")
    if kind == "sigterm":
        return world.run(*args, fault=f"{phase}:term")
    if kind == "clock":
        return world.run(*args, fault=f"{phase}:clock+3600")
    if kind == "dbreset":
        return world.run_stopped(args, phase, world.engine.reset_connections)
    if kind in ("diskfull", "readonly"):
        mount = world.mount
        assert mount is not None

        repo = Path(world.storage_url)
        made: list[bool] = []

        def break_fs(_pid: int) -> None:
            if kind == "diskfull":
                harness.fill_up(mount)
            else:
                harness.make_readonly(repo)
                made.append(True)

        try:
            return world.run_stopped(args, phase, break_fs)
        finally:
            if kind == "diskfull":
                harness.free_up(mount)
            elif made:
                harness.undo_readonly(repo)
    proxy: FaultyProxy = world.proxy
    fault = {"s3_5xx": Fault("error", times=10**6, status=500),
             "s3_throttle": Fault("error", times=2, status=503, code="SlowDown", message="Please reduce"),
             "s3_truncated": Fault("cut_response", times=2, method="GET", after_bytes=16)}[kind]
    try:
        return world.run_stopped(args, phase, lambda _pid: proxy.inject(fault))
    finally:
        proxy.clear()


def _assert_fault_happened(case: Case, run: Run) -> None:
    if case.phase.startswith("random"):
        return  # the process may have finished before the kill came: then it must have succeeded
    assert run.injected, f"the fault was never injected: {run.describe()}"
    if case.kind == "kill9":
        assert run.returncode == -9, f"{case.phase} was never reached: {run.describe()}"
    elif case.kind == "sigterm":
        assert run.returncode == ExitCode.INTERRUPTED, run.describe()
        assert run.lines[-1] == "datasafe: error: stopped by SIGTERM", run.describe()
    elif case.kind == "clock":
        assert run.returncode == ExitCode.LOCKED and "lost the lock" in run.lines[-1], run.describe()
    elif case.kind == "s3_5xx" or case.kind in ("diskfull", "readonly"):
        assert run.returncode in (0, ExitCode.STORAGE), run.describe()
    elif case.kind == "dbreset":
        assert run.returncode in (0, ExitCode.CONNECTION, ExitCode.DATABASE), run.describe()
    if run.returncode == -9 or case.kind not in ("s3_throttle", "s3_truncated"):
        return
    assert run.returncode in (0, ExitCode.STORAGE, ExitCode.INTEGRITY), run.describe()


def _assert_target(case: Case, world: World, target: DatabaseURL | None, run: Run) -> None:
    """A restore's target is absent, empty, marked or complete; a refresh's is old or new, never a mix."""
    if case.operation == "restore":
        assert target is not None
        state = world.engine.state(target, harness.newest(world))
        assert state in ("absent", "empty", "marked", "complete"), f"target left {state}: {run.describe()}"
        if run.returncode == 0:
            assert state == "complete", run.describe()
    elif case.operation == "refresh":
        assert target is not None
        if world.engine.has_old_content(target):
            return
        # replaced: then by the whole new copy (a kill during the swap, after the switch, may leave
        # the previous copy behind, but never a mix)
        assert world.engine.complete(target, harness.newest(world, "shop.masked")), f"a mix: {run.describe()}"


def _next_run_succeeds(case: Case, world: World, args: list[str], target: DatabaseURL | None) -> None:
    again = world.run(*args)
    if case.operation == "restore" and again.returncode == ExitCode.REFUSED:
        assert target is not None
        state = world.engine.state(target, harness.newest(world))
        line = again.lines[-1]
        if state == "marked":
            assert "holds an interrupted restore of snapshot" in line and "--clean" in line, again.describe()
        else:
            assert state == "complete" and "not empty" in line, again.describe()
        again = world.run(*args, "--clean")
    assert again.returncode == 0, f"the next run failed: {again.describe()}"
    if case.operation == "restore":
        assert target is not None
        assert world.engine.state(target, harness.newest(world)) == "complete"
        assert world.engine.leftovers(target) == []
    elif case.operation == "refresh":
        assert target is not None
        assert world.engine.complete(target, harness.newest(world, "shop.masked"))
    elif case.operation == "prune":
        assert [i.snapshot_id for i in world.repo().list("shop", include_incomplete=True)] == \
            [harness.newest(world).snapshot_id]


def test_matrix_ids_are_parseable() -> None:
    """The id format scripts/reliability.py reads: four dash-separated parts, the fault as kind@phase."""
    for case in full_matrix():
        op, engine, storage, fault = case.id.split("-")
        assert (op, engine, storage) == (case.operation, case.engine, case.storage)
        assert fault.split("@")[0] == case.kind
    assert {c.operation for c in FAST} == set(OPERATIONS) and {c.engine for c in FAST} == set(ENGINES)
