"""The final summary of one run of bench/run.sh, read back from bench/out/results.jsonl.

.venv/bin/python -m bench.summary [RUN_ID]      (default: the latest run in the file)
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.table import Table

from bench._common import RESULTS, console, verdict

# (bench, case prefix, figure, label, format, target text, check)
LINES: list[tuple[str, str, str, str, str, str, Any]] = [
    ("seed_city", "sqlite", "seed_wall_s", "seed city, SQLite: wall", "{:,.1f} s", "", None),
    ("seed_city", "sqlite", "seed_peak_rss_mib", "seed city, SQLite: peak RSS", "{:,.0f} MiB", "", None),
    ("seed_city", "postgres", "seed_wall_s", "seed city, PostgreSQL: wall", "{:,.1f} s", "", None),
    ("seed_city", "postgres", "seed_peak_rss_mib", "seed city, PostgreSQL: peak RSS", "{:,.0f} MiB", "", None),
    ("grid_lookup", "", "build_median_s", "grid index build (median)", "{:,.2f} s", "", None),
    ("grid_lookup", "", "a_locate_per_s", "(a) locate, Python loop", "{:,.0f}/s", "≥ 100,000/s", 100_000),
    ("grid_lookup", "", "b_locate_many_per_s", "(b) locate_many", "{:,.0f}/s", "", None),
    ("grid_lookup", "", "c_scan_per_s", "(c) linear scan", "{:,.1f}/s", "", None),
    ("grid_lookup", "", "d_vscan_per_s", "(d) vectorised scan (contains_xy)", "{:,.1f}/s", "", None),
    ("grid_lookup", "", "ratio_a_over_c", "(a)/(c)", "{:,.0f}×", "≥ 1,000×", 1_000),
    ("grid_lookup", "", "ratio_b_over_c", "(b)/(c)", "{:,.0f}×", "≥ 1,000×", 1_000),
    ("import_components", "postgres_2580000", "wall_s", "import 2.58M into PostgreSQL: wall", "{:,.1f} s", "≤ 120 s",
     -120),
    ("import_components", "postgres_2580000", "rows_per_s", "import 2.58M: rows/s", "{:,.0f}", "", None),
    ("import_components", "postgres_2580000", "peak_rss_mib", "import 2.58M: peak RSS", "{:,.0f} MiB", "", None),
    ("import_components", "postgres_500000", "peak_rss_mib", "import 500k: peak RSS", "{:,.0f} MiB", "", None),
    ("import_components", "postgres_100000", "peak_rss_mib", "import 100k: peak RSS", "{:,.0f} MiB", "", None),
    ("pipeline", "throughput_1", "per_s", "pipeline, 1 worker process: reports/s", "{:,.1f}/s", "≥ 200/s", 200),
    ("pipeline", "throughput_1", "steady_per_s", "pipeline, 1 worker process: steady", "{:,.1f}/s", "", None),
    ("pipeline", "throughput_2", "per_s", "pipeline, 2 worker processes: reports/s", "{:,.1f}/s", "≥ 200/s", 200),
    ("pipeline", "throughput_2", "steady_per_s", "pipeline, 2 worker processes: steady", "{:,.1f}/s", "", None),
    ("pipeline", "profile", "ms_per_report", "pipeline job in-process: wall per report", "{:,.2f} ms", "", None),
    ("pipeline", "intake", "p50_ms", "POST /staff/v1/reports under load: p50", "{:,.1f} ms", "", None),
    ("pipeline", "intake", "p99_ms", "POST /staff/v1/reports under load: p99", "{:,.1f} ms", "", None),
    ("pipeline", "intake", "per_s", "POST /staff/v1/reports: requests/s", "{:,.0f}/s", "", None),
    ("pipeline", "duplicates", "mean_ms", "find_duplicate among open cases: mean", "{:,.2f} ms", "", None),
    ("pipeline", "duplicates", "p99_ms", "find_duplicate among open cases: p99", "{:,.2f} ms", "", None),
    ("notify", "clean", "total_s", "50k ad reminders: plan + send wall", "{:,.1f} s", "≤ 60 s", -60),
    ("notify", "clean", "send_per_s", "ad reminders: messages/s (sending)", "{:,.1f}/s", "", None),
    ("notify", "interrupted", "duplicates", "ad reminders killed + restarted: duplicates", "{:,.0f}", "0", -0.0001),
    ("miniapp", "tongguan", "per_s", "mini-program reports at c=50: req/s", "{:,.1f}/s", "≥ 500/s", 500),
    ("miniapp", "tongguan", "p99_ms", "mini-program reports at c=50: p99", "{:,.0f} ms", "", None),
    ("miniapp", "bare", "per_s", "bare FastAPI endpoint at c=50: req/s", "{:,.1f}/s", "", None),
    ("miniapp", "tongguan", "ratio_to_bare", "mini-program reports ÷ bare endpoint (req/s)", "{:,.2f}", "", None),
    ("chat", "throughput", "per_s", "webhook AES text messages at c=50: req/s", "{:,.1f}/s", "", None),
    ("chat", "throughput", "p99_ms", "webhook AES text messages at c=50: p99", "{:,.0f} ms", "", None),
    ("chat", "storm_inbound", "rows", "webhook retry storm 1,000 × 3: chat_inbound rows", "{:,.0f}", "= 1,000",
     None),
    ("chat", "storm_reports", "reports", "chat retry storm 1,000 citizens: reports", "{:,.0f}", "= 1,000", None),
    ("chat", "storm_reports", "total_s", "chat retry storm 1,000 citizens: wall to drained", "{:,.1f} s", "", None),
    ("tracks", "service", "per_s", "GPS tracks, ingest() in-process: points/s", "{:,.0f}/s", "≥ 20,000/s", 20_000),
    ("tracks", "http", "per_s", "GPS tracks, POST /field/v1/tracks at c=16: points/s", "{:,.0f}/s", "≥ 20,000/s",
     20_000),
    ("sync", "first_sequential", "p50_ms", "sync 200 ops, one batch at a time: p50", "{:,.0f} ms", "", None),
    ("sync", "first_sequential", "ops_per_s", "sync 200 ops, one batch at a time: ops/s", "{:,.0f}/s", "", None),
    ("sync", "first_concurrent", "p50_ms", "sync 200 ops, 8 batches at once: p50", "{:,.0f} ms", "", None),
    ("sync", "first_concurrent", "p99_ms", "sync 200 ops, 8 batches at once: p99", "{:,.0f} ms", "", None),
    ("sync", "first_concurrent", "ops_per_s", "sync 200 ops, 8 batches at once: ops/s", "{:,.0f}/s", "", None),
    ("sync", "replay_sequential", "p50_ms", "sync replay of 200 ops, one at a time: p50", "{:,.0f} ms", "", None),
    ("sync", "replay_concurrent", "p99_ms", "sync replay of 200 ops, 8 at once: p99", "{:,.0f} ms", "", None),
    ("sync", "checks", "not_applied", "sync first deliveries: items not applied / stored once", "{:,.0f}", "0",
     -0.0001),
    ("sync", "checks", "not_replayed", "sync replays: items not answered as before", "{:,.0f}", "0", -0.0001),
    ("sync", "checks", "rows_changed", "sync replays: rows changed", "{:,.0f}", "0", -0.0001),
    ("face_index", "exact_100000", "p50_ms", "face search, exact, 100k: p50", "{:,.2f} ms", "≤ 5 ms", -5),
    ("face_index", "ivf_100000", "p50_ms", "face search, IVF, 100k: p50", "{:,.2f} ms", "≤ 5 ms", -5),
    ("face_index", "ivf_100000", "answer_recall", "face search, IVF, 100k: answer recall", "{:,.4f}", "≥ 0.99",
     0.99),
    ("face_index", "exact_1000000", "p50_ms", "face search, exact, 1M: p50", "{:,.1f} ms", "", None),
    ("face_index", "ivf_1000000", "p50_ms", "face search, IVF, 1M: p50", "{:,.2f} ms", "≤ 10 ms", -10),
    ("face_index", "ivf_1000000", "p99_ms", "face search, IVF, 1M: p99", "{:,.2f} ms", "≤ 10 ms", -10),
    ("face_index", "ivf_1000000", "answer_recall", "face search, IVF, 1M: answer recall", "{:,.4f}", "≥ 0.99", 0.99),
    ("face_index", "ivf_1000000", "recall_at_1", "face search, IVF, 1M: recall@1 (strangers too)", "{:,.3f}", "",
     None),
    ("face_index", "ivf_1000000", "rss_mib_per_million", "face index IVF: memory per million", "{:,.0f} MiB", "",
     None),
    ("face_index", "exact_1000000", "rss_mib_per_million", "face index exact: memory per million", "{:,.0f} MiB",
     "", None),
    ("face_identify", "pipeline", "total_p50_ms", "identify 12 MP in-process (decode+detect+encode+search): p50",
     "{:,.0f} ms", "≤ 300 ms", -300),
    ("face_identify", "pipeline", "total_p99_ms", "identify 12 MP in-process: p99", "{:,.0f} ms", "≤ 300 ms", -300),
    ("face_identify", "http", "p50_ms", "POST /field/v1/enforcement/identify 12 MP: p50", "{:,.0f} ms", "≤ 300 ms",
     -300),
    ("face_identify", "http", "p99_ms", "POST /field/v1/enforcement/identify 12 MP: p99", "{:,.0f} ms", "", None),
    ("console_render", "sqlite_queue_1366x768", "cold_ms", "console queue page, 10k open cases: cold first render",
     "{:,.0f} ms", "≤ 2,000 ms", -2000),
    ("console_render", "sqlite_queue_1366x768", "warm_max_ms", "console queue page: warm first render, max of 5",
     "{:,.0f} ms", "≤ 2,000 ms", -2000),
    ("console_render", "sqlite_map_1366x768", "cold_ms", "console map, 51,495 grids + 10k cases: cold first render",
     "{:,.0f} ms", "≤ 2,000 ms", -2000),
    ("console_render", "sqlite_map_1366x768", "warm_max_ms", "console map: warm first render, max of 5", "{:,.0f} ms",
     "≤ 2,000 ms", -2000),
    ("console_render", "sqlite_map_1366x768", "cold_transfer_bytes", "console map: bytes transferred, cold load",
     "{:,.0f}", "", None),
    ("console_render", "sqlite_map_1366x768", "restart_ms", "console map opened right after a server restart",
     "{:,.0f} ms", "≤ 2,000 ms", -2000),
]  # fmt: skip


def _load(run_id: str | None) -> tuple[str | None, list[dict[str, Any]]]:
    if not RESULTS.exists():
        return None, []
    lines = [json.loads(line) for line in RESULTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    if run_id is None and lines:
        run_id = lines[-1]["run_id"]
    return run_id, [r for r in lines if r["run_id"] == run_id]


def main() -> None:
    run_id, rows = _load(sys.argv[1] if len(sys.argv) > 1 else None)
    if not rows:
        console.print(f"no results for run {run_id} in {RESULTS}")
        return
    table = Table(title=f"benchmark summary — run {run_id}", title_justify="left")
    for col in ("figure", "value", "target", ""):
        table.add_column(col, justify="left" if col == "figure" else "right")
    for bench, case, figure, label, fmt, target, check in LINES:
        hits = [r for r in rows if r["bench"] == bench and r["case"].startswith(case) and figure in r["figures"]]
        # A case named in full wins over longer names it begins (exact_100000 is not exact_1000000).
        hits = [r for r in hits if r["case"] == case] or hits
        if not hits:
            continue
        value = hits[-1]["figures"][figure]
        ok = None if check is None else (value <= -check if check < 0 else value >= check)
        table.add_row(label, fmt.format(value), target, verdict(ok))
    console.print(table)
    console.print(f"all figures: {RESULTS} (run_id {run_id})")


if __name__ == "__main__":
    main()
