#!/usr/bin/env bash
# Run the benchmarks (not part of the tests). Assumes `scripts/install.sh --dev` ran; PostgreSQL on 127.0.0.1:5432.
#
#   bash bench/run.sh                        all of them, in order, then a summary
#   bash bench/run.sh grid_lookup [ARGS...]  one of seed_city | grid_lookup | import_components | pipeline
#                                            | media | notify | miniapp | chat | tracks | sync | face_identify
#                                            | face_index | console_render
#                                            (ARGS go to it)
#   bash bench/run.sh summary [RUN_ID]       the summary of the latest (or a given) run
#   bash bench/run.sh clean                  drop leftover tg_bench_* databases / temp dirs (after a SIGKILL)
#
# Figures are printed and appended as JSON lines to bench/out/results.jsonl. `pipeline` also needs Redis on
# 127.0.0.1:6379 (it uses and flushes db 12; TG_BENCH_REDIS_URL to change); so do `notify`, `miniapp`, `chat`,
# `tracks`, `sync` and the http part of `face_identify`. `face_index` needs neither (no database).
# `console_render` needs neither (SQLite) but Debian's chromium at /usr/bin/chromium (TG_BENCH_CHROMIUM).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ ! -x "$PY" ] || [ ! -x .venv/bin/tongguan ]; then
  echo "no .venv with tongguan: run scripts/install.sh --dev first" >&2
  exit 1
fi
ALL=(seed_city grid_lookup import_components pipeline media notify miniapp chat tracks sync face_identify face_index console_render)
what=${1:-all}
[ $# -gt 0 ] && shift
case "$what" in
  all) benches=("${ALL[@]}") ;;
  seed_city | grid_lookup | import_components | pipeline | media | notify | miniapp | chat | tracks | sync | face_identify \
    | face_index | console_render) benches=("$what") ;;
  summary) exec "$PY" -m bench.summary "$@" ;;
  clean) exec "$PY" -m bench.clean ;;
  *)
    echo "usage: bash bench/run.sh [all | seed_city | grid_lookup | import_components | pipeline [ARGS...]" \
      "| media | notify | miniapp | chat | tracks | sync | face_identify | face_index | console_render | summary | clean]" >&2
    exit 2
    ;;
esac
if [ "$what" = all ] && [ $# -gt 0 ]; then
  echo "arguments are passed to one named bench only" >&2
  exit 2
fi

export TG_BENCH_RUN_ID=${TG_BENCH_RUN_ID:-$(date -u +%Y%m%dT%H%M%SZ)}
failed=()
for bench in "${benches[@]}"; do
  echo
  echo "━━━ $bench ━━━"
  started=$(date +%s)
  if "$PY" -m "bench.$bench" "$@"; then
    echo "($bench: $(($(date +%s) - started)) s)"
  else
    echo "($bench FAILED after $(($(date +%s) - started)) s)"
    failed+=("$bench")
  fi
done
echo
"$PY" -m bench.summary "$TG_BENCH_RUN_ID"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
