"""A small Aliyun SMS API (dysmsapi 2017-05-25) on 127.0.0.1 that checks what the real one checks.

RPC style: parameters come in the query string and the form body; the gateway checks the common parameters
(key, signature method and version, nonce, timestamp, API version, action) and the HMAC-SHA1 signature, then
SendSms or QuerySendDetails check their own. Gateway errors are HTTP 4xx with a JSON `Code`; business errors
are HTTP 200 with a `Code`, as on the real service. Everything received is recorded.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

API_VERSION = "2017-05-25"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MAX_CLOCK_SKEW = timedelta(minutes=15)
CHINA = timezone(timedelta(hours=8))
COMMON_PARAMS = ("AccessKeyId", "Action", "Version", "SignatureMethod", "SignatureVersion", "SignatureNonce",
                 "Timestamp", "Signature")  # fmt: skip
SENDSMS_PARAMS = ("PhoneNumbers", "SignName", "TemplateCode")
BATCH_PARAMS = ("PhoneNumberJson", "SignNameJson", "TemplateCode")
BATCH_MAX = 100
QUERY_PARAMS = ("PhoneNumber", "SendDate", "PageSize", "CurrentPage")


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun's signature uses it: space %20, `*` %2A, `~` kept."""
    return quote(value, safe="~")


def string_to_sign(method: str, params: dict[str, str]) -> str:
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def signature(method: str, params: dict[str, str], secret: str) -> str:
    digest = hmac.new((secret + "&").encode(), string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_params(params: dict[str, str], *, key_id: str, secret: str, nonce: str | None = None) -> dict[str, str]:
    """`params` plus the common parameters and a valid signature, as a client would send them by POST."""
    full = {
        "AccessKeyId": key_id,
        "Format": "JSON",
        "RegionId": "cn-hangzhou",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "Timestamp": datetime.now(UTC).strftime(TIMESTAMP_FORMAT),
        "Version": API_VERSION,
        **params,
    }
    full["Signature"] = signature("POST", full, secret)
    return full


@dataclass
class SentSms:
    params: dict[str, str]  # every parameter received, common ones included
    code: str  # what the stub answered
    biz_id: str  # empty unless Code was OK
    received_at: datetime

    @property
    def phone(self) -> str:
        return self.params["PhoneNumbers"]

    @property
    def template_param(self) -> dict[str, Any]:
        return dict(json.loads(self.params["TemplateParam"]))


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


@dataclass
class AliyunSmsStub:
    keys: dict[str, str] = field(default_factory=lambda: {"LTAItestkey": "test-secret"})  # AccessKeyId -> secret
    send_status: int = 3  # SendStatus QuerySendDetails reports: 1 waiting for receipt, 2 failed, 3 delivered
    # The clock Aliyun files sends by (QuerySendDetails' SendDate); a test that simulates tongguan's clock passes
    # it here so both sides agree, or a clock of its own to put the arrival on another day.
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    signature_message_without_colon: bool = False  # answer SignatureDoesNotMatch as the SDK cannot parse it
    requests: list[dict[str, str]] = field(default_factory=list)  # every request's parameters, refused or not
    refused: list[str] = field(default_factory=list)  # gateway error codes, in order
    sent: list[SentSms] = field(default_factory=list)  # every SendSms that passed the gateway
    _nonces: set[str] = field(default_factory=set)
    _answers: list[tuple[str, int, str]] = field(default_factory=list)  # (Code, HTTP status, Message), once each
    _delays: list[float] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(900_000))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None
    _connections: set[Any] = field(default_factory=set)  # open keep-alive sockets, closed by stop()

    # --- knobs ---

    def answer_next(self, code: str, *, times: int = 1, http_status: int = 200, message: str = "") -> None:
        """The next `times` SendSms requests that pass the gateway answer `code` instead of sending."""
        with self._lock:
            self._answers.extend([(code, http_status, message or f"stubbed {code}")] * times)

    def delay_next(self, seconds: float, *, times: int = 1) -> None:
        """The next `times` SendSms requests are sent (and recorded), but answered only after `seconds`."""
        with self._lock:
            self._delays.extend([seconds] * times)

    # --- lifecycle ---

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "start() the stub first"
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> AliyunSmsStub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="aliyun-sms-stub", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes delayed answers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        # A stopped stub answers nothing more, not even on a keep-alive connection a client still holds.
        with self._lock:
            for connection in list(self._connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> AliyunSmsStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the API ---

    def handle(self, method: str, params: dict[str, str]) -> tuple[int, dict[str, Any], float]:
        """Answer one request: (HTTP status, JSON body, seconds to wait before answering)."""
        request_id = str(uuid.uuid4()).upper()
        with self._lock:
            self.requests.append(params)
            try:
                self._check_gateway(method, params)
                if params["Action"] == "SendSms":
                    status, body, delay = self._send_sms(params)
                elif params["Action"] == "SendBatchSms":
                    status, body, delay = self._send_batch_sms(params)
                else:
                    status, body, delay = 200, self._query_send_details(params), 0.0
            except _Refused as refused:
                self.refused.append(refused.code)
                status, body, delay = refused.status, {"Code": refused.code, "Message": refused.message}, 0.0
        return status, {"RequestId": request_id, **body}, delay

    def _check_gateway(self, method: str, params: dict[str, str]) -> None:
        for name in COMMON_PARAMS:
            if not params.get(name):
                raise _Refused(400, f"Missing{name}", f"{name} is mandatory for this action.")
        secret = self.keys.get(params["AccessKeyId"])
        if secret is None:
            raise _Refused(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if params["SignatureMethod"] != "HMAC-SHA1":
            raise _Refused(400, "InvalidSignatureMethod", "Specified signature method is not valid.")
        if params["SignatureVersion"] != "1.0":
            raise _Refused(400, "InvalidSignatureVersion", "Specified signature version is not valid.")
        try:
            sent_at = datetime.strptime(params["Timestamp"], TIMESTAMP_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise _Refused(400, "InvalidTimeStamp.Format", "Specified time stamp is not valid.") from None
        if abs(datetime.now(UTC) - sent_at) > MAX_CLOCK_SKEW:
            raise _Refused(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        expected = string_to_sign(method, params)
        if not hmac.compare_digest(params["Signature"], signature(method, params, secret)):
            message = "Specified signature is not matched with our calculation."
            if not self.signature_message_without_colon:
                message += f" server string to sign is:{expected}"
            raise _Refused(400, "SignatureDoesNotMatch", message)
        if params["SignatureNonce"] in self._nonces:
            raise _Refused(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces.add(params["SignatureNonce"])
        if params["Version"] != API_VERSION:
            raise _Refused(400, "InvalidVersion", "Specified parameter Version is not valid.")
        if params["Action"] not in ("SendSms", "SendBatchSms", "QuerySendDetails"):
            raise _Refused(
                404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
            )

    def _send_sms(self, params: dict[str, str]) -> tuple[int, dict[str, Any], float]:
        for name in SENDSMS_PARAMS:
            if not params.get(name):
                raise _Refused(400, f"Missing{name}", f"{name} is mandatory for this action.")
        status, code, message = 200, "OK", "OK"
        try:
            if not isinstance(json.loads(params.get("TemplateParam", "{}")), dict):
                raise ValueError("not an object")
        except ValueError:
            code, message = "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值"
        if code == "OK" and self._answers:
            code, status, message = self._answers.pop(0)
        biz_id = f"{next(self._ids)}^0" if code == "OK" else ""
        self.sent.append(SentSms(dict(params), code, biz_id, self.now()))
        delay = self._delays.pop(0) if self._delays else 0.0
        body: dict[str, Any] = {"Code": code, "Message": message}
        if biz_id:
            body["BizId"] = biz_id
        return status, body, delay

    def _send_batch_sms(self, params: dict[str, str]) -> tuple[int, dict[str, Any], float]:
        """One template to many numbers; the batch is answered (and refused) as a whole, one BizId for all.

        Each number is recorded in `sent` as if sent alone (PhoneNumbers, SignName, TemplateParam of its own),
        with Action SendBatchSms and the batch's OutId; a batch refused for its shape records nothing.
        """
        for name in BATCH_PARAMS:
            if not params.get(name):
                raise _Refused(400, f"Missing{name}", f"{name} is mandatory for this action.")
        status, code, message = 200, "OK", "OK"
        try:
            phones, signs = json.loads(params["PhoneNumberJson"]), json.loads(params["SignNameJson"])
            values = json.loads(params.get("TemplateParamJson") or "null") or [{}] * len(phones)
            shapes_ok = all(isinstance(v, list) for v in (phones, signs, values)) and all(
                isinstance(v, dict) for v in values
            )
            if not shapes_ok or not len(phones) == len(signs) == len(values):
                raise ValueError("arrays of one length expected")
        except ValueError:
            phones, signs, values = [], [], []
            code, message = "isv.INVALID_JSON_PARAM", "JSON参数不合法"
        if code == "OK" and not 1 <= len(phones) <= BATCH_MAX:
            code, message = "isv.MOBILE_COUNT_OVER_LIMIT", f"手机号码数量超过限制（{BATCH_MAX}）"
        if code == "OK" and self._answers:
            code, status, message = self._answers.pop(0)
        biz_id = f"{next(self._ids)}^0" if code == "OK" else ""
        common = {k: v for k, v in params.items() if k not in ("PhoneNumberJson", "SignNameJson", "TemplateParamJson")}
        now = self.now()
        for phone, sign, value in zip(phones, signs, values, strict=True):
            item = {**common, "PhoneNumbers": str(phone), "SignName": str(sign), "TemplateParam": json.dumps(value)}
            self.sent.append(SentSms(item, code, biz_id, now))
        delay = self._delays.pop(0) if self._delays else 0.0
        body: dict[str, Any] = {"Code": code, "Message": message}
        if biz_id:
            body["BizId"] = biz_id
        return status, body, delay

    def _query_send_details(self, params: dict[str, str]) -> dict[str, Any]:
        for name in QUERY_PARAMS:
            if not params.get(name):
                raise _Refused(400, f"Missing{name}", f"{name} is mandatory for this action.")
        page_size, page = int(params["PageSize"]), int(params["CurrentPage"])
        if not 1 <= page_size <= 50 or page < 1:
            return {"Code": "isv.INVALID_PARAMETERS", "Message": "PageSize 1..50, CurrentPage from 1"}
        matches = [
            sms
            for sms in self.sent
            if sms.code == "OK"
            and params["PhoneNumber"] in sms.phone.split(",")
            and sms.received_at.astimezone(CHINA).strftime("%Y%m%d") == params["SendDate"]
            and params.get("BizId", sms.biz_id) == sms.biz_id
        ]
        details = [
            {
                "PhoneNum": params["PhoneNumber"],
                "SendStatus": self.send_status,
                "ErrCode": "DELIVERED" if self.send_status == 3 else "",
                "TemplateCode": sms.params["TemplateCode"],
                "OutId": sms.params.get("OutId", ""),
                "SendDate": sms.received_at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                "ReceiveDate": "",
                "Content": "",
            }
            for sms in matches[(page - 1) * page_size : page * page_size]
        ]
        return {
            "Code": "OK",
            "Message": "OK",
            "TotalCount": len(matches),
            "SmsSendDetailDTOs": {"SmsSendDetailDTO": details},
        }


def _handler_for(stub: AliyunSmsStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Aliyun's gateway: the SDK's pooled session reuses it
        wbufsize = -1  # headers and body leave in one segment (flushed per request), no delayed-ACK stall

        def setup(self) -> None:
            super().setup()
            with stub._lock:
                stub._connections.add(self.connection)

        def finish(self) -> None:
            with stub._lock:
                stub._connections.discard(self.connection)
            super().finish()

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def _answer(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8") if length else ""
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            if body and self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                params.update(parse_qsl(body, keep_blank_values=True))
            if url.path != "/":
                status, answer, delay = (
                    404,
                    {"Code": "InvalidAction.NotFound", "Message": "Specified api is not found"},
                    0.0,
                )
            else:
                status, answer, delay = stub.handle(method, params)
            if delay and stub._stopping.wait(delay):
                return
            payload = json.dumps(answer, ensure_ascii=False).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up waiting (a simulated timeout)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def post_raw(endpoint: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST `params` as a form to the stub without the SDK: (HTTP status, JSON answer)."""
    import http.client

    connection = http.client.HTTPConnection(endpoint, timeout=5)
    try:
        connection.request(
            "POST", "/", body=urlencode(params), headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()
