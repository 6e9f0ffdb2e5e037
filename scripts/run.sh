#!/usr/bin/env bash
# One command: install, migrate, seed the small demo city on first run, and serve on the embedded defaults
# (SQLite under ./var, jobs in-process, media in ./var/media). Usage: scripts/run.sh [--host H] [--port P]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
.venv/bin/tongguan migrate
.venv/bin/tongguan seed --scale "${TG_SEED_SCALE:-small}" --if-empty
exec .venv/bin/tongguan serve "$@"
