"""Run a real ``datasafe`` process, break it at a chosen moment, and check what it left behind.

A fault is named ``<kind>@<phase>``: the kind is what goes wrong, the phase where. Phases are
the library's fault points (:mod:`datasafe.faultpoints`, ``DATASAFE_FAULT_AT``) or ``random``
(a kill after a random delay). Kinds:

==============  ============================================================================
kill9           SIGKILL at the phase
sigterm         SIGTERM at the phase (datasafe stops cleanly, exit 130)
dbreset         the process stops at the phase; its database connections are terminated
                (``pg_terminate_backend``, MariaDB ``KILL``); it goes on
diskfull        (local storage on a small tmpfs) stops at the phase; the file system is filled
readonly        (local storage) stops at the phase; the storage folder is mounted read-only over itself
s3_5xx          (S3) stops at the phase; from then on every request is answered 500
s3_throttle     (S3) stops at the phase; the next requests are answered 503 SlowDown
s3_truncated    (S3) stops at the phase; the next GET responses are cut short
clock           the lease clock jumps an hour ahead at the phase (the lease is lost)
==============  ============================================================================

Then :func:`check` asserts the invariants of docs/reliability.md: no complete snapshot lost or
altered, no incomplete one listed, new snapshots verify, the target untouched, complete or marked,
the failure one line with a documented exit code, and the next run of the same operation succeeds.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasafe.errors import ExitCode
from datasafe.snapshot.repository import Repository
from datasafe.storage import open_storage
from datasafe.storage.s3 import S3Settings
from datasafe.urls import DatabaseURL
from tests.faults.servers import RULES, Engine

KEY = "6f7867290b748930dd2f04ddd0daea10faf9e5366a37512d"
#: exit codes a failed run may end with: the documented ones, never 1 (an internal error)
DOCUMENTED = {int(c) for c in ExitCode} - {int(ExitCode.OK), int(ExitCode.ERROR), int(ExitCode.BROKEN_PIPE)}
RUN_TIMEOUT = 180


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    injected: bool = True
    note: str = ""

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]

    def describe(self) -> str:
        return f"datasafe {' '.join(self.args)} -> {self.returncode}\n{self.stderr[-3000:]}"


@dataclass
class World:
    """One test's storage, configuration and databases."""

    engine: Engine
    storage_kind: str  # local, s3
    folder: Path
    storage_url: str
    source: DatabaseURL
    qa: DatabaseURL
    env_base: dict[str, str]
    #: S3: the faulty proxy and the settings to read the bucket directly (not through the proxy)
    proxy: Any = None
    direct: S3Settings | None = None
    #: local storage on a tmpfs: its mount point
    mount: Path | None = None
    config: Path = field(init=False)

    def __post_init__(self) -> None:
        (self.folder / "rules.yml").write_text(RULES)
        self.config = self.folder / "datasafe.yml"
        self.config.write_text(
            "chunk_size: 64KiB\n"
            f"sources:\n  shop:\n    url: '{self.source.render(hide_password=False)}'\n"
            "    retention: {keep_last: 1}\n"
            f"environments:\n  qa:\n    url: '{self.qa.render(hide_password=False)}'\n    class: testing\n"
            "    source: shop\n    rules: rules.yml\n")

    # -- running datasafe ----------------------------------------------------------------------
    def env(self, fault: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATASAFE_")}
        env.update(self.env_base)
        if fault:
            env["DATASAFE_FAULT_AT"] = fault
        return env

    def command(self, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "datasafe.cli", "--quiet", "--log-format", "human", "--config",
                str(self.config), "--storage", self.storage_url, *args]

    def run(self, *args: str, fault: str | None = None) -> Run:
        proc = subprocess.run(self.command(list(args)), env=self.env(fault), capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, cwd=self.folder)
        return Run(list(args), proc.returncode, proc.stdout, proc.stderr)

    def run_stopped(self, args: list[str], phase: str, act: Any) -> Run:
        """Run until the process stops itself at ``phase``; call ``act(pid)``; let it go on."""
        proc = subprocess.Popen(self.command(args), env=self.env(f"{phase}:stop"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=self.folder)
        injected = False
        try:
            deadline = time.monotonic() + RUN_TIMEOUT
            while proc.poll() is None and not _stopped(proc.pid):
                assert time.monotonic() < deadline, f"datasafe {args} never reached {phase}"
                time.sleep(0.005)
            if proc.poll() is None:
                act(proc.pid)
                injected = True
                os.kill(proc.pid, signal.SIGCONT)
            out, err = proc.communicate(timeout=RUN_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        return Run(args, proc.returncode, out, err, injected)

    def run_killed_at_random(self, args: list[str], seed: str) -> Run:
        delay = random.Random(seed).uniform(0.05, 1.5)
        proc = subprocess.Popen(self.command(args), env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=self.folder)
        try:
            try:
                proc.wait(delay)
            except subprocess.TimeoutExpired:
                proc.kill()
            out, err = proc.communicate(timeout=RUN_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        return Run(args, proc.returncode, out, err, proc.returncode == -signal.SIGKILL,
                   note=f"killed after {delay:.2f}s")

    # -- the storage, read directly --------------------------------------------------------------
    def repo(self) -> Repository:
        if self.storage_kind == "s3":
            location = self.storage_url.partition("?")[0]
            return Repository(open_storage(location, {"s3": self.direct} if self.direct else None))
        return Repository(open_storage(self.storage_url))

    def complete_snapshots(self) -> dict[tuple[str, str], str]:
        """(source, id) -> SHA-256 of the manifest, for every complete snapshot."""
        repo = self.repo()
        out = {}
        for info in repo.list(include_incomplete=True):
            if info.complete:
                data = repo.storage.read_bytes(f"{info.source}/{info.snapshot_id}/manifest.json")
                out[(info.source, info.snapshot_id)] = hashlib.sha256(data).hexdigest()
        return out


def _stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


# -- invariants ------------------------------------------------------------------------------------
def assert_one_line_failure(run: Run) -> None:
    """A run that ended on its own (not killed) either succeeded or failed with one documented line."""
    if run.returncode < 0:
        return  # killed: nothing to say
    assert "Traceback" not in run.stderr, run.describe()
    if run.returncode == 0:
        return
    assert run.returncode in DOCUMENTED, f"undocumented exit code: {run.describe()}"
    errors = [ln for ln in run.lines if not ln.startswith("datasafe: warning:")]
    assert len(errors) == 1 and errors[0].startswith("datasafe: error: "), f"not one error line: {run.describe()}"


def assert_snapshots_kept(world: World, before: dict[tuple[str, str], str], removable: set[str]) -> None:
    """Every complete snapshot is still there, byte for byte (``removable``: ids prune may remove)."""
    after = world.complete_snapshots()
    for key, digest in before.items():
        if key[1] in removable and key not in after:
            continue
        assert key in after, f"complete snapshot {key} was lost"
        assert after[key] == digest, f"complete snapshot {key} was altered"


def assert_listing_sound(world: World, before: dict[tuple[str, str], str]) -> None:
    """``list`` shows only complete snapshots; new ones verify; incomplete ones cannot be restored."""
    listed = world.run("list", "--json")
    assert listed.returncode == 0, listed.describe()
    import json

    entries = json.loads(listed.stdout)
    assert all(e.get("complete", True) for e in entries), listed.stdout
    repo = world.repo()
    infos = repo.list(include_incomplete=True)
    for info in infos:
        if info.complete and (info.source, info.snapshot_id) not in before:
            checked = world.run("verify", info.snapshot_id, "--source", info.source)
            assert checked.returncode == 0, f"a new listed snapshot does not verify: {checked.describe()}"
        elif not info.complete:
            assert info.snapshot_id not in {e["snapshot"] for e in entries}
            tried = world.run("restore", info.snapshot_id, "--source", info.source, "--target",
                              str(world.engine.url(world.engine.new_name("never"))), "--dry-run")
            assert tried.returncode in (ExitCode.INTEGRITY, ExitCode.NOT_FOUND), tried.describe()


def newest(world: World, source: str = "shop") -> Any:
    repo = world.repo()
    infos = [i for i in repo.list(source) if i.complete]
    assert infos, f"no complete snapshot of {source}"
    return repo.load_manifest(source, infos[-1].snapshot_id)


def fill_up(mount: Path) -> None:
    """Write zeros into ``mount`` until the file system is full."""
    block = b"\0" * (1 << 20)
    with open(mount / "filler", "wb") as fh:
        try:
            while True:
                fh.write(block)
                fh.flush()
        except OSError:
            pass
    small = b"\0" * 4096
    try:
        with open(mount / "filler2", "wb") as fh:
            while True:
                fh.write(small)
                fh.flush()
    except OSError:
        pass


def free_up(mount: Path) -> None:
    for name in ("filler", "filler2"):
        (mount / name).unlink(missing_ok=True)


def mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def make_readonly(path: Path) -> None:
    """Mount ``path`` read-only over itself: files open for writing stay so, every new write fails
    with EROFS (a remount of the whole file system is refused while files are open for writing)."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True, capture_output=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True, capture_output=True)


def undo_readonly(path: Path) -> None:
    subprocess.run(["umount", str(path)], check=True, capture_output=True)


def umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def copy_seed(seed: Path, world: World) -> None:
    """Put the seed snapshots into the world's storage (a folder, or the S3 bucket directly)."""
    if world.storage_kind == "local":
        shutil.copytree(seed, Path(world.storage_url), dirs_exist_ok=True)
        return
    storage = world.repo().storage
    for path in sorted(seed.rglob("*")):
        if path.is_file():
            storage.write_bytes(path.relative_to(seed).as_posix(), path.read_bytes())
