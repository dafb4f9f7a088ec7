#!/usr/bin/env python3
"""Benchmark datasafe backup, restore and verify against mariadb-dump, zstd and mariadb.

Loads the MariaDB twin of the benchmark dataset (scripts/bench/mysql_dataset.sql) into a local
MariaDB/MySQL server, times each step as separate processes (wall time and peak memory), checks
the results against the targets and writes them as the ``bench:mysql`` section of
docs/benchmarks.md. Standard library only; reuses run.py, measure.py and report.py.

Exit status: 0 done, 1 a command or a precondition failed (a failed datasafe step still
writes the section, with the anchors, and then exits 1), 2 bad usage, 3 a target was missed
(only with --check-targets).
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import myutil
from measure import CommandFailed, Measurement, gnu_time_available, run_measured
from myutil import MysqlError
from pgutil import with_dbname
from report import (
    BACKUP,
    MY_DUMP,
    MY_REPLAY,
    RESTORE,
    VERIFY,
    Outcome,
    StepResult,
    evaluate_mysql,
    failed_targets,
    render_section,
    update_document,
)
from run import (
    BenchError,
    canonical_scale,
    check_tools,
    check_workdir,
    dir_bytes,
    find_datasafe,
    machine_summary,
    make_workdir,
    parse_snapshot_id,
    positive_int,
    progress,
    remove,
    tool_version,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent.parent
GENERATOR = BENCH_DIR / "mysql_dataset.sql"
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "benchmarks.md"
RESTORE_DS_DB = "datasafe_bench_my_restore_ds"
RESTORE_DUMP_DB = "datasafe_bench_my_restore_dump"
SECTION_TAG = "bench:mysql"
CHECKPOINT_TIMEOUT_S = 60.0
EXIT_FAILED, EXIT_TARGETS = 1, 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See scripts/bench/README.md for what is measured and how.",
    )
    parser.add_argument("--scale", type=canonical_scale, default="10",
                        help="dataset scale; 10 = 500k customers, 2M orders, 3M events (default 10)")
    parser.add_argument("--mysql-url", default=myutil.DEFAULT_MYSQL_URL,
                        help=f"server URL of a user that may create databases (default {myutil.DEFAULT_MYSQL_URL})")
    parser.add_argument("--workdir", type=Path,
                        help="empty or new directory for outputs (default: a temp dir under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory at the end")
    parser.add_argument("--jobs", type=positive_int, default=2,
                        help="parallelism for datasafe and zstd -T (default 2)")
    parser.add_argument("--repeat", type=positive_int, default=1,
                        help="rounds of all steps; wall times are the median (default 1)")
    parser.add_argument("--anchors-only", action="store_true",
                        help="measure only mariadb-dump and the replay (datasafe not needed)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="markdown file whose bench:mysql section for this scale is replaced "
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
    mysql_url: str
    source_db: str
    workdir: Path
    jobs: int
    repeat: int
    datasafe: str | None
    gnu_time: bool

    def url(self, database: str) -> str:
        return with_dbname(self.mysql_url, database)

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"


def validate(args: argparse.Namespace) -> Settings:
    """Check everything that can be checked before the first database is dropped."""
    check_tools([myutil.client_name(), "mariadb-dump", "zstd"])
    datasafe = None
    if not args.anchors_only:
        datasafe = find_datasafe(args.datasafe)
        if datasafe is None:
            raise BenchError("datasafe executable not found; install the project, pass --datasafe "
                             "PATH, or use --anchors-only")
    if not myutil.reachable(args.mysql_url):
        raise BenchError(f"no MariaDB/MySQL server answers at {myutil.redact(args.mysql_url)}")
    check_workdir(args.workdir, args.scale)
    myutil.export_password(args.mysql_url)  # measured clients read MYSQL_PWD, never an argv
    return Settings(
        scale=args.scale, mysql_url=args.mysql_url,
        source_db="datasafe_bench_my_s" + args.scale.replace(".", "_"),
        workdir=make_workdir(args.workdir), jobs=args.jobs, repeat=args.repeat,
        datasafe=datasafe, gnu_time=gnu_time_available(),
    )


# --- source database --------------------------------------------------------------------


def dataset_marker(cfg: Settings) -> str:
    digest = hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:16]
    return f"datasafe-bench dataset=mysql generator-sha256={digest} scale={cfg.scale}"


def ensure_source(cfg: Settings, reuse: bool) -> StepResult | None:
    """(Re)build the source database unless --reuse-db finds a matching one."""
    if reuse and myutil.database_exists(cfg.mysql_url, cfg.source_db):
        if myutil.database_comment(cfg.mysql_url, cfg.source_db) == dataset_marker(cfg):
            progress(f"reusing {cfg.source_db}")
            return None
        progress(f"{cfg.source_db} exists but was built differently; rebuilding")
    myutil.drop_database(cfg.mysql_url, cfg.source_db)
    # The marker is set after the load, so an interrupted load is never reused.
    myutil.create_database(cfg.mysql_url, cfg.source_db)
    command = myutil.load_command(cfg.mysql_url, cfg.source_db, str(GENERATOR), cfg.scale)
    load = StepResult("dataset load (mariadb)", display([command], cfg))
    progress(f"loading the dataset at scale {cfg.scale} into {cfg.source_db}")
    load.runs.append(run_measured("dataset load", [command], cfg.log_dir, use_gnu_time=cfg.gnu_time))
    marker = myutil.quote_literal(dataset_marker(cfg))
    myutil.run_sql(cfg.mysql_url, f"ALTER DATABASE {myutil.quote_ident(cfg.source_db)} COMMENT {marker}")
    progress(f"dataset loaded in {load.wall_s:.1f} s")
    return load


def dirty_pages(cfg: Settings) -> int:
    sql = "SHOW GLOBAL STATUS WHERE Variable_name = 'Innodb_buffer_pool_pages_dirty'"
    return int(myutil.query_rows(cfg.mysql_url, sql)[0][1])


def checkpoint(cfg: Settings) -> None:
    """Have InnoDB write back its dirty pages, like PostgreSQL's CHECKPOINT before each step.

    Sets ``innodb_max_dirty_pages_pct`` to 0 (which makes the page cleaner flush everything)
    until no page is dirty or ``CHECKPOINT_TIMEOUT_S`` passed, then restores the old value.
    Without the privilege for that, it only waits for the dirty pages to go.
    """
    if dirty_pages(cfg) == 0:
        return
    old = myutil.query_value(cfg.mysql_url, "SELECT @@GLOBAL.innodb_max_dirty_pages_pct")
    try:
        myutil.run_sql(cfg.mysql_url, "SET GLOBAL innodb_max_dirty_pages_pct = 0")
    except MysqlError:
        old = ""
    try:
        deadline = time.monotonic() + CHECKPOINT_TIMEOUT_S
        while dirty_pages(cfg) > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        if old:
            myutil.run_sql(cfg.mysql_url, f"SET GLOBAL innodb_max_dirty_pages_pct = {float(old)}")


# --- measured steps ---------------------------------------------------------------------


def display(commands: list[list[str]], cfg: Settings, snapshot_id: str | None = None) -> str:
    """A pipeline as a readable shell line, with machine-specific parts abbreviated."""
    def word(arg: str) -> str:
        if cfg.datasafe and arg == cfg.datasafe:
            return "datasafe"
        return "SNAPSHOT_ID" if snapshot_id and arg == snapshot_id else myutil.redact(arg)
    line = " | ".join(shlex.join(word(a) for a in argv) for argv in commands)
    return line.replace(str(cfg.workdir), "$WORKDIR").replace(str(REPO_ROOT) + "/", "")


class Bench:
    """Runs the steps in a fixed order, ``repeat`` rounds, and keeps their measurements."""

    def __init__(self, cfg: Settings, source_rows: dict[str, int]) -> None:
        self.cfg = cfg
        self.source_rows = source_rows
        self.steps: dict[str, StepResult] = {}
        self.snapshot_id: str | None = None
        self.rows_match: bool | None = None
        self.datasafe_error: str | None = None if cfg.datasafe else "not run (--anchors-only)"
        self.repo = cfg.workdir / "repo"
        self.dump_path = cfg.workdir / "dump.sql.zst"
        self.client = [myutil.client_name(), *myutil.connection_args(cfg.mysql_url)]

    @property
    def with_datasafe(self) -> bool:
        return self.datasafe_error is None

    def run(self) -> None:
        for number in range(1, self.cfg.repeat + 1):
            progress(f"round {number}/{self.cfg.repeat}")
            self.datasafe_step("backup", self.backup)
            self.dump()
            self.datasafe_step("restore", self.restore)
            self.replay()
            self.datasafe_step("verify", self.verify)

    def datasafe_step(self, name: str, step: Callable[[], None]) -> None:
        """Run a datasafe step; a failure is recorded and skips the remaining datasafe steps."""
        if not self.with_datasafe:
            return
        try:
            step()
        except CommandFailed as exc:
            self.datasafe_error = f"datasafe {name} failed: " + _first_error_line(exc)
            progress(f"WARNING: {exc.describe(8)}\nremaining datasafe steps skipped")
        except BenchError as exc:
            self.datasafe_error = f"datasafe {name}: {exc}"
            progress(f"WARNING: {exc}; remaining datasafe steps skipped")

    def timed(self, key: str, label: str, commands: list[list[str]],
              stdout: Path | None = None) -> Measurement:
        checkpoint(self.cfg)
        progress(f"{label} ...")
        measurement = run_measured(label, commands, self.cfg.log_dir, stdout, self.cfg.gnu_time)
        shown = display(commands, self.cfg, self.snapshot_id)
        self.steps.setdefault(key, StepResult(label, shown)).runs.append(measurement)
        progress(f"{label}: {measurement.wall_s:.2f} s, peak {measurement.peak_kb / 1024:.0f} MB")
        return measurement

    def datasafe(self, *args: str) -> list[str]:
        assert self.cfg.datasafe is not None
        return [self.cfg.datasafe, *args, "--jobs", str(self.cfg.jobs)]

    def backup(self) -> None:
        remove(self.repo)  # an empty storage each round: no deduplication against a previous one
        self.repo.mkdir()
        stdout = self.cfg.log_dir / "backup.stdout"
        self.snapshot_id = None
        self.timed(BACKUP, "datasafe backup", [self.datasafe(
            "backup", "--storage", str(self.repo), self.cfg.url(self.cfg.source_db))], stdout)
        self.snapshot_id = parse_snapshot_id(stdout.read_text(errors="replace"))
        progress(f"snapshot id: {self.snapshot_id}")

    def dump(self) -> None:
        remove(self.dump_path)
        self.timed(MY_DUMP, f"mariadb-dump | zstd -3 -T{self.cfg.jobs}", [
            ["mariadb-dump", *self.client[1:], "--single-transaction", "--quick", self.cfg.source_db],
            ["zstd", "-3", f"-T{self.cfg.jobs}", "-q", "-o", str(self.dump_path)],
        ])

    def restore(self) -> None:
        assert self.snapshot_id is not None
        myutil.drop_database(self.cfg.mysql_url, RESTORE_DS_DB)
        myutil.create_database(self.cfg.mysql_url, RESTORE_DS_DB)
        try:
            self.timed(RESTORE, "datasafe restore", [self.datasafe(
                "restore", self.snapshot_id, "--storage", str(self.repo),
                "--target", self.cfg.url(RESTORE_DS_DB), "--confirm", RESTORE_DS_DB)])
            matches = myutil.table_counts(self.cfg.mysql_url, RESTORE_DS_DB) == self.source_rows
            self.rows_match = matches and self.rows_match is not False
            if not matches:
                progress("WARNING: restored row counts differ from the source")
        finally:
            myutil.drop_database(self.cfg.mysql_url, RESTORE_DS_DB)

    def replay(self) -> None:
        myutil.drop_database(self.cfg.mysql_url, RESTORE_DUMP_DB)
        myutil.create_database(self.cfg.mysql_url, RESTORE_DUMP_DB)
        try:
            self.timed(MY_REPLAY, f"zstd -dc | {self.client[0]}", [
                ["zstd", "-dc", "-q", str(self.dump_path)],
                [*self.client, RESTORE_DUMP_DB],
            ])
            if myutil.table_counts(self.cfg.mysql_url, RESTORE_DUMP_DB) != self.source_rows:
                raise BenchError("the replayed dump's row counts differ from the source")
        finally:
            myutil.drop_database(self.cfg.mysql_url, RESTORE_DUMP_DB)

    def verify(self) -> None:
        assert self.snapshot_id is not None
        self.timed(VERIFY, "datasafe verify", [self.datasafe(
            "verify", self.snapshot_id, "--storage", str(self.repo))])

    def sizes(self) -> dict[str, int]:
        named = {"dump.sql.zst": self.dump_path}
        if BACKUP in self.steps:
            named = {"datasafe snapshot": self.repo, **named}
        return {name: dir_bytes(path) for name, path in named.items() if path.exists()}


def _first_error_line(exc: CommandFailed) -> str:
    """The last non-empty stderr line of the failed command, or its exit status."""
    for failure in exc.failures:
        tail = [line for line in _tail(failure.stderr_path) if line.strip()]
        if tail:
            return tail[-1].strip()[:300]
        return f"exit status {failure.returncode}"
    return exc.detail or "could not start"


def _tail(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-20:]
    except OSError:
        return []


# --- report -----------------------------------------------------------------------------


def collect_facts(cfg: Settings, bench: Bench, load: StepResult | None) -> list[tuple[str, str]]:
    server = myutil.query_value(cfg.mysql_url, "SELECT VERSION()")
    size_mb = myutil.query_value(cfg.mysql_url, (
        "SELECT ROUND(SUM(data_length + index_length) / 1048576) FROM information_schema.tables "
        f"WHERE table_schema = {myutil.quote_literal(cfg.source_db)}"))
    counts = ", ".join(f"{table} {count:,}" for table, count in bench.source_rows.items())
    if bench.datasafe_error is None and cfg.datasafe:
        datasafe = tool_version([cfg.datasafe, "--version"])
    else:
        datasafe = bench.datasafe_error or "not run"
    facts = [
        ("date", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())),
        ("command", "`scripts/bench/run_mysql.py " + shlex.join(sys.argv[1:]) + "`"),
        ("scale", cfg.scale),
        ("dataset", f"`scripts/bench/mysql_dataset.sql`: {counts}; InnoDB data + indexes {size_mb} MB"),
        ("machine", machine_summary()),
        ("MariaDB", f"server {server}; {tool_version(['mariadb-dump', '--version'])}"),
        ("zstd", tool_version(["zstd", "--version"]).strip("* ")),
        ("datasafe", datasafe),
        ("jobs / rounds", f"{cfg.jobs} / {cfg.repeat}"),
    ]
    if load is not None:
        facts.append(("dataset load", f"{load.wall_s:.1f} s (mariadb, including indexes, foreign keys "
                                      "and ANALYZE TABLE)"))
    return facts


def method_notes(cfg: Settings) -> list[str]:
    return [
        ("Steps run in this order, each as its own processes (pipeline members are spawned "
         "directly, without a shell): datasafe backup, mariadb-dump | zstd, datasafe restore, "
         "zstd -dc | mariadb, datasafe verify. Before each step InnoDB writes back its dirty pages "
         "(`innodb_max_dirty_pages_pct` briefly set to 0, the MariaDB counterpart of a CHECKPOINT); "
         "the OS page cache is not flushed, so every step reads a warm database."),
        (f"wall s: median over {cfg.repeat} round(s). Every round backs up into an empty storage "
         "directory; both restore targets are created empty before their step and dropped after it."),
        ("peak RSS MB: the largest `ru_maxrss` of any single process (GNU time around each "
         "pipeline member). Σ PSS MB: the peak of the summed PSS of all pipeline members and their "
         "descendants, sampled every 0.1 s. The memory target uses the larger of the two. Memory "
         "of the MariaDB server is not counted."),
        (f"Parallelism: `--jobs {cfg.jobs}` for datasafe, `zstd -T{cfg.jobs}`; mariadb-dump and the "
         "replay are single-threaded."),
        ("Restore completeness compares exact row counts of every table with the source (the "
         "replayed dump is checked the same way)."),
    ]


# --- main -------------------------------------------------------------------------------


def cleanup(cfg: Settings, keep: bool, drop_source: bool) -> None:
    for name in (RESTORE_DS_DB, RESTORE_DUMP_DB) + ((cfg.source_db,) if drop_source else ()):
        try:
            myutil.drop_database(cfg.mysql_url, name)
        except MysqlError as exc:
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
    bench = Bench(cfg, myutil.table_counts(cfg.mysql_url, cfg.source_db))
    bench.run()
    notes = method_notes(cfg)
    if bench.datasafe_error and cfg.datasafe:
        notes.insert(0, f"**datasafe steps incomplete**: {bench.datasafe_error}")
    outcome = Outcome(cfg.scale, collect_facts(cfg, bench, load), bench.steps, bench.sizes(),
                      bench.rows_match, notes)
    rows = evaluate_mysql(outcome)
    section = render_section(outcome, rows, tag=SECTION_TAG, title="MariaDB, scale")
    update_document(args.output, cfg.scale, section, tag=SECTION_TAG)
    print(section)
    progress(f"section '{SECTION_TAG}:scale={cfg.scale}' written to {args.output}")
    if bench.datasafe_error and cfg.datasafe:
        progress(f"error: {bench.datasafe_error}")
        return EXIT_FAILED
    missed = failed_targets(rows)
    for row in missed:
        progress(f"target missed: {row.step} {row.ratio} (target {row.target})")
    return EXIT_TARGETS if missed and args.check_targets else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = validate(args)
    except (BenchError, MysqlError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        return benchmark(cfg, args)
    except CommandFailed as exc:
        print(f"error: {exc.describe()}", file=sys.stderr)
    except (BenchError, MysqlError, subprocess.SubprocessError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        cleanup(cfg, args.keep, args.drop_source)
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
