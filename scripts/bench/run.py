#!/usr/bin/env python3
"""Benchmark datasafe backup, restore and verify against pg_dump, zstd and pg_restore.

Loads the benchmark dataset into a local PostgreSQL database, times each step as separate
processes (wall time and peak memory), checks the results against the project's targets and
writes them as a section of docs/benchmarks.md. Standard library only.

Exit status: 0 done, 1 a command or a precondition failed, 2 bad usage,
3 a target was missed (only with --check-targets).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from measure import CommandFailed, Measurement, gnu_time_available, run_measured
from pgutil import (
    DEFAULT_PG_URL,
    PsqlError,
    create_database,
    database_exists,
    drop_database,
    psql,
    query_json,
    query_value,
    quote_ident,
    quote_literal,
    redact,
    settle,
    with_dbname,
)
from report import (
    BACKUP,
    DUMP_CUSTOM,
    DUMP_DIR,
    DUMP_PLAIN,
    PG_RESTORE,
    RESTORE,
    VERIFY,
    Outcome,
    StepResult,
    evaluate,
    failed_targets,
    render_section,
    update_document,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent.parent
GENERATORS = {
    "own": BENCH_DIR / "dataset.sql",
    "shared": REPO_ROOT.parent / "shared" / "bench" / "make_dataset.sql",
}
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "benchmarks.md"
RESTORE_DS_DB = "datasafe_bench_restore_ds"
RESTORE_PG_DB = "datasafe_bench_restore_pg"
# Work directory space per unit of scale: datasafe storage + three pg_dump outputs, with margin.
WORKDIR_BYTES_PER_SCALE = 200 * 1024 * 1024
EXIT_FAILED, EXIT_TARGETS = 1, 3

_started = time.monotonic()


class BenchError(Exception):
    """A precondition or a result the benchmark cannot work with."""


def progress(message: str) -> None:
    """Progress goes to stderr, so stdout carries only the final section."""
    print(f"[{time.monotonic() - _started:7.1f}s] {message}", file=sys.stderr, flush=True)


# --- options and settings ---------------------------------------------------------------


def canonical_scale(text: str) -> str:
    """Normalise a scale argument ("10", "0.20" -> "0.2"); reject non-positive numbers."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError("scale must be a positive number")
    return format(value.normalize(), "f")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See scripts/bench/README.md for what is measured and how.",
    )
    parser.add_argument("--scale", type=canonical_scale, default="10",
                        help="dataset scale; 10 = 500k customers, 2M orders, 3M events (default 10)")
    parser.add_argument("--dataset", choices=sorted(GENERATORS),
                        help="generator: 'shared' (../shared/bench/make_dataset.sql) or 'own' "
                             "(scripts/bench/dataset.sql); default shared when present, else own")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help=f"maintenance database URL of a superuser (default {DEFAULT_PG_URL})")
    parser.add_argument("--workdir", type=Path,
                        help="empty or new directory for outputs (default: a temp dir under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory at the end")
    parser.add_argument("--jobs", type=positive_int, default=2,
                        help="parallelism for datasafe backup, zstd -T, pg_dump/pg_restore -j (default 2)")
    parser.add_argument("--repeat", type=positive_int, default=1,
                        help="rounds of all steps; wall times are the median (default 1)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--datasafe-only", action="store_true",
                      help="skip the pg_dump/pg_restore anchors (e.g. for the scale-30 memory check)")
    only.add_argument("--anchors-only", action="store_true",
                      help="measure only the anchors (datasafe not needed)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="markdown file whose section for this scale is replaced "
                             "(default docs/benchmarks.md)")
    parser.add_argument("--reuse-db", action="store_true",
                        help="keep an existing source database built with the same generator and scale")
    parser.add_argument("--drop-source", action="store_true",
                        help="drop the source database at the end (kept by default for --reuse-db)")
    parser.add_argument("--check-targets", action="store_true",
                        help="exit with status 3 when a target is missed")
    parser.add_argument("--datasafe", metavar="PATH",
                        help="datasafe executable (default: next to this Python, the repo's .venv, PATH)")
    return parser.parse_args(argv)


@dataclass
class Settings:
    """Validated options and the names derived from them."""

    scale: str
    dataset: str
    generator: Path
    pg_url: str
    source_db: str
    workdir: Path
    jobs: int
    repeat: int
    with_datasafe: bool
    with_anchors: bool
    datasafe: str | None
    gnu_time: bool

    @property
    def source_url(self) -> str:
        return with_dbname(self.pg_url, self.source_db)

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"


def find_datasafe(explicit: str | None) -> str | None:
    """The datasafe executable: --datasafe, next to sys.executable, the repo venv, then PATH."""
    if explicit:
        return shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
    # sys.executable is deliberately not resolved: a venv's python is a symlink.
    for candidate in (Path(sys.executable).parent / "datasafe", REPO_ROOT / ".venv" / "bin" / "datasafe"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("datasafe")


def choose_generator(requested: str | None) -> tuple[str, Path]:
    if requested is None:
        requested = "shared" if GENERATORS["shared"].is_file() else "own"
    path = GENERATORS[requested]
    if not path.is_file():
        raise BenchError(f"dataset generator not found: {path}")
    return requested, path


def check_tools(names: list[str]) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        raise BenchError(f"not found on PATH: {', '.join(missing)}")


def check_server(pg_url: str) -> None:
    """The server answers and the role may create databases and run CHECKPOINT."""
    # pg_checkpoint only exists from PostgreSQL 15 on, hence the lookup by oid.
    sql = ("SELECT rolsuper OR rolcreatedb AS createdb, rolsuper OR EXISTS (SELECT 1 FROM pg_roles r "
           "WHERE r.rolname = 'pg_checkpoint' AND pg_has_role(current_user, r.oid, 'MEMBER')) "
           "AS checkpoint FROM pg_roles WHERE rolname = current_user")
    rights = query_json(pg_url, sql)[0]
    if not (rights["createdb"] and rights["checkpoint"]):
        raise BenchError(f"the role of {redact(pg_url)} needs CREATEDB and CHECKPOINT rights")


def check_workdir(requested: Path | None, scale: str) -> None:
    """The work directory is new or empty and its file system has room for the outputs."""
    if requested is not None and requested.exists() and any(requested.iterdir()):
        raise BenchError(f"--workdir {requested} is not empty")
    existing = Path("/tmp") if requested is None else requested.resolve()
    while not existing.exists():
        existing = existing.parent
    needed = int(Decimal(scale) * WORKDIR_BYTES_PER_SCALE)
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise BenchError(f"{existing} has {free // 2**20} MB free, about {needed // 2**20} MB are needed")


def make_workdir(requested: Path | None) -> Path:
    if requested is None:
        return Path(tempfile.mkdtemp(prefix="datasafe-bench-", dir="/tmp"))
    requested.mkdir(parents=True, exist_ok=True)
    return requested.resolve()


def validate(args: argparse.Namespace) -> Settings:
    """Check everything that can be checked before the first database is dropped."""
    dataset, generator = choose_generator(args.dataset)
    check_tools(["psql"] + ([] if args.datasafe_only else ["pg_dump", "pg_restore", "zstd"]))
    datasafe = None
    if not args.anchors_only:
        datasafe = find_datasafe(args.datasafe)
        if datasafe is None:
            raise BenchError("datasafe executable not found (looked next to this Python, in "
                             f"{REPO_ROOT / '.venv/bin'} and on PATH); install the project, pass "
                             "--datasafe PATH, or use --anchors-only")
    check_server(args.pg_url)
    check_workdir(args.workdir, args.scale)
    workdir = make_workdir(args.workdir)
    return Settings(
        scale=args.scale, dataset=dataset, generator=generator, pg_url=args.pg_url,
        source_db="datasafe_bench_s" + args.scale.replace(".", "_"), workdir=workdir,
        jobs=args.jobs, repeat=args.repeat, with_datasafe=not args.anchors_only,
        with_anchors=not args.datasafe_only, datasafe=datasafe, gnu_time=gnu_time_available(),
    )


# --- source database --------------------------------------------------------------------


def dataset_marker(cfg: Settings) -> str:
    """Identifies what a source database was built from, for --reuse-db."""
    digest = hashlib.sha256(cfg.generator.read_bytes()).hexdigest()[:16]
    return f"datasafe-bench dataset={cfg.dataset} generator-sha256={digest} scale={cfg.scale}"


def current_marker(cfg: Settings) -> str:
    sql = (f"SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
           f"WHERE datname = {quote_literal(cfg.source_db)}")
    return query_value(cfg.pg_url, sql)


def build_source(cfg: Settings) -> StepResult:
    """(Re)create the source database, load the dataset and freeze it."""
    drop_database(cfg.pg_url, cfg.source_db)
    create_database(cfg.pg_url, cfg.source_db)
    command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"scale={cfg.scale}",
               "-d", cfg.source_url, "-f", str(cfg.generator)]
    load = StepResult("dataset load (psql)", display([command], cfg))
    progress(f"loading {cfg.dataset} dataset at scale {cfg.scale} into {cfg.source_db}")
    load.runs.append(run_measured("dataset load", [command], cfg.log_dir, use_gnu_time=cfg.gnu_time))
    # Freezing sets hint bits and the visibility map now, so the first timed reader does
    # not pay for writing them.
    psql(cfg.source_url, sql="VACUUM (FREEZE, ANALYZE)")
    comment = f"COMMENT ON DATABASE {quote_ident(cfg.source_db)} IS {quote_literal(dataset_marker(cfg))}"
    psql(cfg.pg_url, sql=comment)
    progress(f"dataset loaded in {load.wall_s:.1f} s")
    return load


def ensure_source(cfg: Settings, reuse: bool) -> StepResult | None:
    """Build the source database unless --reuse-db finds a matching one."""
    if reuse and database_exists(cfg.pg_url, cfg.source_db):
        if current_marker(cfg) == dataset_marker(cfg):
            progress(f"reusing {cfg.source_db}")
            return None
        progress(f"{cfg.source_db} exists but was built differently; rebuilding")
    return build_source(cfg)


def table_counts(url: str) -> dict[str, int]:
    """Exact row count of every table in the public schema."""
    tables = query_json(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    if not tables:
        return {}
    names = [quote_ident(t["tablename"]) for t in tables]
    counts = ", ".join(f"(SELECT count(*) FROM {name}) AS {name}" for name in names)
    row: dict[str, int] = query_json(url, f"SELECT {counts}")[0]
    return row


# --- measured steps ---------------------------------------------------------------------


def display(commands: list[list[str]], cfg: Settings, snapshot_id: str | None = None) -> str:
    """A pipeline as a readable shell line, with machine-specific parts abbreviated."""
    def word(arg: str) -> str:
        if cfg.datasafe and arg == cfg.datasafe:
            return "datasafe"
        return "SNAPSHOT_ID" if snapshot_id and arg == snapshot_id else redact(arg)
    line = " | ".join(shlex.join(word(a) for a in argv) for argv in commands)
    return line.replace(str(cfg.workdir), "$WORKDIR")


def parse_snapshot_id(stdout: str) -> str:
    """The snapshot id printed by ``datasafe backup`` on its last stdout line.

    A JSON object line with a ``snapshot_id``, ``snapshot`` or ``id`` key is accepted too.
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise BenchError("datasafe backup printed nothing on stdout; the snapshot id was expected "
                         "on its last line")
    last = lines[-1]
    if last.startswith("{"):
        try:
            record = json.loads(last)
        except ValueError:
            record = {}
        for key in ("snapshot_id", "snapshot", "id"):
            if isinstance(record.get(key), str):
                return str(record[key])
    if not last or any(ch.isspace() for ch in last) or last.startswith("{"):
        raise BenchError(f"cannot read a snapshot id from the last line of datasafe backup: {last!r}")
    return last


def dir_bytes(path: Path) -> int:
    """Apparent size of a file or a directory tree (like ``du -sb``)."""
    if path.is_file():
        return path.stat().st_size
    return sum((Path(root) / name).lstat().st_size
               for root, _, files in os.walk(path) for name in files)


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


class Bench:
    """Runs the steps in a fixed order, ``repeat`` rounds, and keeps their measurements."""

    def __init__(self, cfg: Settings, source_rows: dict[str, int]) -> None:
        self.cfg = cfg
        self.source_rows = source_rows
        self.steps: dict[str, StepResult] = {}
        self.snapshot_id: str | None = None
        self.rows_match: bool | None = None
        self.repo = cfg.workdir / "repo"
        self.dump_plain_path = cfg.workdir / "dump.sql.zst"
        self.dump_custom_path = cfg.workdir / "dump.fc"
        self.dump_dir_path = cfg.workdir / "dump.d"

    def run(self) -> None:
        for number in range(1, self.cfg.repeat + 1):
            progress(f"round {number}/{self.cfg.repeat}")
            self.round(anchor_restore_first=number % 2 == 0)

    def round(self, anchor_restore_first: bool = False) -> None:
        """One round. The two restores swap places every other round: the second of them reuses
        the WAL segment files the first one made (PostgreSQL recycles them), which favours it."""
        cfg = self.cfg
        if cfg.with_datasafe:
            self.backup()
        if cfg.with_anchors:
            self.dump_plain()
            self.dump_custom()
            self.dump_directory()
        restores = [self.restore] if cfg.with_datasafe else []
        if cfg.with_anchors:
            restores.insert(0 if anchor_restore_first else len(restores), self.pg_restore)
        for step in restores:
            step()
        if cfg.with_datasafe:
            self.verify()

    def timed(self, key: str, label: str, commands: list[list[str]],
              stdout: Path | None = None) -> Measurement:
        """CHECKPOINT and sync, then run and measure one step."""
        settle(self.cfg.pg_url)
        progress(f"{label} ...")
        measurement = run_measured(label, commands, self.cfg.log_dir, stdout, self.cfg.gnu_time)
        shown = display(commands, self.cfg, self.snapshot_id)
        self.steps.setdefault(key, StepResult(label, shown)).runs.append(measurement)
        progress(f"{label}: {measurement.wall_s:.2f} s, peak {measurement.peak_kb / 1024:.0f} MB")
        return measurement

    def datasafe(self, *args: str) -> list[str]:
        assert self.cfg.datasafe is not None
        return [self.cfg.datasafe, *args]

    def backup(self) -> None:
        # A fresh storage directory each round: a second snapshot into the same storage
        # could be cheaper through deduplication, which is not what is measured here.
        remove(self.repo)
        self.repo.mkdir()
        stdout = self.cfg.log_dir / "backup.stdout"
        self.snapshot_id = None
        self.timed(BACKUP, "datasafe backup",
                   [self.datasafe("backup", "--storage", str(self.repo), self.cfg.source_url,
                                  "--jobs", str(self.cfg.jobs))], stdout)
        self.snapshot_id = parse_snapshot_id(stdout.read_text(errors="replace"))
        progress(f"snapshot id: {self.snapshot_id}")

    def dump_plain(self) -> None:
        remove(self.dump_plain_path)
        self.timed(DUMP_PLAIN, f"pg_dump -Fp | zstd -3 -T{self.cfg.jobs}", [
            ["pg_dump", "-Fp", "-d", self.cfg.source_url],
            ["zstd", "-3", f"-T{self.cfg.jobs}", "-q", "-o", str(self.dump_plain_path)],
        ])

    def dump_custom(self) -> None:
        remove(self.dump_custom_path)
        self.timed(DUMP_CUSTOM, "pg_dump -Fc",
                   [["pg_dump", "-Fc", "-d", self.cfg.source_url, "-f", str(self.dump_custom_path)]])

    def dump_directory(self) -> None:
        remove(self.dump_dir_path)
        self.timed(DUMP_DIR, f"pg_dump -Fd -j{self.cfg.jobs}",
                   [["pg_dump", "-Fd", f"-j{self.cfg.jobs}", "-d", self.cfg.source_url,
                     "-f", str(self.dump_dir_path)]])

    def restore(self) -> None:
        assert self.snapshot_id is not None
        target = with_dbname(self.cfg.pg_url, RESTORE_DS_DB)
        drop_database(self.cfg.pg_url, RESTORE_DS_DB)
        create_database(self.cfg.pg_url, RESTORE_DS_DB)
        self.timed(RESTORE, "datasafe restore",
                   [self.datasafe("restore", self.snapshot_id, "--storage", str(self.repo),
                                  "--target", target, "--confirm", RESTORE_DS_DB, "--jobs", str(self.cfg.jobs))])
        matches = table_counts(target) == self.source_rows
        self.rows_match = matches and self.rows_match is not False
        if not matches:
            progress("WARNING: restored row counts differ from the source")
        drop_database(self.cfg.pg_url, RESTORE_DS_DB)

    def pg_restore(self) -> None:
        target = with_dbname(self.cfg.pg_url, RESTORE_PG_DB)
        drop_database(self.cfg.pg_url, RESTORE_PG_DB)
        create_database(self.cfg.pg_url, RESTORE_PG_DB)
        self.timed(PG_RESTORE, f"pg_restore -j{self.cfg.jobs}",
                   [["pg_restore", f"-j{self.cfg.jobs}", "-d", target, str(self.dump_dir_path)]])
        drop_database(self.cfg.pg_url, RESTORE_PG_DB)

    def verify(self) -> None:
        assert self.snapshot_id is not None
        self.timed(VERIFY, "datasafe verify",
                   [self.datasafe("verify", self.snapshot_id, "--storage", str(self.repo),
                                  "--jobs", str(self.cfg.jobs))])

    def sizes(self) -> dict[str, int]:
        """Output sizes of the last round."""
        named = {"datasafe snapshot": self.repo, "dump.sql.zst": self.dump_plain_path,
                 "dump.fc": self.dump_custom_path, "dump.d": self.dump_dir_path}
        return {name: dir_bytes(path) for name, path in named.items() if path.exists()}


# --- report -----------------------------------------------------------------------------


def tool_version(argv: list[str]) -> str:
    """First line of a ``--version`` call, or a note saying why there is none."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        return f"unavailable ({exc.strerror})"
    output = (proc.stdout or proc.stderr).strip().splitlines()
    if proc.returncode != 0 or not output:
        return f"unavailable (exit {proc.returncode})"
    return output[0]


def machine_summary() -> str:
    cpu_model = ""
    memory_gib = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = int(line.split()[1]) / 2**20
    except OSError:
        pass
    cpus = f"{os.cpu_count()} CPUs" + (f" ({cpu_model})" if cpu_model else "")
    return f"{cpus}, {memory_gib:.1f} GiB RAM, {platform.system()} {platform.release()}"


def dataset_summary(cfg: Settings, rows: dict[str, int]) -> str:
    size = query_value(cfg.source_url, "SELECT pg_size_pretty(pg_database_size(current_database()))")
    counts = ", ".join(f"{table} {count:,}" for table, count in rows.items())
    where = os.path.relpath(cfg.generator, REPO_ROOT)
    return f"{cfg.dataset} (`{where}`): {counts}; database {size}"


def collect_facts(cfg: Settings, rows: dict[str, int], load: StepResult | None) -> list[tuple[str, str]]:
    server = query_value(cfg.pg_url, "SHOW server_version")
    datasafe = tool_version([cfg.datasafe, "--version"]) if cfg.datasafe else "not run (--anchors-only)"
    facts = [
        ("date", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())),
        ("command", "`scripts/bench/run.py " + shlex.join(sys.argv[1:]) + "`"),
        ("scale", cfg.scale),
        ("dataset", dataset_summary(cfg, rows)),
        ("machine", machine_summary()),
        ("PostgreSQL", f"server {server}; {tool_version(['pg_dump', '--version'])}"),
        ("zstd", tool_version(["zstd", "--version"]).strip("* ")),
        ("datasafe", datasafe),
        ("jobs / rounds", f"{cfg.jobs} / {cfg.repeat}"),
    ]
    if load is not None:
        facts.append(("dataset load", f"{load.wall_s:.1f} s (psql; the VACUUM FREEZE after it is not timed)"))
    return facts


def rss_note(gnu_time: bool) -> str:
    if gnu_time:
        source = ("from GNU time (`/usr/bin/time -f %M` around each pipeline member; it covers the "
                  "descendants a process waited for, as a maximum)")
    else:
        source = ("from `wait4` (GNU time was not available, so this is an upper bound: a child "
                  "inherits the benchmark script's RSS as its floor)")
    return (f"peak RSS MB: the largest `ru_maxrss` of any single process, {source}. Σ PSS MB: the "
            "peak of the summed PSS of all pipeline members and their descendants, sampled every "
            "0.1 s from `/proc/<pid>/smaps_rollup`. The memory target uses the larger of the two. "
            "Memory of the PostgreSQL server backends is not counted.")


def method_notes(cfg: Settings) -> list[str]:
    return [
        ("Steps run in this order, each as its own processes (pipeline members are spawned "
         "directly, without a shell), each after a `CHECKPOINT` and a `sync` (so that no step pays "
         "for writing back what the step before it wrote): datasafe backup, pg_dump -Fp | zstd, "
         "pg_dump -Fc, pg_dump -Fd, datasafe restore, pg_restore, datasafe verify; in every other round "
         "pg_restore runs before datasafe restore, because the second restore reuses the WAL segment "
         "files the first one made (PostgreSQL recycles them), which favours it. The OS page cache "
         "is not flushed, so every step reads a warm database; the source is `VACUUM (FREEZE, "
         "ANALYZE)`d after loading so that no step pays for setting hint bits."),
        (f"wall s: median over {cfg.repeat} round(s). Every round backs up into an empty storage "
         "directory; restore targets are created empty (from template0) before their step and "
         "dropped after it."),
        rss_note(cfg.gnu_time),
        ("Sizes are apparent sizes (like `du -sb`); the datasafe figure is the whole `--storage` "
         "directory, which holds only the one snapshot."),
        (f"All steps use the same parallelism (`--jobs {cfg.jobs}` for datasafe): `zstd "
         f"-T{cfg.jobs}`, `pg_dump -Fd -j{cfg.jobs}`, `pg_restore -j{cfg.jobs}`."),
        "Restore completeness compares exact row counts of every table with the source.",
    ]


# --- main -------------------------------------------------------------------------------


def cleanup(cfg: Settings, keep: bool, drop_source: bool) -> None:
    """Best effort: drop the restore targets (and the source if asked), remove the workdir."""
    for name in (RESTORE_DS_DB, RESTORE_PG_DB) + ((cfg.source_db,) if drop_source else ()):
        try:
            drop_database(cfg.pg_url, name)
        except PsqlError as exc:
            progress(f"warning: could not drop {name}: {exc}")
    if keep:
        progress(f"work directory kept: {cfg.workdir}")
    else:
        shutil.rmtree(cfg.workdir, ignore_errors=True)
    if not drop_source:
        progress(f"source database {cfg.source_db} kept (reuse with --reuse-db, drop with --drop-source)")


def benchmark(cfg: Settings, args: argparse.Namespace) -> int:
    cfg.log_dir.mkdir(exist_ok=True)
    load = ensure_source(cfg, args.reuse_db)
    rows = table_counts(cfg.source_url)
    bench = Bench(cfg, rows)
    bench.run()
    outcome = Outcome(cfg.scale, collect_facts(cfg, rows, load), bench.steps, bench.sizes(),
                      bench.rows_match, method_notes(cfg))
    section = render_section(outcome)
    update_document(args.output, cfg.scale, section)
    print(section)
    progress(f"section 'scale={cfg.scale}' written to {args.output}")
    missed = failed_targets(evaluate(outcome))
    for row in missed:
        progress(f"target missed: {row.step} {row.ratio} (target {row.target})")
    return EXIT_TARGETS if missed and args.check_targets else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = validate(args)
    except (BenchError, PsqlError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        return benchmark(cfg, args)
    except CommandFailed as exc:
        print(f"error: {exc.describe()}", file=sys.stderr)
    except (BenchError, PsqlError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        cleanup(cfg, args.keep, args.drop_source)
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
