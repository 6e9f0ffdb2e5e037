"""The baseline of the miniapp bench: a bare FastAPI app on the same uvicorn settings as `tongguan serve`.

`POST /bare` parses the body of `POST /miniapp/v1/reports` into the very same pydantic model
(`miniapp_api.schemas.ReportIn`) and answers 202 with the same response model (`AcceptedOut`): FastAPI routing,
validation and serialisation, nothing else — no database, no Redis, no middleware. Logging is set up as
`tongguan.app.create_app` does (`core.logs.configure_logging` at TG_LOG_LEVEL / TG_LOG_JSON, uvicorn started with
`log_config=None`), so uvicorn's access line goes through the same handler; tongguan's own `RequestContext` line
is part of what the comparison measures.

    .venv/bin/python -m bench.bare_app --port 8001 --workers 2
"""

from __future__ import annotations

import argparse
import itertools

from fastapi import FastAPI

from core.logs import configure_logging
from core.settings import get_settings
from miniapp_api.schemas import AcceptedOut, ReportIn


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    app = FastAPI(title="bare", docs_url=None, redoc_url=None, openapi_url=None)
    numbers = itertools.count(1)

    @app.post("/bare", status_code=202)
    async def bare(body: ReportIn) -> AcceptedOut:
        return AcceptedOut(
            report_id=next(numbers), status="received", message="收到", next="/miniapp/v1/reports", flagged=False
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="the bare baseline of the miniapp bench")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # Exactly how `tongguan serve` starts uvicorn (tongguan/cli.py): factory, default loop / http, no log config.
    uvicorn.run(
        "bench.bare_app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
