"""The benchmark's own dataset generator keeps the shape of the shared reference generator.

Runs ``scripts/bench/check_dataset.py`` at scale 0.1 (a few seconds). Skipped unless the
reference ``../shared/bench/make_dataset.sql`` exists and PostgreSQL is reachable through
``$DATASAFE_TEST_POSTGRES_URL`` (e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECK_SCRIPT = REPO_ROOT / "scripts" / "bench" / "check_dataset.py"
REFERENCE = REPO_ROOT.parent / "shared" / "bench" / "make_dataset.sql"
# Read at import time: hermetic-test fixtures may clear DATASAFE_* before the test body runs.
POSTGRES_URL = os.environ.get("DATASAFE_TEST_POSTGRES_URL", "")

pytestmark = pytest.mark.postgres


def _postgres_reachable(url: str) -> bool:
    try:
        proc = subprocess.run(["psql", "-X", "-d", url, "-Atc", "SELECT 1"],
                              capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


@pytest.fixture
def postgres_url() -> str:
    if not REFERENCE.is_file():
        pytest.skip(f"reference generator {REFERENCE} not present")
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL: set DATASAFE_TEST_POSTGRES_URL")
    if shutil.which("psql") is None:
        pytest.skip("psql is not on PATH")
    if not _postgres_reachable(POSTGRES_URL):
        pytest.skip("PostgreSQL at DATASAFE_TEST_POSTGRES_URL is not reachable")
    return POSTGRES_URL


def test_own_generator_matches_reference_shape(postgres_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(CHECK_SCRIPT), "--pg-url", postgres_url, "--scale", "0.1", "--quiet"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("OK:"), proc.stdout
