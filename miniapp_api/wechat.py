"""The WeChat mini-program services we call (wechatpy): login (code2session), phone number, content security.

`MiniappGateway` is the small interface the views use; `WeChatMiniapp` is the real adapter (tokens from the
shared TokenStore, every request sent to `TG_MINIAPP_API_BASE`), `DemoMiniapp` the stand-in for the embedded
demo and a laptop without a WeChat account. Both are synchronous: call them from a thread, not the event loop.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from wechatpy.exceptions import WeChatClientException

from core.errors import TongguanError, Unauthenticated, ValidationFailed
from core.settings import Settings
from notifications.wechat_send import TOKEN_ERRCODES, WECHAT_HOST, NoFetchClient, wechat_session
from notifications.wechat_token import TokenStore, WeChatTokenError

log = logging.getLogger("tongguan.miniapp.wechat")
VERDICTS = ("pass", "review", "risky", "unchecked")  # unchecked: WeChat could not answer; a person looks
ROOT = WECHAT_HOST + "/"  # these APIs live outside wechatpy's default /cgi-bin/ base
SCENE_COMMENT = 2  # msg_sec_check v2 scene: 1 profile, 2 comment, 3 forum post, 4 social log


class WeChatUnavailable(TongguanError):
    status = 503


@dataclass(frozen=True)
class WxSession:
    openid: str
    unionid: str | None
    session_key: str


class MiniappGateway(Protocol):
    def code_to_session(self, code: str) -> WxSession: ...

    def phone_number(self, code: str) -> str: ...

    def check_text(self, text: str, *, openid: str) -> str: ...


class _LoginClient(NoFetchClient):  # type: ignore[misc]
    """jscode2session authenticates with appid and secret: no access token goes with it (nor is fetched)."""

    @property
    def access_token(self) -> None:
        return None


class WeChatMiniapp:
    """The mini-program's server APIs through wechatpy; tokens are shared by every process through Redis."""

    def __init__(self, *, appid: str, secret: str, api_base: str, tokens: TokenStore, timeout_s: float = 5.0):
        self.appid = appid
        self._secret = secret
        self._tokens = tokens
        self._timeout_s = timeout_s
        self._http = wechat_session(api_base)

    @classmethod
    def from_settings(cls, settings: Settings) -> WeChatMiniapp:
        import redis

        if not settings.redis_url:
            raise ValueError("the WeChat mini-program gateway shares access tokens through Redis: set TG_REDIS_URL")
        tokens = TokenStore.from_settings(redis.Redis.from_url(settings.redis_url), settings)
        return cls(
            appid=settings.miniapp_appid,
            secret=settings.miniapp_secret.get_secret_value(),
            api_base=settings.miniapp_api_base,
            tokens=tokens,
        )

    def code_to_session(self, code: str) -> WxSession:
        """Exchange a wx.login() code for the user's openid (and unionid) and session_key."""
        client = _LoginClient(self.appid, self._secret, timeout=self._timeout_s, auto_retry=False)
        client._http = self._http
        try:
            answer = client.wxa.code_to_session(code)
        except WeChatClientException as exc:
            if exc.errcode in (40029, 40163, 40226):  # invalid, used, or a blocked user's code
                code_name = "login_code_used" if exc.errcode == 40163 else "login_code_invalid"
                raise Unauthenticated(code_name, f"code2session refused the code ({exc.errcode})") from None
            raise WeChatUnavailable("wechat_unavailable", f"code2session failed: {exc.errcode} {exc.errmsg}") from None
        except requests.RequestException as exc:
            raise WeChatUnavailable("wechat_unavailable", f"code2session: {type(exc).__name__}") from None
        return WxSession(str(answer["openid"]), answer.get("unionid") or None, str(answer.get("session_key", "")))

    def phone_number(self, code: str) -> str:
        """The phone number the user agreed to share (getPhoneNumber code → getuserphonenumber)."""
        try:
            answer = self._with_token(
                lambda c: c.post("wxa/business/getuserphonenumber", data={"code": code}, api_base_url=ROOT)
            )
        except WeChatClientException as exc:
            if exc.errcode == 40029:
                raise ValidationFailed("phone_code_invalid", "the phone-number code is invalid or used") from None
            raise WeChatUnavailable("wechat_unavailable", f"getuserphonenumber: {exc.errcode}") from None
        info = answer.get("phone_info") or {}
        phone = str(info.get("purePhoneNumber") or "")
        if str(info.get("countryCode") or "86") != "86":
            raise ValidationFailed("phone_not_mainland", "only mainland mobile numbers can be bound")
        return phone

    def check_text(self, text: str, *, openid: str) -> str:
        """msg_sec_check v2: pass | review | risky; "unchecked" when WeChat could not answer in time."""
        body = {"content": text, "version": 2, "scene": SCENE_COMMENT, "openid": openid}
        try:
            answer = self._with_token(lambda c: c.post("wxa/msg_sec_check", data=body, api_base_url=ROOT))
        except WeChatClientException as exc:
            log.warning("content check refused", extra={"fields": {"errcode": exc.errcode}})
            return "unchecked"
        except WeChatUnavailable as exc:  # the report is not lost for it: a person looks at it instead
            log.warning("content check unavailable", extra={"fields": {"detail": exc.detail}})
            return "unchecked"
        suggest = str((answer.get("result") or {}).get("suggest") or "")
        return suggest if suggest in VERDICTS else "unchecked"

    def _with_token(self, call: Any) -> dict[str, Any]:
        """One call with the shared token; one fresh token and one more try when WeChat says it is stale."""
        try:
            token = self._tokens.get(self.appid)
            try:
                return dict(call(self._client(token)))
            except WeChatClientException as exc:
                if exc.errcode not in TOKEN_ERRCODES:
                    raise
                return dict(call(self._client(self._tokens.replace(self.appid, token))))
        except WeChatTokenError as exc:
            raise WeChatUnavailable("wechat_unavailable", f"access token: {exc.errmsg}") from None
        except requests.RequestException as exc:
            raise WeChatUnavailable("wechat_unavailable", f"{type(exc).__name__}") from None

    def _client(self, token: str) -> NoFetchClient:
        client = NoFetchClient(self.appid, self._secret, access_token=token, timeout=self._timeout_s, auto_retry=False)
        client._http = self._http
        return client


class DemoMiniapp:
    """The embedded demo: a login code `demo-<name>` is the user `<name>`; nothing leaves the machine."""

    def code_to_session(self, code: str) -> WxSession:
        if not code.startswith("demo-") or not 6 <= len(code) <= 64:
            raise Unauthenticated("login_code_invalid", "the demo accepts login codes demo-<name>")
        digest = hashlib.sha256(code.encode()).hexdigest()
        return WxSession(f"demo-{digest[:22]}", None, digest[22:46])

    def phone_number(self, code: str) -> str:
        if not (code.startswith("demo-1") and len(code) == 16 and code[5:].isdigit()):
            raise ValidationFailed("phone_code_invalid", "the demo accepts phone codes demo-<11 digits>")
        return code[5:]

    def check_text(self, text: str, *, openid: str) -> str:
        return "pass"


_gateways: dict[tuple[str, ...], MiniappGateway] = {}


def gateway_for(settings: Settings) -> MiniappGateway:
    """WeChat when TG_MINIAPP_APPID is set, else the demo stand-in; one per configuration."""
    secret = settings.miniapp_secret.get_secret_value()
    key = (settings.miniapp_appid, secret, settings.miniapp_api_base, settings.redis_url or "")
    if key not in _gateways:
        _gateways[key] = WeChatMiniapp.from_settings(settings) if settings.miniapp_appid else DemoMiniapp()
    return _gateways[key]
