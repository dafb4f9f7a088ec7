"""Turn benchmark measurements into target verdicts and a markdown section."""

from __future__ import annotations

import re
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from measure import Measurement

MB = 1024 * 1024
MEMORY_LIMIT_MB = 256

# Step keys, in the order the steps run.
BACKUP, DUMP_PLAIN, DUMP_CUSTOM, DUMP_DIR = "backup", "dump_plain", "dump_custom", "dump_dir"
RESTORE, PG_RESTORE, VERIFY = "restore", "pg_restore", "verify"
DATASAFE_STEPS = (BACKUP, RESTORE, VERIFY)
# MariaDB/MySQL anchors (scripts/bench/run_mysql.py).
MY_DUMP, MY_REPLAY = "mariadb_dump", "mariadb_replay"

INTRO = """\
# Benchmarks

The figures below are produced by `scripts/bench/run.py` (see `scripts/bench/README.md`).
It loads a synthetic shop database (customers, orders, events; scale 10 is about 1.2 GB),
then times datasafe's backup, restore and verify against plain PostgreSQL tools on the same
machine. Reproduce with a local PostgreSQL superuser connection and datasafe installed:

    scripts/bench/run.py --scale 10                   # full comparison
    scripts/bench/run.py --scale 30 --datasafe-only   # memory check on a larger database

Each run replaces only its own section (one per scale), so several scales can coexist.
Targets:

- `datasafe backup` takes at most 1.0x the time of `pg_dump -Fp | zstd -3 -T2` and at most
  0.5x the time of `pg_dump -Fc`;
- the snapshot is at most 1.05x the size of the `pg_dump -Fp | zstd -3` output;
- `datasafe restore` takes at most 0.9x the time of `pg_restore -j2` (from `pg_dump -Fd -j2`);
- `datasafe verify` takes at most 0.3x the time of `datasafe backup`;
- no datasafe command peaks above 256 MB of memory.
"""


@dataclass
class StepResult:
    """All runs of one step; the reported figures are the median wall time and the peak memory."""

    label: str
    command: str
    runs: list[Measurement] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return statistics.median(m.wall_s for m in self.runs)

    @property
    def max_rss_mb(self) -> float:
        return max(m.max_rss_kb for m in self.runs) / 1024

    @property
    def tree_pss_mb(self) -> float | None:
        values = [m.tree_pss_kb for m in self.runs if m.tree_pss_kb is not None]
        return max(values) / 1024 if values else None

    @property
    def peak_mb(self) -> float:
        return max(m.peak_kb for m in self.runs) / 1024


@dataclass
class Row:
    """One line of the results table."""

    step: str
    wall_s: float | None
    rss_mb: float | None
    pss_mb: float | None
    ratio: str
    target: str
    passed: bool | None


@dataclass
class Outcome:
    """Everything a section is rendered from."""

    scale: str
    facts: list[tuple[str, str]]
    steps: dict[str, StepResult]
    sizes: dict[str, int]
    rows_match: bool | None
    notes: list[str]


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _step_row(step: StepResult, ratio: str = "", target: str = "", passed: bool | None = None) -> Row:
    return Row(step.label, step.wall_s, step.max_rss_mb, step.tree_pss_mb, ratio, target, passed)


def _time_target(steps: dict[str, StepResult], key: str, anchor: str, limit: float) -> Row | None:
    if key not in steps:
        return None
    if anchor not in steps:
        return _step_row(steps[key], "n/a (anchor not run)", f"≤ {limit}×")
    ratio = steps[key].wall_s / steps[anchor].wall_s
    text = f"{ratio:.2f}× {steps[anchor].label}"
    return _step_row(steps[key], text, f"≤ {limit}×", ratio <= limit)


def _size_target(sizes: dict[str, int]) -> Row | None:
    snapshot, dump = sizes.get("datasafe snapshot"), sizes.get("dump.sql.zst")
    if snapshot is None:
        return None
    if dump is None:
        return Row("datasafe snapshot size", None, None, None, "n/a (no dump.sql.zst)", "≤ 1.05×", None)
    ratio = snapshot / dump
    text = f"{ratio:.3f}× dump.sql.zst ({snapshot / MB:.1f} MB vs {dump / MB:.1f} MB)"
    return Row("datasafe snapshot size", None, None, None, text, "≤ 1.05×", ratio <= 1.05)


def _memory_target(steps: dict[str, StepResult]) -> Row | None:
    measured = [steps[k] for k in DATASAFE_STEPS if k in steps]
    if not measured:
        return None
    worst = max(measured, key=lambda s: s.peak_mb)
    text = f"{worst.peak_mb:.0f} MB in {worst.label}"
    return Row("datasafe peak memory", None, worst.peak_mb, None, text,
               f"≤ {MEMORY_LIMIT_MB} MB", worst.peak_mb <= MEMORY_LIMIT_MB)


def evaluate(outcome: Outcome) -> list[Row]:
    """Target rows first, then the anchors and setup steps for reference."""
    steps = outcome.steps
    rows = [
        _time_target(steps, BACKUP, DUMP_PLAIN, 1.0),
        _time_target(steps, BACKUP, DUMP_CUSTOM, 0.5),
        _size_target(outcome.sizes),
        _time_target(steps, RESTORE, PG_RESTORE, 0.9),
        _time_target(steps, VERIFY, BACKUP, 0.3),
        _memory_target(steps),
    ]
    if outcome.rows_match is not None:
        rows.append(Row("datasafe restore completeness", None, None, None,
                        "row count of every table vs source", "equal", outcome.rows_match))
    for key, role in ((DUMP_PLAIN, "anchor"), (DUMP_CUSTOM, "anchor"),
                      (DUMP_DIR, "setup for pg_restore"), (PG_RESTORE, "anchor")):
        if key in steps:
            rows.append(_step_row(steps[key], role))
    return [row for row in rows if row is not None]


def evaluate_mysql(outcome: Outcome) -> list[Row]:
    """Rows of the MariaDB/MySQL comparison: backup vs dump pipeline, restore vs replay, memory."""
    steps = outcome.steps

    def target(key: str, label: str, anchor: str, limit: float) -> Row | None:
        if key not in steps:
            return Row(label, None, None, None, "not measured", f"≤ {limit}×", None)
        return _time_target(steps, key, anchor, limit)

    rows = [
        target(BACKUP, "datasafe backup", MY_DUMP, 1.0),
        target(RESTORE, "datasafe restore", MY_REPLAY, 0.5),
        _step_row(steps[VERIFY], "no target") if VERIFY in steps else None,
        _memory_target(steps),
    ]
    if outcome.rows_match is not None:
        rows.append(Row("datasafe restore completeness", None, None, None,
                        "row count of every table vs source", "equal", outcome.rows_match))
    for key in (MY_DUMP, MY_REPLAY):
        if key in steps:
            rows.append(_step_row(steps[key], "anchor"))
    return [row for row in rows if row is not None]


def failed_targets(rows: Sequence[Row]) -> list[Row]:
    """Rows whose target was measured and missed."""
    return [row for row in rows if row.passed is False]


def _cell(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _verdict(passed: bool | None) -> str:
    return {True: "pass", False: "**FAIL**", None: "—"}[passed]


def render_table(rows: Sequence[Row]) -> list[str]:
    lines = ["| step | wall s | peak RSS MB | Σ PSS MB | ratio vs anchor | target | pass/fail |",
             "|---|---:|---:|---:|---|---|---|"]
    for row in rows:
        cells = [row.step, _cell(row.wall_s, 2), _cell(row.rss_mb, 0), _cell(row.pss_mb, 0),
                 row.ratio, row.target or "—", _verdict(row.passed)]
        lines.append("| " + " | ".join(_escape(c) for c in cells) + " |")
    return lines


def render_section(outcome: Outcome, rows: Sequence[Row] | None = None, tag: str = "bench",
                   title: str = "Scale") -> str:
    """The markdown section for one scale, between its marker comments.

    ``rows`` default to ``evaluate(outcome)``; ``tag`` names the marker comments
    (``<!-- {tag}:scale=N -->``) and ``title`` starts the heading (``## {title} N``).
    """
    rows = evaluate(outcome) if rows is None else rows
    lines = [f"<!-- {tag}:scale={outcome.scale} -->", f"## {title} {outcome.scale}", ""]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {_escape(k)} | {_escape(v)} |" for k, v in outcome.facts]
    lines += ["", "### Results", "", *render_table(rows)]
    lines += ["", "### Output sizes", "", "| artefact | bytes | MB |", "|---|---:|---:|"]
    lines += [f"| {name} | {size} | {size / MB:.1f} |" for name, size in outcome.sizes.items()]
    lines += ["", "### Commands", "", "```"]
    lines += [step.command for step in outcome.steps.values()]
    lines += ["```", "", "### Method", "", *(f"- {note}" for note in outcome.notes)]
    lines += [f"<!-- /{tag}:scale={outcome.scale} -->"]
    return "\n".join(lines) + "\n"


def update_document(path: Path, scale: str, section: str, tag: str = "bench") -> None:
    """Replace the ``tag`` section of ``scale`` in ``path`` (or append it), keeping everything else."""
    text = path.read_text() if path.exists() else INTRO
    marker = re.escape(f"{tag}:scale={scale}")
    pattern = re.compile(rf"<!-- {marker} -->.*?<!-- /{marker} -->\n?", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def publish(path: Path, scale: str, lines: list[str], tag: str) -> None:
    """Write a section (its marker lines included in ``lines``) into ``path`` and print it."""
    section = "\n".join(lines) + "\n"
    update_document(path, scale, section, tag=tag)
    print(section)


def script_main(main: Callable[[], int]) -> None:
    """Run a benchmark script's ``main``: its exit status, 130 on Ctrl-C, 1 with one line on failure."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a benchmark script: report and fail
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
