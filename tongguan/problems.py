"""RFC 9457 problem+json responses with our stable error codes."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import TongguanError
from core.logs import request_id_var
from core.messages import error_title

log = logging.getLogger("tongguan.api")
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 503: "unavailable"}


def problem(status: int, code: str, detail: str, *, errors: list | None = None) -> JSONResponse:
    body = {
        "type": f"urn:tongguan:error:{code}",
        "title": error_title(code),
        "status": status,
        "code": code,
        "detail": detail,
        "request_id": request_id_var.get(),
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(TongguanError)
    async def _ours(request: Request, exc: TongguanError) -> JSONResponse:
        log.info("refused", extra={"fields": {"code": exc.code, "path": request.url.path, "detail": exc.detail}})
        response = problem(exc.status, exc.code, exc.detail, errors=exc.errors)
        if exc.status == 401:
            # RFC 9110 §15.5.2: a 401 must name the authentication scheme the client should use.
            response.headers["WWW-Authenticate"] = "Bearer"
        if retry_after := getattr(exc, "retry_after", None):
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        log.info("invalid request", extra={"fields": {"path": request.url.path, "errors": errors}})
        return problem(422, "invalid_request", "request does not match the schema", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return problem(exc.status_code, code, str(exc.detail))
