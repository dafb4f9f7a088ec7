#!/usr/bin/env bash
# Set up .venv (once) and run the test suite. Extra arguments go to pytest.
# Server tests use DATASAFE_TEST_POSTGRES_URL (default here: the local server on 127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
scripts/setup-system.sh
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c 'import datasafe, pytest, psycopg, MySQLdb' 2>/dev/null || [ pyproject.toml -nt .venv/.installed ]; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e '.[dev]'
  touch .venv/.installed
fi
export DATASAFE_TEST_POSTGRES_URL=${DATASAFE_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
export DATASAFE_TEST_MYSQL_URL=${DATASAFE_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/}
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
