"""A small WeChat API on 127.0.0.1 that checks what the real one checks and records what it received.

Endpoints: POST /cgi-bin/stable_token, POST /cgi-bin/message/{subscribe,template,custom}/send, the official
account's GET /cgi-bin/media/get (temporary media), the mini-program's GET /sns/jscode2session, POST
/wxa/business/getuserphonenumber and POST /wxa/msg_sec_check (v2), and the legacy GET /cgi-bin/token (answered
with an error and counted, so tests can assert nobody used it).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SUBSCRIBE = "/cgi-bin/message/subscribe/send"
TEMPLATE = "/cgi-bin/message/template/send"
CUSTOM = "/cgi-bin/message/custom/send"
SEND_PATHS = (SUBSCRIBE, TEMPLATE, CUSTOM)
PHONE = "/wxa/business/getuserphonenumber"
SEC_CHECK = "/wxa/msg_sec_check"


@dataclass
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class WeChatStub:
    appid: str
    secret: str
    expires_in: int = 7200
    token_delay_s: float = 0.0  # hang stable_token this long before answering
    send_delay_s: float = 0.0  # hang the send endpoints this long before answering
    stable_token_calls: int = 0
    legacy_token_calls: int = 0
    received: list[Received] = field(default_factory=list)  # every send request, accepted or not
    sent: list[Received] = field(default_factory=list)  # messages accepted (errcode 0)
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    _revoked: set[str] = field(default_factory=set)
    _current: str | None = None
    _failures: list[tuple[str, int]] = field(default_factory=list)  # (path or "*", errcode), used once each
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1000))
    _server: ThreadingHTTPServer | None = None
    # Mini-program: login codes (code -> (openid, unionid)), phone codes, and content-check verdicts.
    _login_codes: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    _used_codes: set[str] = field(default_factory=set)
    _phone_codes: dict[str, str] = field(default_factory=dict)
    verdicts: dict[str, tuple[str, int]] = field(default_factory=dict)  # word in the text -> (suggest, label)
    checked: list[dict[str, Any]] = field(default_factory=list)  # every msg_sec_check body
    media: dict[str, bytes] = field(default_factory=dict)  # media_id -> the file a user sent (temporary media)
    session_calls: int = 0

    # --- knobs ---

    def login_code(self, openid: str, *, unionid: str | None = None) -> str:
        """A fresh wx.login() code for this user: code2session takes it once (then 40163)."""
        with self._lock:
            code = f"code-{next(self._ids)}"
            self._login_codes[code] = (openid, unionid)
        return code

    def phone_code(self, phone: str) -> str:
        """A fresh getPhoneNumber code for this number (used once)."""
        with self._lock:
            code = f"phone-{next(self._ids)}"
            self._phone_codes[code] = phone
        return code

    def fail_next(self, errcode: int, *, path: str = "*", times: int = 1) -> None:
        """The next `times` send requests (to `path`, or any) answer `errcode` instead of sending."""
        with self._lock:
            self._failures.extend([(path, errcode)] * times)

    def expire_token(self, token: str | None = None) -> None:
        """The token (default: the current one) is past its lifetime: sends with it answer 42001."""
        with self._lock:
            self._tokens[token or self._current or ""] = 0.0

    def revoke_token(self, token: str | None = None) -> None:
        """The token was replaced elsewhere (e.g. someone called /cgi-bin/token): sends answer 40001."""
        with self._lock:
            self._revoked.add(token or self._current or "")

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- server ---

    def start(self) -> WeChatStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/cgi-bin/media/get":
                    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                    with stub._lock:
                        problem = stub._token_problem(query.get("access_token", ""))
                        data = stub.media.get(query.get("media_id", ""))
                    if problem or data is None:
                        self._json(problem or {"errcode": 40007, "errmsg": "invalid media_id"})
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if parts.path == "/sns/jscode2session":
                    self._json(stub._code2session({k: v[0] for k, v in parse_qs(parts.query).items()}))
                    return
                if parts.path == "/cgi-bin/token":
                    with stub._lock:
                        stub.legacy_token_calls += 1
                    self._json({"errcode": 40164, "errmsg": "stub: use stable_token"})
                    return
                self._json({"errcode": 404, "errmsg": "not found"}, status=404)

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw.decode("utf-8")) if raw else {}
                except (UnicodeDecodeError, ValueError):
                    self._json({"errcode": 47001, "errmsg": "data format error"})
                    return
                if parts.path == "/cgi-bin/stable_token":
                    self._json(stub._stable_token(body))
                elif parts.path in SEND_PATHS:
                    record = Received(parts.path, query, dict(self.headers.items()), body)
                    self._json(stub._send(record))
                elif parts.path in (PHONE, SEC_CHECK):
                    self._json(stub._miniapp_call(parts.path, query, body))
                else:
                    self._json({"errcode": 404, "errmsg": "not found"}, status=404)

            def _json(self, payload: dict[str, Any], status: int = 200) -> None:
                data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- behaviour ---

    def _stable_token(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.stable_token_calls += 1
        if self.token_delay_s:
            time.sleep(self.token_delay_s)
        if body.get("grant_type") != "client_credential":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        if body.get("appid") != self.appid:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if body.get("secret") != self.secret:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        force = body.get("force_refresh", False)
        if not isinstance(force, bool):
            return {"errcode": 47001, "errmsg": "data format error"}
        with self._lock:
            now = time.monotonic()
            current = self._current
            # Like WeChat: without force_refresh the still-valid token comes back unchanged.
            if not force and current and self._tokens.get(current, 0) > now and current not in self._revoked:
                return {"access_token": current, "expires_in": int(self._tokens[current] - now)}
            token = f"stub-token-{next(self._ids)}"
            self._tokens[token] = now + self.expires_in
            self._current = token
        return {"access_token": token, "expires_in": self.expires_in}

    def _code2session(self, query: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            self.session_calls += 1
            if query.get("grant_type") != "authorization_code":
                return {"errcode": 40002, "errmsg": "invalid grant_type"}
            if query.get("appid") != self.appid:
                return {"errcode": 40013, "errmsg": "invalid appid"}
            if query.get("secret") != self.secret:
                return {"errcode": 40125, "errmsg": "invalid appsecret"}
            code = query.get("js_code", "")
            if code in self._used_codes:
                return {"errcode": 40163, "errmsg": "code been used"}
            if code not in self._login_codes:
                return {"errcode": 40029, "errmsg": "invalid code"}
            self._used_codes.add(code)
            openid, unionid = self._login_codes.pop(code)
        answer = {"openid": openid, "session_key": f"sk-{openid[-6:]}-{next(self._ids)}"}
        if unionid:
            answer["unionid"] = unionid
        return answer

    def _token_problem(self, token: str) -> dict[str, Any] | None:
        if not token or token not in self._tokens or token in self._revoked:
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
        if self._tokens[token] <= time.monotonic():
            return {"errcode": 42001, "errmsg": "access_token expired"}
        return None

    def _miniapp_call(self, path: str, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            problem = self._token_problem(query.get("access_token", ""))
            if problem:
                return problem
            if path == PHONE:
                phone = self._phone_codes.pop(str(body.get("code", "")), None)
                if phone is None:
                    return {"errcode": 40029, "errmsg": "invalid code"}
                return {
                    "errcode": 0,
                    "errmsg": "ok",
                    "phone_info": {"phoneNumber": phone, "purePhoneNumber": phone, "countryCode": "86"},
                }
            self.checked.append(body)
        # msg_sec_check v2: version 2, scene 1-4, openid and content are required.
        if body.get("version") != 2 or body.get("scene") not in (1, 2, 3, 4):
            return {"errcode": 40003 if not body.get("openid") else 47001, "errmsg": "invalid version or scene"}
        if not isinstance(body.get("openid"), str) or not body["openid"]:
            return {"errcode": 40003, "errmsg": "invalid openid"}
        content = body.get("content")
        if not isinstance(content, str) or not content or len(content.encode()) > 2500 * 4:
            return {"errcode": 47001, "errmsg": "data format error"}
        suggest, label = "pass", 100
        for word, (verdict, code) in self.verdicts.items():
            if word in content:
                suggest, label = verdict, code
        return {
            "errcode": 0,
            "errmsg": "ok",
            "result": {"suggest": suggest, "label": label},
            "detail": [{"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label}],
            "trace_id": f"trace-{next(self._ids)}",
        }

    def _send(self, record: Received) -> dict[str, Any]:
        with self._lock:
            self.received.append(record)
        if self.send_delay_s:
            time.sleep(self.send_delay_s)
        token = record.query.get("access_token", "")
        with self._lock:
            if not token or token not in self._tokens or token in self._revoked:
                return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
            if self._tokens[token] <= time.monotonic():
                return {"errcode": 42001, "errmsg": "access_token expired"}
            problem = _check_shape(record.path, record.body)
            if problem:
                return problem
            for i, (path, errcode) in enumerate(self._failures):
                if path in ("*", record.path):
                    del self._failures[i]
                    return {"errcode": errcode, "errmsg": f"stub errcode {errcode}"}
            self.sent.append(record)
            msgid = next(self._ids)
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
        if record.path != CUSTOM:
            answer["msgid"] = msgid
        return answer


def _check_shape(path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """WeChat's documented request bodies; None when the body is acceptable."""
    if not isinstance(body.get("touser"), str) or not body["touser"]:
        return {"errcode": 40003, "errmsg": "invalid openid"}
    if path == CUSTOM:
        if body.get("msgtype") != "text":
            return {"errcode": 40008, "errmsg": "invalid message type"}
        text = body.get("text")
        if not isinstance(text, dict) or not isinstance(text.get("content"), str) or not text["content"]:
            return {"errcode": 47001, "errmsg": "data format error"}
        return None
    if not isinstance(body.get("template_id"), str) or not body["template_id"]:
        return {"errcode": 40037, "errmsg": "invalid template_id"}
    data = body.get("data")
    if not isinstance(data, dict) or not data:
        return {"errcode": 47003, "errmsg": "argument invalid! data is empty"}
    for key, item in data.items():
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            return {"errcode": 47003, "errmsg": f"argument invalid! data.{key}.value invalid"}
    for optional in ("page", "url"):
        if optional in body and not isinstance(body[optional], str):
            return {"errcode": 47001, "errmsg": "data format error"}
    return None
