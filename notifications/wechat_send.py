"""The three WeChat message sends, through wechatpy with our shared tokens.

- subscribe message (订阅消息, mini-program): only after the user subscribed to that template;
- template message (模板消息, official account);
- customer-service text (客服消息): up to 5 within 48 h of the user's last message.

wechatpy is used as a request builder only: it never fetches tokens (its fetch uses a hard-coded URL, has
no lock and no timeout), its unbounded auto-retry is off, and every request it makes is sent to
`api_base` through an adapter on its requests session.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from notifications.wechat_token import TokenStore, WeChatTokenError

log = logging.getLogger(__name__)

WECHAT_HOST = "https://api.weixin.qq.com"
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential, invalid token, expired token

# errcode -> outcome; anything not listed is "dead" (WeChat answered and refused; resending will not help).
OUTCOMES: dict[int, str] = {
    0: "sent",
    -1: "retry",  # system busy
    45009: "retry",  # API call quota reached for today
    40001: "retry",  # still refused after one fresh token
    40014: "retry",
    42001: "retry",
    43101: "dead",  # user refused, or has no subscription to this template left
    45015: "window_closed",  # more than 48 h since the user's last message
    45047: "window_closed",  # more than 5 customer-service messages in the window
    40003: "dead",  # invalid openid
    40037: "dead",  # invalid template_id
    47003: "dead",  # template parameters invalid
    47001: "dead",  # malformed data
}


@dataclass(frozen=True)
class WeChatResult:
    """What became of one send: sent | retry | dead | window_closed | unknown (may have been delivered)."""

    outcome: str
    errcode: int
    errmsg: str
    msgid: str = ""


class RedirectAdapter(HTTPAdapter):
    """Sends whatever wechatpy addresses to api.weixin.qq.com to our api_base instead."""

    def __init__(self, api_base: str) -> None:
        super().__init__()
        self._api_base = api_base.rstrip("/")

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if request.url and request.url.startswith(WECHAT_HOST):
            request.url = self._api_base + request.url[len(WECHAT_HOST) :]
        return super().send(request, *args, **kwargs)


def wechat_session(api_base: str) -> requests.Session:
    """A requests session for wechatpy that sends what it addresses to api.weixin.qq.com to `api_base`."""
    session = requests.Session()
    if api_base.rstrip("/") != WECHAT_HOST:
        session.mount(WECHAT_HOST + "/", RedirectAdapter(api_base))
        # Proxies from the environment would be chosen for the original host, not the redirected one.
        session.trust_env = False
    return session


class NoFetchClient(WeChatClient):  # type: ignore[misc]
    """A WeChatClient that may only use the token it was given."""

    def fetch_access_token(self) -> dict[str, Any]:
        raise WeChatTokenError(self.appid, None, "wechatpy must not fetch tokens; TokenStore does")


def never_connected(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached WeChat (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError | NameResolutionError)
    return False


class WeChatSender:
    """Sends to one appid's users; tokens come from the shared TokenStore. Synchronous: call from jobs."""

    def __init__(self, *, appid: str, secret: str, api_base: str, tokens: TokenStore, timeout_s: float = 5.0) -> None:
        self.appid = appid
        self._secret = secret
        self._tokens = tokens
        self._timeout_s = timeout_s
        self._http = wechat_session(api_base)

    def subscribe_message(self, *, openid: str, template_id: str, data: dict[str, str], page: str = "") -> WeChatResult:
        """Mini-program subscribe message (POST /cgi-bin/message/subscribe/send)."""
        shaped = {key: {"value": value} for key, value in data.items()}
        return self._send(lambda c: c.wxa.send_subscribe_message(openid, template_id, shaped, page=page or None))

    def template_message(self, *, openid: str, template_id: str, data: dict[str, str], url: str = "") -> WeChatResult:
        """Official-account template message (POST /cgi-bin/message/template/send)."""
        shaped = {key: {"value": value} for key, value in data.items()}
        return self._send(lambda c: c.message.send_template(openid, template_id, shaped, url=url or None))

    def customer_service_text(self, *, openid: str, text: str) -> WeChatResult:
        """Customer-service text (POST /cgi-bin/message/custom/send), within 48 h of the user's last message."""
        return self._send(lambda c: c.message.send_text(openid, text))

    # --- internals ---

    def _client(self, token: str) -> WeChatClient:
        client = NoFetchClient(self.appid, self._secret, access_token=token, timeout=self._timeout_s, auto_retry=False)
        client._http = self._http
        return client

    def _send(self, call: Any) -> WeChatResult:
        try:
            token = self._tokens.get(self.appid)
        except WeChatTokenError as exc:
            return WeChatResult("retry", exc.errcode or -1, f"token: {exc.errmsg}")
        result = self._attempt(call, token)
        if result.errcode in TOKEN_ERRCODES:
            # One fresh token and one more try; wechatpy's own auto_retry would loop without limit.
            try:
                token = self._tokens.replace(self.appid, token)
            except WeChatTokenError as exc:
                return WeChatResult("retry", exc.errcode or result.errcode, f"token: {exc.errmsg}")
            result = self._attempt(call, token)
        return result

    def _attempt(self, call: Any, token: str) -> WeChatResult:
        try:
            answer = call(self._client(token))
        except WeChatClientException as exc:
            if exc.errcode is None:
                # An HTTP error status: the gateway may have passed the message on before failing.
                return WeChatResult("unknown", -1, f"http {getattr(exc.response, 'status_code', '?')}")
            errcode = int(exc.errcode)
            return WeChatResult(OUTCOMES.get(errcode, "dead"), errcode, str(exc.errmsg))
        except requests.RequestException as exc:
            if never_connected(exc):
                return WeChatResult("retry", -1, f"{type(exc).__name__}: {exc}")
            # Timed out or cut off after sending: WeChat may have delivered it, and resending may duplicate.
            return WeChatResult("unknown", -1, f"{type(exc).__name__}: {exc}")
        if not isinstance(answer, dict):
            return WeChatResult("unknown", -1, "answer is not JSON")
        msgid = answer.get("msgid", "")
        return WeChatResult("sent", 0, str(answer.get("errmsg", "ok")), str(msgid) if msgid else "")
