#!/usr/bin/env python3
"""Benchmark in-table parallelism on a database whose one table holds over 90 % of the data.

PostgreSQL (scripts/bench/dataset_big.sql): `datasafe backup --jobs 2` against `pg_dump -Fp |
zstd -3 -T2` (target at most 0.75x) and `datasafe restore --jobs 2` against `pg_restore -j2`
(target at most 0.7x), in the same run, and the scaling curve of datasafe backup and restore
over `--jobs 1, 2` with the CPU time of each process. MariaDB (scripts/bench/mysql_dataset_big.sql,
with --mysql): `datasafe backup` against `mariadb-dump | zstd -3 -T2` and `datasafe restore`
against replaying that dump, with the same curve. Writes the `split` section of
docs/benchmarks.md. Standard library only; reuses run.py, run_mysql.py, measure.py and report.py.

Exit status: 0 done, 1 a command or a precondition failed, 2 bad usage, 3 a target was missed
(only with --check-targets).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import myutil
from measure import CommandFailed, gnu_time_available, run_measured
from pgutil import (
    DEFAULT_PG_URL,
    PsqlError,
    create_database,
    database_exists,
    drop_database,
    load_sql_file,
    psql,
    query_value,
    quote_ident,
    quote_literal,
    redact,
    settle,
    with_dbname,
)
from report import update_document
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
    progress,
    remove,
    table_counts,
    tool_version,
)
from run_mysql import checkpoint as mysql_checkpoint

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent.parent
PG_GENERATOR = BENCH_DIR / "dataset_big.sql"
MY_GENERATOR = BENCH_DIR / "mysql_dataset_big.sql"
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "benchmarks.md"
SECTION_TAG = "split"
BIG_TABLE = "readings"
EXIT_FAILED, EXIT_TARGETS = 1, 3
#: clock ticks of /proc/stat
TICK = os.sysconf("SC_CLK_TCK")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="See scripts/bench/README.md for what is measured and how.")
    parser.add_argument("--scale", type=canonical_scale, default="10",
                        help="dataset scale; 10 = 12M readings, about 1.5 GB in that one table (default 10)")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help=f"PostgreSQL superuser URL (default {DEFAULT_PG_URL})")
    parser.add_argument("--mysql", action="store_true", help="also run the MariaDB twin")
    parser.add_argument("--mysql-url", default=myutil.DEFAULT_MYSQL_URL,
                        help=f"MariaDB server URL (default {myutil.DEFAULT_MYSQL_URL})")
    parser.add_argument("--jobs", default="1,2", help="the --jobs values of the scaling curve (default 1,2); "
                                                      "the anchors and targets use 2")
    parser.add_argument("--split-larger-than", metavar="SIZE",
                        help="passed to datasafe backup (default: datasafe's own threshold); a tiny --scale "
                             "needs a small SIZE, e.g. 4MiB, for the big table to be split at all")
    parser.add_argument("--workdir", type=Path, help="empty or new directory for outputs (default: under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--reuse-db", action="store_true", help="keep a source database loaded the same way")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown file to update")
    parser.add_argument("--datasafe", metavar="PATH", help="datasafe executable")
    parser.add_argument("--check-targets", action="store_true", help="exit 3 when a target is missed")
    return parser.parse_args(argv)


@dataclass
class Run:
    """One measured step: wall time, peak RSS and CPU seconds (the step's processes; the rest of the
    machine, which is mostly the database server)."""

    label: str
    command: str
    wall_s: float
    peak_mb: float
    cpu_own_s: float
    cpu_rest_s: float

    @property
    def cpu_use(self) -> float:
        """Busy CPUs on average: all CPU time over the wall time."""
        return (self.cpu_own_s + self.cpu_rest_s) / self.wall_s if self.wall_s else 0.0


@dataclass
class Settings:
    scale: str
    jobs: list[int]
    pg_url: str
    mysql_url: str | None
    workdir: Path
    datasafe: str
    split: str | None
    gnu_time: bool
    reuse: bool
    runs: list[Run] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def mysql_target(self) -> MysqlTarget:
        assert self.mysql_url is not None
        return MysqlTarget(self.mysql_url)


@dataclass
class MysqlTarget:
    """What run_mysql.checkpoint reads of its settings."""

    mysql_url: str


def machine_busy_s() -> float:
    """CPU seconds all CPUs spent busy since boot (/proc/stat, everything but idle and iowait)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(v) for v in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / TICK


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(cfg: Settings, label: str, commands: list[list[str]], stdout: Path | None = None) -> Run:
    """Run one step (after a checkpoint of the server it reads or writes) and record it."""
    progress(f"{label} ...")
    own, busy = children_cpu_s(), machine_busy_s()
    m = run_measured(label, commands, cfg.log_dir, stdout, cfg.gnu_time)
    own, busy = children_cpu_s() - own, machine_busy_s() - busy
    shown = " | ".join(shlex.join("datasafe" if a == cfg.datasafe else redact(a) for a in argv) for argv in commands)
    run = Run(label, shown.replace(str(cfg.workdir), "$WORKDIR"), m.wall_s, m.peak_kb / 1024, own,
              max(0.0, busy - own))
    cfg.runs.append(run)
    progress(f"{label}: {run.wall_s:.2f} s, CPU {run.cpu_own_s:.1f} s own + {run.cpu_rest_s:.1f} s rest")
    return run


def marker(generator: Path, scale: str) -> str:
    return f"datasafe-bench dataset=big generator-sha256={hashlib.sha256(generator.read_bytes()).hexdigest()[:16]} " \
           f"scale={scale}"


def split_args(cfg: Settings) -> list[str]:
    return ["--split-larger-than", cfg.split] if cfg.split else []


# --- PostgreSQL ------------------------------------------------------------------------------------
def pg_source(cfg: Settings) -> str:
    name = "datasafe_bench_big_s" + cfg.scale.replace(".", "_")
    url = with_dbname(cfg.pg_url, name)
    comment = f"SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = " \
              f"{quote_literal(name)}"
    if cfg.reuse and database_exists(cfg.pg_url, name) and query_value(cfg.pg_url, comment) == marker(
            PG_GENERATOR, cfg.scale):
        progress(f"reusing {name}")
        return url
    drop_database(cfg.pg_url, name)
    create_database(cfg.pg_url, name)
    progress(f"loading {PG_GENERATOR.name} at scale {cfg.scale} into {name}")
    load_sql_file(url, str(PG_GENERATOR), cfg.scale)
    psql(url, sql="VACUUM (FREEZE, ANALYZE)")
    psql(cfg.pg_url, sql=f"COMMENT ON DATABASE {quote_ident(name)} IS {quote_literal(marker(PG_GENERATOR, cfg.scale))}")
    return url


def pg_bench(cfg: Settings) -> None:
    source = pg_source(cfg)
    rows = table_counts(source)
    share = query_value(source, f"SELECT round(100.0 * pg_total_relation_size('{BIG_TABLE}') / "
                                "sum(pg_total_relation_size(c.oid)), 1) FROM pg_class c JOIN pg_namespace n "
                                "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'")
    size = query_value(source, "SELECT pg_size_pretty(pg_database_size(current_database()))")
    cfg.facts += [("PostgreSQL dataset", f"`{PG_GENERATOR.relative_to(REPO_ROOT)}`: "
                                         + ", ".join(f"{t} {n:,}" for t, n in rows.items())
                                         + f"; database {size}, {share} % of it in {BIG_TABLE}"),
                  ("PostgreSQL", f"server {query_value(cfg.pg_url, 'SHOW server_version')}; "
                                 f"{tool_version(['pg_dump', '--version'])}")]
    snapshot, repo = "", cfg.workdir / "pg-repo"
    for jobs in cfg.jobs:
        remove(repo)
        repo.mkdir()
        out = cfg.log_dir / f"pg-backup-{jobs}.stdout"
        settle(cfg.pg_url)
        measured(cfg, f"pg datasafe backup -j{jobs}",
                 [[cfg.datasafe, "backup", "--storage", str(repo), source, "--jobs", str(jobs), *split_args(cfg)]], out)
        snapshot = parse_snapshot_id(out.read_text(errors="replace"))
    dump_plain, dump_dir = cfg.workdir / "dump.sql.zst", cfg.workdir / "dump.d"
    settle(cfg.pg_url)
    measured(cfg, "pg_dump -Fp | zstd -3 -T2", [["pg_dump", "-Fp", "-d", source],
                                                ["zstd", "-3", "-T2", "-q", "-f", "-o", str(dump_plain)]])
    remove(dump_dir)
    settle(cfg.pg_url)
    measured(cfg, "pg_dump -Fd -j2 (setup)", [["pg_dump", "-Fd", "-j2", "-d", source, "-f", str(dump_dir)]])
    target_name = "datasafe_bench_big_restore"
    target = with_dbname(cfg.pg_url, target_name)
    for jobs in cfg.jobs:
        drop_database(cfg.pg_url, target_name)
        create_database(cfg.pg_url, target_name)
        settle(cfg.pg_url)
        measured(cfg, f"pg datasafe restore -j{jobs}",
                 [[cfg.datasafe, "restore", snapshot, "--storage", str(repo), "--target", target,
                   "--confirm", target_name, "--jobs", str(jobs)]])
        if table_counts(target) != rows:
            raise BenchError(f"datasafe restore --jobs {jobs}: row counts differ from the source")
    drop_database(cfg.pg_url, target_name)
    create_database(cfg.pg_url, target_name)
    settle(cfg.pg_url)
    measured(cfg, "pg_restore -j2", [["pg_restore", "-j2", "-d", target, str(dump_dir)]])
    drop_database(cfg.pg_url, target_name)
    cfg.facts.append(("PostgreSQL sizes", f"datasafe snapshot {dir_bytes(repo) / 2**20:.1f} MB, dump.sql.zst "
                                          f"{dir_bytes(dump_plain) / 2**20:.1f} MB"))


# --- MariaDB ---------------------------------------------------------------------------------------
def my_source(cfg: Settings) -> str:
    assert cfg.mysql_url is not None
    name = "datasafe_bench_big_s" + cfg.scale.replace(".", "_")
    if not (cfg.reuse and myutil.database_exists(cfg.mysql_url, name)
            and myutil.database_comment(cfg.mysql_url, name) == marker(MY_GENERATOR, cfg.scale)):
        myutil.drop_database(cfg.mysql_url, name)
        myutil.create_database(cfg.mysql_url, name)
        progress(f"loading {MY_GENERATOR.name} at scale {cfg.scale} into {name}")
        myutil.load_generator(cfg.mysql_url, name, str(MY_GENERATOR), cfg.scale)
        myutil.run_sql(cfg.mysql_url, f"ALTER DATABASE {myutil.quote_ident(name)} COMMENT "
                                      f"{myutil.quote_literal(marker(MY_GENERATOR, cfg.scale))}")
    return name


def my_bench(cfg: Settings) -> None:
    assert cfg.mysql_url is not None
    url = cfg.mysql_url
    myutil.export_password(url)
    name = my_source(cfg)
    rows = myutil.table_counts(url, name)
    share = myutil.query_value(url, f"SELECT ROUND(100 * SUM(IF(table_name = '{BIG_TABLE}', data_length + "
                                    "index_length, 0)) / SUM(data_length + index_length), 1) FROM "
                                    f"information_schema.tables WHERE table_schema = {myutil.quote_literal(name)}")
    mode = myutil.query_value(url, "SELECT @@innodb_autoinc_lock_mode")
    cfg.facts += [("MariaDB dataset", f"`{MY_GENERATOR.relative_to(REPO_ROOT)}`: "
                                      + ", ".join(f"{t} {n:,}" for t, n in rows.items())
                                      + f"; {share} % of the bytes in {BIG_TABLE}"),
                  ("MariaDB", f"server {myutil.query_value(url, 'SELECT VERSION()')}, innodb_autoinc_lock_mode "
                              f"{mode} (below 2, the ranges of an AUTO_INCREMENT table load one after the other)")]
    source = with_dbname(url, name)
    client = [myutil.client_name(), *myutil.connection_args(url)]
    snapshot, repo = "", cfg.workdir / "my-repo"
    for jobs in cfg.jobs:
        remove(repo)
        repo.mkdir()
        out = cfg.log_dir / f"my-backup-{jobs}.stdout"
        mysql_checkpoint(cfg.mysql_target)  # type: ignore[arg-type]
        measured(cfg, f"mariadb datasafe backup -j{jobs}",
                 [[cfg.datasafe, "backup", "--storage", str(repo), source, "--jobs", str(jobs), *split_args(cfg)]], out)
        snapshot = parse_snapshot_id(out.read_text(errors="replace"))
    dump = cfg.workdir / "my-dump.sql.zst"
    mysql_checkpoint(cfg.mysql_target)  # type: ignore[arg-type]
    measured(cfg, "mariadb-dump | zstd -3 -T2", [["mariadb-dump", *client[1:], "--single-transaction", "--quick", name],
                                                 ["zstd", "-3", "-T2", "-q", "-f", "-o", str(dump)]])
    target = "datasafe_bench_big_my_restore"
    for jobs in cfg.jobs:
        myutil.drop_database(url, target)
        myutil.create_database(url, target)
        mysql_checkpoint(cfg.mysql_target)  # type: ignore[arg-type]
        measured(cfg, f"mariadb datasafe restore -j{jobs}",
                 [[cfg.datasafe, "restore", snapshot, "--storage", str(repo), "--target", with_dbname(url, target),
                   "--confirm", target, "--jobs", str(jobs)]])
        if myutil.table_counts(url, target) != rows:
            raise BenchError(f"datasafe restore --jobs {jobs} (MariaDB): row counts differ from the source")
    myutil.drop_database(url, target)
    myutil.create_database(url, target)
    mysql_checkpoint(cfg.mysql_target)  # type: ignore[arg-type]
    measured(cfg, f"zstd -dc | {client[0]} (replay)", [["zstd", "-dc", "-q", str(dump)], [*client, target]])
    myutil.drop_database(url, target)


# --- report ----------------------------------------------------------------------------------------
def ratio_rows(cfg: Settings) -> list[tuple[Run, str, str, bool | None]]:
    """(run, ratio vs its anchor, target, passed) for every datasafe run that has an anchor."""
    by_label = {r.label: r for r in cfg.runs}
    replay = next((r.label for r in cfg.runs if r.label.endswith("(replay)")), "")
    anchors: dict[str, tuple[str, float | None]] = {
        "pg datasafe backup": ("pg_dump -Fp | zstd -3 -T2", 0.75),
        "pg datasafe restore": ("pg_restore -j2", 0.7),
        "mariadb datasafe backup": ("mariadb-dump | zstd -3 -T2", None),
        "mariadb datasafe restore": (replay, None)}
    out: list[tuple[Run, str, str, bool | None]] = []
    for run in cfg.runs:
        stem, _, jobs = run.label.rpartition(" -j")
        anchor, limit = anchors.get(stem, ("", None))
        base = by_label.get(anchor)
        if base is None or not base.wall_s:
            out.append((run, "", "", None))
            continue
        ratio = run.wall_s / base.wall_s
        checked = limit is not None and jobs == "2"
        out.append((run, f"{ratio:.2f}× {anchor}", f"≤ {limit}×" if checked else "—",
                    ratio <= limit if checked and limit is not None else None))
    return out


def cell(text: str) -> str:
    """``text`` inside a markdown table cell (a pipe would end the cell)."""
    return text.replace("|", "\\|")


def section(cfg: Settings) -> str:
    lines = [f"<!-- {SECTION_TAG}:scale={cfg.scale} -->", f"## In-table parallelism, scale {cfg.scale}", "",
             "| | |", "|---|---|",
             *(f"| {k} | {cell(v)} |" for k, v in [
                 ("date", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())),
                 ("command", "`scripts/bench/run_split.py " + shlex.join(sys.argv[1:]) + "`"),
                 ("machine", machine_summary()),
                 ("datasafe", tool_version([cfg.datasafe, "--version"])),
                 ("split threshold", cfg.split or "datasafe's default"),
                 *cfg.facts]),
             "", "### Results", "",
             "| step | wall s | peak RSS MB | CPU s (step) | CPU s (rest: server) | CPUs busy | ratio | target "
             "| pass/fail |",
             "|---|---:|---:|---:|---:|---:|---|---|---|"]
    for run, ratio, target, passed in ratio_rows(cfg):
        verdict = "—" if passed is None else "pass" if passed else "FAIL"
        lines.append(f"| {cell(run.label)} | {run.wall_s:.2f} | {run.peak_mb:.0f} | {run.cpu_own_s:.1f} | "
                     f"{run.cpu_rest_s:.1f} | {run.cpu_use:.2f} | {cell(ratio or '—')} | {target or '—'} | {verdict} |")
    lines += ["", "### Commands", "", "```", *(r.command for r in cfg.runs), "```", "", "### Method", "",
              "- Each step runs as its own processes after a `CHECKPOINT` and `sync` (PostgreSQL) or a flush of "
              "InnoDB's dirty pages (MariaDB); restore targets are created empty before their step.",
              "- CPU s (step): user + system time of the step's processes (from `getrusage` of the "
              "children). CPU s (rest): the machine's busy time (`/proc/stat`) in the same interval minus "
              "that, which is mostly the database server's backends. CPUs busy: both over the wall time.",
              "- The scaling curve is datasafe with each `--jobs` value on the same snapshot (the restores "
              "load the snapshot of the last backup); the anchors and targets use 2 jobs.",
              f"<!-- /{SECTION_TAG}:scale={cfg.scale} -->"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        jobs = [int(j) for j in args.jobs.split(",")]
        if not jobs or min(jobs) < 1 or 2 not in jobs:
            raise BenchError("--jobs must be positive numbers including 2 (the targets use 2)")
        check_tools(["psql", "pg_dump", "pg_restore", "zstd"] + (["mariadb-dump"] if args.mysql else []))
        datasafe = find_datasafe(args.datasafe)
        if datasafe is None:
            raise BenchError("datasafe executable not found; pass --datasafe PATH")
        check_workdir(args.workdir, args.scale)
        cfg = Settings(args.scale, sorted(set(jobs)), args.pg_url, args.mysql_url if args.mysql else None,
                       make_workdir(args.workdir), datasafe, args.split_larger_than, gnu_time_available(),
                       args.reuse_db)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    cfg.log_dir.mkdir(exist_ok=True)
    try:
        pg_bench(cfg)
        if cfg.mysql_url is not None:
            my_bench(cfg)
    except CommandFailed as exc:
        print(f"error: {exc.describe()}", file=sys.stderr)
        return EXIT_FAILED
    except (BenchError, PsqlError, myutil.MysqlError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if not args.keep:
            remove(cfg.workdir)
    text = section(cfg)
    update_document(args.output, cfg.scale, text, tag=SECTION_TAG)
    print(text)
    missed = [r.label for r, _, _, passed in ratio_rows(cfg) if passed is False]
    for label in missed:
        progress(f"target missed: {label}")
    return EXIT_TARGETS if missed and args.check_targets else 0


if __name__ == "__main__":
    sys.exit(main())
