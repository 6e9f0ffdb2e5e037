"""WeChat access tokens (接口调用凭证) shared by every process through Redis, one per appid.

WeChat allows few token fetches a day, and a fetch through the plain `/cgi-bin/token` API invalidates the
token other processes hold. So we use the `stable_token` API, cache its answer in Redis, and let one
process at a time refresh it (SET NX PX lock); the others wait briefly and re-read.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import redis

from core.settings import Settings

KEY_PREFIX = "tg:wechat:token:"
EARLY_REFRESH_S = 300  # refresh five minutes before WeChat says the token expires
MIN_TTL_S = 60
# errcodes worth another attempt: system busy. Bad appid/secret (40013, 40125, 40164 IP not whitelisted) are not.
RETRYABLE_ERRCODES = frozenset({-1})

# Compare-and-delete: drop a key only if it still holds the value we know about.
_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class WeChatTokenError(Exception):
    """An access token could not be had; `errcode` is WeChat's, or None for network failures."""

    def __init__(self, appid: str, errcode: int | None, errmsg: str) -> None:
        super().__init__(f"wechat token for {appid}: errcode={errcode} {errmsg}")
        self.appid = appid
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass(frozen=True)
class WeChatApp:
    """One official account or mini-program: where and with what its tokens are fetched."""

    appid: str
    secret: str
    api_base: str = "https://api.weixin.qq.com"


class TokenStore:
    """Access tokens per appid in Redis; `get` is safe to call from many threads and processes at once."""

    def __init__(
        self,
        redis_client: redis.Redis,
        apps: Mapping[str, WeChatApp] | list[WeChatApp],
        *,
        timeout_s: float = 5.0,
        attempts: int = 3,
        backoff_s: float = 0.5,
        poll_s: float = 0.05,
        http: httpx.Client | None = None,
    ) -> None:
        self._redis = redis_client
        self._apps = dict(apps) if isinstance(apps, Mapping) else {app.appid: app for app in apps}
        self._timeout_s = timeout_s
        self._attempts = max(1, attempts)
        self._backoff_s = backoff_s
        self._poll_s = poll_s
        self._http = http or httpx.Client(timeout=timeout_s, trust_env=False)
        self._delete_if_equal = redis_client.register_script(_DELETE_IF_EQUAL)
        # The lock outlives the longest possible fetch, so a live holder never loses it to a waiter.
        worst_fetch_s = self._attempts * (timeout_s + 0.5) + backoff_s * (2**self._attempts)
        self._lock_ttl_ms = int((worst_fetch_s + 2) * 1000)

    @classmethod
    def from_settings(cls, redis_client: redis.Redis, settings: Settings, **kwargs: Any) -> TokenStore:
        """Both of the city's WeChat apps (official account and mini-program), those that are configured."""
        apps = [
            WeChatApp(settings.wechat_appid, settings.wechat_secret.get_secret_value(), settings.wechat_api_base),
            WeChatApp(settings.miniapp_appid, settings.miniapp_secret.get_secret_value(), settings.miniapp_api_base),
        ]
        return cls(redis_client, [app for app in apps if app.appid], **kwargs)

    @staticmethod
    def key(appid: str) -> str:
        return KEY_PREFIX + appid

    def get(self, appid: str) -> str:
        """A valid token for `appid`: the cached one, or a fresh one fetched by exactly one process."""
        cached = self._read(appid)
        if cached:
            return cached
        return self._refresh(appid, bad_token=None)

    def invalidate(self, appid: str, bad_token: str) -> bool:
        """Forget `bad_token` unless another process has already replaced it; True if it was dropped."""
        return bool(self._delete_if_equal(keys=[self.key(appid)], args=[bad_token]))

    def replace(self, appid: str, bad_token: str) -> str:
        """After WeChat refused `bad_token` (40001/42001): a different token, force-refreshed if need be."""
        self.invalidate(appid, bad_token)
        cached = self._read(appid)
        if cached and cached != bad_token:
            return cached
        return self._refresh(appid, bad_token=bad_token)

    # --- internals ---

    def _read(self, appid: str) -> str | None:
        value = self._redis.get(self.key(appid))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def _refresh(self, appid: str, *, bad_token: str | None) -> str:
        lock_key = self.key(appid) + ":lock"
        lock_value = uuid.uuid4().hex
        deadline = time.monotonic() + self._lock_ttl_ms / 1000 + 1
        while True:
            if self._redis.set(lock_key, lock_value, nx=True, px=self._lock_ttl_ms):
                try:
                    # Another process may have refreshed between our read and our lock.
                    cached = self._read(appid)
                    if cached and cached != bad_token:
                        return cached
                    token, expires_in = self._fetch(appid, force_refresh=bad_token is not None)
                    ttl = max(MIN_TTL_S, expires_in - EARLY_REFRESH_S)
                    self._redis.set(self.key(appid), token, ex=ttl)
                    return token
                finally:
                    self._delete_if_equal(keys=[lock_key], args=[lock_value])
            time.sleep(self._poll_s)
            cached = self._read(appid)
            if cached and cached != bad_token:
                return cached
            if time.monotonic() > deadline:
                raise WeChatTokenError(appid, None, "timed out waiting for another process to refresh the token")

    def _fetch(self, appid: str, *, force_refresh: bool) -> tuple[str, int]:
        """POST stable_token with bounded retries; returns (token, expires_in)."""
        app = self._apps.get(appid)
        if app is None:
            raise WeChatTokenError(appid, None, "unknown appid (not configured)")
        url = app.api_base.rstrip("/") + "/cgi-bin/stable_token"
        body = {
            "grant_type": "client_credential",
            "appid": app.appid,
            "secret": app.secret,
            "force_refresh": force_refresh,
        }
        last: WeChatTokenError | None = None
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(self._backoff_s * (2 ** (attempt - 1)))
            try:
                response = self._http.post(url, json=body, timeout=self._timeout_s)
                response.raise_for_status()
                result = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                last = WeChatTokenError(appid, None, f"{type(exc).__name__}: {exc}")
                continue
            errcode = int(result.get("errcode", 0) or 0)
            if errcode == 0 and result.get("access_token"):
                return str(result["access_token"]), int(result.get("expires_in", 7200))
            last = WeChatTokenError(appid, errcode, str(result.get("errmsg", "")))
            if errcode not in RETRYABLE_ERRCODES:
                raise last
        assert last is not None
        raise last
