"""ASGI middleware: request ids with access logs, and the request body limit."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logs import request_id_var
from tongguan.problems import problem

log = logging.getLogger("tongguan.access")


class RequestContext:
    """Give every request an id (the caller's X-Request-ID when sane), echo it back, and log one line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if given and len(given) <= 64 and given.replace("-", "").isalnum() else uuid.uuid4().hex
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = 500
        started_response = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Caught here rather than by Starlette's outer error middleware so the 500 keeps the request id.
            log.exception("unhandled error", extra={"fields": {"path": scope["path"]}})
            if started_response:
                raise
            await problem(500, "internal_error", "unexpected error; it has been logged")(scope, receive, send_with_id)
        finally:
            fields = {
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            }
            log.info("request", extra={"fields": fields})
            request_id_var.reset(token)


class BodyLimit:
    """Refuse bodies over `max_bytes` with 413: by header when the length is declared, else by reading ahead.

    A body without Content-Length (chunked) is read here up to the limit and replayed to the app; counting
    inside the app would not work, since FastAPI turns any error while reading a body into a 400.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, larger: tuple[tuple[re.Pattern[str], int], ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger  # (path pattern, limit): photo uploads take more than the API's usual bodies

    def _limit(self, path: str) -> int:
        return next((limit for pattern, limit in self.larger if pattern.search(path)), self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self._limit(scope.get("path", ""))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > max_bytes:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self._limit(scope.get("path", ""))
        response = problem(413, "body_too_large", f"request body exceeds {limit} bytes")
        await response(scope, receive, send)
