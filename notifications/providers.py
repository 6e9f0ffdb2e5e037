"""Who sends: one small interface, with a console provider for the demo and a recording provider for tests.

The Aliyun SMS and WeChat adapters (`sms_aliyun.py`, `wechat_send.py`) plug in behind the same interface.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from core import clock
from core.settings import Settings
from notifications.templates import Rendered

log = logging.getLogger("tongguan.notify")
OUTCOMES = ("sent", "retry", "dead", "pause", "unknown", "window_closed")


@dataclass(frozen=True)
class SendResult:
    outcome: str  # one of OUTCOMES
    provider_id: str = ""
    code: str = ""
    message: str = ""


class Provider(Protocol):
    def send(self, message: Rendered, *, recipient: str, out_id: str) -> SendResult: ...


class BatchProvider(Provider, Protocol):
    """A provider that also sends one template to many recipients in one call, answered as a whole."""

    batch_max: int

    def send_batch(self, messages: list[tuple[Rendered, str]], *, out_id: str) -> SendResult: ...


BATCH_TAG = "OutId:"
"""`provider_id` of a notice sent in a batch whose answer is not known yet: the batch's OutId follows the tag."""
FILING_SKEW = timedelta(minutes=5)  # how far Aliyun's date of arrival may be from our attempt (timeouts, clocks)


class ConsoleProvider:
    """Writes each message to the log instead of sending it: the demo and a laptop need no vendor account."""

    def send(self, message: Rendered, *, recipient: str, out_id: str) -> SendResult:
        log.info("notice", extra={"fields": {"channel": message.channel, "to": _mask(recipient), "text": message.text}})
        return SendResult("sent", provider_id=f"console-{out_id}", code="OK")


@dataclass
class RecordingProvider:
    """Keeps every message it is given; `script` answers the next sends (tests and rehearsals)."""

    sent: list[tuple[str, Rendered]] = field(default_factory=list)
    script: deque[SendResult] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, message: Rendered, *, recipient: str, out_id: str) -> SendResult:
        with self._lock:
            result = (
                self.script.popleft() if self.script else SendResult("sent", provider_id=f"rec-{out_id}", code="OK")
            )
            if result.outcome in ("sent", "unknown"):
                self.sent.append((recipient, message))
            return result


def _mask(recipient: str) -> str:
    """Phone numbers are masked in logs: 138****5678."""
    return recipient[:3] + "****" + recipient[-4:] if recipient.isdigit() and len(recipient) == 11 else recipient


recording = RecordingProvider()
_console = ConsoleProvider()


class AliyunSmsProvider:
    """Template SMS through Aliyun (`sms_aliyun.py` holds the SDK)."""

    def __init__(self, settings: Settings) -> None:
        from notifications.sms_aliyun import BATCH_MAX, AliyunSms

        self.client = AliyunSms.from_settings(settings)
        self.batch_max = BATCH_MAX

    def send(self, message: Rendered, *, recipient: str, out_id: str) -> SendResult:
        return self.client.send(phone=recipient, template_code=message.template_id, params=message.data, out_id=out_id)

    def send_batch(self, messages: list[tuple[Rendered, str]], *, out_id: str) -> SendResult:
        """One SendBatchSms for messages of one template: (message, phone) pairs, at most `batch_max`."""
        codes = {message.template_id for message, _ in messages}
        if len(codes) != 1:
            raise ValueError(f"a batch holds one template, not {sorted(codes)}")
        items = [(phone, message.data) for message, phone in messages]
        return self.client.send_batch(template_code=codes.pop(), items=items, out_id=out_id)

    def reconcile(self, *, recipient: str, provider_id: str, out_id: str, sent_at: datetime) -> str:
        """What Aliyun knows of a send whose answer we never got (QuerySendDetails by BizId or OutId).

        Aliyun files a send under its China date of arrival, which is not always the date of our attempt: a send
        made just before midnight, or a clock a little off, lands on the neighbouring day. Every day within
        `FILING_SKEW` of the attempt is asked, and one delivered copy settles it.
        A batch send unanswered carries its batch's OutId in `provider_id` (BATCH_TAG), not our dedupe key.
        """
        from notifications.sms_aliyun import most_hopeful

        if provider_id.startswith(BATCH_TAG):
            provider_id, out_id = "", provider_id.removeprefix(BATCH_TAG)
        days = sorted({clock.china(sent_at + offset).date() for offset in (-FILING_SKEW, timedelta(0), FILING_SKEW)})
        states = [self.client.query(phone=recipient, biz_id=provider_id, send_date=day, out_id=out_id) for day in days]
        return most_hopeful(states)


class WeChatProvider:
    """Subscribe messages (mini-program), template and customer-service messages (official account)."""

    def __init__(self, settings: Settings) -> None:
        import redis

        from notifications.wechat_send import WeChatSender
        from notifications.wechat_token import TokenStore

        if not settings.redis_url:
            raise ValueError("the WeChat provider shares access tokens through Redis: set TG_REDIS_URL")
        tokens = TokenStore.from_settings(redis.Redis.from_url(settings.redis_url), settings)
        secret = settings.miniapp_secret.get_secret_value()
        self.miniapp = WeChatSender(
            appid=settings.miniapp_appid, secret=secret, api_base=settings.miniapp_api_base, tokens=tokens
        )
        secret = settings.wechat_secret.get_secret_value()
        self.account = WeChatSender(
            appid=settings.wechat_appid, secret=secret, api_base=settings.wechat_api_base, tokens=tokens
        )

    def send(self, message: Rendered, *, recipient: str, out_id: str) -> SendResult:
        match message.channel:
            case "wechat_subscribe":
                result = self.miniapp.subscribe_message(
                    openid=recipient, template_id=message.template_id, data=message.data
                )
            case "wechat_template":
                result = self.account.template_message(
                    openid=recipient, template_id=message.template_id, data=message.data
                )
            case _:
                result = self.account.customer_service_text(openid=recipient, text=message.text)
        return SendResult(result.outcome, provider_id=result.msgid, code=str(result.errcode), message=result.errmsg)


_vendors: dict[tuple[str, ...], Provider] = {}


def _configuration(word: str, settings: Settings) -> tuple[str, ...]:
    if word == "aliyun":
        secret = settings.aliyun_access_key_secret.get_secret_value()
        return (settings.aliyun_access_key_id, secret, settings.aliyun_sms_endpoint, settings.aliyun_sms_sign_name,
                settings.aliyun_sms_scheme)  # fmt: skip
    return (settings.redis_url or "", settings.miniapp_appid, settings.miniapp_api_base, settings.wechat_appid,
            settings.wechat_api_base)  # fmt: skip


def provider_for(channel: str, word: str, settings: Settings) -> Provider:
    """The provider a settings word names for a channel: console, recording, aliyun (SMS) or wechat."""
    if word == "console":
        return _console
    if word == "recording":
        return recording
    kinds: dict[str, type[AliyunSmsProvider] | type[WeChatProvider]] = {
        "aliyun": AliyunSmsProvider,
        "wechat": WeChatProvider,
    }
    if word not in kinds or (word == "aliyun") != (channel == "sms"):
        raise ValueError(f"unknown provider {word!r} for {channel}; choose console, recording, aliyun or wechat")
    # One client per configuration (the SDK clients are thread-safe and worth keeping), keyed by the settings
    # that shape it: an id() of a settings object may be reused by a later, different one.
    key = (word, *_configuration(word, settings))
    if key not in _vendors:
        _vendors[key] = kinds[word](settings)
    return _vendors[key]
