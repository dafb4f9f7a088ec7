#!/usr/bin/env python3
"""Benchmark a cross-engine restore: a PostgreSQL snapshot into SQLite, against a same-engine restore.

In one run: ``datasafe backup`` of the reference PostgreSQL dataset (scripts/bench/dataset.sql, or
../shared/bench/make_dataset.sql when present, as scripts/bench/run.py chooses), then for
``--rounds`` rounds: ``datasafe restore`` of the snapshot into a new PostgreSQL database (the
anchor) and ``datasafe restore`` of the same snapshot into a new SQLite file (the cross-engine
restore), in turns (the order swaps every round). Each target is removed as soon as it was
measured (the PostgreSQL one would otherwise keep autovacuum busy during the next restore). Wall
time and peak memory (the process tree's) of each; medians. Row counts of every SQLite file are
checked against the source. Writes the ``cross`` section of docs/benchmarks.md.

Targets: the SQLite restore takes at most 1.5 times the PostgreSQL restore's wall time, and its
peak memory stays at or under 256 MB.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
from pathlib import Path

from measure import Measurement, run_measured
from pgutil import with_dbname
from report import publish, script_main
from run import drop_database, ensure_source, parse_args, remove, settle, table_counts, validate

RATIO_LIMIT = 1.5
MEMORY_LIMIT_MB = 256
RESTORE_DB = "datasafe_bench_cross_pg"


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _median(runs: list[Measurement]) -> tuple[float, float]:
    return statistics.median(r.wall_s for r in runs), statistics.median(r.peak_kb for r in runs) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reuse-db", action="store_true")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    base = ["--scale", args.scale, "--datasafe-only", "--keep"]
    if args.workdir:
        base += ["--workdir", str(args.workdir)]
    cfg = validate(parse_args(base))
    cfg.log_dir.mkdir(exist_ok=True)
    ensure_source(cfg, args.reuse_db)
    assert cfg.datasafe is not None
    work = cfg.workdir
    config = work / "cross.yml"
    config.write_text(json.dumps({"sources": {"bench": {"url": cfg.source_url}}}))
    repo = work / "repo-cross"
    remove(repo)
    repo.mkdir()
    out = work / "cross-backup.out"
    run_measured("backup", [[cfg.datasafe, "--config", str(config), "backup", "bench", "--storage", str(repo)]],
                 cfg.log_dir, out, cfg.gnu_time)
    snapshot = out.read_text().strip().splitlines()[-1]
    target_file = work / "cross-target.db"
    head = [cfg.datasafe, "--quiet", "--config", str(config), "restore", snapshot, "--source", "bench",
            "--storage", str(repo)]
    same: list[Measurement] = []
    cross: list[Measurement] = []
    want = table_counts(cfg.source_url)

    def into_postgresql() -> None:
        drop_database(cfg.pg_url, RESTORE_DB)
        settle(cfg.pg_url)
        same.append(run_measured("restore-postgresql", [[*head, "--target", with_dbname(cfg.pg_url, RESTORE_DB),
                                                          "--confirm", RESTORE_DB]], cfg.log_dir, None, cfg.gnu_time))
        # dropped as soon as it was measured: autovacuum would otherwise work on it during the next restore
        drop_database(cfg.pg_url, RESTORE_DB)

    def into_sqlite() -> None:
        remove(target_file)
        settle(cfg.pg_url)
        cross.append(run_measured("restore-sqlite", [[*head, "--target", f"sqlite:///{target_file}", "--confirm",
                                                      target_file.name]], cfg.log_dir, None, cfg.gnu_time))
        with sqlite3.connect(target_file) as conn:
            got = {name: int(conn.execute(f'SELECT count(*) FROM "{name.split(".")[-1]}"').fetchone()[0])
                   for name in want}
        if got != want:
            raise RuntimeError(f"row counts differ after the SQLite restore: {got} != {want}")
        remove(target_file)

    for n in range(1, args.rounds + 1):
        for step in (into_postgresql, into_sqlite) if n % 2 else (into_sqlite, into_postgresql):  # order swaps
            step()
        progress(f"round {n}: postgresql {same[-1].wall_s:.2f} s, sqlite {cross[-1].wall_s:.2f} s "
                 f"({cross[-1].peak_kb / 1024:.0f} MB)")
    same_s, same_mb = _median(same)
    cross_s, cross_mb = _median(cross)
    ratio = cross_s / same_s
    time_ok = ratio <= RATIO_LIMIT
    memory_ok = cross_mb <= MEMORY_LIMIT_MB
    tag = f"cross:scale={args.scale}"
    rows = sum(want.values())
    lines = [
        f"<!-- {tag} -->",
        f"## Cross-engine restore (scale {args.scale})",
        "",
        f"Reference dataset at scale {args.scale} ({rows:,} rows in {len(want)} tables), one PostgreSQL snapshot "
        f"restored {args.rounds} times each way, in turns (the order swaps every round; each target is removed "
        "as soon as it was measured): into a new PostgreSQL database (pg_restore and COPY, the anchor) and into "
        "a new SQLite file (schema translated with SQLAlchemy; rows split and converted a column at a time, "
        "loaded with multi-row INSERTs in one transaction). Medians; memory is the peak of the whole process "
        "tree.",
        "",
        "| restore | wall (median) | rounds | peak memory | target | pass/fail |",
        "|---|---:|---|---:|---|---|",
        f"| into PostgreSQL (same engine, anchor) | {same_s:.2f} s | {', '.join(f'{r.wall_s:.2f}' for r in same)} "
        f"| {same_mb:.0f} MB | — | — |",
        f"| into SQLite (cross-engine) | {cross_s:.2f} s | {', '.join(f'{r.wall_s:.2f}' for r in cross)} "
        f"| {cross_mb:.0f} MB | ≤ {RATIO_LIMIT}× anchor, ≤ {MEMORY_LIMIT_MB} MB | "
        f"{'pass' if time_ok and memory_ok else 'FAIL'} |",
        "",
        f"The cross-engine restore takes {ratio:.2f}× the same-engine one. Row counts of every table were "
        "checked against the source. Command: `scripts/bench/run_cross.py --scale N --rounds N`.",
        f"<!-- /{tag} -->",
    ]
    publish(args.output, args.scale, lines, tag="cross")
    return 0 if time_ok and memory_ok else 1


if __name__ == "__main__":
    script_main(main)
