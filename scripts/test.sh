#!/usr/bin/env bash
# One command: install everything (app, dev tools, PostgreSQL and Redis if missing) and run all checks and tests.
# Every database test runs on SQLite and on PostgreSQL. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --dev
eval "$(scripts/services.sh)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
