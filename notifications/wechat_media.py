"""Photos citizens send to the official account: WeChat keeps them as temporary media for 3 days; we download
them (GET /cgi-bin/media/get) with the shared access token, through wechatpy."""

from __future__ import annotations

from typing import Any

import requests
from wechatpy.exceptions import WeChatClientException

from notifications.wechat_send import TOKEN_ERRCODES, NoFetchClient, wechat_session
from notifications.wechat_token import TokenStore, WeChatTokenError

MAX_BYTES = 10 * 1024 * 1024  # WeChat's own limit for an image message


class MediaUnavailable(Exception):
    """The file could not be fetched (unknown or expired media id, WeChat unreachable)."""


class WeChatMedia:
    def __init__(self, *, appid: str, secret: str, api_base: str, tokens: TokenStore, timeout_s: float = 10.0):
        self.appid, self._secret, self._tokens, self._timeout_s = appid, secret, tokens, timeout_s
        self._http = wechat_session(api_base)

    @classmethod
    def from_settings(cls, settings: Any) -> WeChatMedia:
        import redis

        if not settings.redis_url or not settings.wechat_appid:
            raise MediaUnavailable("fetching chat photos needs TG_WECHAT_APPID and TG_REDIS_URL (shared tokens)")
        tokens = TokenStore.from_settings(redis.Redis.from_url(settings.redis_url), settings)
        secret = settings.wechat_secret.get_secret_value()
        return cls(appid=settings.wechat_appid, secret=secret, api_base=settings.wechat_api_base, tokens=tokens)

    def download(self, media_id: str) -> bytes:
        """The file's bytes; one fresh token and one more try when WeChat says the token is stale."""
        try:
            token = self._tokens.get(self.appid)
            try:
                return self._get(media_id, token)
            except WeChatClientException as exc:
                if exc.errcode not in TOKEN_ERRCODES:
                    raise
                return self._get(media_id, self._tokens.replace(self.appid, token))
        except WeChatClientException as exc:
            raise MediaUnavailable(f"media/get refused: {exc.errcode} {exc.errmsg}") from None
        except (WeChatTokenError, requests.RequestException) as exc:
            raise MediaUnavailable(f"media/get failed: {type(exc).__name__}") from None

    def _get(self, media_id: str, token: str) -> bytes:
        client = NoFetchClient(self.appid, self._secret, access_token=token, timeout=self._timeout_s, auto_retry=False)
        client._http = self._http
        answer = client.media.download(media_id)
        data = answer.content if isinstance(answer, requests.Response) else b""
        if not data or len(data) > MAX_BYTES:
            raise MediaUnavailable(f"media/get gave {len(data)} bytes")
        return data
