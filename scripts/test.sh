#!/usr/bin/env bash
# One command: install everything (app, dev tools, PostgreSQL and Redis if missing) and run all checks and tests.
# Every database test runs on SQLite and on PostgreSQL; the console's tests drive Debian's chromium. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --dev
eval "$(scripts/services.sh)"
scripts/browser.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
