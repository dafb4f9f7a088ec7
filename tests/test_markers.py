"""Every test that needs a database server carries that server's marker.

``pytest -m "not postgres and not mysql"`` is how a machine without servers runs the rest of the
suite, and ``-m mysql`` how a MySQL-only change is checked: a server test without its marker is
skipped in the first case (or fails under ``CI=true``) and missed in the second. Markers are
easy to forget when a test picks up a fixture such as ``pg`` or a module fixture built on it, so
this is checked from what pytest itself collects rather than from how the source is spelled.

A subprocess collects tests/ with this module loaded as a plugin (``-p tests.test_markers``):
its :func:`pytest_collection_finish` writes, for every collected test, its markers and the
fixtures it needs (the whole closure, so a module fixture resting on ``pg`` counts). Collection
runs no test and contacts no server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: where the plugin writes what it collected (set only for the subprocess)
REPORT_ENV = "DATASAFE_TEST_MARKERS_REPORT"
#: marker -> the fixture of tests/conftest.py that every fixture giving that server rests on
#: (``pg`` and ``my`` request these; so does anything built on them)
SERVER_FIXTURES = {"postgres": "postgres_server", "mysql": "mysql_server"}
#: a test module that reads a server's URL itself, outside the fixtures above
READS_URL = {marker: re.compile(rf"""environ(?:\.get\(|\[)\s*["']DATASAFE_TEST_{env}_URL["']""")
             for marker, env in (("postgres", "POSTGRES"), ("mysql", "MYSQL"))}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Plugin side (in the subprocess only): record each collected test's markers and fixtures."""
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    items = [{"nodeid": item.nodeid, "file": str(item.path),
              "markers": sorted({m.name for m in item.iter_markers()}),
              "fixtures": sorted(getattr(item, "fixturenames", ()))}
             for item in session.items]
    Path(path).write_text(json.dumps(items), encoding="utf-8")


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    report = tmp_path_factory.mktemp("markers") / "collected.json"
    env = dict(os.environ, **{REPORT_ENV: str(report)})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-p", "tests.test_markers", "tests"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    items: list[dict[str, Any]] = json.loads(report.read_text(encoding="utf-8"))
    return items


def test_collection_sees_the_server_tests(collected: list[dict[str, Any]]) -> None:
    # the check below means something only while the fixtures it looks for exist and are used
    assert len(collected) > 500
    for marker, fixture in SERVER_FIXTURES.items():
        assert any(fixture in item["fixtures"] for item in collected), f"no test needs {fixture}"
        assert any(marker in item["markers"] for item in collected)


@pytest.mark.parametrize("marker", sorted(SERVER_FIXTURES))
def test_a_test_that_needs_a_server_carries_its_marker(collected: list[dict[str, Any]], marker: str) -> None:
    fixture = SERVER_FIXTURES[marker]
    unmarked = [item["nodeid"] for item in collected
                if fixture in item["fixtures"] and marker not in item["markers"]]
    assert unmarked == [], f"these tests need {fixture} but lack @pytest.mark.{marker}: {unmarked}"


@pytest.mark.parametrize("marker", sorted(SERVER_FIXTURES))
def test_a_module_that_reads_a_server_url_marks_its_tests(collected: list[dict[str, Any]], marker: str) -> None:
    reads = {file for file in {item["file"] for item in collected}
             if READS_URL[marker].search(Path(file).read_text(encoding="utf-8"))}
    unmarked = [item["nodeid"] for item in collected if item["file"] in reads and marker not in item["markers"]]
    assert unmarked == [], f"these tests read a {marker} server's URL but lack @pytest.mark.{marker}: {unmarked}"

