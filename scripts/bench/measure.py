"""Run a command or a shell-less pipeline and measure its wall time and memory.

Two memory figures are kept because neither alone is right for every command:

* ``max_rss_kb`` - the largest peak RSS of any single process: the kernel's ``ru_maxrss`` of
  each pipeline member, which also covers the descendants that member waited for (the kernel
  keeps the max, not the sum). Each member runs under GNU time (``/usr/bin/time -f %M``)
  because a process started directly from Python inherits this interpreter's RSS as the floor
  of its ``ru_maxrss`` (the kernel records the old address space's high-water mark at exec);
  GNU time is small and forks the real command itself. Without GNU time the figure comes
  from ``wait4`` and is only an upper bound.
* ``tree_pss_kb`` - the peak of the *sum* of PSS (proportional set size, so pages shared
  between forked workers are not counted twice) over every pipeline member and all their
  descendants, sampled from /proc every ``SAMPLE_INTERVAL`` seconds. Sampling can miss a
  short spike, hence ``peak_kb`` reports the larger of the two.

Memory used inside the PostgreSQL server on behalf of a client is not counted.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

SAMPLE_INTERVAL = 0.1
GNU_TIME = "/usr/bin/time"


def gnu_time_available() -> bool:
    """Tell whether GNU time (with ``-f`` and ``-o``) can wrap the measured commands."""
    try:
        proc = subprocess.run([GNU_TIME, "-f", "%M", "-o", os.devnull, "true"],
                              capture_output=True, timeout=10, check=False)
    except OSError:
        return False
    return proc.returncode == 0


@dataclass(frozen=True)
class Measurement:
    """Wall time and memory of one run of a command or pipeline."""

    wall_s: float
    max_rss_kb: int
    tree_pss_kb: int | None

    @property
    def peak_kb(self) -> int:
        """The larger of the exact per-process peak and the sampled process-tree sum."""
        return max(self.max_rss_kb, self.tree_pss_kb or 0)


@dataclass
class ProcessResult:
    """How one pipeline member ended."""

    argv: list[str]
    returncode: int
    max_rss_kb: int
    stderr_path: Path


class CommandFailed(Exception):
    """A measured command could not be started or exited non-zero."""

    def __init__(self, step: str, failures: list[ProcessResult], detail: str = "") -> None:
        self.step = step
        self.failures = failures
        self.detail = detail
        super().__init__(step)

    def describe(self, tail_lines: int = 20) -> str:
        """Human-readable account: which command failed, its status and stderr tail."""
        lines = [f"step '{self.step}' failed"]
        if self.detail:
            lines.append(f"  {self.detail}")
        for failure in self.failures:
            lines.append(f"  command: {shlex.join(failure.argv)}")
            lines.append(f"  exit status: {failure.returncode}")
            tail = read_tail(failure.stderr_path, tail_lines)
            lines.append("  stderr tail:" if tail else "  stderr: (empty)")
            lines.extend("    " + line for line in tail)
        return "\n".join(lines)


def read_tail(path: Path, count: int) -> list[str]:
    """Last ``count`` lines of a text file (empty when missing)."""
    try:
        return path.read_text(errors="replace").splitlines()[-count:]
    except OSError:
        return []


def _proc_table() -> dict[int, int]:
    """Map every visible pid to its parent pid."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry)] = int(fields[1])
    return parents


def _descendants(roots: Sequence[int], parents: dict[int, int]) -> set[int]:
    """``roots`` and every process below them."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def _pss_kb(pid: int) -> int:
    """PSS of one process in kB (0 when it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeMemorySampler:
    """Background thread tracking the peak summed PSS of a process tree."""

    def __init__(self, roots: Sequence[int]) -> None:
        self.roots = list(roots)
        self.peak_kb: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.available = os.path.exists("/proc/self/smaps_rollup")

    def start(self) -> None:
        if self.available:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            pids = _descendants(self.roots, _proc_table())
            total = sum(_pss_kb(pid) for pid in pids)
            if total:  # a step shorter than one interval may end before anything is seen
                self.peak_kb = max(self.peak_kb or 0, total)
            if self._stop.wait(SAMPLE_INTERVAL):
                return


def _read_rss_file(path: Path) -> int | None:
    """The ``%M`` figure GNU time wrote (its last line), or None."""
    lines = read_tail(path, 1)
    return int(lines[0]) if lines and lines[0].strip().isdigit() else None


def _reap(proc: subprocess.Popen[bytes]) -> tuple[int, int]:
    """Wait for ``proc`` with wait4; return (exit code, ru_maxrss in kB)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss


def _spawn(commands: Sequence[Sequence[str]], stdout: IO[bytes] | None,
           stderr_paths: Sequence[Path]) -> list[subprocess.Popen[bytes]]:
    """Start the pipeline members (argv as given), each reading the previous one's stdout."""
    procs: list[subprocess.Popen[bytes]] = []
    upstream: IO[bytes] | None = None
    try:
        for index, argv in enumerate(commands):
            last = index == len(commands) - 1
            with open(stderr_paths[index], "wb") as err:
                proc = subprocess.Popen(
                    list(argv), stdin=upstream or subprocess.DEVNULL,
                    stdout=stdout if last else subprocess.PIPE, stderr=err,
                )
            if upstream is not None:
                upstream.close()  # only the reader keeps the pipe, so a dead reader stops the writer
            upstream = proc.stdout
            procs.append(proc)
    except BaseException:
        if upstream is not None:
            upstream.close()
        for proc in procs:
            proc.kill()
            _reap(proc)
        raise
    return procs


def run_measured(step: str, commands: Sequence[Sequence[str]], log_dir: Path,
                 stdout_path: Path | None = None, use_gnu_time: bool = True) -> Measurement:
    """Run ``commands`` as a pipeline (``a | b | ...``) and measure it.

    Args:
        step: name of the step, used for log file names and error messages.
        commands: argv of each pipeline member; a single command is a one-member pipeline.
        log_dir: where each member's stderr is written.
        stdout_path: file receiving the last member's stdout (discarded when None).
        use_gnu_time: wrap each member in GNU time for its peak RSS (see the module doc).

    Raises:
        CommandFailed: a member could not be started or any member exited non-zero
            (the pipeline fails like ``set -o pipefail``).
    """
    slug = "".join(ch if ch.isalnum() else "_" for ch in step).strip("_")
    stderr_paths = [log_dir / f"{slug}.{i}.stderr" for i in range(len(commands))]
    rss_paths = [log_dir / f"{slug}.{i}.maxrss" for i in range(len(commands))]
    launched = [[GNU_TIME, "-f", "%M", "-o", str(rss), *argv] if use_gnu_time else list(argv)
                for argv, rss in zip(commands, rss_paths, strict=True)]
    stdout = open(stdout_path, "wb") if stdout_path else open(os.devnull, "wb")  # noqa: SIM115
    start = time.monotonic()
    try:
        procs = _spawn(launched, stdout, stderr_paths)
    except OSError as exc:
        stdout.close()
        raise CommandFailed(step, [], f"cannot start {exc.filename}: {exc.strerror}") from exc
    sampler = TreeMemorySampler([p.pid for p in procs])
    sampler.start()
    with stdout:
        try:
            outcomes = [_reap(proc) for proc in procs]
        finally:
            sampler.stop()
    wall = time.monotonic() - start
    results = []
    for argv, (code, waited_rss), err, rss in zip(commands, outcomes, stderr_paths, rss_paths, strict=True):
        measured = _read_rss_file(rss) if use_gnu_time else None
        results.append(ProcessResult(list(argv), code, measured or waited_rss, err))
    failures = [r for r in results if r.returncode != 0]
    if failures:
        raise CommandFailed(step, failures)
    return Measurement(wall, max(r.max_rss_kb for r in results), sampler.peak_kb)
