"""Ad-permit reminders: 50,000 notices planned and sent to a stub Aliyun SMS API; a run killed half-way and
started again sends nothing twice.

Each case runs in a fresh `tg_bench_notify_*` database (migrated in-process with core.db.migrate) holding
`--permits` ad companies, each with its own mainland mobile number and no openid (so one SMS per permit), and one
permit each, valid_to spread over the next 1–29 days (all due for a notice today). Redis: TG_BENCH_REDIS_URL
(default db 12), flushed before and after. The stub is tests/stubs/aliyun_sms.py, run in this process; the
worker uses the real Aliyun adapter against it (TG_SMS_PROVIDER=aliyun, http).

1. clean — `tongguan remind ads --today D` (child process): wall time, notices queued; then `tongguan worker
   --processes K` until no notice is pending / deferred / sending: wall time from the worker's start, messages/s
   of sending alone and of planning + sending, the first → last send rate, what the stub received and the
   duplicates (received − distinct numbers, must be 0: every permit has its own number, and routine SMS go
   out in SendBatchSms calls of up to 100, whose OutId names the batch, not the notice).
2. interrupted — `remind ads` SIGKILLed once half the notices are stored, then run again: notices must equal the
   permits, one per dedupe key. Then the worker is SIGKILLed (its whole process group) once the stub has received
   half, and started again until no notice is pending / deferred: duplicates at the stub must be 0. Notices the
   killed worker had claimed stay `sending` (they become `unknown` after 5 minutes and are reconciled with
   QuerySendDetails, never resent), so a few end `sending` here, not `sent`: counted and reported.

    .venv/bin/python -m bench.notify [--permits 50000] [--processes 2] [--parts clean,interrupted]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import (
    REDIS_URL,
    TONGGUAN,
    BenchError,
    child_env,
    console,
    fmt_int,
    fmt_s,
    main_guard,
    pg_database,
    print_table,
    record,
    redis_flush,
    run_measured,
    services_ready,
    tail,
    temp_dir,
)
from bench.pipeline import Child, CpuWatch, _tree_cpu, child

BENCH = "notify"
TARGET_S = 60.0
KEY_ID, KEY_SECRET = "LTAIbenchnotify", "bench-notify-secret"
SEND_TIMEOUT_S = 20 * 60


# --- the database ---------------------------------------------------------------------------------------------


async def _seed(url: str, n: int) -> datetime:
    """Migrate and insert n companies + n permits; returns 'now' (China time) the permits are planned from."""
    from tortoise.transactions import in_transaction

    from core import clock
    from core.bulk import insert_rows
    from core.db import db_context, migrate
    from core.settings import get_settings

    settings = get_settings()
    await migrate(settings, url=url)
    now = clock.now()
    today = now.date()
    companies = [(i, f"基准广告公司{i:05d}", "联系人", f"13{i:09d}", None, now) for i in range(1, n + 1)]
    permits = [
        (i, f"GG-BENCH-{i:06d}", i, f"幸福路{i % 900}号楼顶广告牌", None, None, today + timedelta(days=1 + i % 29), now)
        for i in range(1, n + 1)
    ]
    async with db_context(settings, url=url), in_transaction() as conn:
        await insert_rows(conn, "ad_company", ("id", "name", "contact_name", "contact_phone", "openid", "created_at"),
                          companies)  # fmt: skip
        await insert_rows(
            conn, "ad_permit", ("id", "number", "company_id", "site", "lon", "lat", "valid_to", "created_at"), permits
        )
    return now


async def _pg(url: str):
    import asyncpg

    return await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))


async def _scalar(url: str, sql: str) -> Any:
    conn = await _pg(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _statuses(url: str) -> dict[str, int]:
    conn = await _pg(url)
    try:
        rows = await conn.fetch("SELECT status, COUNT(*) AS n FROM notice GROUP BY status ORDER BY status")
    finally:
        await conn.close()
    return {r["status"]: int(r["n"]) for r in rows}


def statuses(url: str) -> dict[str, int]:
    return asyncio.run(_statuses(url))


def scalar(url: str, sql: str) -> Any:
    return asyncio.run(_scalar(url, sql))


# --- children -------------------------------------------------------------------------------------------------


def worker_env(tmp: Path, url: str, endpoint: str) -> dict[str, str]:
    return child_env(var_dir=tmp / "var", database_url=url) | {
        "TG_REDIS_URL": REDIS_URL,
        "TG_SMS_PROVIDER": "aliyun",
        "TG_ALIYUN_ACCESS_KEY_ID": KEY_ID,
        "TG_ALIYUN_ACCESS_KEY_SECRET": KEY_SECRET,
        "TG_ALIYUN_SMS_ENDPOINT": endpoint,
        "TG_ALIYUN_SMS_SCHEME": "http",
        "TG_ALIYUN_SMS_SIGN_NAME": "通管基准",
    }


async def _wait(url: str, c: Child, *, done_when: tuple[str, ...], timeout_s: float, stub: Any = None,
                stop_at_received: int | None = None) -> float:  # fmt: skip
    """Poll PG until no notice is in `done_when` (or, with stop_at_received, until the stub has received that
    many); returns seconds since the child started."""
    conn = await _pg(url)
    placeholders = ", ".join(f"'{s}'" for s in done_when)
    try:
        last_print = 0.0
        while True:
            now = time.perf_counter()
            if stop_at_received is not None:
                if len(stub.sent) >= stop_at_received:
                    return now - c.started
                left = -1
            else:
                left = int(await conn.fetchval(f"SELECT COUNT(*) FROM notice WHERE status IN ({placeholders})"))
                if left == 0:
                    return now - c.started
            if c.proc.poll() is not None:
                raise BenchError(f"the worker exited (code {c.proc.returncode}), {left:,} left\n{tail(c.log)}")
            if now - c.started > timeout_s:
                raise BenchError(f"{left:,} notices still {done_when} after {timeout_s:.0f} s\n{tail(c.log)}")
            if console.is_terminal and now - last_print > 2:
                console.print(f"  stub received {len(stub.sent):,}" if stub else "", end="\r")
                last_print = now
            await asyncio.sleep(0.1 if stop_at_received is None else 0.02)
    finally:
        await conn.close()


def kill_group(c: Child) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(c.proc.pid, signal.SIGKILL)
    c.proc.wait()


def stub_figures(stub: Any) -> dict[str, int]:
    received = len(stub.sent)
    unique = len({s.phone for s in stub.sent})  # one message per number in this bench
    return {
        "stub_received": received,
        "stub_unique_numbers": unique,
        "duplicates": received - unique,
        "stub_not_ok": sum(1 for s in stub.sent if s.code != "OK"),
        "stub_refused": len(stub.refused),
    }


# --- 1. clean run ---------------------------------------------------------------------------------------------


def clean_case(tmp: Path, *, n: int, processes: int) -> dict[str, Any]:
    from tests.stubs.aliyun_sms import AliyunSmsStub

    with pg_database("notify") as (name, url):
        t0 = time.perf_counter()
        now = asyncio.run(_seed(url, n))
        seed_s = time.perf_counter() - t0
        today = now.date().isoformat()
        env0 = child_env(var_dir=tmp / "var", database_url=url)
        log = tmp / "remind.log"
        console.print(f"[bold]clean run[/bold]: {n:,} permits seeded in {fmt_s(seed_s)}; remind ads --today {today} …")
        planned = run_measured([TONGGUAN, "remind", "ads", "--today", today], env=env0, cwd=tmp, log=log,
                               timeout_s=900, what="remind ads")  # fmt: skip
        queued = int(scalar(url, "SELECT COUNT(*) FROM notice"))
        entries = int(scalar(url, "SELECT COUNT(*) FROM outbox WHERE task = 'send_notice'"))
        if queued != n:
            raise BenchError(f"remind ads queued {queued:,} notices for {n:,} permits\n{tail(log)}")
        redis_flush()
        with AliyunSmsStub(keys={KEY_ID: KEY_SECRET}) as stub:
            env = worker_env(tmp, url, stub.endpoint)
            wlog = tmp / "worker_clean.log"
            console.print(f"  tongguan worker --processes {processes} → stub at {stub.endpoint} …")
            watch = CpuWatch(name)
            with child([TONGGUAN, "worker", "--processes", str(processes)], env=env, cwd=tmp, log=wlog) as c:
                wall = asyncio.run(
                    _wait(url, c, done_when=("pending", "deferred", "sending"), timeout_s=SEND_TIMEOUT_S, stub=stub)
                )
                worker_cpu = _tree_cpu(c.proc.pid)
                spent = watch.spent()
            stubbed = stub_figures(stub)
        redis_flush()
        by_status = statuses(url)
        first, last = (float(x) for x in asyncio.run(_span(url)))
    sent = by_status.get("sent", 0)
    return {
        "permits": n,
        "processes": processes,
        "seed_s": round(seed_s, 2),
        "plan_s": round(planned.wall_s, 2),
        "plan_per_s": round(queued / planned.wall_s, 1),
        "plan_peak_rss_mib": round(planned.peak_rss_mib),
        "queued": queued,
        "outbox_entries": entries,
        "send_s": round(wall, 2),
        "send_per_s": round(sent / wall, 1),
        "total_s": round(planned.wall_s + wall, 2),
        "total_per_s": round(sent / (planned.wall_s + wall), 1),
        "steady_per_s": round((sent - 1) / (last - first), 1) if last > first else 0.0,
        "startup_s": round(first - c.started_wall, 2),
        "sent": sent,
        **stubbed,
        "worker_cpu_s": round(worker_cpu, 1),
        "postgres_cpu_s": round(spent["postgres"] + spent["postgres_shared"], 1),
        "redis_cpu_s": round(spent["redis"], 1),
        "bench_stub_cpu_s": round(spent["bench"], 1),
        "machine_busy_cores": round(spent["cores"], 2),
        "_notices_by_status": by_status,
    }


async def _span(url: str) -> tuple[float, float]:
    conn = await _pg(url)
    try:
        row = await conn.fetchrow(
            "SELECT EXTRACT(EPOCH FROM MIN(sent_at)) AS a, EXTRACT(EPOCH FROM MAX(sent_at)) AS b FROM notice"
            " WHERE status = 'sent'"
        )
    finally:
        await conn.close()
    return row["a"] or 0.0, row["b"] or 0.0


# --- 2. interrupted run ---------------------------------------------------------------------------------------


def interrupted_case(tmp: Path, *, n: int, processes: int) -> dict[str, Any]:
    from tests.stubs.aliyun_sms import AliyunSmsStub

    with pg_database("notify_int") as (_, url):
        now = asyncio.run(_seed(url, n))
        today = now.date().isoformat()
        env0 = child_env(var_dir=tmp / "var", database_url=url)
        log = tmp / "remind_int.log"
        console.print(f"[bold]interrupted run[/bold]: remind ads, SIGKILL at ~{n // 2:,} notices …")
        cmd = [TONGGUAN, "remind", "ads", "--today", today]
        with child(cmd, env=env0, cwd=tmp, log=log) as c:
            asyncio.run(_wait_notices(url, c, n // 2))
            kill_group(c)
        at_kill = int(scalar(url, "SELECT COUNT(*) FROM notice"))
        again = run_measured(cmd, env=env0, cwd=tmp, log=log, timeout_s=900, what="remind ads (again)")
        notices = int(scalar(url, "SELECT COUNT(*) FROM notice"))
        keys = int(scalar(url, "SELECT COUNT(DISTINCT dedupe_key) FROM notice"))
        entries = int(scalar(url, "SELECT COUNT(*) FROM outbox WHERE task = 'send_notice'"))
        redis_flush()
        with AliyunSmsStub(keys={KEY_ID: KEY_SECRET}) as stub:
            env = worker_env(tmp, url, stub.endpoint)
            wlog = tmp / "worker_int.log"
            wcmd = [TONGGUAN, "worker", "--processes", str(processes)]
            # + 12: in the middle of a 25-notice batch, not between two
            console.print(f"  worker, SIGKILL to its process group at ~{n // 2 + 12:,} received …")
            with child(wcmd, env=env, cwd=tmp, log=wlog) as c:
                asyncio.run(
                    _wait(url, c, done_when=(), timeout_s=SEND_TIMEOUT_S, stub=stub, stop_at_received=n // 2 + 12)
                )
                kill_group(c)
            received_at_kill = len(stub.sent)
            at_worker_kill = statuses(url)
            console.print(f"  killed at {received_at_kill:,} received; notices {at_worker_kill}; worker again …")
            with child(wcmd, env=env, cwd=tmp, log=wlog) as c:
                resume_s = asyncio.run(
                    _wait(url, c, done_when=("pending", "deferred"), timeout_s=SEND_TIMEOUT_S, stub=stub)
                )
            stubbed = stub_figures(stub)
            received_keys = {s.phone for s in stub.sent if s.code == "OK"}
        redis_flush()
        by_status = statuses(url)
        sent_keys = set(asyncio.run(_keys(url, "sent")))
        left_keys = set(asyncio.run(_keys(url, "sending"))) | set(asyncio.run(_keys(url, "unknown")))
    return {
        "permits": n,
        "processes": processes,
        "plan_killed_at_notices": at_kill,
        "plan_again_s": round(again.wall_s, 2),
        "notices": notices,
        "distinct_keys": keys,
        "outbox_entries": entries,
        "worker_killed_at_received": received_at_kill,
        "sending_at_kill": at_worker_kill.get("sending", 0),
        "resume_s": round(resume_s, 2),
        **stubbed,
        "sent": by_status.get("sent", 0),
        "left_sending": by_status.get("sending", 0),
        "left_unknown": by_status.get("unknown", 0),
        "left_sending_received_by_stub": len(left_keys & received_keys),
        "sent_not_received": len(sent_keys - received_keys),
        "never_sent": notices - len(sent_keys | left_keys),
        "_notices_by_status": by_status,
        "_notices_at_worker_kill": at_worker_kill,
    }


async def _keys(url: str, status: str) -> list[str]:
    """The numbers of the notices in `status` (one permit, one number, one notice in this bench)."""
    conn = await _pg(url)
    try:
        return [r[0] for r in await conn.fetch("SELECT recipient FROM notice WHERE status = $1", status)]
    finally:
        await conn.close()


async def _wait_notices(url: str, c: Child, count: int) -> None:
    conn = await _pg(url)
    try:
        while int(await conn.fetchval("SELECT COUNT(*) FROM notice")) < count:
            if c.proc.poll() is not None:
                raise BenchError(f"remind ads ended (code {c.proc.returncode}) before {count:,} notices\n{tail(c.log)}")
            if time.perf_counter() - c.started > 600:
                raise BenchError(f"remind ads stored fewer than {count:,} notices in 600 s\n{tail(c.log)}")
            await asyncio.sleep(0.02)
    finally:
        await conn.close()


# --- main -----------------------------------------------------------------------------------------------------


def _split(figures: dict[str, Any]) -> tuple[dict[str, float | int], dict[str, Any]]:
    return (
        {k: v for k, v in figures.items() if not k.startswith("_")},
        {k[1:]: v for k, v in figures.items() if k.startswith("_")},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--permits", type=int, default=50_000)
    parser.add_argument("--processes", type=int, default=2, help="tongguan worker --processes")
    parser.add_argument("--parts", default="clean,interrupted", help="comma-separated: clean, interrupted")
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if parts - {"clean", "interrupted"}:
        parser.error(f"unknown parts {sorted(parts - {'clean', 'interrupted'})}")
    ready = services_ready("notify")
    if ready is None:
        return
    notes_all = {**ready, "provider": "aliyun adapter → tests/stubs stub"}
    n, k = args.permits, args.processes
    with temp_dir("notify") as tmp:
        try:
            if "clean" in parts:
                f, notes = _split(clean_case(tmp, n=n, processes=k))
                record(BENCH, "clean", f, notes | notes_all)
                print_table(
                    f"{n:,} ad-permit reminders → stub Aliyun SMS, worker --processes {k}, PG {ready['postgres']}",
                    [
                        ("seed companies + permits (COPY)", fmt_s(f["seed_s"]), "", None),
                        ("plan: remind ads", f"{fmt_s(f['plan_s'])}, {fmt_int(f['plan_per_s'])}/s", "", None),
                        ("plan: notices / outbox entries", f"{fmt_int(f['queued'])} / {fmt_int(f['outbox_entries'])}",
                         "", None),
                        ("send: worker start → nothing pending", fmt_s(f["send_s"]), "", None),
                        ("send: messages/s (sending alone)", f"{f['send_per_s']:,.1f}/s", "", None),
                        ("send: steady (first → last send)", f"{f['steady_per_s']:,.1f}/s", "", None),
                        ("plan + send: wall", fmt_s(f["total_s"]), f"≤ {TARGET_S:.0f} s", f["total_s"] <= TARGET_S),
                        ("plan + send: messages/s", f"{f['total_per_s']:,.1f}/s", "", None),
                        ("notices sent / stub received", f"{fmt_int(f['sent'])} / {fmt_int(f['stub_received'])}",
                         "", None),
                        ("duplicates at the stub", fmt_int(f["duplicates"]), "0", f["duplicates"] == 0),
                        ("CPU: worker tree / PostgreSQL / Redis",
                         f"{f['worker_cpu_s']:.1f} / {f['postgres_cpu_s']:.1f} / {f['redis_cpu_s']:.1f} s", "", None),
                        ("CPU: bench process (stub server)", f"{f['bench_stub_cpu_s']:.1f} s", "", None),
                        ("machine busy", f"{f['machine_busy_cores']:.2f} cores", "", None),
                    ],
                )  # fmt: skip
                console.print(f"notices by status: {notes['notices_by_status']}")
            if "interrupted" in parts:
                f, notes = _split(interrupted_case(tmp, n=n, processes=k))
                record(BENCH, "interrupted", f, notes | notes_all)
                print_table(
                    f"{n:,} reminders, planning and sending each SIGKILLed half-way and started again",
                    [
                        ("remind ads killed at notices", fmt_int(f["plan_killed_at_notices"]), "", None),
                        ("remind ads again: wall", fmt_s(f["plan_again_s"]), "", None),
                        ("notices / distinct keys / outbox entries",
                         f"{fmt_int(f['notices'])} / {fmt_int(f['distinct_keys'])} / {fmt_int(f['outbox_entries'])}",
                         fmt_int(n), f["notices"] == f["distinct_keys"] == n),
                        ("worker killed at received", fmt_int(f["worker_killed_at_received"]), "", None),
                        ("notices `sending` at the kill", fmt_int(f["sending_at_kill"]), "", None),
                        ("worker again → nothing pending/deferred", fmt_s(f["resume_s"]), "", None),
                        ("stub received / distinct numbers",
                         f"{fmt_int(f['stub_received'])} / {fmt_int(f['stub_unique_numbers'])}", "", None),
                        ("duplicates at the stub", fmt_int(f["duplicates"]), "0", f["duplicates"] == 0),
                        ("notices sent", fmt_int(f["sent"]), "", None),
                        ("left sending / unknown (reconciled later)",
                         f"{fmt_int(f['left_sending'])} / {fmt_int(f['left_unknown'])}", "", None),
                        ("‥ of which the stub did receive", fmt_int(f["left_sending_received_by_stub"]), "", None),
                        ("sent in PG but not received by the stub", fmt_int(f["sent_not_received"]), "0",
                         f["sent_not_received"] == 0),
                    ],
                )  # fmt: skip
                console.print(f"notices by status at the kill: {notes['notices_at_worker_kill']}; at the end: "
                              f"{notes['notices_by_status']}")  # fmt: skip
        finally:
            with contextlib.suppress(Exception):
                redis_flush()


if __name__ == "__main__":
    main_guard(BENCH, main)
