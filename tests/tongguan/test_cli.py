"""The `tongguan` command as an operator runs it, on the embedded SQLite default."""

import base64
import json
import os
import sqlite3
import subprocess
import sys

import pytest


def tongguan(var_dir, *args, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "TG_VAR_DIR": str(var_dir), "TG_LOG_JSON": "false", "COLUMNS": "200"}
    env.pop("TG_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "tongguan.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"tongguan {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    var = tmp_path_factory.mktemp("var")
    tongguan(var, "migrate")
    result = tongguan(var, "seed", "--scale", "small", "--components", "300", "--seed", "5")
    return var, result


def test_seed_reports_a_summary_of_what_it_built(seeded):
    var, result = seeded
    assert (var / "tongguan.sqlite3").exists()
    assert "unit grids" in result.stderr and "240" in result.stderr
    assert "components" in result.stderr and "300" in result.stderr


def test_seeding_twice_is_refused_with_a_clear_message(seeded):
    var, _ = seeded
    result = tongguan(var, "seed", "--scale", "small", check=False)
    assert result.returncode == 1
    assert "already_seeded" in result.stderr


def test_seed_if_empty_leaves_an_existing_city_alone(seeded, tmp_path):
    var, _ = seeded
    result = tongguan(var, "seed", "--scale", "small", "--seed", "99", "--if-empty")
    assert "not seeding" in result.stderr
    tongguan(var, "export", "components", str(tmp_path / "c.csv"))
    assert len((tmp_path / "c.csv").read_text().splitlines()) == 301


def test_export_and_import_round_trip_through_files(seeded, tmp_path):
    var, _ = seeded
    tongguan(var, "export", "grids", str(tmp_path / "grids.geojson"))
    tongguan(var, "export", "components", str(tmp_path / "components.csv"))
    grids = json.loads((tmp_path / "grids.geojson").read_text(encoding="utf-8"))
    assert len(grids["features"]) == 240
    fresh = tmp_path / "fresh"
    tongguan(fresh, "migrate")
    tongguan(fresh, "seed", "--scale", "small", "--components", "0", "--seed", "5")
    result = tongguan(fresh, "import", "components", str(tmp_path / "components.csv"))
    assert "imported" in result.stderr and "300" in result.stderr
    tongguan(fresh, "export", "components", str(tmp_path / "again.csv"))
    assert (tmp_path / "again.csv").read_text() == (tmp_path / "components.csv").read_text()


def test_a_bad_import_prints_the_rows_and_writes_nothing(seeded, tmp_path):
    var, _ = seeded
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "code,owner_department,property_department,maintainer_department,lon,lat\n123,C01,C01,C01,123.43,41.80\n",
        encoding="utf-8",
    )
    errors = tmp_path / "errors.csv"
    result = tongguan(var, "import", "components", str(bad), "--errors", str(errors), check=False)
    assert result.returncode == 1
    assert "bad_code" in result.stderr and "nothing was written" in result.stderr
    assert "bad_code" in errors.read_text(encoding="utf-8")
    tongguan(var, "export", "components", str(tmp_path / "after.csv"))
    assert len((tmp_path / "after.csv").read_text().splitlines()) == 301


def test_users_add_reads_the_password_from_stdin(seeded):
    var, _ = seeded
    result = tongguan(var, "users", "add", "li.na", "--role", "dispatcher", stdin="a-long-password\n")
    assert "added li.na" in result.stderr
    weak = tongguan(var, "users", "add", "zhao", "--role", "dispatcher", stdin="short\n", check=False)
    assert weak.returncode == 1 and "weak_password" in weak.stderr


def test_users_add_has_no_password_option(seeded):
    var, _ = seeded
    result = tongguan(var, "users", "add", "x", "--role", "admin", "--password", "secret123", check=False)
    assert result.returncode != 0


def test_worker_without_redis_explains_embedded_mode(seeded):
    var, _ = seeded
    result = tongguan(var, "worker", check=False)
    assert result.returncode == 1 and "embedded mode" in result.stderr


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_health_checks_on_the_embedded_default(seeded):
    import time

    import httpx

    var, _ = seeded
    port = free_port()
    env = {**os.environ, "TG_VAR_DIR": str(var)}
    env.pop("TG_DATABASE_URL", None)
    env.pop("TG_REDIS_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "tongguan.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        assert response.status_code == 200
        assert response.json()["database"] == "ok"
        assert response.headers["x-request-id"]
    finally:
        server.terminate()
        server.wait(timeout=10)


SUBMIT = """
import asyncio
from core.db import db_context
from core.settings import get_settings
from core.regions.models import UnitGrid
from core.reports.service import NewReport, submit_report
import shapely

async def main():
    async with db_context(get_settings()):
        grid = await UnitGrid.all().order_by("code").first()
        point = shapely.from_geojson(grid.geometry).point_on_surface()
        report, _ = await submit_report(NewReport(source="hotline", reporter_type="staff", reporter_id="1",
            lon=point.x, lat=point.y, text="路边有暴露垃圾", subclass="event:0102"))
        print(report.id)

asyncio.run(main())
"""


def test_worker_with_redis_turns_a_waiting_report_into_a_case_and_exits_in_burst_mode(seeded, redis_url):
    var, _ = seeded
    env = {**os.environ, "TG_VAR_DIR": str(var), "TG_REDIS_URL": redis_url}
    submitted = subprocess.run([sys.executable, "-c", SUBMIT], env=env, capture_output=True, text=True, timeout=60)
    assert submitted.returncode == 0, submitted.stderr
    report_id = int(submitted.stdout.strip())

    result = subprocess.run(
        [sys.executable, "-m", "tongguan.cli", "worker", "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(var / "tongguan.sqlite3") as db:
        status, case_id = db.execute("SELECT status, case_id FROM report WHERE id = ?", (report_id,)).fetchone()
        entries = db.execute("SELECT status FROM outbox WHERE task = 'process_report'").fetchall()
    assert status == "cased" and case_id is not None
    assert entries == [("done",)]


def test_demo_on_an_empty_database_seeds_a_city_and_runs_the_closed_loop(tmp_path):
    tongguan(tmp_path, "migrate")
    result = tongguan(tmp_path, "demo", "--reports", "80", "--days", "2", "--json")
    figures = json.loads(result.stdout)
    assert figures["reports"] == 80
    assert figures["accepted_reports"] + figures["refused_reports"] == 80
    # Every accepted report is part of a case or waits for a person: nothing is dropped.
    with sqlite3.connect(tmp_path / "tongguan.sqlite3") as db:
        (unsettled,) = db.execute("SELECT count(*) FROM report WHERE status = 'received'").fetchone()
        (cases,) = db.execute("SELECT count(*) FROM case_file").fetchone()
    assert unsettled == 0 and cases == figures["cases"]
    assert figures["merged_duplicates"] > 0
    assert figures["closed"] > 0 and figures["dispatched"] >= figures["closed"]
    assert 0 <= figures["on_time_close_rate"] <= 1
    assert "simulating 2 days" in result.stderr


def test_demo_prints_the_department_evaluation(tmp_path):
    tongguan(tmp_path, "migrate")
    result = tongguan(tmp_path, "demo", "--reports", "40", "--days", "1")
    assert "部门综合评价" in result.stderr and "merged_duplicates" in result.stderr


def test_jobs_status_shows_dead_entries_and_retry_puts_them_back(tmp_path):
    tongguan(tmp_path, "migrate")
    with sqlite3.connect(tmp_path / "tongguan.sqlite3") as db:
        db.execute(
            "INSERT INTO outbox (task, args, dedupe_key, status, attempts, available_at, last_error, created_at) "
            "VALUES ('process_report', '{\"report_id\": 9}', 'process_report:9', 'dead', 8, "
            "'2026-11-30 09:00:00+08:00', 'OperationalError: database is locked', '2026-11-30 09:00:00+08:00')"
        )
    status = tongguan(tmp_path, "jobs", "status")
    assert "dead" in status.stderr and "database is locked" in status.stderr

    retried = tongguan(tmp_path, "jobs", "retry")
    assert "1 dead entries will run again" in retried.stderr
    with sqlite3.connect(tmp_path / "tongguan.sqlite3") as db:
        assert db.execute("SELECT status, attempts FROM outbox").fetchall() == [("pending", 0)]


def queued(output: str, label: str) -> int:
    """The count beside a label in a summary table."""
    import re

    match = re.search(re.escape(label) + r"\s*│\s*([\d,]+)", output)
    assert match, output
    return int(match[1].replace(",", ""))


def test_remind_ads_queues_expiry_notices_once_and_notify_status_counts_them(tmp_path):
    tongguan(tmp_path, "migrate")
    with sqlite3.connect(tmp_path / "tongguan.sqlite3") as db:
        db.execute(
            "INSERT INTO ad_company (id, name, contact_name, contact_phone, created_at) "
            "VALUES (1, '盛京广告', '张先生', '13912345678', '2026-11-01 09:00:00+08:00')"
        )
        db.execute(
            "INSERT INTO ad_permit (number, company_id, site, valid_to, created_at) "
            "VALUES ('GG-2026-001', 1, '青年大街', '2026-12-20', '2026-11-01 09:00:00+08:00')"
        )
    dry = tongguan(tmp_path, "remind", "ads", "--today", "2026-11-30", "--dry-run")
    assert queued(dry.stderr, "would be queued") == 1
    with sqlite3.connect(tmp_path / "tongguan.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM notice").fetchone() == (0,)
    first = tongguan(tmp_path, "remind", "ads", "--today", "2026-11-30")
    again = tongguan(tmp_path, "remind", "ads", "--today", "2026-11-30")
    assert queued(first.stderr, "queued (new)") == 1 and queued(again.stderr, "queued (new)") == 0
    with sqlite3.connect(tmp_path / "tongguan.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM notice").fetchone() == (1,)
    status = tongguan(tmp_path, "notify", "status")
    assert "pending" in status.stderr

    bad = tongguan(tmp_path, "remind", "ads", "--today", "30/11/2026", check=False)
    assert bad.returncode == 1 and "YYYY-MM-DD" in bad.stderr


def test_faces_new_key_prints_a_key_that_rekey_and_retention_accept(seeded, monkeypatch):
    var, _ = seeded
    line = tongguan(var, "faces", "new-key", "2026a").stdout.strip()
    key_id, _, secret = line.partition(":")
    assert key_id == "2026a" and len(base64.b64decode(secret)) == 32
    assert tongguan(var, "faces", "new-key", "bad id", check=False).returncode == 1

    monkeypatch.setenv("TG_FACE_KEYS", line)
    rekeyed = tongguan(var, "faces", "rekey")
    assert "keys other than '2026a' can now be dropped" in rekeyed.stderr and "face encodings" in rekeyed.stderr
    retention = tongguan(var, "faces", "retention")
    assert "face register retention" in retention.stderr and "parties" in retention.stderr

    monkeypatch.setenv("TG_FACE_KEYS", "2026a:not-base64")
    broken = tongguan(var, "faces", "rekey", check=False)
    assert broken.returncode != 0 and "TG_FACE_KEYS" in broken.stderr + broken.stdout
