"""The official-account webhook (`POST /wechat/callback`, issue 7): throughput in AES mode and a retry storm.

A template `tg_bench_chat_tpl_*` database is migrated and seeded with the small city (`tongguan migrate`, `tongguan
seed --scale small`); each part runs on its own copy, with `tongguan serve --workers W` (`--workers`, 2),
TG_REDIS_URL = Redis db 12 (flushed; so no job runs inside the API), TG_WECHAT_TOKEN / TG_WECHAT_AES_KEY /
TG_WECHAT_APPID set, TG_WECHAT_PROVIDER=console and TG_RATE_IP_PER_MINUTE=1000000 (all requests come from
127.0.0.1). Requests are built as WeChat builds them (as tests/bots/test_webhook.py does): the XML encrypted with
wechatpy's `WeChatCrypto.encrypt_message`, query `timestamp, nonce, signature, encrypt_type=aes, msg_signature`;
each push has a unique MsgId and a CreateTime / timestamp of now. Bodies are built before the clock starts.

1. throughput — `--requests` (5,000) distinct text messages (after `--warmup` 200) at `--concurrency` (50) callers,
   each with one keep-alive httpx connection (connections balanced over the uvicorn workers as bench/miniapp.py
   does): requests/s, p50 / p90 / p99 / max, server CPU per request (process tree), PostgreSQL CPU per request;
   every answer must be 200 and the database must hold one `chat_inbound` row and one `chat_message` outbox entry
   per message sent.
2. storm — (a) `--storm` (1,000) distinct text messages, each POSTed 3 times at once (its 3 copies on 3
   connections, `--concurrency` messages in flight): exactly as many `chat_inbound` rows and `chat_message` outbox
   entries as messages, none lost, none doubled; every answer 200. (b) on a fresh copy, with `tongguan worker
   --processes P` (`--worker-processes`, 1) running: `--storm` citizens (openids) each go through the report
   conversation — "我要上报", a description, a location inside the city (GCJ-02 point of a unit grid, as
   wx.getLocation gives), "确认" — one push after another (each push's 3 copies at once; the next push after
   the 3 answers), `--concurrency` citizens at a time; then wait until the outbox is drained (nothing pending or
   queued): exactly one `official_account` report per citizen, no outbox entry dead.

    .venv/bin/python -m bench.chat [--parts throughput,storm] [--requests 5000] [--warmup 200] [--concurrency 50]
        [--workers 2] [--storm 1000] [--worker-processes 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import (
    REDIS_URL,
    TONGGUAN,
    BenchError,
    child_env,
    console,
    fmt_s,
    main_guard,
    new_pg_name,
    pg_create,
    pg_database,
    pg_drop,
    print_table,
    record,
    redis_flush,
    services_ready,
    tail,
    temp_dir,
)
from bench.miniapp import (
    _prepare,
    _tree_cpu_by_process,
    balance_connections,
    quiet_sniffio,
    run_loop,
    seed_database,
    wait_healthy,
)
from bench.pipeline import CpuWatch, _fetch, _free_port, _split, _tree_cpu, child

BENCH = "chat"
SEED = 20261207
TOKEN, AES_KEY, APPID = "tg-bench-token", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wxbenchofficial01"
ACCOUNT = "gh_0123456789ab"
PATH = "/wechat/callback"
COPIES = 3  # WeChat tries a push three times
START_TIMEOUT_S = 60
LOAD_TIMEOUT_S = 600
DRAIN_TIMEOUT_S = 900
DESCRIPTIONS = ("小区门口有暴露垃圾，好几天没人清理", "路口井盖丢了，很危险", "路灯不亮，晚上很黑", "人行道砖块松动")


@dataclass(frozen=True)
class Push:
    """One push as WeChat POSTs it: the URL with its signed query, and the encrypted body."""

    url: str
    body: bytes


class Sealer:
    """Builds signed, encrypted pushes (wechatpy, as tests/bots/test_webhook.py)."""

    def __init__(self) -> None:
        from wechatpy.crypto import WeChatCrypto

        from bots.wechat_xml import signature_of

        self.crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
        self.signature_of = signature_of
        self.msg_id = 26_000_000_000_000_000 + int(time.time()) % 1_000_000 * 1_000_000

    def push(self, openid: str, inner: str) -> Push:
        self.msg_id += 1
        ts = str(int(time.time()))
        nonce = f"n{self.msg_id % 1_000_000_007}"
        xml = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{ts}</CreateTime>{inner}<MsgId>{self.msg_id}</MsgId></xml>"
        )
        sealed = self.crypto.encrypt_message(xml, nonce, ts)
        found = re.search(r"<MsgSignature><!\[CDATA\[(\w+)\]\]>", sealed)
        assert found is not None
        query = (
            f"timestamp={ts}&nonce={nonce}&signature={self.signature_of(TOKEN, ts, nonce)}"
            f"&encrypt_type=aes&msg_signature={found.group(1)}"
        )
        return Push(f"{PATH}?{query}", sealed.encode())

    def text(self, openid: str, content: str) -> Push:
        return self.push(openid, f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>")

    def location(self, openid: str, lon: float, lat: float, label: str) -> Push:
        return self.push(
            openid,
            f"<MsgType><![CDATA[location]]></MsgType><Location_X>{lat}</Location_X><Location_Y>{lon}</Location_Y>"
            f"<Scale>15</Scale><Label><![CDATA[{label}]]></Label>",
        )


# --- load -----------------------------------------------------------------------------------------------------


async def _clients(base: str, n: int, server_pid: int, server_alive: Any) -> list[Any]:
    """`n` httpx clients of one keep-alive connection each, once the server answers, balanced over its workers."""
    import ssl

    import httpx

    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    tls = ssl.create_default_context()
    port = int(base.rsplit(":", 1)[1])

    def new() -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base, limits=one, timeout=30, verify=tls)

    clients = [new() for _ in range(n)]
    await wait_healthy(clients[0], base, server_alive)
    # The workers share one listening socket: connect again until it is even (bench/miniapp.py).
    clients, _, _ = await balance_connections(clients, new, server_pid=server_pid, port=port)
    return clients


async def _post(client: Any, push: Push, answers: Counter[str]) -> float:
    import httpx

    t = time.perf_counter()
    try:
        r = await client.post(push.url, content=push.body, headers={"Content-Type": "text/xml"})
        answers[str(r.status_code) if r.status_code == 200 else f"{r.status_code} {r.text[:80]}"] += 1
    except httpx.TransportError as exc:
        answers[f"0 {type(exc).__name__}"] += 1
    return time.perf_counter() - t


async def _throughput_load(
    base: str, pushes: Sequence[Push], *, warmup: int, concurrency: int, server_pid: int, alive: Any, database: str
) -> dict[str, Any]:
    clients = await _clients(base, concurrency, server_pid, alive)
    answers: Counter[str] = Counter()
    latencies = np.zeros(len(pushes))

    async def caller(client: Any, todo: Any) -> None:
        for i in todo:
            latencies[i] = await _post(client, pushes[i], answers)

    try:
        warm = iter(range(warmup))
        await asyncio.gather(*(caller(c, warm) for c in clients))
        todo = iter(range(warmup, len(pushes)))
        watch = CpuWatch(database)
        cpu0 = _tree_cpu_by_process(server_pid)
        started = time.perf_counter()
        await asyncio.gather(*(caller(c, todo) for c in clients))
        wall = time.perf_counter() - started
        cpu1 = _tree_cpu_by_process(server_pid)
        spent = watch.spent()
    finally:
        for c in clients:
            await c.aclose()
    n = len(pushes) - warmup
    ms = latencies[warmup:] * 1000
    server_cpu = sum(cpu1.get(p, 0.0) - cpu0.get(p, 0.0) for p in cpu1)
    postgres = spent["postgres"] + spent["postgres_shared"]
    return {
        "requests": n,
        "concurrency": concurrency,
        "wall_s": round(wall, 3),
        "per_s": round(n / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p90_ms": round(float(np.percentile(ms, 90)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
        "server_cpu_ms_per_request": round(1000 * server_cpu / n, 3),
        "server_busy_cores": round(server_cpu / wall, 2),
        "postgres_cpu_ms_per_request": round(1000 * postgres / n, 3),
        "redis_cpu_ms_per_request": round(1000 * spent["redis"] / n, 3),
        "client_cpu_ms_per_request": round(1000 * spent["bench"] / n, 3),
        "machine_busy_cores": round(spent["cores"], 2),
        "cpu_bound_per_s": round((os.cpu_count() or 1) / ((server_cpu + postgres + spent["redis"]) / n), 1),
        "non_200": sum(v for k, v in answers.items() if k != "200"),
        "_answers": dict(answers),
    }


async def _storm_load(
    base: str, units: Sequence[Sequence[Push]], *, concurrency: int, server_pid: int, alive: Any
) -> dict[str, Any]:
    """Each unit's pushes one after another, each push's COPIES copies at once on COPIES connections;
    `concurrency` units in flight."""
    clients = await _clients(base, concurrency * COPIES, server_pid, alive)
    answers: Counter[str] = Counter()
    latencies: list[float] = []

    async def caller(own: Sequence[Any], todo: Any) -> None:
        for unit in todo:
            for push in unit:
                latencies.extend(await asyncio.gather(*(_post(c, push, answers) for c in own)))

    try:
        todo = iter(units)
        started = time.perf_counter()
        await asyncio.gather(*(caller(clients[k * COPIES : (k + 1) * COPIES], todo) for k in range(concurrency)))
        wall = time.perf_counter() - started
    finally:
        for c in clients:
            await c.aclose()
    ms = np.asarray(latencies) * 1000
    return {
        "posts": len(latencies),
        "post_wall_s": round(wall, 2),
        "posts_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "non_200": sum(v for k, v in answers.items() if k != "200"),
        "_answers": dict(answers),
    }


def _serve(env: dict[str, str], tmp: Path, what: str, workers: int, fire: Any) -> dict[str, Any]:
    """`tongguan serve` while `fire(base, server_pid, alive)` runs (on uvloop)."""
    port = _free_port()
    log = tmp / f"serve_{what}.log"
    cmd = [TONGGUAN, "serve", "--host", "127.0.0.1", "--workers", str(workers), "--port", str(port)]
    with child(cmd, env=env, cwd=tmp, log=log) as c:

        async def go() -> dict[str, Any]:
            async with asyncio.timeout(LOAD_TIMEOUT_S):
                return await fire(f"http://127.0.0.1:{port}", c.proc.pid, lambda: c.proc.poll() is None)

        try:
            return run_loop(go())  # type: ignore[no-any-return]
        except TimeoutError:
            raise BenchError(f"{what}: the load did not finish within {LOAD_TIMEOUT_S} s\n{tail(log)}") from None
        except BenchError as exc:
            raise BenchError(f"{what}: {exc}\n{tail(log)}") from None


async def _counts(url: str) -> dict[str, int]:
    rows = await _fetch(
        url,
        "SELECT (SELECT COUNT(*) FROM chat_inbound) AS inbound,"
        " (SELECT COUNT(DISTINCT key) FROM chat_inbound) AS inbound_keys,"
        " (SELECT COUNT(*) FROM chat_inbound WHERE handled_at IS NOT NULL) AS handled,"
        " (SELECT COUNT(*) FROM outbox WHERE task = 'chat_message') AS outbox_chat,"
        " (SELECT COUNT(DISTINCT (args->>'inbound_id')) FROM outbox WHERE task = 'chat_message') AS outbox_inbound,"
        " (SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'queued')) AS outbox_open,"
        " (SELECT COUNT(*) FROM outbox WHERE status = 'dead') AS outbox_dead,"
        " (SELECT COUNT(*) FROM outbox) AS outbox_all,"
        " (SELECT COUNT(*) FROM report WHERE source = 'official_account') AS reports,"
        " (SELECT COUNT(DISTINCT reporter_id) FROM report WHERE source = 'official_account') AS reporters,"
        " (SELECT COUNT(*) FROM notice) AS notices,"
        " (SELECT COUNT(*) FROM chat_state WHERE state <> 'idle') AS states_open",
    )
    return {k: int(v) for k, v in dict(rows[0]).items()}


async def _drain(url: str, c: Any, timeout_s: float) -> float:
    """Wait until no outbox entry is pending or queued; returns the seconds waited."""
    started = time.perf_counter()
    while True:
        counts = await _counts(url)
        if counts["outbox_open"] == 0:
            return time.perf_counter() - started
        if c.proc.poll() is not None:
            raise BenchError(f"the worker exited (code {c.proc.returncode}): {counts}\n{tail(c.log)}")
        if time.perf_counter() - started > timeout_s:
            raise BenchError(f"the outbox is not drained after {timeout_s:.0f} s: {counts}\n{tail(c.log)}")
        await asyncio.sleep(0.5)


# --- main -----------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="throughput,storm", help="comma-separated: throughput, storm")
    parser.add_argument("--requests", type=int, default=5_000, help="measured messages of the throughput part")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--storm", type=int, default=1_000, help="messages (a) and citizens (b) of the storm")
    parser.add_argument("--worker-processes", type=int, default=1, help="rq worker processes of storm (b)")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if set(parts) - {"throughput", "storm"}:
        parser.error(f"unknown parts {sorted(set(parts) - {'throughput', 'storm'})}")
    ready = services_ready(BENCH)
    if ready is None:
        return
    sniffio_shim = quiet_sniffio()
    notes_all = {
        **ready,
        "scale": "small",
        "workers": args.workers,
        "mode": "aes",
        "load_generator": "httpx on uvloop, one connection per client" + (", sniffio absent" if sniffio_shim else ""),
    }
    console.print(
        f"[bold]chat[/bold]: POST {PATH} (AES mode) on tongguan serve --workers {args.workers} (PostgreSQL"
        f" {ready['postgres']}, Redis {REDIS_URL}); parts {', '.join(parts)}"
    )
    problems: list[str] = []
    sealer = Sealer()
    with temp_dir(BENCH) as tmp:
        template = new_pg_name("chat_tpl")
        try:
            url = pg_create(template)
            console.print("seeding the small city into PostgreSQL …")
            seed_s = seed_database(url, tmp)
            _, points = asyncio.run(_prepare(url, 0, SEED))
            console.print(f"  seeded in {fmt_s(seed_s)}; {len(points)} points inside the city")

            def env_for(db_url: str) -> dict[str, str]:
                return child_env(var_dir=tmp / "var", database_url=db_url) | {
                    "TG_REDIS_URL": REDIS_URL,
                    "TG_RATE_IP_PER_MINUTE": "1000000",
                    "TG_WECHAT_TOKEN": TOKEN,
                    "TG_WECHAT_AES_KEY": AES_KEY,
                    "TG_WECHAT_APPID": APPID,
                    "TG_WECHAT_PROVIDER": "console",
                }

            if "throughput" in parts:
                problems += throughput(template, tmp, env_for, sealer, args, notes_all)
            if "storm" in parts:
                problems += storm(template, tmp, env_for, sealer, points, args, notes_all)
        finally:
            with contextlib.suppress(Exception):
                redis_flush()
            pg_drop(template)
    if problems:
        raise BenchError("; ".join(problems))


def throughput(
    template: str, tmp: Path, env_for: Any, sealer: Sealer, args: argparse.Namespace, notes_all: dict[str, Any]
) -> list[str]:
    problems = []
    with pg_database("chat_tp", template=template) as (name, url):
        redis_flush()
        sent = args.warmup + args.requests
        pushes = [
            sealer.text(f"oBenchTp{SEED}{i % 500:06d}", f"{DESCRIPTIONS[i % len(DESCRIPTIONS)]}（{i}）")
            for i in range(sent)
        ]
        console.print(f"[bold]throughput[/bold]: {args.requests:,} AES text messages at c={args.concurrency} …")

        async def fire(base: str, pid: int, alive: Any) -> dict[str, Any]:
            return await _throughput_load(
                base,
                pushes,
                warmup=args.warmup,
                concurrency=args.concurrency,
                server_pid=pid,
                alive=alive,
                database=name,
            )

        figures = _serve(env_for(url), tmp, "throughput", args.workers, fire)
        counts = asyncio.run(_counts(url))
        redis_flush()
    figures |= {"sent": sent, "rows": counts["inbound"], "outbox_entries": counts["outbox_chat"]}
    ok = counts["inbound"] == counts["outbox_chat"] == counts["outbox_inbound"] == sent
    figures["db_ok"] = int(ok)
    if not ok:
        problems.append(f"throughput: database {counts}, expected {sent:,} rows and outbox entries")
    if figures["non_200"]:
        problems.append(f"throughput answered {figures['_answers']}")
    nums, notes = _split(figures)
    record(BENCH, "throughput", nums, notes | notes_all)
    print_table(
        f"{args.requests:,} AES text messages at concurrency {args.concurrency}, uvicorn --workers {args.workers},"
        f" {os.cpu_count()} cores",
        [
            ("requests/s", f"{figures['per_s']:,.0f}", "", None),
            ("p50 / p90 / p99 / max", f"{figures['p50_ms']} / {figures['p90_ms']} / {figures['p99_ms']} /"
             f" {figures['max_ms']} ms", "", None),
            ("server CPU per request", f"{figures['server_cpu_ms_per_request']:.2f} ms", "", None),
            ("PostgreSQL / Redis CPU per request", f"{figures['postgres_cpu_ms_per_request']:.2f} /"
             f" {figures['redis_cpu_ms_per_request']:.2f} ms", "", None),
            ("load generator CPU per request", f"{figures['client_cpu_ms_per_request']:.2f} ms", "", None),
            ("machine busy cores", f"{figures['machine_busy_cores']:.2f}", "", None),
            ("CPU-bound ceiling", f"{figures['cpu_bound_per_s']:,.0f}/s", "", None),
            ("answers other than 200", f"{figures['non_200']:,}", "0", figures["non_200"] == 0),
            ("chat_inbound rows / chat_message entries", f"{counts['inbound']:,} / {counts['outbox_chat']:,}",
             f"{sent:,} each", ok),
        ],
    )  # fmt: skip
    return problems


def storm(
    template: str,
    tmp: Path,
    env_for: Any,
    sealer: Sealer,
    points: Sequence[tuple[float, float]],
    args: argparse.Namespace,
    notes_all: dict[str, Any],
) -> list[str]:
    problems: list[str] = []
    n = args.storm
    # (a) the webhook alone: n distinct messages, each 3 times at once.
    with pg_database("chat_storm", template=template) as (_name, url):
        redis_flush()
        units = [[sealer.text(f"oBenchSa{SEED}{i:06d}", f"垃圾桶满了（{i}）")] for i in range(n)]
        console.print(f"[bold]storm (a)[/bold]: {n:,} messages × {COPIES} copies at once …")

        async def fire_a(base: str, pid: int, alive: Any) -> dict[str, Any]:
            return await _storm_load(base, units, concurrency=args.concurrency, server_pid=pid, alive=alive)

        a = _serve(env_for(url), tmp, "storm_a", args.workers, fire_a)
        ca = asyncio.run(_counts(url))
        redis_flush()
    a |= {"messages": n, "rows": ca["inbound"], "outbox_entries": ca["outbox_chat"]}
    ok_a = ca["inbound"] == ca["inbound_keys"] == ca["outbox_chat"] == ca["outbox_inbound"] == n
    a["db_ok"] = int(ok_a)
    if not ok_a:
        problems.append(f"storm (a): database {ca}, expected {n:,} rows and outbox entries")
    if a["non_200"]:
        problems.append(f"storm (a) answered {a['_answers']}")
    nums, notes = _split(a)
    record(BENCH, "storm_inbound", nums, notes | notes_all)

    # (b) n citizens reporting by chat, every push 3 times at once, with the worker running.
    with pg_database("chat_storm", template=template) as (_name, url):
        redis_flush()
        rng = np.random.default_rng(SEED)
        units = []
        for i in range(n):
            openid = f"oBenchSb{SEED}{i:06d}"
            lon, lat = points[int(rng.integers(len(points)))]
            units.append(
                [
                    sealer.text(openid, "我要上报"),
                    sealer.text(openid, f"{DESCRIPTIONS[i % len(DESCRIPTIONS)]}（{i}）"),
                    sealer.location(openid, lon, lat, f"幸福路 {i % 300 + 1} 号"),
                    sealer.text(openid, "确认"),
                ]
            )
        console.print(
            f"[bold]storm (b)[/bold]: {n:,} citizens × 4 pushes × {COPIES} copies, tongguan worker --processes"
            f" {args.worker_processes} …"
        )
        env = env_for(url)
        wlog = tmp / "worker.log"
        cmd = [TONGGUAN, "worker", "--processes", str(args.worker_processes)]
        with child(cmd, env=env, cwd=tmp, log=wlog) as w:
            started = time.perf_counter()

            async def fire_b(base: str, pid: int, alive: Any) -> dict[str, Any]:
                return await _storm_load(base, units, concurrency=args.concurrency, server_pid=pid, alive=alive)

            b = _serve(env, tmp, "storm_b", args.workers, fire_b)
            drain_s = asyncio.run(_drain(url, w, DRAIN_TIMEOUT_S))
            total_s = time.perf_counter() - started
            worker_cpu = _tree_cpu(w.proc.pid)
        cb = asyncio.run(_counts(url))
        redis_flush()
    b |= {
        "citizens": n,
        "pushes": 4 * n,
        "drain_after_posts_s": round(drain_s, 2),
        "total_s": round(total_s, 2),
        "worker_cpu_s": round(worker_cpu, 2),
        "rows": cb["inbound"],
        "handled": cb["handled"],
        "outbox_entries": cb["outbox_chat"],
        "outbox_dead": cb["outbox_dead"],
        "reports": cb["reports"],
        "reporters": cb["reporters"],
        "notices": cb["notices"],
        "conversations_open": cb["states_open"],
    }
    ok_b = cb["inbound"] == cb["outbox_chat"] == cb["handled"] == 4 * n and cb["reports"] == cb["reporters"] == n
    ok_b = ok_b and cb["outbox_dead"] == 0
    b["db_ok"] = int(ok_b)
    if not ok_b:
        problems.append(f"storm (b): database {cb}, expected {4 * n:,} rows / entries and {n:,} reports")
    if b["non_200"]:
        problems.append(f"storm (b) answered {b['_answers']}")
    nums, notes = _split(b)
    record(BENCH, "storm_reports", nums, notes | notes_all | {"worker_processes": args.worker_processes})
    print_table(
        f"retry storm: every push POSTed {COPIES} times at once, {args.concurrency} messages / citizens in flight",
        [
            ("(a) POSTs: wall, rate", f"{a['posts']:,} in {fmt_s(a['post_wall_s'])}, {a['posts_per_s']:,.0f}/s", "",
             None),
            ("(a) p50 / p99", f"{a['p50_ms']} / {a['p99_ms']} ms", "", None),
            ("(a) answers other than 200", f"{a['non_200']:,}", "0", a["non_200"] == 0),
            ("(a) chat_inbound rows / chat_message entries", f"{ca['inbound']:,} / {ca['outbox_chat']:,}",
             f"{n:,} each", ok_a),
            ("(b) POSTs: wall, rate", f"{b['posts']:,} in {fmt_s(b['post_wall_s'])}, {b['posts_per_s']:,.0f}/s", "",
             None),
            ("(b) p50 / p99", f"{b['p50_ms']} / {b['p99_ms']} ms", "", None),
            ("(b) answers other than 200", f"{b['non_200']:,}", "0", b["non_200"] == 0),
            ("(b) outbox drained after the POSTs; total", f"{fmt_s(b['drain_after_posts_s'])};"
             f" {fmt_s(b['total_s'])}", "", None),
            ("(b) rows / handled / chat_message entries", f"{cb['inbound']:,} / {cb['handled']:,} /"
             f" {cb['outbox_chat']:,}", f"{4 * n:,} each", None),
            ("(b) reports (official_account) / citizens with one", f"{cb['reports']:,} / {cb['reporters']:,}",
             f"{n:,}", cb["reports"] == cb["reporters"] == n),
            ("(b) outbox dead; notices (replies); conversations not idle", f"{cb['outbox_dead']}; {cb['notices']:,};"
             f" {cb['states_open']:,}", "0; ; 0", cb["outbox_dead"] == 0 and cb["states_open"] == 0),
            ("(b) worker CPU", f"{worker_cpu:,.1f} s", "", None),
        ],
    )  # fmt: skip
    return problems


if __name__ == "__main__":
    main_guard(BENCH, main)
