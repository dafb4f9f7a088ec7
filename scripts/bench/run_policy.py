#!/usr/bin/env python3
"""Benchmark what the restore policy costs: identity questions and the decision, against the restore.

In one run: ``datasafe backup`` of the reference PostgreSQL dataset, a datasafe.yml naming the
source and three environments on the same server (a production environment, a development
and a testing one), then for ``--rounds`` rounds: the policy decision of a restore into the
development environment's server under another spelling (``datasafe.environments.policy``,
in-process, with a fresh identity cache each time: one question per configured database and
the target) and the whole ``datasafe restore --confirm`` of the snapshot into a new database
(the anchor). Medians. Writes the ``policy`` section of docs/benchmarks.md.

Target: the policy decision adds under 100 ms to a restore.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from measure import run_measured
from pgutil import with_dbname
from report import publish, script_main
from run import create_database, drop_database, ensure_source, parse_args, remove, settle, validate

LIMIT_MS = 100.0
ENV_DBS = ("datasafe_bench_policy_dev", "datasafe_bench_policy_test")
RESTORE_DB = "datasafe_bench_policy_restore"


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="1")
    parser.add_argument("--rounds", type=int, default=5)
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
    for db in ENV_DBS:
        drop_database(cfg.pg_url, db)
        create_database(cfg.pg_url, db)
    config = work / "policy.yml"
    config.write_text(json.dumps({
        "sources": {"bench": {"url": cfg.source_url}},
        "environments": {
            "live": {"url": cfg.source_url, "class": "production"},
            "dev": {"url": with_dbname(cfg.pg_url, ENV_DBS[0]), "class": "development"},
            "qa": {"url": with_dbname(cfg.pg_url, ENV_DBS[1]), "class": "testing"},
        },
    }))
    repo = work / "repo-policy"
    remove(repo)
    repo.mkdir()
    out = work / "policy-backup.out"
    run_measured("backup", [[cfg.datasafe, "--config", str(config), "backup", "bench", "--storage", str(repo)]],
                 cfg.log_dir, out, cfg.gnu_time)
    snapshot = out.read_text().strip().splitlines()[-1]

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from datasafe.commands.repository import open_repository
    from datasafe.config import load_config
    from datasafe.environments.policy import Policy
    from datasafe.urls import DatabaseURL

    loaded = load_config(str(config))
    repository = open_repository(str(repo), config=loaded)
    manifest = repository.resolve(snapshot, "bench")
    target = DatabaseURL.parse(with_dbname(cfg.pg_url, RESTORE_DB).replace("127.0.0.1", "127.1"))
    decide_ms: list[float] = []
    restore_s: list[float] = []
    for n in range(1, args.rounds + 1):
        started = time.perf_counter()
        decision = Policy(loaded, repository.policy_key).decide(manifest, target, None, RESTORE_DB)
        decide_ms.append((time.perf_counter() - started) * 1000)
        assert decision.confirmed == RESTORE_DB
        drop_database(cfg.pg_url, RESTORE_DB)
        settle(cfg.pg_url)
        m = run_measured("restore", [[cfg.datasafe, "--config", str(config), "restore", snapshot, "--source", "bench",
                                      "--storage", str(repo), "--target", str(target), "--confirm", RESTORE_DB]],
                         cfg.log_dir, None, cfg.gnu_time)
        restore_s.append(m.wall_s)
        progress(f"round {n}: decision {decide_ms[-1]:.1f} ms, restore {m.wall_s:.2f} s")
    drop_database(cfg.pg_url, RESTORE_DB)
    for db in ENV_DBS:
        drop_database(cfg.pg_url, db)
    ms = statistics.median(decide_ms)
    rs = statistics.median(restore_s)
    verdict = "pass" if ms < LIMIT_MS else "FAIL"
    tag = f"policy:scale={args.scale}"
    lines = [
        f"<!-- {tag} -->",
        f"## Restore policy (scale {args.scale})",
        "",
        f"Reference dataset at scale {args.scale}; a datasafe.yml with the source and three environments on the same "
        f"server; {args.rounds} rounds, medians. The decision asks four servers who they are (three configured "
        "databases and the target, spelt `127.1`), side by side, with a fresh cache each time. The first round "
        "also imports the database drivers, which every restore does anyway.",
        "",
        "| step | median | rounds | target | pass/fail |",
        "|---|---:|---|---|---|",
        f"| datasafe restore (anchor, whole command) | {rs:.2f} s | {', '.join(f'{v:.2f}' for v in restore_s)} "
        "| — | — |",
        f"| policy decision (identities + classes) | {ms:.1f} ms | {', '.join(f'{v:.1f}' for v in decide_ms)} "
        f"| < {LIMIT_MS:.0f} ms | {verdict} |",
        "",
        f"The decision is {ms / 10 / rs:.2f} % of the restore's wall time. Command: "
        "`scripts/bench/run_policy.py --scale N --rounds N`.",
        f"<!-- /{tag} -->",
    ]
    publish(args.output, args.scale, lines, tag="policy")
    return 0 if verdict == "pass" else 1


if __name__ == "__main__":
    script_main(main)
