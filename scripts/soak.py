#!/usr/bin/env python3
"""Soak: many nights of backup, prune, verify and refresh on a changing database, then a reckoning.

Every night the runner changes the source database a little, then, on each storage (a local
folder and S3 served by moto on 127.0.0.1), runs the nightly work with the real command line:

1. ``datasafe backup``, while reader processes run ``list``, ``show`` and ``verify`` against the
   same storage (from the second night on: before that there is nothing to read);
2. ``datasafe prune`` of the source by its retention policy, and of its masked copies;
3. ``datasafe verify`` of the newest snapshot (``--deep`` every few nights);
4. ``datasafe refresh`` of a testing environment with masked data.

datasafe's clock is moved one day per night through ``DATASAFE_NOW`` (see datasafe/clock.py),
so 90 nights of retention take minutes. At the end it compares what each storage keeps with what
the policy says it should keep (computed independently, in ``soak_model``), and counts what must
never be left behind: temporary databases and folders, temporary objects, in-progress markers,
incomplete snapshots, unfinished multipart uploads and unreleased leases. Exit status 0 only if
every step succeeded, every reader saw only complete snapshots, the kept sets match and nothing
leaked.

    scripts/soak.py                                 # 90 nights, PostgreSQL, local + S3
    scripts/soak.py --nights 8 --storage local --json
    scripts/soak.py --engine sqlite --storage both --max-minutes 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from soak_db import RULES, Database  # noqa: E402
from soak_model import (  # noqa: E402
    History,
    Policy,
    is_temp_database,
    local_objects,
    local_storage_leftovers,
    s3_objects,
    s3_storage_leftovers,
    storage_size,
    unreleased_leases,
)

POLICY = Policy(keep_daily=7, keep_weekly=4, keep_monthly=3)
MASKED_POLICY = Policy(keep_last=3)
STEPS = ("backup", "prune", "verify", "verify_deep", "refresh", "reader")
#: exit code of a reader that met a lease (docs/cli.md: 9 locked); every other non-zero is a failure
LOCKED = 9
SERVERS = {"postgres": ("DATASAFE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
           "mysql": ("DATASAFE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/")}


@dataclass
class Lane:
    """One storage and everything the nightly work keeps per storage."""

    name: str
    storage: str
    config: Path
    target: str
    history: History = field(default_factory=lambda: History(POLICY))
    masked: History = field(default_factory=lambda: History(MASKED_POLICY))
    s3: tuple[Any, str, str] | None = None  #: (client, bucket, prefix)


@dataclass
class Result:
    """One datasafe command: its arguments (after the common options), exit status, output, duration."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="datasafe-soak-"))
        self.tmp = self.work / "tmp"
        self.tmp.mkdir()
        (self.work / "db").mkdir()
        self.run_id = f"ds_soak_{secrets.token_hex(3)}"
        server = os.environ.get(SERVERS[args.engine][0], SERVERS[args.engine][1]) if args.engine in SERVERS else ""
        self.db = Database(args.engine, server, self.work / "db")
        self.source = f"{self.run_id}_src"
        self.rng = random.Random(args.seed)
        self.start = datetime.fromisoformat(args.start).replace(hour=2, tzinfo=timezone.utc)
        self.steps: dict[str, dict[str, Any]] = {s: {"runs": 0, "failures": 0, "seconds": 0.0} for s in STEPS}
        self.steps["reader"]["locked"] = 0
        self.failures: list[dict[str, Any]] = []
        self.lanes: list[Lane] = []
        self.moto: Any = None
        self.lock = threading.Lock()
        self.night_t0 = time.monotonic()
        self.night = 0
        self.env = self._environment()
        #: databases already on the server: someone else's scratch databases are not our leak
        self.preexisting = set(self.db.names()) if args.engine != "sqlite" else set()

    # -- set-up ---------------------------------------------------------------------------------
    def _environment(self) -> dict[str, str]:
        (self.work / "policy.key").write_text(secrets.token_hex(32) + "\n")
        (self.work / "policy.key").chmod(0o600)
        (self.work / "rules.yml").write_text(RULES)
        proxies = ("http_proxy", "https_proxy", "all_proxy")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "DATASAFE_")) and k.lower() not in proxies}
        env.update(DATASAFE_POLICY_KEY_FILE=str(self.work / "policy.key"),
                   DATASAFE_MASKING_KEY=secrets.token_hex(32), TMPDIR=str(self.tmp),
                   XDG_CACHE_HOME=str(self.work / "cache"), XDG_CONFIG_HOME=str(self.work / "config"),
                   NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        return env

    def _start_s3(self) -> str:
        import logging

        from moto.server import ThreadedMotoServer

        from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION=REGION,
                        AWS_CONFIG_FILE=str(self.work / "no-aws-config"), AWS_EC2_METADATA_DISABLED="true",
                        AWS_SHARED_CREDENTIALS_FILE=str(self.work / "no-aws-credentials"))
        return f"http://{host}:{port}"

    def setup(self) -> None:
        self.db.create(self.source, shop=True)
        for name in (["local", "s3"] if self.args.storage == "both" else [self.args.storage]):
            target = f"{self.run_id}_qa_{name}"
            self.db.create(target, shop=False)
            s3: tuple[Any, str, str] | None = None
            s3_yaml = ""
            if name == "s3":
                from tests.s3server import moto_client, new_bucket

                endpoint = self._start_s3()
                client = moto_client(endpoint)
                bucket = new_bucket(endpoint)
                s3 = (client, bucket, "soak/")
                storage = f"s3://{bucket}/soak"
                s3_yaml = f"s3:\n  endpoint_url: {endpoint}\n  addressing_style: path\n  region: us-east-1\n"
            else:
                storage = str(self.work / "store")
            config = self.work / f"datasafe-{name}.yml"
            config.write_text(
                f"storage: {storage}\n{s3_yaml}"
                f"sources:\n  {self.source}:\n    url: {self.db.url(self.source)}\n"
                f"    retention: {json.dumps(POLICY.yaml())}\n"
                f"environments:\n  qa:\n    url: {self.db.url(target)}\n    class: testing\n"
                f"    source: {self.source}\n    rules: {self.work / 'rules.yml'}\n")
            self.lanes.append(Lane(name, storage, config, target, s3=s3))

    # -- running datasafe -----------------------------------------------------------------------
    def now(self) -> datetime:
        """The simulated time: night ``n`` starts at 02:00 of day ``n`` and then runs at real speed."""
        return self.start + timedelta(days=self.night, seconds=time.monotonic() - self.night_t0)

    def datasafe(self, lane: Lane, *args: str, timeout: float = 300) -> Result:
        env = dict(self.env, DATASAFE_CONFIG=str(lane.config), DATASAFE_NOW=self.now().isoformat())
        cmd = [sys.executable, "-m", "datasafe.cli", "--quiet", "--log-format", "human", *args]
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=self.work)
        except subprocess.TimeoutExpired:
            return Result(list(args), 124, "", f"timed out after {timeout:.0f}s", time.monotonic() - t0)
        return Result(list(args), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)

    def record(self, lane: Lane, step: str, proc: Result, problem: str | None = None) -> bool:
        """Count one run of ``step``; a non-zero exit or ``problem`` is a failure (kept with its message)."""
        failed = proc.returncode != 0 or problem is not None
        with self.lock:
            self.steps.setdefault(step, {"runs": 0, "failures": 0, "seconds": 0.0})  # "runner": its own errors
            self.steps[step]["runs"] += 1
            self.steps[step]["seconds"] += proc.seconds
            if step == "reader" and proc.returncode == LOCKED:
                self.steps[step]["locked"] += 1
                return True
            if failed:
                self.steps[step]["failures"] += 1
                lines = (proc.stderr or "").strip().splitlines()
                self.failures.append({"night": self.night + 1, "storage": lane.name, "step": step,
                                      "exit": proc.returncode, "args": proc.args,
                                      "error": problem or (lines[-1] if lines else "")})
        return not failed

    # -- one night ------------------------------------------------------------------------------
    def backup_with_readers(self, lane: Lane) -> None:
        known = set(lane.history.snapshots)
        readers: list[tuple[str, Result]] = []

        def read(k: int) -> None:
            # staggered, so that one reader starts with the backup and the next meets it mid-way
            time.sleep(k * self.args.reader_stagger)
            kind, cmd = commands[(self.night + k) % len(commands)]
            readers.append((kind, self.datasafe(lane, *cmd)))

        commands = [("list", ["list", self.source, "--json"]),
                    ("show", ["show", f"{self.source}/latest", "--json"]),
                    ("verify", ["verify", f"{self.source}/latest"])]
        threads = [threading.Thread(target=read, args=(k,)) for k in range(self.args.readers if known else 0)]
        for t in threads:
            t.start()
        proc = self.datasafe(lane, "backup", self.source)
        for t in threads:
            t.join()
        sid = proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 and proc.stdout.strip() else ""
        if self.record(lane, "backup", proc, None if proc.returncode or sid else "printed no snapshot id"):
            lane.history.add(sid, self.now())
        complete = known | {sid}
        for kind, r in readers:
            self.record(lane, "reader", r, self._reader_problem(kind, r, complete) if r.returncode == 0 else None)

    @staticmethod
    def _reader_problem(kind: str, proc: Result, complete: set[str]) -> str | None:
        """A reader may only ever see snapshots that were (or became, during the backup) complete."""
        try:
            return Soak._what_reader_saw(kind, proc, complete)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return f"{kind} printed what is not its JSON: {exc}"

    @staticmethod
    def _what_reader_saw(kind: str, proc: Result, complete: set[str]) -> str | None:
        if kind == "list":
            items = json.loads(proc.stdout)
            seen = {i["snapshot"] for i in items if not i.get("complete", True) or i["snapshot"] not in complete}
            return f"list showed snapshots that are not complete: {sorted(seen)}" if seen else None
        if kind == "show":
            sid = json.loads(proc.stdout).get("snapshot_id")
            return None if sid in complete else f"show latest gave {sid}, not a complete snapshot"
        return None

    def night_on(self, lane: Lane) -> None:
        try:
            self._night_on(lane)
        except Exception as exc:  # the runner's own checks broke: a failure of the night, not a crash
            self.record(lane, "runner", Result([], 0, "", "", 0.0), f"{type(exc).__name__}: {exc}")

    def _night_on(self, lane: Lane) -> None:
        self.backup_with_readers(lane)
        if self.record(lane, "prune", self.datasafe(lane, "prune", self.source)):
            lane.history.prune()
        weekly = self.args.weekly > 0 and (self.night + 1) % self.args.weekly == 0
        if weekly and self.record(lane, "prune", self.datasafe(lane, "prune", f"{self.source}.masked",
                                                               *MASKED_POLICY.options())):
            lane.masked.prune()
        self.record(lane, "verify", self.datasafe(lane, "verify", f"{self.source}/latest"))
        if weekly:
            self.record(lane, "verify_deep", self.datasafe(lane, "verify", f"{self.source}/latest", "--deep"))
        proc = self.datasafe(lane, "refresh", "qa", "--json")
        problem = None
        if proc.returncode == 0:
            masked = json.loads(proc.stdout).get("masked_snapshot")
            lane.masked.add(masked, self.now())
            problem = self._refresh_problem(lane)
        self.record(lane, "refresh", proc, problem)

    def _refresh_problem(self, lane: Lane) -> str | None:
        """The environment must hold every row of the source, none of its e-mail addresses."""
        want, got = self.db.counts(self.source), self.db.counts(lane.target)
        if want != got:
            return f"refreshed {lane.target} holds {got} rows, the source {want}"
        if self.db.emails(self.source) & self.db.emails(lane.target):
            return f"refreshed {lane.target} holds e-mail addresses of the source"
        return None

    def run(self) -> dict[str, Any]:
        began = time.monotonic()
        nights_done = 0
        stopped_early = False
        for night in range(self.args.nights):
            if time.monotonic() - began > self.args.max_minutes * 60:
                stopped_early = True
                break
            self.night, self.night_t0 = night, time.monotonic()
            self.db.mutate(self.source, night, self.rng)
            threads = [threading.Thread(target=self.night_on, args=(lane,)) for lane in self.lanes]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            nights_done += 1
            if self.args.progress:
                print(f"night {night + 1}/{self.args.nights}: {time.monotonic() - began:.0f}s, "
                      f"{sum(s['failures'] for s in self.steps.values())} failures", file=sys.stderr)
        return self.reckon(nights_done, stopped_early, time.monotonic() - began)

    # -- the reckoning --------------------------------------------------------------------------
    def reckon(self, nights_done: int, stopped_early: bool, elapsed: float) -> dict[str, Any]:
        lanes = {lane.name: self._lane_report(lane) for lane in self.lanes}
        temp_dbs = [n for n in self.db.names() if is_temp_database(n, self.run_id) and n not in self.preexisting]
        marked = [lane.target for lane in self.lanes if self.db.restore_marked(lane.target)]
        leaks = {"temp_databases": len(temp_dbs), "marked_targets": len(marked),
                 "temp_folders": len(list(self.tmp.iterdir()))}
        for key in ("temp_files", "in_progress_markers", "incomplete_snapshots", "multipart_uploads",
                    "unreleased_leases"):
            leaks[key] = sum(len(r["leftovers"].get(key, ())) if key != "unreleased_leases" else r[key]
                             for r in lanes.values())
        for s in self.steps.values():
            s["seconds"] = round(s["seconds"], 1)
        report = {
            "engine": self.args.engine, "nights": self.args.nights, "nights_done": nights_done,
            "stopped_early": stopped_early, "storages": [lane.name for lane in self.lanes],
            "elapsed_s": round(elapsed, 1), "start": self.start.date().isoformat(),
            "policy": POLICY.yaml(), "masked_policy": MASKED_POLICY.yaml(), "weekly": self.args.weekly,
            "steps": self.steps,
            "lanes": lanes, "leaks": leaks, "leaked_databases": temp_dbs,
            "failures": self.failures[:20], "failure_count": len(self.failures),
        }
        # a run cut short by --max-minutes is reported as such, not as a failure of what did run
        report["ok"] = not self.failures and not any(leaks.values()) and all(
            r["kept"]["match"] and r["masked"]["match"] and r["check"] == 0 for r in lanes.values())
        return report

    def _lane_report(self, lane: Lane) -> dict[str, Any]:
        listed = self.datasafe(lane, "list", "--all", "--json")
        items = json.loads(listed.stdout) if listed.returncode == 0 else []
        ours = [i["snapshot"] for i in items if i["source"] == self.source and i.get("complete")]
        masked = [i["snapshot"] for i in items if i["source"] == f"{self.source}.masked" and i.get("complete")]
        check = self.datasafe(lane, "check", self.source, "--max-age", "26h").returncode
        if lane.s3 is not None:
            client, bucket, prefix = lane.s3
            leftovers = s3_storage_leftovers(client, bucket, prefix)
            size = storage_size(s3_objects(client, bucket, prefix))
            keys = [k for k, _ in s3_objects(client, bucket, prefix + ".locks/")]
            leases = unreleased_leases(lambda: (client.get_object(Bucket=bucket, Key=prefix + ".locks/" + k)["Body"]
                                                .read() for k in keys))
        else:
            root = Path(lane.storage)
            leftovers = local_storage_leftovers(root)
            size = storage_size(local_objects(root))
            leases = unreleased_leases(lambda: (p.read_bytes() for p in (root / ".locks").rglob("*.json")))
        return {"kept": lane.history.compare(ours), "masked": lane.masked.compare(masked),
                "snapshot_stored_bytes": sum(int(i.get("stored_bytes", 0)) for i in items),
                **size, "check": check, "leftovers": leftovers, "unreleased_leases": leases}

    def cleanup(self) -> None:
        for name in [self.source, *(lane.target for lane in self.lanes)]:
            try:
                self.db.drop(name)
            except Exception as exc:  # the report is already made: say so, go on
                print(f"soak: could not drop {name}: {exc}", file=sys.stderr)
        for lane in self.lanes:
            if lane.s3 is not None and self.moto is not None:
                from tests.s3server import drop_bucket

                drop_bucket(f"http://{':'.join(map(str, self.moto.get_host_and_port()))}", lane.s3[1])
        if self.moto is not None:
            self.moto.stop()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def render(report: dict[str, Any]) -> str:
    out = [f"soak: {report['nights_done']}/{report['nights']} nights of {report['engine']} on "
           f"{' + '.join(report['storages'])} in {report['elapsed_s']:.0f}s: {'ok' if report['ok'] else 'FAILED'}"]
    for step, s in report["steps"].items():
        extra = f", {s['locked']} locked" if "locked" in s else ""
        out.append(f"  {step:<12} {s['runs']:>5} runs {s['seconds']:>7.1f}s  {s['failures']} failures{extra}")
    for name, r in report["lanes"].items():
        out.append(f"  {name}: kept {r['kept']['kept']} (policy: {r['kept']['expected']}, "
                   f"{'match' if r['kept']['match'] else 'MISMATCH'}), masked {r['masked']['kept']} "
                   f"(policy: {r['masked']['expected']}), {r['bytes_stored']:,} bytes in {r['objects']} objects, "
                   f"check exit {r['check']}")
    out.append("  leaks: " + ", ".join(f"{k} {v}" for k, v in report["leaks"].items()))
    if report["stopped_early"]:
        out.append(f"  stopped after {report['nights_done']} nights: --max-minutes reached")
    out += [f"  night {f['night']} {f['storage']} {f['step']}: exit {f['exit']}: {f['error']}"
            for f in report["failures"]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nights", type=int, default=90, help="nights to simulate (default 90)")
    ap.add_argument("--engine", choices=("postgres", "mysql", "sqlite"), default="postgres")
    ap.add_argument("--storage", choices=("local", "s3", "both"), default="both")
    ap.add_argument("--max-minutes", type=float, default=30,
                    help="start no night after this many minutes (default 30; the report says how many ran)")
    ap.add_argument("--weekly", type=int, default=7,
                    help="every N nights also verify --deep and prune the masked copies (0: never)")
    ap.add_argument("--readers", type=int, default=2, help="reader processes started with each backup")
    ap.add_argument("--reader-stagger", type=float, default=0.3, help="seconds between reader starts")
    ap.add_argument("--start", default="2026-01-01", help="date of the first night (UTC)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--progress", action="store_true", help="one line per night on stderr")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (its path is in the report)")
    args = ap.parse_args(argv)
    soak = Soak(args)
    try:
        soak.setup()
        report = soak.run()
    finally:
        soak.cleanup()
    if args.keep:
        report["work"] = str(soak.work)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
