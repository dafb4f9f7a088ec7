#!/usr/bin/env bash
# Set up .venv (once) and run `datasafe demo`: no database server needed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c 'import datasafe' 2>/dev/null || [ pyproject.toml -nt .venv/.installed-demo ]; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e .
  touch .venv/.installed-demo
fi
exec .venv/bin/datasafe demo "$@"
