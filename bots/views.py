"""Official-account webhook: `GET /wechat/callback` (server check) and `POST /wechat/callback` (pushes).

The handler never waits on slow work: it checks and stores the push with its job (once, whatever WeChat
retries) and answers at once — with a passive reply where one is ready (welcome, help), else "success".
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response

from bots.wechat_xml import Envelope, Inbound, check_signature
from core.chat import messages
from core.chat.service import take_in
from core.errors import TongguanError
from core.settings import Settings
from jobs.embedded import wake

log = logging.getLogger("tongguan.bots")
router = APIRouter(prefix="/wechat", tags=["official account"])
HELP_WORDS = frozenset({"帮助", "help", "?", "？"})


class BodyTooLarge(TongguanError):
    status = 413


async def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


AppSettings = Annotated[Settings, Depends(_settings)]


def _envelope(settings: Settings) -> Envelope:
    return Envelope(
        token=settings.wechat_token.get_secret_value(),
        aes_key=settings.wechat_aes_key.get_secret_value(),
        appid=settings.wechat_appid,
        window_s=settings.wechat_timestamp_window_s,
    )


@router.get("/callback", response_class=PlainTextResponse)
async def verify_server(
    settings: AppSettings,
    signature: Annotated[str, Query(max_length=64)],
    timestamp: Annotated[str, Query(max_length=16)],
    nonce: Annotated[str, Query(max_length=64)],
    echostr: Annotated[str, Query(max_length=256)],
) -> str:
    """WeChat checks the server URL: answer echostr when the signature is ours (403 otherwise)."""
    check_signature(
        token=settings.wechat_token.get_secret_value(),
        timestamp=timestamp,
        nonce=nonce,
        signature=signature,
        window_s=settings.wechat_timestamp_window_s,
    )
    return echostr


@router.post("/callback")
async def receive(request: Request, settings: AppSettings) -> Response:
    """A message or event from WeChat: stored once with its job; a passive reply or "success" at once."""
    body = await _read_body(request, settings.wechat_max_body_bytes)
    query = {k: v for k, v in request.query_params.items()}
    envelope = _envelope(settings)
    inbound, encrypted = envelope.open(body, query)
    _, first_time = await take_in(
        key=inbound.key,
        openid=inbound.openid,
        msg_type=inbound.msg_type,
        event=inbound.event,
        sent_at=inbound.sent_at,
        payload=inbound.payload,
    )
    if not first_time:
        log.info("wechat retry", extra={"fields": {"key": inbound.key}})
        return PlainTextResponse("success")  # its first delivery was answered (or is being answered)
    wake()
    text = _passive_text(inbound)
    if text is None:
        return PlainTextResponse("success")
    reply = envelope.reply_text(
        inbound, text, encrypted=encrypted, nonce=query.get("nonce", ""), timestamp=query.get("timestamp", "")
    )
    return Response(reply, media_type="application/xml")


def _passive_text(inbound: Inbound) -> str | None:
    """The answers that need nothing but the message itself; the conversation answers in its job."""
    if inbound.msg_type == "event" and inbound.event in ("subscribe", "subscribe_scan"):
        return messages.WELCOME
    if inbound.msg_type == "text" and inbound.payload.get("Content", "").strip().lower() in HELP_WORDS:
        return messages.HELP
    return None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge("body_too_large", f"a callback body may have at most {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge("body_too_large", f"a callback body may have at most {limit} bytes")
    return body
