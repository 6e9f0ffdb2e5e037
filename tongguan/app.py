"""The composition root: one FastAPI app with the routers of every channel package."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from tortoise import connections

from bots.views import router as bots_router
from console.api import router as staff_router
from console.auth import router as auth_router
from console.enforcement import router as enforcement_router
from console.map import router as map_router
from console.patrols import router as patrols_router
from console.views import router as console_router
from core.db import close_db, init_db
from core.logs import configure_logging
from core.ratelimit import RateLimiter
from core.regions.mapdata import warm_map_cache
from core.settings import Settings, get_settings, use_settings
from field_app_api.enforcement import warm as warm_enforcement
from field_app_api.views import router as field_router
from jobs.embedded import EmbeddedRunner
from media.views import body_limits as media_body_limits
from media.views import router as media_router
from miniapp_api.views import router as miniapp_router
from tongguan.middleware import BodyLimit, RequestContext
from tongguan.problems import install_problem_handlers, problem

log = logging.getLogger("tongguan")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API application; the database opens on startup and closes on shutdown."""
    settings = settings or get_settings()
    use_settings(settings)
    configure_logging(level=settings.log_level, json_lines=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await init_db(settings)
        app.state.redis = _redis_client(settings)
        app.state.rate_limiter = RateLimiter(app.state.redis)
        runner = EmbeddedRunner(settings) if settings.embedded else None
        if runner is not None:
            runner.start()
        # The face register's index loads while the app serves: a large register takes seconds.
        face_index = asyncio.create_task(warm_enforcement(app), name="face-register")
        # So is the console map's grid layer (about 2 s for 51,495 grids), so the first map opens at once.
        map_layers = asyncio.create_task(warm_map_cache(), name="map-layers")
        log.info("started", extra={"fields": {"embedded": settings.embedded, "env": settings.env.value}})
        try:
            yield
        finally:
            face_index.cancel()
            map_layers.cancel()
            await asyncio.gather(face_index, map_layers, return_exceptions=True)
            if runner is not None:
                await runner.stop()
            if app.state.redis is not None:
                await app.state.redis.aclose()
            await close_db()

    app = FastAPI(title="tongguan", version="0.1.0", lifespan=lifespan, docs_url="/docs")
    app.state.settings = settings
    install_problem_handlers(app)
    for router in (bots_router, miniapp_router, field_router, console_router, auth_router, staff_router, media_router):
        app.include_router(router)
    app.include_router(patrols_router)
    app.include_router(enforcement_router)
    app.include_router(map_router)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> JSONResponse:
        """Database (and Redis when configured) reachable."""
        checks: dict[str, str] = {}
        try:
            await connections.get("default").execute_query("SELECT 1")
            checks["database"] = "ok"
        except Exception as exc:  # any driver error means "not healthy"
            checks["database"] = f"error: {type(exc).__name__}"
        if app.state.redis is None:
            checks["redis"] = "not configured (embedded mode)"
        else:
            try:
                await app.state.redis.ping()
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"error: {type(exc).__name__}"
        if any(v.startswith("error") for v in checks.values()):
            return problem(503, "unavailable", "; ".join(f"{k}: {v}" for k, v in checks.items()))
        return JSONResponse({"status": "ok", **checks})

    # Outermost first: the request id must exist before the body limit can refuse with it.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, larger=media_body_limits(settings))
    app.add_middleware(RequestContext)
    return app


def _redis_client(settings: Settings):
    if settings.embedded:
        return None
    from redis.asyncio import Redis

    return Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
