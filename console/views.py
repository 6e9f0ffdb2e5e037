"""The command-centre page (指挥中心): one HTML page, its script and styles, served by tongguan itself.

The page holds no data: it signs in against /auth and reads and acts through the staff API (/staff/v1), like any
other client. Its Chinese labels come from console/messages.py, written into the page as JSON.
"""

from __future__ import annotations

import hashlib
import html
import json
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from console.messages import PAGE_TITLE, page_messages
from core.cases.workflow import TRANSITIONS
from core.errors import NotFoundError
from core.settings import get_settings

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
STATIC = Path(__file__).parent / "static"
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def security_headers() -> dict[str, str]:
    """What the page may do, and never more: its own files, the API and photos of this origin, and the map tiles'
    server when one is set."""
    images = "'self' data:"
    if tiles := get_settings().console_tiles_url:
        parts = urlsplit(tiles)
        images += f" {parts.scheme}://{parts.netloc}"
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; img-src {images}; style-src 'self'; script-src 'self'; connect-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


@cache
def _static_files() -> dict[str, tuple[bytes, str]]:
    """name → (content, version); the version in the page's links lets browsers keep files until they change."""
    return {
        p.name: (p.read_bytes(), hashlib.sha256(p.read_bytes()).hexdigest()[:12])
        for p in STATIC.iterdir()
        if p.suffix in CONTENT_TYPES
    }


def _page() -> str:
    settings = get_settings()
    files = _static_files()
    config = {
        "poll_seconds": settings.console_poll_seconds,
        "tiles_url": settings.console_tiles_url,
        "note_actions": sorted(a for a, t in TRANSITIONS.items() if t.needs_note),
        "city_center": [settings.city_center_lon, settings.city_center_lat],
    }
    # JSON inside <script>: "</" must not end the element early.
    data = json.dumps({"messages": page_messages(), "config": config}, ensure_ascii=False).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(PAGE_TITLE)}</title>
<link rel="stylesheet" href="/console/static/console.css?v={files["console.css"][1]}">
<link rel="icon" href="data:,">
<script type="application/json" id="tg-data">{data}</script>
<script type="module" src="/console/static/app.js?v={files["app.js"][1]}"></script>
</head>
<body>
<noscript>指挥中心页面需要启用 JavaScript。</noscript>
</body>
</html>
"""


@router.get("", response_class=HTMLResponse)
async def console_page() -> HTMLResponse:
    """The console page; it always comes fresh, its script and styles are cached by version."""
    return HTMLResponse(_page(), headers={"Cache-Control": "no-cache", **security_headers()})


@router.get("/")
async def console_slash() -> RedirectResponse:
    return RedirectResponse("/console", status_code=308)


@router.get("/static/{name}")
async def static_file(name: str, request: Request) -> Response:
    """One of the page's own files (script modules and styles); nothing outside console/static.

    Modules import each other without a version, so browsers ask again each time and get 304 while unchanged.
    """
    found = _static_files().get(name)
    if found is None:
        raise NotFoundError("not_found", f"no console file {name!r}")
    content, version = found
    headers = {"Cache-Control": "no-cache", "ETag": f'"{version}"', **security_headers()}
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(content, media_type=CONTENT_TYPES[Path(name).suffix], headers=headers)
