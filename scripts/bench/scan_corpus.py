#!/usr/bin/env python3
"""Measure ``datasafe scan`` on the labelled corpus: column-level recall and precision per engine.

Builds the three corpus databases of ``tests/scan_corpus`` (PostgreSQL and MariaDB/MySQL on the
given servers, SQLite in the work folder), snapshots each with ``datasafe backup``, scans the
snapshot with ``datasafe scan <snapshot> --json`` (and the live database with ``--live``),
compares with ``tests/scan_corpus/labels/<engine>.yaml`` and prints TP/FP/FN/TN, recall and
precision ("detected" = the report's category is not null), the stricter category-correct
figures, JSON-path recall and schema-text recall, per engine and overall.

Exit status: 0 when overall recall >= 95 % and precision >= 90 % (for every scan mode run),
1 when a target is missed, 2 when the corpus could not be built, snapshotted or scanned.
Needs the project's dependencies (run it with the project's interpreter, e.g. .venv/bin/python).

    .venv/bin/python scripts/bench/scan_corpus.py
    .venv/bin/python scripts/bench/scan_corpus.py --engines sqlite --live --json
    .venv/bin/python scripts/bench/scan_corpus.py --keep --workdir /tmp/corpus   # keep databases + reports
    .venv/bin/python scripts/bench/scan_corpus.py --report sqlite=/tmp/corpus/scan-sqlite-snapshot.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.scan_corpus import DEFAULT_SEED, ENGINES  # noqa: E402
from tests.scan_corpus.pipeline import (  # noqa: E402
    DEFAULT_MYSQL_URL,
    DEFAULT_PG_URL,
    CorpusDatabase,
    PipelineError,
    build,
    redact,
    scan_engine,
)
from tests.scan_corpus.score import (  # noqa: E402
    PRECISION_TARGET,
    RECALL_TARGET,
    Score,
    format_table,
    load_labels,
    score,
    total,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pg-url", default=os.environ.get("DATASAFE_TEST_POSTGRES_URL") or DEFAULT_PG_URL,
                   help="PostgreSQL server (any database on it); default $DATASAFE_TEST_POSTGRES_URL or %(default)s")
    p.add_argument("--mysql-url", default=os.environ.get("DATASAFE_TEST_MYSQL_URL") or DEFAULT_MYSQL_URL,
                   help="MariaDB/MySQL server; default $DATASAFE_TEST_MYSQL_URL or %(default)s")
    p.add_argument("--engines", default=",".join(ENGINES),
                   help="comma-separated subset of %(default)s")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="generator seed (default %(default)s)")
    p.add_argument("--db-name", default="datasafe_scan_corpus",
                   help="database name on the servers / SQLite file stem (default %(default)s)")
    p.add_argument("--rows", type=int, help="rows sampled per table (datasafe scan --rows; default: its own)")
    p.add_argument("--live", action="store_true", help="also scan the live databases (URL form) and score them")
    p.add_argument("--workdir", type=Path,
                   help="folder for the SQLite file, the snapshots and the raw reports (default: a temporary one)")
    p.add_argument("--keep", action="store_true",
                   help="keep the databases (and the work folder) instead of dropping them at the end")
    p.add_argument("--report", action="append", default=[], metavar="ENGINE=FILE",
                   help="score a saved report instead of building and scanning (repeatable)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.add_argument("--brief", action="store_true", help="only the table, without the per-column details")
    args = p.parse_args(argv)
    args.engine_list = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(args.engine_list) - set(ENGINES)
    if unknown:
        p.error(f"unknown engine(s) {', '.join(sorted(unknown))}; choose from {', '.join(ENGINES)}")
    return args


def scored(reports: dict[str, dict[str, dict[str, Any]]]) -> dict[str, list[Score]]:
    """mode -> one Score per engine."""
    out: dict[str, list[Score]] = {}
    for engine, by_mode in reports.items():
        labels = load_labels(engine)
        for mode, report in by_mode.items():
            s = score(report, labels)
            if mode != "snapshot":
                s.engine = f"{engine}/{mode}"
            out.setdefault(mode, []).append(s)
    return out


def collect(args: argparse.Namespace, workdir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Build, snapshot and scan each engine's corpus; the reports (also saved in ``workdir``)."""
    servers = {"postgresql": args.pg_url, "mysql": args.mysql_url}
    storage = workdir / "storage"
    reports: dict[str, dict[str, dict[str, Any]]] = {}
    built: list[CorpusDatabase] = []
    try:
        for engine in args.engine_list:
            where = redact(servers[engine]) if engine in servers else str(workdir)
            print(f"[{engine}] building the corpus (seed {args.seed}) on {where}", file=sys.stderr)
            db = build(engine, name=args.db_name, workdir=workdir, seed=args.seed, server=servers.get(engine))
            built.append(db)
            print(f"[{engine}] backup + scan{' + live scan' if args.live else ''}", file=sys.stderr)
            reports[engine] = scan_engine(db, storage, workdir, live=args.live, rows=args.rows)
            for mode, report in reports[engine].items():
                (workdir / f"scan-{engine}-{mode}.json").write_text(json.dumps(report, indent=1))
    finally:
        if args.keep:
            for db in built:
                print(f"[{db.engine}] kept: {redact(db.url)}", file=sys.stderr)
        else:
            for db in built:
                try:
                    db.drop()
                except Exception as exc:
                    print(f"[{db.engine}] could not drop {db.name}: {exc}", file=sys.stderr)
    return reports


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        reports: dict[str, dict[str, dict[str, Any]]] = {}
        for item in args.report:
            engine, _, path = item.partition("=")
            if engine not in ENGINES or not path:
                print(f"--report wants ENGINE=FILE with ENGINE one of {', '.join(ENGINES)}", file=sys.stderr)
                return 2
            reports.setdefault(engine, {})["snapshot"] = json.loads(Path(path).read_text())
    else:
        if args.workdir:
            workdir, temporary = args.workdir.resolve(), False
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir, temporary = Path(tempfile.mkdtemp(prefix="scan-corpus-")), True
        try:
            reports = collect(args, workdir)
        except PipelineError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        finally:
            if temporary and not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
            elif temporary:
                print(f"work folder kept: {workdir}", file=sys.stderr)

    by_mode = scored(reports)
    verdicts = {mode: total(scores).passed() for mode, scores in by_mode.items()}
    ok = all(verdicts.values())
    if args.json:
        print(json.dumps({"targets": {"recall": RECALL_TARGET, "precision": PRECISION_TARGET},
                          "passed": ok, "seed": args.seed,
                          "modes": {mode: {"engines": [s.as_dict() for s in scores],
                                           "overall": total(scores).as_dict(), "passed": verdicts[mode]}
                                    for mode, scores in by_mode.items()}}, indent=2))
    else:
        for mode, scores in by_mode.items():
            print(f"\nscan of the {mode}" + ("s" if mode == "snapshot" else " databases")
                  + f" (seed {args.seed}): detected = category not null; c.* = category correct")
            print(format_table(scores, details=not args.brief))
            t = total(scores)
            print(f"overall recall {100 * (t.recall or 0):.1f} % (target {100 * RECALL_TARGET:.0f} %), precision "
                  f"{100 * (t.precision or 0):.1f} % (target {100 * PRECISION_TARGET:.0f} %): "
                  f"{'PASS' if verdicts[mode] else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
