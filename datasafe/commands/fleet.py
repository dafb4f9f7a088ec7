"""Runs over every configured source: ``backup --all``, ``verify --all-sources`` and ``prune --all``.

Each source's work is the command function of a single run (:func:`datasafe.commands.backup.backup`,
:func:`~datasafe.commands.verify.verify`, :func:`~datasafe.commands.prune.prune`): the same checks,
the same lease on the source, the same metrics and pings. At most ``concurrency`` sources run at
once, and at most ``per_server`` of the sources that live on one database server (host and port;
a SQLite file is a server of its own). A source that fails is recorded and the others go on; the
result's exit code is the worst of theirs (:data:`SEVERITY`).

Sources run in threads of this process. A source's work is mostly waiting: on the database
(``pg_dump`` is a subprocess, rows arrive over a socket), on the storage, and in zstd and the
hashes, which are C code that releases the GIL; the tables of one source are already read by
threads (``jobs``). Threads share the configuration, the keys and the loaded drivers, cost
nothing to start, and hand back result objects rather than text to parse. A signal stops the
run as it stops a single backup: :class:`~datasafe.errors.Interrupted` is raised in every
running source's thread (each then removes its incomplete snapshot and releases its lease, as a
single run does), no further source starts, and the exit code is 130.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from datasafe.commands.backup import backup
from datasafe.commands.prune import prune
from datasafe.commands.repository import open_repository
from datasafe.commands.verify import verify
from datasafe.config import LoadedConfig
from datasafe.engine_names import is_file_engine
from datasafe.engines.registry import spec
from datasafe.errors import DatasafeError, ExitCode, Interrupted, UsageError
from datasafe.humanize import count
from datasafe.snapshot.repository import Repository
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

_ENV_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}")

#: exit codes from worst to least bad: a run's exit code is that of its worst source. An
#: interrupted run did not reach every source; damaged snapshots and an unusable storage concern
#: every source; a bug, a missing tool or a wrong setting fail every night until fixed; a
#: database error, an unreachable server or a refusal concern one source and may heal; a locked
#: source is being worked on by another run.
SEVERITY: tuple[ExitCode, ...] = (
    ExitCode.INTERRUPTED, ExitCode.INTEGRITY, ExitCode.STORAGE, ExitCode.ERROR, ExitCode.DEPENDENCY,
    ExitCode.CONFIG, ExitCode.USAGE, ExitCode.DATABASE, ExitCode.CONNECTION, ExitCode.REFUSED,
    ExitCode.NOT_FOUND, ExitCode.LOCKED, ExitCode.OK,
)

Status = Literal["ok", "failed", "not run"]
#: one source's work: its result as a dict and a one-line summary
Work = Callable[[str], tuple[dict[str, Any], str]]


class FleetFailed(DatasafeError):
    """At least one source of a run over several failed; the exit code is the worst of theirs."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.exit_code = code


class _Stopped(Interrupted):
    """Raised in a running source's thread when the run is stopped by a signal."""

    def __init__(self, message: str = "stopped by a signal") -> None:
        super().__init__(message)


@dataclass
class SourceRun:
    """How one source's part of the run went."""

    source: str
    #: the database server it lives on (``host:port``, ``file:PATH``), for the per-server limit
    server: str
    status: Status = "not run"
    exit_code: int = int(ExitCode.INTERRUPTED)
    started_at: datetime | None = None
    seconds: float = 0.0
    #: the snapshot id, what was verified or pruned, or the error
    summary: str = "not started: the run was stopped"
    result: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "server": self.server, "status": self.status, "exit_code": self.exit_code,
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "seconds": round(self.seconds, 3), "summary": self.summary, "result": self.result}


@dataclass
class FleetResult:
    """Every source's outcome, in the order of the configuration."""

    operation: str
    concurrency: int
    per_server: int
    runs: list[SourceRun] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        codes = {ExitCode(r.exit_code) if r.exit_code in ExitCode._value2member_map_ else ExitCode.ERROR
                 for r in self.runs}
        return next((c for c in SEVERITY if c in codes), ExitCode.OK)

    @property
    def failed(self) -> list[SourceRun]:
        return [r for r in self.runs if r.status != "ok"]

    def as_dict(self) -> dict[str, Any]:
        tally = Counter(r.status for r in self.runs)
        return {"operation": self.operation, "concurrency": self.concurrency, "per_server": self.per_server,
                "exit_code": int(self.exit_code), "ok": tally["ok"], "failed": tally["failed"],
                "not_run": tally["not run"], "sources": [r.as_dict() for r in self.runs]}

    def check(self) -> None:
        """Raise :class:`FleetFailed` with the worst exit code when a source failed or did not run."""
        bad = self.failed
        if not bad:
            return
        worst = self.exit_code
        first = sorted(bad, key=lambda r: SEVERITY.index(ExitCode(r.exit_code))
                       if r.exit_code in ExitCode._value2member_map_ else 0)
        named = "; ".join(f"{r.source} (exit {r.exit_code}: {r.summary})" for r in first[:3])
        more = f"; and {count(len(bad) - 3, 'more source')}" if len(bad) > 3 else ""
        raise FleetFailed(f"{self.operation}: {len(bad)} of {count(len(self.runs), 'source')} did not succeed: "
                          f"{named}{more}", worst)


def server_of(url: DatabaseURL) -> str:
    """The database server a URL points at, as the per-server limit counts: ``host:port`` (the
    engine's default port when none is given), or ``file:PATH`` for a file engine."""
    if is_file_engine(url.engine):
        return f"file:{url.database}"
    port = url.port or spec(url.engine).default_port
    return f"{(url.host or 'localhost').lower()}:{port}"


def configured_servers(config: LoadedConfig) -> dict[str, str]:
    """Each configured source's server (:func:`server_of`); a URL that cannot be read yet (an
    unset ``${VAR}``) is a server of its own: the source's run reports the problem."""
    servers: dict[str, str] = {}
    for name, sc in config.config.sources.items():
        if "${" in sc.url.rpartition("@")[2]:  # in the host, port or database
            servers[name] = f"unknown:{name}"
            continue
        try:  # a ${NAME} left in the user or password does not change the server
            servers[name] = server_of(DatabaseURL.parse(_ENV_REF.sub("x", sc.url)))
        except DatasafeError:
            servers[name] = f"unknown:{name}"
    return servers


def _limits(config: LoadedConfig, concurrency: int | None, per_server: int | None) -> tuple[int, int]:
    fleet = config.config.fleet
    limits = (concurrency or fleet.concurrency, per_server or fleet.per_server)
    if min(limits) < 1:
        raise UsageError("--concurrency and --per-server must be at least 1")
    return limits


def _configured(config: LoadedConfig, what: str) -> list[str]:
    names = list(config.config.sources)
    if not names:
        where = f" in {config.path}" if config.path else " (no datasafe.yml was found)"
        raise UsageError(f"{what} runs every configured source, and there are none{where}")
    return names


def backup_all(config: LoadedConfig, *, tags: Iterable[str] = (), jobs: int | None = None,
               compression_level: int | None = None, read_back: str = "digest", prune: bool = False,
               keep: Mapping[str, Any] | None = None, wait: str | None = None, metrics_file: str | None = None,
               pushgateway: str | None = None, concurrency: int | None = None, per_server: int | None = None,
               repository: Callable[[], Repository] | None = None) -> FleetResult:
    """Back up every configured source, as :func:`datasafe.commands.backup.backup` backs up one
    (each under its own lease, with its metrics), ``concurrency`` at once and ``per_server`` per
    database server (defaults: config ``fleet.concurrency``, ``fleet.per_server``). Failures are
    in the result (:meth:`FleetResult.check` raises for them)."""
    names = _configured(config, "backup --all")
    tags = tuple(tags)
    open_repo = repository or (lambda: open_repository(None, config, writing=True))

    def work(name: str) -> tuple[dict[str, Any], str]:
        done = backup(config, name, tags=tags, jobs=jobs, compression_level=compression_level, read_back=read_back,
                      prune=prune, keep=keep, wait=wait, metrics_file=metrics_file, repo=open_repo(),
                      pushgateway=pushgateway)
        pruned = f", pruned {count(len(done.pruned.removed), 'snapshot')}" if done.pruned else ""
        return done.as_dict(), f"{done.manifest.snapshot_id}{pruned}"

    limit, per = _limits(config, concurrency, per_server)
    return run_each(names, work, operation="backup", servers=configured_servers(config), concurrency=limit,
                    per_server=per)


def verify_all(config: LoadedConfig, *, latest: bool = False, every: bool = False, since_last: bool = False,
               sample: float | None = None, deep: bool = False, scratch: str | None = None, mode: str = "full",
               jobs: int = 2, concurrency: int | None = None, per_server: int | None = None,
               repository: Callable[[], Repository] | None = None) -> FleetResult:
    """Verify each source's ``latest`` snapshot, ``every`` snapshot or those ``since_last``, source
    by source as :func:`datasafe.commands.verify.verify` does, over every configured source (with
    none configured: every source with snapshots in the storage). ``per_server`` applies with
    ``deep`` only, whose scratch databases are on the sources' servers."""
    open_repo = repository or (lambda: open_repository(None, config))
    names = list(config.config.sources)
    servers = configured_servers(config)
    if not names:
        repo = open_repo()
        names = [s for s in repo.sources() if repo.snapshot_ids(s)]
        if not names:
            raise UsageError(f"verify --all-sources: no sources configured and no snapshots in {repo.storage.url}")

    def work(name: str) -> tuple[dict[str, Any], str]:
        result = verify(config, latest=latest, every=every, since_last=since_last, source=name, sample=sample,
                        deep=deep, scratch=scratch, mode=mode, jobs=jobs, repo=open_repo())
        result.check()
        summary = "every snapshot verified already" if result.nothing_to_do else \
            f"{count(len(result.reports), 'snapshot')} verified ({mode})"
        return {"reports": result.as_list()}, summary

    limit, per = _limits(config, concurrency, per_server)
    if not deep:  # reads the storage only: no database server to spare
        servers, per = {}, limit
    return run_each(names, work, operation="verify", servers={n: servers.get(n, "storage") for n in names},
                    concurrency=limit, per_server=per)


def prune_all(config: LoadedConfig, *, keep: Mapping[str, Any] | None = None, wait: str | None = None,
              dry_run: bool = False, concurrency: int | None = None,
              repository: Callable[[], Repository] | None = None) -> FleetResult:
    """Prune every configured source by its retention policy, as
    :func:`datasafe.commands.prune.prune` prunes one (each under its lease). Pruning reads and
    deletes in the storage only, so only ``concurrency`` limits it."""
    names = _configured(config, "prune --all")
    open_repo = repository or (lambda: open_repository(None, config))

    def work(name: str) -> tuple[dict[str, Any], str]:
        done = prune(config, name, keep=keep, wait=wait, dry_run=dry_run, repo=open_repo())
        verb = "would remove" if dry_run else "removed"
        return done.as_dict(), f"kept {len(done.decision.keep):,}, {verb} {len(done.decision.remove):,}"

    limit, _ = _limits(config, concurrency, None)
    return run_each(names, work, operation="prune", servers={n: "storage" for n in names}, concurrency=limit,
                    per_server=limit)


def run_each(names: list[str], work: Work, *, operation: str, servers: Mapping[str, str], concurrency: int,
             per_server: int) -> FleetResult:
    """Run ``work`` for each of ``names``: at most ``concurrency`` at once and ``per_server`` of
    one server (``servers``) at once, in the order given, a source whose server is busy passed
    over for the next one. A failure is recorded in its :class:`SourceRun`, never raised."""
    result = FleetResult(operation, concurrency, per_server)
    runs = {n: SourceRun(n, servers.get(n, n)) for n in names}
    result.runs = list(runs.values())
    pending = list(names)
    running: dict[Future[SourceRun], str] = {}
    busy: Counter[str] = Counter()
    threads: dict[str, int] = {}
    guard = threading.Lock()
    stopping = threading.Event()

    def one(name: str) -> SourceRun:
        run = runs[name]
        with guard:
            if stopping.is_set():  # picked up after the stop: it never starts
                return run
            threads[name] = threading.get_ident()
        run.started_at = datetime.now(timezone.utc)
        began = time.monotonic()
        try:
            run.result, run.summary = work(name)
            run.status, run.exit_code = "ok", int(ExitCode.OK)
        except DatasafeError as exc:
            run.status, run.exit_code, run.summary = "failed", int(exc.exit_code), str(exc)
        except Exception as exc:
            run.status, run.exit_code = "failed", int(ExitCode.ERROR)
            run.summary = f"internal error: {type(exc).__name__}: {exc}"
            log.debug("%s of %s failed", operation, name, exc_info=exc)
        finally:
            with guard:
                threads.pop(name, None)
            run.seconds = time.monotonic() - began
        if run.status != "ok":
            log.warning("%s of %s failed (exit %d): %s", operation, name, run.exit_code, run.summary)
        return run

    def collect(future: Future[SourceRun]) -> None:
        name = running.pop(future)
        busy[runs[name].server] -= 1
        try:
            future.result()
        except BaseException as exc:  # stopped between its work and its return
            run = runs[name]
            run.status, run.exit_code, run.summary = "failed", int(ExitCode.INTERRUPTED), str(exc) or "stopped"

    log.info("%s of %s: %d at once, %d per database server", operation, count(len(names), "source"),
             concurrency, per_server)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"datasafe-{operation}") as pool:
        try:
            while pending or running:
                for name in list(pending):
                    if len(running) >= concurrency:
                        break
                    if busy[runs[name].server] >= per_server:
                        continue
                    pending.remove(name)
                    busy[runs[name].server] += 1
                    running[pool.submit(one, name)] = name
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    collect(future)
        except (KeyboardInterrupt, Interrupted):
            log.warning("%s stopped: stopping %s, starting none of the other %d", operation,
                        count(len(running), "running source"), len(pending))
            with guard:
                stopping.set()
                for ident in threads.values():
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(_Stopped))
            for future in list(running):
                if future.cancel():  # not picked up by a thread yet: it stays "not run"
                    busy[runs[running.pop(future)].server] -= 1
                    continue
                future.exception()  # waits for it to stop
                collect(future)
    return result
