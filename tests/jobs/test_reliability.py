"""Nothing lost, nothing doubled: Redis going away, a worker killed mid-job, the same report twice at once."""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import redis
import shapely

from core.cases.models import Case, CaseEvent
from core.outbox.models import OutboxEntry
from core.regions.models import UnitGrid
from core.reports.flows import process_report
from core.reports.models import Report
from core.reports.service import NewReport, submit_report
from tests.conftest import unavailable
from tests.factories import interior_point

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of our own on a free port, so a test can stop and start it."""

    def __init__(self, tmp_path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server", "the binary is not installed")
        self.binary, self.port, self.dir = binary, free_port(), tmp_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def start_worker(database_url: str, redis_url: str, *, processes: int = 1) -> subprocess.Popen:
    env = {
        **os.environ,
        "TG_DATABASE_URL": database_url,
        "TG_REDIS_URL": redis_url,
        "TG_OUTBOX_STALE_SECONDS": "3",
        "TG_LOG_LEVEL": "WARNING",
    }
    # A session of its own, so the test can kill the supervisor and its workers together.
    return subprocess.Popen(
        [sys.executable, "-m", "tongguan.cli", "worker", "--processes", str(processes)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_worker(worker: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
    worker.wait(timeout=30)


async def distinct_reports(n: int, *, prefix: str) -> list[int]:
    """n reports of one auto-dispatched subclass, each in another unit grid: none duplicates another."""
    grids = await UnitGrid.all().order_by("code").limit(n)
    assert len(grids) == n
    ids = []
    for i, grid in enumerate(grids):
        point = shapely.from_geojson(grid.geometry).point_on_surface()
        report, _ = await submit_report(
            NewReport(
                source="field_app",
                reporter_type="staff",
                reporter_id="7",
                lon=point.x,
                lat=point.y,
                text="暴露垃圾",
                subclass="event:0102",
                idempotency_key=f"{prefix}-{i:06d}",
            )
        )
        ids.append(report.id)
    return ids


async def wait_until_processed(ids: list[int], *, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not await Report.filter(id__in=ids, status="received").exists():
            return
        await asyncio.sleep(0.2)
    left = await Report.filter(id__in=ids, status="received").count()
    raise AssertionError(f"{left} of {len(ids)} reports were still waiting after {within_s} s")


async def assert_one_case_per_report(ids: list[int]) -> None:
    statuses = set(await Report.filter(id__in=ids).values_list("status", flat=True))
    assert statuses == {"cased"}
    case_ids = await Report.filter(id__in=ids).values_list("case_id", flat=True)
    assert len(set(case_ids)) == len(ids)
    assert await Case.all().count() == len(ids)
    # One 上报 event per case: no case was opened twice and then rolled into another.
    assert await CaseEvent.filter(action="report").count() == len(ids)


async def test_reports_that_arrive_while_redis_is_down_all_become_cases_when_it_returns(city, private_redis):
    worker = start_worker(city, private_redis.url)
    try:
        private_redis.stop()
        ids = await distinct_reports(30, prefix="outage")  # accepted: intake never needs Redis
        await asyncio.sleep(1.5)
        assert await Report.filter(id__in=ids, status="received").count() == 30
        assert not await OutboxEntry.filter(task="process_report", status="done").exists()

        private_redis.start()
        await wait_until_processed(ids, within_s=60)
    finally:
        stop_worker(worker)
    await assert_one_case_per_report(ids)


async def test_a_worker_killed_mid_job_has_its_jobs_redone_without_duplicates(city, redis_url):
    ids = await distinct_reports(200, prefix="kill")
    worker = start_worker(city, redis_url)
    try:
        # Kill the worker (SIGKILL: no cleanup) while it is part way through the reports.
        deadline = time.monotonic() + 60
        while not await Report.filter(id__in=ids).exclude(status="received").exists():
            assert time.monotonic() < deadline, "the worker never started"
            await asyncio.sleep(0.05)
        stop_worker(worker, signal.SIGKILL)
        done_at_kill = await Report.filter(id__in=ids).exclude(status="received").count()
        assert done_at_kill < len(ids), "the worker finished before it was killed; kill it sooner"

        worker = start_worker(city, redis_url)
        await wait_until_processed(ids, within_s=90)
    finally:
        stop_worker(worker)
    await assert_one_case_per_report(ids)


async def test_the_same_report_submitted_twice_at_once_is_stored_once(city):
    grid = (await UnitGrid.all().order_by("code").first()).code
    lon, lat = await interior_point(grid)
    new = NewReport(
        source="miniapp",
        reporter_type="citizen",
        reporter_id="42",
        lon=lon,
        lat=lat,
        text="暴露垃圾",
        subclass="event:0102",
        idempotency_key="double-tap-0001",
    )
    results = await asyncio.gather(submit_report(new), submit_report(new))
    assert {r.id for r, _ in results} == {results[0][0].id}
    assert sorted(created for _, created in results) == [False, True]
    assert await Report.all().count() == 1
    assert await OutboxEntry.filter(task="process_report").count() == 1


async def test_two_reports_of_one_problem_processed_at_once_open_one_case(city):
    grid = (await UnitGrid.all().order_by("code").first()).code
    lon, lat = await interior_point(grid)
    ids = []
    for who in ("1", "2"):
        report, _ = await submit_report(
            NewReport(
                source="field_app",
                reporter_type="staff",
                reporter_id=who,
                lon=lon,
                lat=lat,
                text="暴露垃圾",
                subclass="event:0102",
            )
        )
        ids.append(report.id)
    outcomes = await asyncio.gather(*(process_report(report_id=i) for i in ids))
    assert sorted(outcomes) == ["cased", "merged"]
    assert await Case.all().count() == 1
