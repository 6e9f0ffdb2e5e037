"""Shared plumbing of the benchmarks: measured subprocesses, throwaway databases, results, tables.

Every bench appends one JSON line per measured case to bench/out/results.jsonl:
    {"run_id", "ts", "bench", "case", "figures": {name: number}, "notes": {...}, "machine": {...}}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
TONGGUAN = str(VENV_BIN / "tongguan")
TIME_BIN = "/usr/bin/time"
OUT_DIR = REPO / "bench" / "out"
RESULTS = OUT_DIR / "results.jsonl"
PG_ADMIN_DSN = os.environ.get("TG_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_URL_BASE = os.environ.get("TG_BENCH_PG_URL_BASE", "postgres://postgres@127.0.0.1:5432")
RUN_ID = os.environ.get("TG_BENCH_RUN_ID") or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


class BenchError(RuntimeError):
    """A measured step failed; the message says which and shows the tail of its output."""


def exit_on_signals() -> None:
    """SIGTERM / SIGHUP become SystemExit so that every `finally` (drop database, delete files) still runs."""

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)


# --- measured subprocesses ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """One finished child process: wall time, peak RSS of the command itself, CPU time (user, system)."""

    wall_s: float
    peak_rss_mib: float
    user_s: float
    sys_s: float


def child_env(*, var_dir: Path, database_url: str = "") -> dict[str, str]:
    """The environment of a `tongguan` child: ours minus any TG_* setting, plus the bench's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    env.update(TG_VAR_DIR=str(var_dir), TG_DATABASE_URL=database_url, TG_LOG_JSON="false")
    return env


def run_measured(
    cmd: Sequence[str], *, env: dict[str, str], cwd: Path, log: Path, timeout_s: float, what: str
) -> Measured:
    """Run `cmd` to completion; its stdout and stderr go to `log`. Raises BenchError on failure or timeout.

    Peak memory: not ru_maxrss of our own child. Linux carries the RSS high-water mark of the pre-exec memory map
    into the exec'd program (and subprocess uses vfork, whose pre-exec map is *this* process), so wait4() would
    report max(our RSS, the child's peak): it read 268 MiB for an import whose own peak is 167 MiB. Instead the
    command runs under `/usr/bin/time -f %M` (a 2 MiB process forks it, so the inherited mark is negligible), or,
    without /usr/bin/time, the child's own VmHWM (/proc/PID/status, the peak of its new memory map) is polled.
    """
    use_time = os.access(TIME_BIN, os.X_OK)
    rss_file = log.parent / f"{log.name}.{uuid.uuid4().hex[:6]}.maxrss"
    full = [TIME_BIN, "-f", "%M", "-o", str(rss_file), *cmd] if use_time else list(cmd)
    polled_kib = 0
    with log.open("ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        started = time.perf_counter()
        # Own process group: on timeout or interruption the whole group (time + tongguan) is killed.
        proc = subprocess.Popen(full, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        timed_out = threading.Event()
        done = threading.Event()

        def kill_group() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        def kill() -> None:
            timed_out.set()
            kill_group()

        def poll() -> None:
            nonlocal polled_kib
            status = Path(f"/proc/{proc.pid}/status")
            while not done.is_set():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    for line in status.read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            polled_kib = max(polled_kib, int(line.split()[1]))
                done.wait(0.02)

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        poller = threading.Thread(target=poll, daemon=True)
        if not use_time:
            poller.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            kill_group()
            proc.wait()
            raise
        finally:
            timer.cancel()
            done.set()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    if timed_out.is_set():
        raise BenchError(f"{what}: timed out after {timeout_s:.0f} s\n{tail(log)}")
    if proc.returncode != 0:
        raise BenchError(f"{what}: exit code {proc.returncode}\n{tail(log)}")
    if use_time:
        peak_kib = int(rss_file.read_text().split()[-1])
        rss_file.unlink()
    else:
        peak_kib = polled_kib
    return Measured(wall, peak_kib / 1024, usage.ru_utime, usage.ru_stime)


def tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def peak_rss_self_mib() -> float:
    """Peak RSS of this process so far (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- throwaway places -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def temp_dir(label: str) -> Iterator[Path]:
    """A temporary directory removed afterwards, whatever happens."""
    with tempfile.TemporaryDirectory(prefix=f"tg_bench_{label}_") as d:
        yield Path(d)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _pg_scalar(sql: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def pg_server_version() -> str | None:
    """PostgreSQL's version string, or None when it does not answer."""
    try:
        return str(asyncio.run(_pg_scalar("SHOW server_version")))
    except Exception:  # not installed, not running, refusing: all mean "no PostgreSQL here"
        return None


def pg_url(name: str) -> str:
    return f"{PG_URL_BASE}/{name}"


def new_pg_name(label: str) -> str:
    return f"tg_bench_{label}_{uuid.uuid4().hex[:8]}"


def pg_create(name: str, *, template: str | None = None) -> str:
    assert name.startswith("tg_bench_"), name
    suffix = f' TEMPLATE "{template}"' if template else ""
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"{suffix}'))
    return pg_url(name)


def pg_drop(name: str) -> None:
    assert name.startswith("tg_bench_"), name
    try:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception as exc:
        console.print(f"[red]could not drop database {name}[/red]: {exc}  (drop it by hand: bash bench/run.sh clean)")


@contextlib.contextmanager
def pg_database(label: str, *, template: str | None = None) -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database `tg_bench_<label>_<random>` (name, URL), dropped afterwards, also on failure."""
    name = new_pg_name(label)
    try:
        url = pg_create(name, template=template)
        yield name, url
    finally:
        pg_drop(name)


# --- results --------------------------------------------------------------------------------------------------


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict[str, Any]:
    import numpy
    import shapely

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "shapely": shapely.__version__,
        "geos": shapely.geos_version_string,
        "git": _git_commit(),
    }


def record(bench: str, case: str, figures: dict[str, float | int], notes: dict[str, Any] | None = None) -> None:
    """Append one measured case to bench/out/results.jsonl."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    line = {
        "run_id": RUN_ID,
        "ts": datetime.now(UTC).isoformat(timespec="seconds"),
        "bench": bench,
        "case": case,
        "figures": figures,
        "notes": notes or {},
        "machine": machine(),
    }
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, ensure_ascii=False) + "\n")


# --- printing -------------------------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    if ok is None:
        return ""
    return "[green]meets[/green]" if ok else "[red]misses[/red]"


def print_table(
    title: str, rows: Sequence[tuple[str, str, str, bool | None]], caption: str | None = None, third: str = "target"
) -> None:
    """rows: (figure, value, target, ok) — target "" and ok None when there is no target."""
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column(third, justify="right")
    table.add_column("")
    for figure, value, target, ok in rows:
        table.add_row(figure, value, target, verdict(ok))
    console.print(table)


def fmt_int(n: float) -> str:
    return f"{n:,.0f}"


def fmt_s(s: float) -> str:
    return f"{s:,.1f} s" if s >= 10 else f"{s:,.2f} s"


def fmt_mib(m: float) -> str:
    return f"{m:,.0f} MiB"


def main_guard(bench: str, body: Any) -> None:
    """Run a bench's body with signal handling and a clean one-line failure."""
    exit_on_signals()
    try:
        body()
    except BenchError as exc:
        console.print(f"[red]{bench} failed[/red]: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        console.print(f"[yellow]{bench} interrupted[/yellow]; temporary databases and files were removed")
        sys.exit(130)


REDIS_URL = os.environ.get("TG_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


def redis_flush() -> None:
    """Empty the bench's own Redis database (12 by default)."""
    from redis import Redis

    Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()


def services_ready(bench: str) -> dict[str, Any] | None:
    """PostgreSQL's version and the Redis URL when both answer (Redis flushed); None, with a message, if not."""
    version = pg_server_version()
    if version is None:
        console.print(f"[yellow]PostgreSQL is not answering on 127.0.0.1:5432: {bench} bench skipped[/yellow]")
        return None
    try:
        redis_flush()
    except Exception as exc:
        console.print(f"[yellow]Redis is not answering at {REDIS_URL} ({exc}): {bench} bench skipped[/yellow]")
        return None
    return {"postgres": version, "redis_url": REDIS_URL}
