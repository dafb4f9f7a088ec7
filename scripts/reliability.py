#!/usr/bin/env python3
"""The reliability report: fault matrix, fuzzing and soak, written into docs/reliability.md.

Three parts, each run as it would be by hand, then summed up as tables between the markers
``<!-- reliability:begin -->`` and ``<!-- reliability:end -->`` of docs/reliability.md:

- ``faults``: ``pytest tests/faults`` with ``DATASAFE_FAULTS=full`` and a junit report, whose
  ids ``test_fault[<operation>-<engine>-<storage>-<kind>@<phase>]`` become a table of passes per
  fault kind and operation, by engine and storage;
- ``fuzz``: ``pytest tests/fuzz`` with ``DATASAFE_FUZZ_EXAMPLES`` and ``DATASAFE_FUZZ_REPORT``;
  the JSON lines the tests append are summed per input kind (cases, internal errors);
- ``soak``: ``scripts/soak.py --json`` (90 nights, local and S3).

Each part keeps its own block, stamped with when, where and from which commit it ran, so
``--only`` re-runs one part and leaves the others as they were. The same report is made for
every release::

    scripts/reliability.py                       # everything (about an hour)
    scripts/reliability.py --only soak           # one part
    scripts/reliability.py --quick               # the fast subset of each part
    scripts/reliability.py --faults-junit faults.xml --only faults   # a report made elsewhere

Exit status 1 if a fault cell failed, a fuzz case hit an internal error, a pytest run failed or
the soak was not clean; 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- reliability:begin -->", "<!-- reliability:end -->"
PART = "<!-- reliability:part {} -->"
PARTS = ("faults", "fuzz", "soak")
TITLES = {"faults": "Fault injection", "fuzz": "Fuzzing", "soak": "Soak"}
ENGINES = ("postgres", "mysql", "sqlite")
STORAGES = ("local", "s3")
OPERATIONS = ("backup", "restore", "verify", "mask", "refresh", "prune")
FAULT_ID = re.compile(r"^test_fault\[([a-z]+)-([a-z]+)-([a-z0-9]+)-([^\]]+)\]$")
SERVERS = {"DATASAFE_TEST_POSTGRES_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
           "DATASAFE_TEST_MYSQL_URL": "mysql://root@127.0.0.1:3306/"}


# -- junit --------------------------------------------------------------------------------------
@dataclass
class Outcomes:
    """What a pytest junit report says: every test's outcome, and the matrix cells among them."""

    #: (operation, engine, storage, fault kind, phase) -> passed, failed or skipped
    cells: dict[tuple[str, str, str, str, str], str] = field(default_factory=dict)
    #: every test id -> outcome (the cells included)
    tests: dict[str, str] = field(default_factory=dict)

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.tests.values() if o == outcome)


def parse_junit(path: Path) -> Outcomes:
    out = Outcomes()
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        tags = {child.tag for child in case}
        outcome = ("failed" if tags & {"failure", "error"} else "skipped" if "skipped" in tags else "passed")
        out.tests[f"{case.get('classname', '')}::{name}"] = outcome
        m = FAULT_ID.match(name)
        if m:
            operation, engine, storage, fault = m.groups()
            kind, _, phase = fault.partition("@")
            out.cells[(operation, engine, storage, kind, phase)] = outcome
    return out


def fault_table(outcomes: Outcomes) -> list[str]:
    """One row per fault kind and operation; a column per engine and storage with passed/run."""
    tally: dict[tuple[str, str], dict[tuple[str, str], dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: {"passed": 0, "failed": 0, "skipped": 0}))
    phases: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (operation, engine, storage, kind, phase), outcome in outcomes.cells.items():
        phases[(kind, operation)].add(phase)
        tally[(kind, operation)][(engine, storage)][outcome] += 1
    columns = [(e, s) for e in ENGINES for s in STORAGES]
    lines = ["| Fault | Operation | Phases | " + " | ".join(f"{e} {s}" for e, s in columns) + " | Passed | Skipped |",
             "|---|---|---|" + "---:|" * (len(columns) + 2)]
    order = {op: i for i, op in enumerate(OPERATIONS)}
    for key in sorted(tally, key=lambda k: (k[0], order.get(k[1], 99), k[1])):
        row = tally[key]
        shown = [_cell(row[c]) if c in row else "" for c in columns]
        passed = sum(c["passed"] for c in row.values())
        ran = passed + sum(c["failed"] for c in row.values())
        skipped = sum(c["skipped"] for c in row.values())
        lines.append(f"| `{key[0]}` | {key[1]} | {', '.join(sorted(phases[key]))} | " + " | ".join(shown)
                     + f" | {passed}/{ran} | {skipped or ''} |")
    return lines


def _cell(c: dict[str, int]) -> str:
    ran = c["passed"] + c["failed"]
    if not ran:
        return "skipped"
    return f"{c['passed']}/{ran}" + (" ✗" if c["failed"] else "")


def faults_part(outcomes: Outcomes, stamp: str) -> str:
    cells = outcomes.cells
    passed = sum(1 for o in cells.values() if o == "passed")
    failed = sorted("-".join((op, e, s, f"{k}@{p}")) for (op, e, s, k, p), o in cells.items() if o == "failed")
    skipped = sum(1 for o in cells.values() if o == "skipped")
    others = {t: o for t, o in outcomes.tests.items() if "test_fault[" not in t}
    lines = [stamp, "",
             f"**{passed} of {len(cells) - skipped} matrix cells passed**"
             + (f", {skipped} skipped" if skipped else "")
             + f"; other tests of the suite: {sum(o == 'passed' for o in others.values())} passed, "
             f"{sum(o == 'failed' for o in others.values())} failed. A cell passes when the operation, broken at "
             "that phase, kept every promise above and the next run succeeded.", ""]
    lines += fault_table(outcomes) if cells else ["No matrix cell ran."]
    if failed:
        lines += ["", "Failed: " + ", ".join(f"`{f}`" for f in failed[:30]) + (" ..." if len(failed) > 30 else "")]
    return "\n".join(lines)


# -- fuzz ---------------------------------------------------------------------------------------
def parse_fuzz(path: Path) -> dict[str, dict[str, int]]:
    """Per input kind: the fuzz tests that reported, the cases they ran, the internal errors."""
    kinds: dict[str, dict[str, int]] = defaultdict(lambda: {"tests": 0, "cases": 0, "internal_errors": 0})
    if not path.exists():
        return {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        k = kinds[str(entry["kind"])]
        k["tests"] += 1
        k["cases"] += int(entry.get("cases", 0))
        k["internal_errors"] += int(entry.get("internal_errors", 0))
    return dict(sorted(kinds.items()))


def fuzz_part(kinds: dict[str, dict[str, int]], outcomes: Outcomes | None, examples: int | None, stamp: str) -> str:
    total = sum(k["cases"] for k in kinds.values())
    errors = sum(k["internal_errors"] for k in kinds.values())
    lines = [stamp, "",
             f"**{total:,} cases, {errors} internal error{'' if errors == 1 else 's'}**"
             + (f" ({examples} examples per test)" if examples else "")
             + (f"; pytest: {outcomes.count('passed')} passed, {outcomes.count('failed')} failed" if outcomes else "")
             + ". An internal error is exit code 1 or a traceback: every hostile input must end in success "
             "or a one-line error with another documented exit code.", "",
             "| Input kind | Tests | Cases | Internal errors |", "|---|---:|---:|---:|"]
    lines += [f"| {kind} | {k['tests']} | {k['cases']:,} | {k['internal_errors']} |" for kind, k in kinds.items()]
    return "\n".join(lines)


# -- soak ---------------------------------------------------------------------------------------
def soak_part(report: dict[str, Any], stamp: str) -> str:
    lanes = report["lanes"]
    names = list(lanes)
    weekly = f", pruned every {report['weekly']} nights" if report.get("weekly") else ""
    nights = f"{report['nights_done']} of {report['nights']} nights" if report["stopped_early"] else \
        f"{report['nights_done']} nights"
    lines = [stamp, "",
             f"**{nights} of {report['engine']} on {' and '.join(names)} in {report['elapsed_s'] / 60:.1f} minutes: "
             f"{'clean' if report['ok'] else 'NOT CLEAN'}.** Policy {_policy(report['policy'])}; masked copies "
             f"{_policy(report['masked_policy'])}{weekly}; first night {report['start']}.", "",
             "| Figure | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]

    def row(title: str, fn: Any) -> None:
        lines.append(f"| {title} | " + " | ".join(str(fn(lanes[n])) for n in names) + " |")

    row("snapshots kept / the policy's", lambda r: f"{r['kept']['kept']} / {r['kept']['expected']}"
        + ("" if r["kept"]["match"] else " (differ)"))
    row("masked copies kept / the policy's", lambda r: f"{r['masked']['kept']} / {r['masked']['expected']}"
        + ("" if r["masked"]["match"] else " (differ)"))
    row("bytes stored (objects)", lambda r: f"{r['bytes_stored']:,} ({r['objects']:,})")
    row("of which snapshot folders", lambda r: f"{r['snapshot_bytes']:,}")
    row("`datasafe check --max-age 26h` exit", lambda r: r["check"])
    lines += ["", "| Step | Runs | Failures |", "|---|---:|---:|"]
    for step, s in report["steps"].items():
        extra = f" ({s['locked']} met a lock, exit 9)" if s.get("locked") else ""
        lines.append(f"| {step.replace('_', ' ')} | {s['runs']:,} | {s['failures']}{extra} |")
    lines += ["", "| Left behind | Count |", "|---|---:|"]
    lines += [f"| {k.replace('_', ' ')} | {v} |" for k, v in report["leaks"].items()]
    if report.get("failures"):
        lines += ["", "First failures:", ""]
        lines += [f"- night {f['night']}, {f['storage']}, {f['step']}: exit {f['exit']}: {f['error']}"
                  for f in report["failures"][:10]]
    return "\n".join(lines)


def _policy(policy: dict[str, int]) -> str:
    return ", ".join(f"`{k}: {v}`" for k, v in policy.items())


# -- running the parts --------------------------------------------------------------------------
def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    for name, default in SERVERS.items():
        env.setdefault(name, default)
    return env


def _pytest(folder: str, junit: Path, env: dict[str, str], log: Path) -> int:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", folder, f"--junitxml={junit}"]
    print(f"reliability: {' '.join(cmd[1:])} (log: {log})", file=sys.stderr)
    with log.open("w") as fh:
        return subprocess.run(cmd, env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT).returncode


def stamp(args: argparse.Namespace, part: str, note: str = "") -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sys.path.insert(0, str(ROOT))
    from datasafe import __version__

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " with uncommitted changes"
    how = f"`scripts/reliability.py --only {part}{' --quick' if args.quick else ''}`"
    return (f"*{when}, {os.cpu_count()} cores, datasafe {__version__}, commit {commit}; {how}"
            f"{note}.*")


def run_faults(args: argparse.Namespace, work: Path) -> tuple[str, bool]:
    junit = Path(args.faults_junit) if args.faults_junit else work / "faults.xml"
    rc = 0
    if not args.faults_junit:
        if not (ROOT / "tests" / "faults").is_dir():
            return "Not run: tests/faults is missing. Run `scripts/reliability.py --only faults`.", False
        env = _env() if args.quick else _env(DATASAFE_FAULTS="full")
        rc = _pytest("tests/faults", junit, env, work / "faults.log")
    outcomes = parse_junit(junit)
    note = ", the fast subset (without `DATASAFE_FAULTS=full`)" if args.quick else ""
    if args.faults_junit:
        note = f", from the junit report {junit.name}"
    ok = rc == 0 and outcomes.count("failed") == 0
    return faults_part(outcomes, stamp(args, "faults", note)), ok


def run_fuzz(args: argparse.Namespace, work: Path) -> tuple[str, bool]:
    examples = args.fuzz_examples or (20 if args.quick else 500)
    outcomes = None
    rc = 0
    if args.fuzz_report:
        report = Path(args.fuzz_report)
        examples = 0
    else:
        if not (ROOT / "tests" / "fuzz").is_dir():
            return "Not run: tests/fuzz is missing. Run `scripts/reliability.py --only fuzz`.", False
        report = work / "fuzz.jsonl"
        env = _env(DATASAFE_FUZZ_EXAMPLES=str(examples), DATASAFE_FUZZ_REPORT=str(report))
        rc = _pytest("tests/fuzz", work / "fuzz.xml", env, work / "fuzz.log")
        outcomes = parse_junit(work / "fuzz.xml") if (work / "fuzz.xml").exists() else None
    kinds = parse_fuzz(report)
    ok = rc == 0 and bool(kinds) and all(k["internal_errors"] == 0 for k in kinds.values())
    note = f", from the report {report.name}" if args.fuzz_report else ""
    return fuzz_part(kinds, outcomes, examples or None, stamp(args, "fuzz", note)), ok


def run_soak(args: argparse.Namespace, work: Path) -> tuple[str, bool]:
    if args.soak_json:
        report = json.loads(Path(args.soak_json).read_text(encoding="utf-8"))
    else:
        extra = ["--nights", "10"] if args.quick else []
        cmd = [sys.executable, str(ROOT / "scripts" / "soak.py"), "--json", *extra, *args.soak_arg]
        print(f"reliability: {' '.join(cmd[1:])}", file=sys.stderr)
        # its stderr (errors, --progress) goes to ours, as it comes
        proc = subprocess.run(cmd, env=_env(), cwd=work, stdout=subprocess.PIPE, text=True)
        if not proc.stdout.strip():
            return f"The soak did not report (exit {proc.returncode}); run scripts/soak.py to see why.", False
        report = json.loads(proc.stdout)
        (work / "soak.json").write_text(proc.stdout)
    note = f", from {Path(args.soak_json).name}" if args.soak_json else ""
    return soak_part(report, stamp(args, "soak", note)), bool(report["ok"])


# -- the document -------------------------------------------------------------------------------
def split_parts(doc: str) -> dict[str, str]:
    """The current text of each part of the generated section (empty when there is none)."""
    if BEGIN not in doc or END not in doc:
        return {}
    block = doc[doc.index(BEGIN) + len(BEGIN):doc.index(END)]
    found = {}
    pieces = re.split(r"<!-- reliability:part (\w+) -->", block)
    for name, text in zip(pieces[1::2], pieces[2::2], strict=True):
        body = re.sub(r"^\s*### .*\n", "", text.strip() + "\n", count=1)
        found[name] = body.strip()
    return found


def render_section(parts: dict[str, str]) -> str:
    out = [BEGIN, ""]
    for name in PARTS:
        body = parts.get(name) or f"Not run yet: `scripts/reliability.py --only {name}`."
        out += [PART.format(name), f"### {TITLES[name]}", "", body, ""]
    out.append(END)
    return "\n".join(out)


def update_doc(doc: str, fresh: dict[str, str]) -> str:
    parts = split_parts(doc) | fresh
    section = render_section(parts)
    if BEGIN in doc and END in doc:
        return doc[:doc.index(BEGIN)] + section + doc[doc.index(END) + len(END):]
    return doc.rstrip("\n") + "\n\n" + section + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=PARTS, help="run only this part (repeatable)")
    ap.add_argument("--quick", action="store_true", help="the fast subset of each part")
    ap.add_argument("--doc", type=Path, default=DOC, help="the document to update (default docs/reliability.md)")
    ap.add_argument("--print", dest="print_only", action="store_true", help="print the section; change no file")
    ap.add_argument("--fuzz-examples", type=int, help="examples per fuzz test (default 500, --quick 20)")
    ap.add_argument("--faults-junit", help="use this junit report of tests/faults instead of running it")
    ap.add_argument("--fuzz-report", help="use this JSON-lines fuzz report instead of running tests/fuzz")
    ap.add_argument("--soak-json", help="use this output of scripts/soak.py --json instead of running it")
    ap.add_argument("--soak-arg", action="append", default=[],
                    help="pass an argument on to scripts/soak.py (repeatable; --soak-arg=--nights --soak-arg=30)")
    args = ap.parse_args(argv)
    runners = {"faults": run_faults, "fuzz": run_fuzz, "soak": run_soak}
    fresh: dict[str, str] = {}
    ok = True
    with tempfile.TemporaryDirectory(prefix="datasafe-reliability-") as tmp:
        for name in args.only or PARTS:
            text, part_ok = runners[name](args, Path(tmp))
            fresh[name] = text
            ok = ok and part_ok
            print(f"reliability: {name}: {'ok' if part_ok else 'NOT OK'}", file=sys.stderr)
    if args.print_only:
        print(render_section(split_parts(args.doc.read_text(encoding="utf-8")) | fresh))
    else:
        args.doc.write_text(update_doc(args.doc.read_text(encoding="utf-8"), fresh), encoding="utf-8")
        print(f"reliability: updated {args.doc.relative_to(ROOT) if args.doc.is_relative_to(ROOT) else args.doc}",
              file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
