"""The MariaDB twin of the benchmark dataset keeps the shape of the PostgreSQL reference.

Runs ``scripts/bench/check_mysql_dataset.py`` at scale 0.1 (a few seconds). Needs the
reference ``../shared/bench/make_dataset.sql``, a PostgreSQL server
(``$DATASAFE_TEST_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``)
and a MariaDB/MySQL server (``$DATASAFE_TEST_MYSQL_URL``, default
``mysql://root@127.0.0.1:3306/``); skipped when one of them is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "scripts" / "bench"
CHECK_SCRIPT = BENCH_DIR / "check_mysql_dataset.py"
REFERENCE = REPO_ROOT.parent / "shared" / "bench" / "make_dataset.sql"
# Read at import time: hermetic-test fixtures may clear DATASAFE_* before the test body runs.
POSTGRES_URL = os.environ.get("DATASAFE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_URL = os.environ.get("DATASAFE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/")

pytestmark = [pytest.mark.postgres, pytest.mark.mysql, pytest.mark.slow]


def _postgres_reachable(url: str) -> bool:
    try:
        proc = subprocess.run(["psql", "-X", "-d", url, "-Atc", "SELECT 1"],
                              capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def _mysql_reachable(url: str) -> bool:
    sys.path.insert(0, str(BENCH_DIR))
    try:
        import myutil
    finally:
        sys.path.remove(str(BENCH_DIR))
    return myutil.reachable(url)


@pytest.fixture
def servers() -> tuple[str, str]:
    if not REFERENCE.is_file():
        pytest.skip(f"reference generator {REFERENCE} not present")
    if shutil.which("psql") is None:
        pytest.skip("psql is not on PATH")
    if not _postgres_reachable(POSTGRES_URL):
        pytest.skip("no PostgreSQL: not reachable at DATASAFE_TEST_POSTGRES_URL or the local default")
    if shutil.which("mariadb") is None and shutil.which("mysql") is None:
        pytest.skip("no MySQL client: neither mariadb nor mysql is on PATH")
    if not _mysql_reachable(MYSQL_URL):
        pytest.skip("no MySQL server: not reachable at DATASAFE_TEST_MYSQL_URL or the local default")
    return POSTGRES_URL, MYSQL_URL


def test_mysql_twin_matches_reference_shape(servers: tuple[str, str]) -> None:
    pg_url, mysql_url = servers
    proc = subprocess.run(
        [sys.executable, str(CHECK_SCRIPT), "--pg-url", pg_url, "--mysql-url", mysql_url,
         "--scale", "0.1", "--quiet"],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    if last.startswith("SKIPPED"):
        pytest.skip(last)
    assert last.startswith("OK:"), proc.stdout
