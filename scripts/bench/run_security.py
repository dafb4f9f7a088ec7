#!/usr/bin/env python3
"""Benchmark the cost of encryption and the memory of S3 uploads.

In one run: ``datasafe backup`` of the reference PostgreSQL dataset into local storage, plain and
age-encrypted, alternating for ``--rounds`` rounds (wall times are medians); then a backup of a
SQLite database holding ``--s3-mb`` MB of random (incompressible) blobs into S3, plain and
encrypted, served by a moto server on 127.0.0.1, with the peak RSS of the datasafe process.
Writes the ``security`` section of docs/benchmarks.md.

Targets: encryption adds at most 5 % to backup wall time; peak RSS while uploading a 1 GB
snapshot stays at or below 256 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import sys
from pathlib import Path

from measure import Measurement, run_measured
from report import publish, script_main
from run import ensure_source, parse_args, remove, table_counts, validate

ENCRYPTION_LIMIT = 1.05
RSS_LIMIT_MB = 256
BLOB = 1 << 20


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_blob_db(path: Path, megabytes: int) -> None:
    if path.exists():
        return
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
        for _ in range(megabytes):
            conn.execute("INSERT INTO blobs (data) VALUES (?)", (os.urandom(BLOB),))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="10")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--s3-mb", type=int, default=1024, help="size of the random-blob snapshot for S3")
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
    rows = table_counts(cfg.source_url)
    assert cfg.datasafe is not None
    work = cfg.workdir

    # an age key pair made by datasafe itself
    key_file = work / "restore.key"
    remove(key_file)
    out = work / "key.json"
    run_measured("key", [[cfg.datasafe, "key", "generate", "-o", str(key_file), "--json"]], cfg.log_dir, out,
                 cfg.gnu_time)
    recipient = json.loads(out.read_text())["recipient"]
    enc_cfg = work / "encrypted.yml"
    enc_cfg.write_text(json.dumps({"encryption": {"recipients": [recipient]}}))
    plain_cfg = work / "plain.yml"
    plain_cfg.write_text("{}\n")

    times: dict[str, list[Measurement]] = {"plain": [], "encrypted": []}
    for n in range(1, args.rounds + 1):
        for kind, config in (("plain", plain_cfg), ("encrypted", enc_cfg)):
            repo = work / f"repo-{kind}"
            remove(repo)
            repo.mkdir()
            m = run_measured(f"backup {kind}", [[cfg.datasafe, "--config", str(config), "backup", cfg.source_url,
                                                 "--storage", str(repo), "--jobs", str(cfg.jobs)]],
                             cfg.log_dir, None, cfg.gnu_time)
            times[kind].append(m)
            progress(f"round {n} {kind}: {m.wall_s:.2f} s, peak {m.peak_kb / 1024:.0f} MB")
    plain = statistics.median(m.wall_s for m in times["plain"])
    enc = statistics.median(m.wall_s for m in times["encrypted"])

    # S3 through moto over HTTP on loopback
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3_rows: list[tuple[str, Measurement]] = []
    try:
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
        import boto3

        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(Bucket="bench")
        blob_db = work / "blobs.db"
        progress(f"making a {args.s3_mb} MB random-blob database")
        make_blob_db(blob_db, args.s3_mb)
        for kind, extra in (("plain", {}), ("encrypted", {"encryption": {"recipients": [recipient]}})):
            config = work / f"s3-{kind}.yml"
            config.write_text(json.dumps({"s3": {"endpoint_url": f"http://127.0.0.1:{port}",
                                                 "addressing_style": "path"}, **extra}))
            m = run_measured(f"S3 backup {kind}", [[cfg.datasafe, "--config", str(config), "backup",
                                                    f"sqlite:///{blob_db}", "--name", f"blobs-{kind}",
                                                    "--storage", "s3://bench/datasafe"]],
                             cfg.log_dir, None, cfg.gnu_time)
            progress(f"S3 {kind}: {m.wall_s:.2f} s, peak {m.peak_kb / 1024:.0f} MB")
            s3_rows.append((kind, m))
    finally:
        server.stop()

    ratio = enc / plain
    lines = [f"<!-- security:scale={args.scale} -->", f"## Encryption and S3 (scale {args.scale})", "",
             f"Reference dataset at scale {args.scale} ({sum(rows.values()):,} rows), `--jobs {cfg.jobs}`, "
             f"{args.rounds} alternating rounds; wall times are medians. S3 is a moto server on 127.0.0.1 "
             f"(real HTTP, real boto3); the S3 snapshot is {args.s3_mb} MB of random blobs, so it stores "
             f"about that much after compression.", "",
             "| step | wall s | peak RSS MB | ratio | target | pass/fail |", "|---|---:|---:|---|---|---|",
             f"| datasafe backup, plain | {plain:.2f} | {max(m.peak_kb for m in times['plain']) / 1024:.0f} | "
             "anchor | — | — |",
             f"| datasafe backup, age-encrypted | {enc:.2f} | "
             f"{max(m.peak_kb for m in times['encrypted']) / 1024:.0f} | {ratio:.3f}× plain | ≤ {ENCRYPTION_LIMIT}× | "
             f"{'pass' if ratio <= ENCRYPTION_LIMIT else '**FAIL**'} |"]
    for kind, m in s3_rows:
        mb = m.peak_kb / 1024
        lines.append(f"| S3 upload of the blob snapshot, {kind} | {m.wall_s:.2f} | {mb:.0f} | — | "
                     f"≤ {RSS_LIMIT_MB} MB | {'pass' if mb <= RSS_LIMIT_MB else '**FAIL**'} |")
    lines += ["", "Commands: `datasafe --config plain.yml|encrypted.yml backup SOURCE --storage DIR --jobs "
              f"{cfg.jobs}`; `datasafe --config s3-*.yml backup sqlite:///blobs.db --storage s3://bench/datasafe` "
              "(defaults: part_size 8 MiB, concurrency 2).", f"<!-- /security:scale={args.scale} -->"]
    publish(args.output, args.scale, lines, "security")
    return 0


if __name__ == "__main__":
    script_main(main)
