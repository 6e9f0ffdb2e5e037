"""The official account's callback envelope (wechatpy): signatures, AES safe mode, parsing, replies.

The only module of bots/ that imports wechatpy. wechatpy's own `check_signature` is not constant-time and ignores
the timestamp's age, and `create_reply` puts text into CDATA unescaped: both are done here instead.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

from core.errors import PermissionDenied, ValidationFailed

log = logging.getLogger("tongguan.bots.wechat")
_DECLARATIONS = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
# What a conversation may need of a push, as WeChat names it.
PAYLOAD_FIELDS = ("Content", "PicUrl", "MediaId", "Location_X", "Location_Y", "Scale", "Label", "Recognition",
                  "Format", "EventKey", "Latitude", "Longitude")  # fmt: skip


@dataclass(frozen=True)
class Inbound:
    """A message or event as we use it; `key` tells a retry of the same push from a new one."""

    key: str
    openid: str  # FromUserName
    account: str  # ToUserName: the official account's own id, the sender of our replies
    msg_type: str
    event: str
    sent_at: int  # CreateTime, seconds
    payload: dict[str, Any] = field(default_factory=dict)


def signature_of(token: str, timestamp: str, nonce: str, *extra: str) -> str:
    """WeChat's SHA-1 over the sorted strings (token, timestamp, nonce[, encrypted body])."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, *extra])).encode()).hexdigest()


def check_signature(*, token: str, timestamp: str, nonce: str, signature: str, window_s: int) -> None:
    """Refuse (403) a forged signature, or one from outside the time window (a replayed old request)."""
    expected = signature_of(token, timestamp, nonce)
    if not hmac.compare_digest(expected, signature or ""):
        raise PermissionDenied("bad_signature", "the callback signature does not match")
    check_timestamp(timestamp, window_s)


def check_timestamp(timestamp: str, window_s: int) -> None:
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        raise PermissionDenied("bad_signature", "the callback timestamp is not a number") from None
    if age > window_s:
        raise PermissionDenied("stale_timestamp", f"the callback timestamp is {int(age)} s away from now")


class Envelope:
    """Opens pushes from WeChat and seals our passive replies, in plain or AES safe mode."""

    def __init__(self, *, token: str, aes_key: str, appid: str, window_s: int) -> None:
        self.token = token
        self.window_s = window_s
        self._crypto = WeChatCrypto(token, aes_key, appid) if aes_key else None

    def open(self, body: bytes, query: dict[str, str]) -> tuple[Inbound, bool]:
        """The message in a POST body (and whether it came encrypted); 403 forged, 400 not a WeChat message."""
        if _DECLARATIONS.search(body):
            raise ValidationFailed("bad_xml", "XML with DOCTYPE or ENTITY declarations is refused")
        encrypted = query.get("encrypt_type") == "aes"
        if encrypted:
            if self._crypto is None:
                raise ValidationFailed("bad_xml", "an encrypted message, but no TG_WECHAT_AES_KEY is set")
            check_timestamp(query.get("timestamp", ""), self.window_s)
            try:
                body = self._crypto.decrypt_message(
                    body, query.get("msg_signature", ""), query.get("timestamp", ""), query.get("nonce", "")
                ).encode()
            except (InvalidSignatureException, InvalidAppIdException):
                raise PermissionDenied("bad_signature", "the message signature or appid does not match") from None
            except Exception as exc:  # base64, padding, unicode, XML: all mean a message we cannot read
                detail = f"the encrypted message cannot be read ({type(exc).__name__})"
                raise ValidationFailed("bad_xml", detail) from None
            if _DECLARATIONS.search(body):
                raise ValidationFailed("bad_xml", "XML with DOCTYPE or ENTITY declarations is refused")
        else:
            check_signature(
                token=self.token,
                timestamp=query.get("timestamp", ""),
                nonce=query.get("nonce", ""),
                signature=query.get("signature", ""),
                window_s=self.window_s,
            )
        return _inbound(body), encrypted

    def reply_text(self, inbound: Inbound, text: str, *, encrypted: bool, nonce: str, timestamp: str) -> str:
        """A passive text reply; the text is escaped so the XML stays valid whatever it holds."""
        xml = (
            "<xml>"
            f"<ToUserName>{_cdata(inbound.openid)}</ToUserName>"
            f"<FromUserName>{_cdata(inbound.account)}</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime>"
            "<MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{_cdata(text)}</Content>"
            "</xml>"
        )
        if encrypted and self._crypto is not None:
            return str(self._crypto.encrypt_message(xml, nonce, timestamp))
        return xml


def _cdata(text: str) -> str:
    # "]]>" would end the section early: split it across two sections.
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _inbound(body: bytes) -> Inbound:
    try:
        message = parse_message(body.decode("utf-8"))
    except Exception as exc:  # malformed XML, not UTF-8, no MsgType: not a WeChat message
        raise ValidationFailed("bad_xml", f"not a WeChat message ({type(exc).__name__})") from None
    if message is None:
        raise ValidationFailed("bad_xml", "empty message")
    raw: dict[str, Any] = dict(message._data)
    openid, account = str(raw.get("FromUserName") or ""), str(raw.get("ToUserName") or "")
    msg_type = str(raw.get("MsgType") or "").lower()
    try:
        sent_at = int(raw.get("CreateTime") or 0)
    except ValueError:
        raise ValidationFailed("bad_xml", "CreateTime is not a number") from None
    if not openid or not account or not msg_type or not sent_at:
        raise ValidationFailed("bad_xml", "FromUserName, ToUserName, MsgType and CreateTime are required")
    event = str(raw.get("Event") or "").lower() if msg_type == "event" else ""
    # Messages carry MsgId; events do not (wechatpy gives them id 0): FromUserName + CreateTime names them.
    msg_id = str(raw.get("MsgId") or "")
    key = f"msg:{msg_id}" if msg_id and msg_id != "0" else f"event:{openid}:{sent_at}:{event}"
    payload = {name: str(raw[name]) for name in PAYLOAD_FIELDS if raw.get(name) is not None}
    return Inbound(key[:96], openid[:64], account[:64], msg_type[:16], event[:32], sent_at, payload)
