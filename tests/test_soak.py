"""The soak runner and the reliability report: a short soak must end with no failure, no leftover
and the policy's snapshots; the report must read the fault and fuzz suites' outputs right.

The full soak (90 nights, local and S3) is run by ``scripts/reliability.py`` for
docs/reliability.md; here eight nights on a local folder prove that the runner and datasafe's
clock work together, within a minute. The report's parsers are checked on small made-up inputs
of the formats tests/faults (junit ids) and tests/fuzz (JSON lines) produce.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from datasafe.urls import DatabaseURL

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import reliability  # noqa: E402
from soak_model import Policy, expected_keep, is_temp_database, local_storage_leftovers  # noqa: E402


def test_expected_keep_follows_the_documented_example() -> None:
    """The soak's own retention model gives the table of docs/operations.md (keep_last 2, daily 3, monthly 3)."""

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)

    snaps = {"a": at("2024-03-02T02:00"), "b": at("2024-03-01T02:00"), "c": at("2024-02-10T02:00"),
             "d": at("2024-01-03T14:00"), "e": at("2024-01-03T02:00"), "f": at("2024-01-02T02:00"),
             "g": at("2024-01-01T02:00")}
    policy = Policy(keep_last=2, keep_daily=3, keep_monthly=3)
    assert expected_keep(snaps, policy) == {"a", "b", "c", "d"}
    # the rails: the newest verified snapshot, and min_keep
    assert expected_keep(snaps, Policy(keep_last=1), verified={"c"}) == {"a", "c"}
    assert expected_keep(snaps, Policy(keep_last=1, min_keep=3)) == {"a", "b", "c"}


@pytest.mark.postgres
@pytest.mark.slow
def test_eight_nights_leave_nothing_behind(postgres_server: DatabaseURL, tmp_path: Path) -> None:
    env = dict(os.environ, DATASAFE_TEST_POSTGRES_URL=postgres_server.render(hide_password=False))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "soak.py"), "--nights", "8", "--storage", "local",
         "--readers", "1", "--json", "--max-minutes", "3"],
        env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert report["nights_done"] == 8
    assert report["failures"] == [], report["failures"]
    assert all(step["failures"] == 0 for step in report["steps"].values())
    assert report["steps"]["reader"]["runs"] > 0
    assert report["steps"]["verify_deep"]["runs"] == 1
    assert report["leaks"] == dict.fromkeys(report["leaks"], 0)
    local = report["lanes"]["local"]
    # keep_daily 7 over eight nights in one ISO week pair and one month: the newest seven
    assert local["kept"]["match"] and local["kept"]["kept"] == local["kept"]["expected"] >= 7
    assert local["masked"]["match"]
    assert local["check"] == 0
    assert report["ok"] is True


def test_datasafe_now_moves_the_snapshot_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    from datasafe import clock
    from datasafe.errors import ConfigError
    from datasafe.snapshot.repository import new_snapshot_id

    monkeypatch.setenv("DATASAFE_NOW", "2026-01-05T02:00:00Z")
    first = clock.now()
    assert datetime(2026, 1, 5, 2, tzinfo=timezone.utc) <= first < datetime(2026, 1, 5, 2, 1, tzinfo=timezone.utc)
    assert clock.now() >= first  # runs on from there
    assert new_snapshot_id().startswith("20260105T0200")
    monkeypatch.setenv("DATASAFE_NOW", "2026-01-06T03:00:00+01:00")
    assert clock.now().hour == 2 and clock.now().day == 6
    monkeypatch.setenv("DATASAFE_NOW", "next tuesday")
    with pytest.raises(ConfigError, match="DATASAFE_NOW"):
        clock.now()
    monkeypatch.delenv("DATASAFE_NOW")
    assert abs(clock.now() - datetime.now(timezone.utc)).total_seconds() < 60


def test_leftovers_are_found(tmp_path: Path) -> None:
    (tmp_path / "shop" / "20260101T020000Z-aaaaaa").mkdir(parents=True)
    (tmp_path / "shop" / "20260101T020000Z-aaaaaa" / "manifest.json").write_text("{}")
    (tmp_path / "shop" / "20260102T020000Z-bbbbbb" / "data").mkdir(parents=True)
    (tmp_path / "shop" / "20260102T020000Z-bbbbbb" / ".in-progress").write_text("{}")
    (tmp_path / "shop" / "20260102T020000Z-bbbbbb" / "data" / "000000.zst.tmp-12-ab").write_text("")
    (tmp_path / ".locks" / "shop").mkdir(parents=True)
    found = local_storage_leftovers(tmp_path)
    assert found == {"temp_files": ["shop/20260102T020000Z-bbbbbb/data/000000.zst.tmp-12-ab"],
                     "in_progress_markers": ["shop/20260102T020000Z-bbbbbb/.in-progress"],
                     "incomplete_snapshots": ["shop/20260102T020000Z-bbbbbb"]}
    assert is_temp_database("datasafe_verify_0a1b2c3d4e5f", "ds_soak_1")
    assert is_temp_database("ds_soak_1_qa_s3__ds_new_0a1b2c", "ds_soak_1")
    assert is_temp_database("ds_soak_1_qa__datasafe_restore_0a1b2c", "ds_soak_1")
    assert is_temp_database(".ds_soak_1_qa.db.ds-new-0a1b2c", "ds_soak_1")
    assert not is_temp_database("ds_other_qa__ds_new_0a1b2c", "ds_soak_1")
    assert not is_temp_database("ds_soak_1_qa_local", "ds_soak_1")


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="6">
<testcase classname="tests.faults.test_matrix" name="test_fault[backup-postgres-local-kill9@table]"/>
<testcase classname="tests.faults.test_matrix" name="test_fault[backup-postgres-s3-kill9@commit]"/>
<testcase classname="tests.faults.test_matrix" name="test_fault[prune-sqlite-local-kill9@delete2]">
<failure message="boom">trace</failure></testcase>
<testcase classname="tests.faults.test_matrix" name="test_fault[restore-mysql-local-diskfull@load]">
<skipped message="needs root"/></testcase>
<testcase classname="tests.faults.test_matrix" name="test_fault[verify-sqlite-s3-s3_5xx@begin]"/>
<testcase classname="tests.faults.test_prune_partial" name="test_half_removed_snapshot_is_not_listed"/>
</testsuite></testsuites>
"""


def test_report_reads_the_fault_matrix_and_the_fuzz_tally(tmp_path: Path) -> None:
    (tmp_path / "faults.xml").write_text(JUNIT)
    outcomes = reliability.parse_junit(tmp_path / "faults.xml")
    assert outcomes.cells[("prune", "sqlite", "local", "kill9", "delete2")] == "failed"
    assert outcomes.cells[("restore", "mysql", "local", "diskfull", "load")] == "skipped"
    assert len(outcomes.cells) == 5 and len(outcomes.tests) == 6
    table = reliability.fault_table(outcomes)
    assert "| `kill9` | backup | commit, table | 1/1 | 1/1 |  |  |  |  | 2/2 |  |" in table
    assert "| `kill9` | prune | delete2 |  |  |  |  | 0/1 ✗ |  | 0/1 |  |" in table
    assert "| `diskfull` | restore | load |  |  | skipped |  |  |  | 0/0 | 1 |" in table

    (tmp_path / "fuzz.jsonl").write_text('{"kind": "manifest", "cases": 50, "internal_errors": 0}\n'
                                         '{"kind": "manifest", "cases": 30, "internal_errors": 0}\n\n'
                                         '{"kind": "ref", "cases": 7, "internal_errors": 1}\n')
    assert reliability.parse_fuzz(tmp_path / "fuzz.jsonl") == {
        "manifest": {"tests": 2, "cases": 80, "internal_errors": 0},
        "ref": {"tests": 1, "cases": 7, "internal_errors": 1}}


def test_report_replaces_only_the_parts_it_ran() -> None:
    section = reliability.render_section({"fuzz": "old fuzz", "soak": "old soak"})
    doc = "# Reliability\n\nprose\n\n" + section + "\nafter\n"
    new = reliability.update_doc(doc, {"soak": "new soak\n\n| a | b |"})
    assert new.startswith("# Reliability\n\nprose\n\n<!-- reliability:begin -->") and new.endswith("\nafter\n")
    assert reliability.split_parts(new) == {
        "faults": "Not run yet: `scripts/reliability.py --only faults`.", "fuzz": "old fuzz",
        "soak": "new soak\n\n| a | b |"}
    assert reliability.update_doc(new, {}) == new
