"""The command-centre page in a real browser: Debian's chromium, driven by Playwright, against `tongguan serve`.

Each test starts tongguan on 127.0.0.1 on a fresh copy of the small city (SQLite and PostgreSQL) on its embedded
defaults: jobs in-process, and the mini-program's demo sign-in (`demo-<name>` codes) for citizens, since WeChat's
real sign-in is the mini-program tests' subject. It signs in through the page and works the way a dispatcher does.
Screenshots go to test-artifacts/console/ (TG_TEST_ARTIFACTS to change).
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import socket
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image

from core.accounts.models import StaffAccount
from core.geo.datum import from_wgs84
from core.regions.models import District, UnitGrid
from core.seed import DEMO_PASSWORD
from tests.conftest import IN_CI
from tests.factories import interior_point, jpeg_bytes

CHROMIUM = os.environ.get("TG_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("TG_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "console"
# Without the background-networking switches chromium keeps calling Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STATUS_RGB = {"registered": (0xE8, 0x59, 0x0C), "dispatched": (0x1C, 0x64, 0xD1)}  # map.js STATUS_COLOURS
DESK = (1366, 768)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator:
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:  # pragma: no cover - the dev install brings it
        _no_browser(f"playwright is not installed ({exc})")
    if not Path(CHROMIUM).exists():
        _no_browser(f"no chromium at {CHROMIUM}")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


def _no_browser(why: str) -> None:
    message = f"{why}; run scripts/test.sh (it installs Debian's chromium) or set TG_TEST_CHROMIUM"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def bearer(self, username: str) -> dict[str, str]:
        async with httpx.AsyncClient(base_url=self.base_url) as client:
            response = await client.post("/auth/token", data={"username": username, "password": DEMO_PASSWORD})
        assert response.status_code == 200, response.text
        return {"authorization": f"Bearer {response.json()['access_token']}"}

    async def call(self, method: str, path: str, headers: dict, **kwargs) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base_url, headers=headers) as client:
            return await client.request(method, path, **kwargs)

    async def inspector_confirms(self, number: str) -> dict:
        """The inspector of the case's verify task confirms the problem on the field app; the case after it."""
        detail = (await self.call("GET", f"/staff/v1/cases/{number}", await self.bearer("dispatcher"))).json()
        inspector = await StaffAccount.get(id=detail["tasks"][0]["inspector_id"])
        verified = await self.call(
            "POST",
            f"/staff/v1/cases/{number}/actions/verify",
            await self.bearer(inspector.username),
            json={"detail": {"result": "confirmed"}},
        )
        assert verified.status_code == 200, verified.text
        return verified.json()

    async def case_at(self, address: str, headers: dict) -> dict:
        """The case a report at this address became; the embedded jobs make it in the background."""
        for _ in range(150):
            items = (await self.call("GET", "/staff/v1/cases", headers, params={"limit": 20})).json()["items"]
            if found := next((c for c in items if c["address"] == address), None):
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"the report at {address} did not become a case")

    async def citizen_report(
        self, *, address: str, subclass: str | None = "event:0201", text: str = "人行道上堆放建筑垃圾"
    ) -> dict:
        """A citizen reports through the mini-program API (without a subclass: the pipeline guesses it)."""
        async with httpx.AsyncClient(base_url=self.base_url) as client:
            code = f"demo-citizen-{uuid.uuid4().hex[:12]}"
            token = (await client.post("/miniapp/v1/auth/login", json={"code": code})).json()["token"]
            grid = (await UnitGrid.all().order_by("code").first()).code
            lon, lat = from_wgs84(*await interior_point(grid), "gcj02")
            response = await client.post(
                "/miniapp/v1/reports",
                json={
                    "description": text,
                    "location": {"lon": lon, "lat": lat, "datum": "gcj02"},
                    "address": address,
                    "idempotency_key": uuid.uuid4().hex,
                    **({"subclass": subclass} if subclass else {}),
                },
                headers={"authorization": f"Bearer {token}"},
            )
        assert response.status_code in (200, 201, 202), response.text
        return response.json()


TILE_RGB = (200, 40, 160)  # a colour no layer of the map uses


class TileServer:
    """Map tiles on 127.0.0.1, as an intranet tile server would serve them: one plain tile for any z/x/y."""

    def __init__(self) -> None:
        buffer = io.BytesIO()
        Image.new("RGB", (256, 256), TILE_RGB).save(buffer, "PNG")
        tile = buffer.getvalue()
        asked: list[str] = []
        self.asked = asked

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not re.fullmatch(r"/\d+/\d+/\d+\.png", self.path):
                    self.send_error(404)
                    return
                asked.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(tile)))
                self.end_headers()
                self.wfile.write(tile)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{{z}}/{{x}}/{{y}}.png"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def tiles(request) -> Iterator[TileServer | None]:
    """A tile server for the tests that ask for one (parametrize `tiles` with True, indirect)."""
    if not getattr(request, "param", False):
        yield None
        return
    served = TileServer()
    yield served
    served.stop()


@pytest.fixture
async def server(city, tmp_path, tiles) -> AsyncIterator[Server]:
    """`tongguan serve` on a free port of 127.0.0.1, on this test's copy of the small city."""
    port = _free_port()
    env = {
        **os.environ,
        "TG_DATABASE_URL": city,
        "TG_VAR_DIR": str(tmp_path),
        "TG_FACE_DETECTOR": "none",
        "TG_CONSOLE_POLL_SECONDS": "1",
        **({"TG_CONSOLE_TILES_URL": tiles.url} if tiles else {}),
    }
    for name in ("TG_REDIS_URL", "TG_MINIAPP_APPID"):
        env.pop(name, None)  # the embedded defaults
    log = (tmp_path / "serve.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "tongguan.cli", "serve", "--host", "127.0.0.1", "--port", str(port)),
        env=env,
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url) as client:
            for _ in range(300):
                if process.returncode is not None:
                    raise AssertionError(f"tongguan serve stopped: {(tmp_path / 'serve.log').read_text()[-2000:]}")
                try:
                    if (await client.get("/console")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("tongguan serve did not answer within 30 s")
        yield Server(base_url)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()


@pytest.fixture
async def page(browser, request, backend) -> AsyncIterator:
    context = await browser.new_context(viewport={"width": DESK[0], "height": DESK[1]}, locale="zh-CN")
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.shots = Shots(opened, f"{request.node.originalname}-{backend.name}")
    yield opened
    await context.close()
    assert not errors, f"the page raised: {errors}"


class Shots:
    """Numbered screenshots of one test, kept as artifacts of the run."""

    def __init__(self, page, name: str) -> None:
        self.page, self.name, self.count = page, name, 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    async def take(self, what: str) -> None:
        self.count += 1
        await self.page.screenshot(path=ARTIFACTS / f"{self.name}-{self.count:02d}-{what}.png")


async def sign_in(page, server: Server, username: str, password: str = DEMO_PASSWORD) -> None:
    await page.goto(f"{server.base_url}/console")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.press("#password", "Enter")


async def queue_count(page, queue: str) -> int:
    text = await page.text_content(f".queue-list [data-queue={queue}]")
    return int(text) if text and text.isdigit() else -1


async def act_in_page(page, action: str, *, department: bool = False) -> None:
    """Press an action's button on the case page and confirm its dialog."""
    await page.click(f".actions button[data-action={action}]")
    await page.wait_for_selector("dialog.action-dialog[open]")
    if department:
        assert await page.input_value("dialog select") != ""  # the routed department is chosen already
    await page.fill("dialog textarea", "指挥中心处理")
    await page.click("dialog button[type=submit]")
    await page.wait_for_selector("dialog.action-dialog", state="detached")


async def map_pixel(page, number: str) -> tuple[str, tuple[int, int, int]]:
    """The status the map gives a case and the colour actually painted at its point on the canvas."""
    await page.wait_for_function("n => window.tgMap && window.tgMap.casePoint(n)", arg=number)
    found = await page.evaluate(
        """n => {
            const m = window.tgMap, p = m.casePoint(n), d = m.dpr;
            const px = m.canvas.getContext('2d').getImageData(Math.round(p.x * d), Math.round(p.y * d), 1, 1).data;
            return [p.status, [px[0], px[1], px[2]]];
        }""",
        number,
    )
    return found[0], tuple(found[1])


async def open_map(page, server: Server) -> None:
    await page.goto(f"{server.base_url}/console#/map")
    await page.wait_for_selector(".map-view[data-ready]", timeout=20_000)


async def test_a_citizen_report_appears_in_the_queue_and_is_dispatched_from_the_page(server, page):
    await sign_in(page, server, "dispatcher")
    await page.wait_for_selector(".queue-view[data-ready]")
    await page.wait_for_selector(".queue-list [data-queue=to_accept]:not(:has-text('…'))")
    before = await queue_count(page, "to_accept")
    await page.shots.take("queue-before")

    address = f"光荣街 {uuid.uuid4().hex[:6]} 号"
    await server.citizen_report(address=address)
    # No reload: the page's live count and list bring the new case in.
    row = page.locator("table.cases tbody tr", has_text=address)
    await row.wait_for(timeout=15_000)
    assert await queue_count(page, "to_accept") == before + 1
    number = await row.get_attribute("data-number")
    await page.shots.take("queue-new-report")

    # Keyboard: move to the row and open it.
    for _ in range(await page.locator("table.cases tbody tr").count()):
        await page.keyboard.press("j")
        if await page.get_attribute("table.cases tr.selected", "data-number") == number:
            break
    await page.keyboard.press("Enter")
    await page.wait_for_selector(f".case-view[data-status=pending_accept] >> text={number}")
    await act_in_page(page, "accept")
    await page.wait_for_selector(".case-view[data-status=accepted]")

    # The inspector confirms the problem on the field app; then the dispatcher registers and dispatches it.
    await server.inspector_confirms(number)
    await page.reload()
    await act_in_page(page, "register")
    await page.wait_for_selector(".case-view[data-status=registered]")

    await open_map(page, server)
    assert await map_pixel(page, number) == ("registered", STATUS_RGB["registered"])
    await page.shots.take("map-registered")

    # From the map by keyboard: n goes to the next case (overdue first) and Enter opens it.
    await page.focus(".map-canvas")
    await page.keyboard.press("n")
    assert await page.text_content(".map-popup strong") == number
    await page.keyboard.press("Enter")
    await page.wait_for_selector(".case-view[data-status=registered]")
    await act_in_page(page, "dispatch", department=True)
    await page.wait_for_selector(".case-view[data-status=dispatched]")
    assert "已派遣" in await page.text_content("#case-status")
    assert "派遣" in await page.text_content(".timeline")
    await page.shots.take("case-dispatched")

    await open_map(page, server)
    assert await map_pixel(page, number) == ("dispatched", STATUS_RGB["dispatched"])
    await page.shots.take("map-dispatched")

    # On a command-centre wall the map fills the larger screen and still shows the whole city.
    await page.set_viewport_size({"width": 2560, "height": 1440})
    await page.wait_for_function(
        "n => { const p = window.tgMap.casePoint(n); return p && window.tgMap.width > 2000 && p.x > 0 && p.y > 0 }",
        arg=number,
    )
    assert await map_pixel(page, number) == ("dispatched", STATUS_RGB["dispatched"])
    await page.shots.take("map-wall-screen")


async def test_a_report_no_rule_could_classify_waits_for_the_dispatcher_and_becomes_a_case(server, page):
    await sign_in(page, server, "dispatcher")
    await page.wait_for_selector(".queue-view[data-ready]")
    address = f"文化路 {uuid.uuid4().hex[:6]} 号"
    await server.citizen_report(address=address, subclass=None, text="这里有点问题，请来看看")
    waiting = page.locator(".queue-list [data-queue=unclassified_reports]")
    await waiting.filter(has_text="1").wait_for(timeout=15_000)
    await page.click(".queue-list a[href='#/reports']")
    row = page.locator("table.reports tbody tr", has_text="这里有点问题")
    await row.wait_for()
    assert "无法自动识别问题类型" in await row.text_content()
    await row.locator("button").click()
    await page.wait_for_selector("dialog.action-dialog[open] select optgroup")
    await page.select_option("dialog select", "event:0102")  # 暴露垃圾
    await page.shots.take("classify")
    await page.click("dialog button[type=submit]")
    await page.wait_for_selector(".reports-view .empty")
    # The pipeline runs again with the dispatcher's type and opens a case for it.
    desk = await server.bearer("dispatcher")
    case = await server.case_at(address, desk)
    assert case["subclass"] == "event:0102"
    await waiting.filter(has_text="0").wait_for(timeout=15_000)


async def test_a_wrong_password_and_an_ended_session_get_chinese_messages(server, page):
    await sign_in(page, server, "dispatcher", "not-the-password")
    await page.wait_for_selector("#signin-error:not(:empty)")
    assert await page.text_content("#signin-error") == "用户名或密码错误。"
    assert await page.input_value("#password") == ""
    await page.shots.take("wrong-password")

    await sign_in(page, server, "dispatcher")
    await page.wait_for_selector(".queue-view[data-ready]")
    # An access token that no longer works (expired after its 30 minutes) is renewed with the refresh token
    # without troubling the dispatcher: the page stays where it is.
    await page.evaluate("() => sessionStorage.setItem('tg.access', 'expired.token.value')")
    await page.wait_for_function("() => sessionStorage.getItem('tg.access') !== 'expired.token.value'")
    assert await page.locator(".queue-view").count() == 1
    assert await page.locator("#signin-error").count() == 0
    # The session ends on the server (signed out elsewhere, or an administrator ended it): the next live update
    # finds out, the refresh token is refused too, and the page asks to sign in again.
    token = await page.evaluate("() => sessionStorage.getItem('tg.access')")
    ended = await server.call("POST", "/auth/revoke", {"authorization": f"Bearer {token}"})
    assert ended.status_code == 204
    await page.wait_for_selector("#signin-error:has-text('登录已过期，请重新登录。')", timeout=10_000)
    assert await page.evaluate("() => sessionStorage.getItem('tg.access')") is None
    await page.shots.take("session-ended")

    # The next person at the same desk signs in after them and works as themselves.
    district = (await District.all().order_by("code").first()).code
    await sign_in(page, server, f"dispatcher-{district}")
    await page.wait_for_selector(".queue-view[data-ready]")
    assert district in await page.text_content(".who .roles")
    await page.click("#sign-out")
    await page.wait_for_selector("#signin-error:has-text('您已退出登录。')")


async def test_a_crew_member_sees_only_their_actions_and_the_api_refuses_the_rest(server, page):
    desk = await server.bearer("dispatcher")
    address = f"和平大街 {uuid.uuid4().hex[:6]} 号"
    await server.citizen_report(address=address, subclass="event:0102")  # 暴露垃圾: dispatched once verified
    case = await server.case_at(address, desk)
    number = case["number"]
    if case["status"] == "pending_accept":
        assert (await server.call("POST", f"/staff/v1/cases/{number}/actions/accept", desk, json={})).status_code == 200
    verified = await server.inspector_confirms(number)
    assert verified["status"] == "dispatched", verified
    crew = f"handler-{verified['department']}"

    await sign_in(page, server, crew)
    await page.wait_for_selector(".queue-view[data-ready]")
    assert await page.locator("nav a[data-nav=evaluation]").count() == 0
    await page.goto(f"{server.base_url}/console#/cases/{number}")
    await page.wait_for_selector(".case-view[data-status=dispatched]")
    buttons = await page.eval_on_selector_all(".actions button", "bs => bs.map(b => b.dataset.action)")
    assert "start" in buttons and "feedback" in buttons
    assert not {"redispatch", "supervise", "close", "void"} & set(buttons)
    await page.shots.take("crew-case")

    # What the page does not offer, the API refuses with a sentence the page shows as it is.
    refused = await server.call(
        "POST", f"/staff/v1/cases/{number}/actions/redispatch", await server.bearer(crew), json={"note": "改派"}
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "role_not_allowed"
    await page.goto(f"{server.base_url}/console#/evaluation")
    await page.wait_for_selector(".eval-view .error[role=alert]")
    assert await page.text_content(".eval-view .error") == refused.json()["title"] == "您的角色无权进行该操作。"
    await page.shots.take("crew-evaluation-refused")


async def test_an_unknown_case_number_gets_a_chinese_message(server, page):
    await sign_in(page, server, "dispatcher")
    await page.wait_for_selector(".queue-view[data-ready]")
    await page.keyboard.press("/")
    await page.keyboard.type("20991231999999")
    await page.keyboard.press("Enter")
    alert = page.locator(".search-view .error[role=alert]")
    await alert.wait_for()
    assert await alert.text_content() == "没有找到案卷号为“20991231999999”的案卷，请核对案卷号。"
    await page.shots.take("search-unknown")

    await page.goto(f"{server.base_url}/console#/cases/20991231999999")
    alert = page.locator(".case-view .error[role=alert]")
    await alert.wait_for()
    assert await alert.text_content() == "案卷不存在，请核对案卷号。"


async def close_a_case_around_the_loop(server: Server) -> str:
    """A hotline report through verify, dispatch, fix, check and close, so that this month has figures."""
    desk = await server.bearer("dispatcher")
    address = f"北京街 {uuid.uuid4().hex[:6]} 号"
    lon, lat = await interior_point((await UnitGrid.all().order_by("code").first()).code)
    hotline = {"text": "路口有暴露垃圾", "lon": lon, "lat": lat, "subclass": "event:0102", "address": address}
    assert (await server.call("POST", "/staff/v1/reports", desk, json=hotline)).status_code == 202
    number = (await server.case_at(address, desk))["number"]
    detail = (await server.call("GET", f"/staff/v1/cases/{number}", desk)).json()
    patrol = await server.bearer((await StaffAccount.get(id=detail["tasks"][0]["inspector_id"])).username)

    async def act(headers: dict, action: str, **body) -> dict:
        response = await server.call("POST", f"/staff/v1/cases/{number}/actions/{action}", headers, json=body)
        assert response.status_code == 200, response.text
        return response.json()

    crew = await server.bearer(f"handler-{(await act(patrol, 'verify', detail={'result': 'confirmed'}))['department']}")
    await act(crew, "start")
    photo = await server.call(
        "POST", "/staff/v1/media", crew, files={"file": ("after.jpg", jpeg_bytes(), "image/jpeg")}
    )
    await act(crew, "feedback", note="已清运", media=[photo.json()["media_id"]])
    await act(patrol, "check_pass")
    await act(desk, "close")
    return number


async def test_the_evaluation_page_shows_the_figures_of_the_api_a_trend_and_a_csv(server, page, tmp_path):
    await close_a_case_around_the_loop(server)
    desk = await server.bearer("dispatcher")
    month = (await server.call("GET", "/staff/v1/evaluation/trend", desk, params={"key": "-", "months": 1})).json()
    month = month[0]["period"]
    api_rows = (
        await server.call("GET", "/staff/v1/evaluation", desk, params={"by": "district", "period": month})
    ).json()
    assert api_rows and api_rows[0]["band"], api_rows

    await sign_in(page, server, "dispatcher")
    await page.wait_for_selector(".queue-view[data-ready]")
    await page.keyboard.press("3")
    await page.wait_for_selector(".eval-view[data-ready]")
    assert await page.input_value("#eval-period") == month
    await page.select_option("#eval-by", "district")
    await page.click(".eval-form button[type=submit]")
    await page.wait_for_selector(".eval-view[data-ready] caption:has-text('区')")
    shown = await page.eval_on_selector_all(
        "table.evaluation tbody tr", "rows => rows.map(r => [r.dataset.key, r.lastElementChild.textContent])"
    )
    assert shown == [[r["key"], r["band"] or "—"] for r in api_rows]
    await page.focus("table.evaluation tbody tr")
    await page.keyboard.press("Enter")
    await page.wait_for_selector(".trend svg.chart")
    # Twelve months along the bottom, and this month's score as the last dot.
    assert await page.locator(".trend svg circle.chart-dot").count() >= 1
    last_dot = await page.text_content(".trend svg circle.chart-dot:last-of-type title")
    assert last_dot.startswith(f"{month}: {api_rows[0]['score']:.2f}")
    await page.shots.take("evaluation-district")

    async with page.expect_download() as download_info:
        await page.click("#eval-export")
    download = await download_info.value
    saved = tmp_path / "evaluation.csv"
    await download.save_as(saved)
    text = saved.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("编码,名称,上报数,立案数")
    assert len(text.splitlines()) == len(api_rows) + 1

    await page.select_option("#eval-by", "road")
    await page.click(".eval-form button[type=submit]")
    await page.wait_for_selector(".red-black .list.red h3:has-text('红榜')")
    assert re.search(r"至少 3 件立案的路段共 \d+ 条", await page.text_content(".red-black"))
    await page.shots.take("evaluation-roads")


async def canvas_rgb(page, x: float, y: float) -> tuple[int, int, int]:
    """The colour on screen at a point of the map (canvas CSS pixels), from a screenshot: tiles from another
    origin make the canvas unreadable to scripts, as browsers do."""
    left, top = await page.evaluate(
        "() => { const r = window.tgMap.canvas.getBoundingClientRect(); return [r.left, r.top]; }"
    )
    shot = await page.screenshot(clip={"x": left + round(x), "y": top + round(y), "width": 1, "height": 1})
    return Image.open(io.BytesIO(shot)).convert("RGB").getpixel((0, 0))


@pytest.mark.parametrize("tiles", [True], indirect=True)
async def test_the_map_draws_the_tile_server_under_the_boundaries_and_a_heat_layer(server, tiles, page):
    address = f"长江街 {uuid.uuid4().hex[:6]} 号"
    await server.citizen_report(address=address, subclass="event:0102")
    await server.case_at(address, await server.bearer("dispatcher"))
    await sign_in(page, server, "dispatcher")
    await page.wait_for_selector(".queue-view[data-ready]")
    await open_map(page, server)

    # Outside the city the map shows the tiles (the content policy lets the tile server's origin in).
    await page.wait_for_function("() => window.tgMap.renders > 1")  # tiles arrive after the first drawing
    assert await canvas_rgb(page, 3, 3) == TILE_RGB
    zooms = {int(p.split("/")[1]) for p in tiles.asked}
    assert zooms and min(zooms) >= 9 and max(zooms) <= 19, tiles.asked

    # The heat layer: the problem types of the last 30 days to choose from, and colour where they gathered.
    await page.uncheck("input[name=cases]")  # nothing drawn over the heat
    heat_at = "() => { const m = window.tgMap, [x, y] = m.heat.points[0]; return m.toScreen(x, y); }"
    await page.check("input[name=heat]")
    await page.wait_for_selector("#heat-subclass option[value='event:0102']", state="attached")
    x, y = await page.evaluate(heat_at)
    shaded = await canvas_rgb(page, x, y)
    await page.shots.take("map-tiles-heat")
    await page.uncheck("input[name=heat]")
    plain = await canvas_rgb(page, x, y)
    # Warm colours over the map where the case is: less blue than the map under it.
    assert shaded[2] < plain[2] - 40, (shaded, plain)
