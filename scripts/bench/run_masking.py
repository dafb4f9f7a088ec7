#!/usr/bin/env python3
"""Benchmark masking: ``datasafe mask`` + ``datasafe restore`` of the result vs a plain restore and pynonymizer.

On the reference dataset, in one run:

* ``datasafe restore`` of the snapshot (the anchor: a plain refresh);
* ``datasafe mask`` with masking_rules/bench_customers.yml, then ``datasafe restore`` of the
  masked snapshot (a masked refresh; both times are summed);
* pynonymizer 2.x with the equivalent strategy on a plain SQL dump of the same database
  (``pynonymizer -i dump.sql -o masked.sql``: it loads the dump into a scratch database, runs its
  UPDATEs, and dumps the result).

Also, in the same run: ``datasafe mask --no-leak-audit`` (the leak audit's overhead is the
ratio of the two mask times, per round) and ``datasafe scan`` of the snapshot with the default
sample against the ``datasafe backup`` that made it.

Targets: masked refresh <= 1.5x the plain restore and <= 0.25x pynonymizer; peak RSS of
``datasafe mask`` <= 256 MB; the leak audit adds <= 15 % to ``datasafe mask``; ``datasafe scan``
<= 0.5x ``datasafe backup``. ``--repeat N`` runs the three datasafe steps N times (the two restores
swap places every other round, as in run.py) and reports medians and every round's ratio;
pynonymizer, which takes minutes, runs once. Writes the ``masking`` section of docs/benchmarks.md. pynonymizer is
installed into its own virtual environment in the work directory (``--pynonymizer PATH`` uses
an existing executable; ``--no-pynonymizer`` skips it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from measure import Measurement, run_measured
from pgutil import create_database, drop_database, settle, with_dbname
from report import publish, script_main
from run import ensure_source, parse_args, parse_snapshot_id, remove, table_counts, validate

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "masking_rules" / "bench_customers.yml"
KEY = "benchmark-masking-key-not-secret-0123456789"
PLAIN_DB = "datasafe_bench_mask_plain"
MASKED_DB = "datasafe_bench_mask_masked"
PYN_DB = "datasafe_bench_mask_pyn"

# the same columns as masking_rules/bench_customers.yml, in pynonymizer's strategy format
PYN_STRATEGY = """\
locale: en_US
tables:
  customers:
    columns:
      first_name: first_name
      last_name: last_name
      email: unique_email
      phone: phone_number
      ssn: ssn
      street: street_address
      credit_card: credit_card_number
      notes: paragraph
  orders:
    columns:
      shipping_address: address
"""


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def install_pynonymizer(work: Path) -> str:
    venv = work / "pynonymizer-venv"
    exe = venv / "bin" / "pynonymizer"
    if not exe.exists():
        progress("installing pynonymizer 2.x into its own virtual environment")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "pynonymizer>=2,<3"], check=True)
    return str(exe)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="10")
    parser.add_argument("--jobs", default="2")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the datasafe steps (medians reported)")
    parser.add_argument("--reuse-db", action="store_true")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--pynonymizer", help="pynonymizer executable (default: install one into the workdir)")
    parser.add_argument("--no-pynonymizer", action="store_true")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    base = ["--scale", args.scale, "--keep"] + (["--workdir", str(args.workdir)] if args.workdir else [])
    cfg = validate(parse_args(base))
    cfg.log_dir.mkdir(exist_ok=True)
    ensure_source(cfg, args.reuse_db)
    rows = table_counts(cfg.source_url)
    assert cfg.datasafe is not None
    ds, work = cfg.datasafe, cfg.workdir
    repo = work / "repo-mask"
    remove(repo)
    os.environ["DATASAFE_MASKING_KEY"] = KEY
    out = cfg.log_dir / "mask-backup.stdout"
    settle(cfg.pg_url)
    backup = run_measured("backup", [[ds, "backup", cfg.source_url, "--name", "bench", "--storage", str(repo),
                                      "--jobs", args.jobs]], cfg.log_dir, out, cfg.gnu_time)
    progress(f"datasafe backup: {backup.wall_s:.2f} s")
    snapshot = parse_snapshot_id(out.read_text())
    scan = run_measured("datasafe scan", [[ds, "scan", snapshot, "--source", "bench", "--storage", str(repo),
                                           "--json"]], cfg.log_dir, cfg.log_dir / "scan.json", cfg.gnu_time)
    progress(f"datasafe scan: {scan.wall_s:.2f} s, peak {scan.peak_kb / 1024:.0f} MB")

    def restore(label: str, snap: str, source: str, db: str) -> Measurement:
        drop_database(cfg.pg_url, db)
        create_database(cfg.pg_url, db)
        settle(cfg.pg_url)
        m = run_measured(label, [[ds, "restore", snap, "--source", source, "--storage", str(repo),
                                  "--target", with_dbname(cfg.pg_url, db), "--confirm", db, "--jobs", args.jobs]],
                         cfg.log_dir, None, cfg.gnu_time)
        progress(f"{label}: {m.wall_s:.2f} s, peak {m.peak_kb / 1024:.0f} MB")
        return m

    def mask_step(audit: bool) -> Measurement:
        label = "datasafe mask" if audit else "datasafe mask --no-leak-audit"
        extra = [] if audit else ["--no-leak-audit", "--name", "bench.noaudit"]
        settle(cfg.pg_url)
        m = run_measured(label, [[ds, "mask", snapshot, "--source", "bench", "--rules", str(RULES),
                                  "--storage", str(repo), *extra]], cfg.log_dir, cfg.log_dir / "mask.stdout",
                         cfg.gnu_time)
        progress(f"{label}: {m.wall_s:.2f} s, peak {m.peak_kb / 1024:.0f} MB")
        return m

    rounds: list[tuple[Measurement, Measurement, Measurement]] = []
    unaudited: list[Measurement] = []
    masked_rows: dict[str, int] = {}
    for number in range(1, max(args.repeat, 1) + 1):
        progress(f"round {number}/{args.repeat}")
        plain_first = number % 2 == 1
        # every restored database is dropped as soon as it was measured (and counted): autovacuum
        # would otherwise work on it during the next step
        plain = restore("datasafe restore (plain)", snapshot, "bench", PLAIN_DB) if plain_first else None
        drop_database(cfg.pg_url, PLAIN_DB)
        # the two masks swap places every other round too
        if not plain_first:
            unaudited.append(mask_step(False))
        mask = mask_step(True)
        masked_id = parse_snapshot_id((cfg.log_dir / "mask.stdout").read_text())
        if plain_first:
            unaudited.append(mask_step(False))
        masked_restore = restore("datasafe restore (masked)", masked_id, "bench.masked", MASKED_DB)
        masked_rows = table_counts(with_dbname(cfg.pg_url, MASKED_DB))
        drop_database(cfg.pg_url, MASKED_DB)
        if plain is None:
            plain = restore("datasafe restore (plain)", snapshot, "bench", PLAIN_DB)
            drop_database(cfg.pg_url, PLAIN_DB)
        rounds.append((plain, mask, masked_restore))
        progress(f"round {number}: masked refresh {(mask.wall_s + masked_restore.wall_s) / plain.wall_s:.2f}x "
                 "plain restore")
    plain, mask, masked_restore = (_median(list(step)) for step in zip(*rounds, strict=True))
    per_round = [(m.wall_s + r.wall_s) / p.wall_s for p, m, r in rounds]
    audit_rounds = [m.wall_s / u.wall_s - 1 for (_p, m, _r), u in zip(rounds, unaudited, strict=True)]
    audit_overhead = statistics.median(audit_rounds)
    unaudited_mask = _median(unaudited)
    scan_ratio = scan.wall_s / backup.wall_s

    pyn: Measurement | None = None
    if not args.no_pynonymizer:
        exe = args.pynonymizer or install_pynonymizer(work)
        dump = work / "plain.sql"
        run_measured("pg_dump -Fp", [["pg_dump", "-Fp", "--no-owner", "-d", cfg.source_url, "-f", str(dump)]],
                     cfg.log_dir, None, cfg.gnu_time)
        strategy = work / "pynonymizer.yml"
        strategy.write_text(PYN_STRATEGY)
        masked_dump = work / "masked.sql"
        remove(masked_dump)
        drop_database(cfg.pg_url, PYN_DB)
        settle(cfg.pg_url)
        pyn = run_measured("pynonymizer", [[exe, "-i", str(dump), "-o", str(masked_dump), "-s", str(strategy),
                                            "-t", "postgres", "-d", "127.0.0.1", "-u", "postgres", "-n", PYN_DB]],
                           cfg.log_dir, None, cfg.gnu_time)
        progress(f"pynonymizer: {pyn.wall_s:.2f} s, peak {pyn.peak_kb / 1024:.0f} MB")
        drop_database(cfg.pg_url, PYN_DB)

    refresh = statistics.median(m.wall_s + r.wall_s for _p, m, r in rounds)
    ratio_plain = statistics.median(per_round)
    lines = [f"<!-- masking:scale={args.scale} -->", f"## Masking (scale {args.scale})", "",
             f"Reference dataset at scale {args.scale} ({sum(rows.values()):,} rows); rules "
             "`masking_rules/bench_customers.yml` (customers.first_name, last_name, email (unique), phone, ssn "
             "char(11), street, credit_card, notes; orders.shipping_address). `--jobs "
             f"{args.jobs}`; wall times are medians of {len(rounds)} round(s), the ratio is the median of the "
             "rounds' ratios (the two restores swap places every other round); pynonymizer ran once. Rows after "
             f"masking and restore: {sum(masked_rows.values()):,} (all kept).", "",
             "| step | wall s | peak RSS MB | ratio | target | pass/fail |", "|---|---:|---:|---|---|---|",
             f"| datasafe restore (plain refresh, anchor) | {plain.wall_s:.2f} | {plain.peak_kb / 1024:.0f} "
             "| — | — | — |",
             f"| datasafe mask --no-leak-audit | {unaudited_mask.wall_s:.2f} | {unaudited_mask.peak_kb / 1024:.0f} "
             "| — | — | — |",
             f"| datasafe mask (leak audit on, the default) | {mask.wall_s:.2f} | {mask.peak_kb / 1024:.0f} | "
             f"leak audit +{audit_overhead * 100:.0f} % | ≤ +15 %, ≤ 256 MB | "
             f"{'pass' if mask.peak_kb / 1024 <= 256 and audit_overhead <= 0.15 else '**FAIL**'} |",
             f"| datasafe restore (masked snapshot) | {masked_restore.wall_s:.2f} | "
             f"{masked_restore.peak_kb / 1024:.0f} | — | — | — |",
             f"| masked refresh = mask + restore | {refresh:.2f} | — | {ratio_plain:.2f}× plain restore | ≤ 1.5× | "
             f"{'pass' if ratio_plain <= 1.5 else '**FAIL**'} |"]
    if len(rounds) > 1:
        lines.append(f"| (ratio in each round) | | | {', '.join(f'{r:.2f}×' for r in per_round)} | | |")
        lines.append(f"| (leak audit in each round) | | | {', '.join(f'+{a * 100:.0f} %' for a in audit_rounds)} "
                     "| | |")
    lines += [f"| datasafe backup (scan anchor) | {backup.wall_s:.2f} | {backup.peak_kb / 1024:.0f} | — | — | — |",
              f"| datasafe scan (default sample) | {scan.wall_s:.2f} | {scan.peak_kb / 1024:.0f} | "
              f"{scan_ratio:.2f}× backup | ≤ 0.5×, ≤ 256 MB | "
              f"{'pass' if scan_ratio <= 0.5 and scan.peak_kb / 1024 <= 256 else '**FAIL**'} |"]
    if pyn is not None:
        ratio_pyn = refresh / pyn.wall_s
        lines.append(f"| pynonymizer (dump in, masked dump out) | {pyn.wall_s:.2f} | {pyn.peak_kb / 1024:.0f} | "
                     f"masked refresh {ratio_pyn:.2f}× pynonymizer | ≤ 0.25× | "
                     f"{'pass' if ratio_pyn <= 0.25 else '**FAIL**'} |")
    lines += ["", "Commands: `datasafe mask SNAPSHOT --rules masking_rules/bench_customers.yml [--no-leak-audit]`; "
              "`datasafe restore MASKED --target …`; `datasafe scan SNAPSHOT --json`; "
              "`pynonymizer -i plain.sql -o masked.sql -s pynonymizer.yml -t postgres` "
              "(strategy in scripts/bench/run_masking.py; pg_dump time not counted).",
              f"<!-- /masking:scale={args.scale} -->"]
    publish(args.output, args.scale, lines, "masking")
    shutil.rmtree(repo, ignore_errors=True)
    return 0


def _median(steps: list[Measurement]) -> Measurement:
    """The round with the median wall time (its peak memory comes with it)."""
    return sorted(steps, key=lambda m: m.wall_s)[len(steps) // 2]


if __name__ == "__main__":
    script_main(main)
