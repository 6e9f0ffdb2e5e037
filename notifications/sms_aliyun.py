"""Aliyun SMS (阿里云短信, dysmsapi `SendSms` 2017-05-25) behind the notifications provider interface.

SendSms has no idempotency key: a send that may have reached Aliyun is reported as "unknown" and reconciled
with `query()` (by BizId, or by our OutId when the answer never came), never resent blindly.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from typing import Any

from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest

from notifications.providers import SendResult

__all__ = ["BATCH_MAX", "OUTCOME_BY_CODE", "AliyunSms", "SendResult", "classify"]

log = logging.getLogger("tongguan.notify.aliyun")

API_VERSION = "2017-05-25"
BATCH_MAX = 100  # numbers per SendBatchSms call

OUTCOME_BY_CODE: dict[str, str] = {
    "OK": "sent",
    # Transient: Aliyun refused this send for now; the same send may pass later.
    "isp.SYSTEM_ERROR": "retry",
    "isv.BUSINESS_LIMIT_CONTROL": "retry",
    "Throttling": "retry",
    "Throttling.User": "retry",
    "Throttling.Api": "retry",
    "ServiceUnavailable": "retry",
    # This message can never be sent as it is: fix the number, template, signature or keys.
    "isv.MOBILE_NUMBER_ILLEGAL": "dead",
    "isv.MOBILE_COUNT_OVER_LIMIT": "dead",
    "isv.SMS_TEMPLATE_ILLEGAL": "dead",
    "isv.SMS_SIGNATURE_ILLEGAL": "dead",
    "isv.SMS_SIGN_ILLEGAL": "dead",
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": "dead",
    "isv.SMS_CONTENT_ILLEGAL": "dead",
    "isv.TEMPLATE_MISSING_PARAMETERS": "dead",
    "isv.TEMPLATE_PARAMS_ILLEGAL": "dead",
    "isv.INVALID_PARAMETERS": "dead",
    "isv.INVALID_JSON_PARAM": "dead",
    "isv.PARAM_LENGTH_LIMIT": "dead",
    "isv.PARAM_NOT_SUPPORT_URL": "dead",
    "isv.BLACK_KEY_CONTROL_LIMIT": "dead",
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": "dead",
    "isv.DENY_IP_RANGE": "dead",
    "isv.EXTEND_CODE_ERROR": "dead",
    "isp.RAM_PERMISSION_DENY": "dead",
    "InvalidAccessKeyId.NotFound": "dead",
    "InvalidAccessKeyId.Inactive": "dead",
    "SignatureDoesNotMatch": "dead",
    # The SDK's rename of SignatureDoesNotMatch when only the secret is wrong (typed requests; never CommonRequest).
    "InvalidAccessKeySecret": "dead",
    "SignatureNonceUsed": "dead",
    "InvalidTimeStamp.Expired": "dead",
    # The whole account is stopped: hold every send until an operator acts (top up, reactivate, raise the cap).
    "isv.AMOUNT_NOT_ENOUGH": "pause",
    "isv.OUT_OF_SERVICE": "pause",
    "isv.ACCOUNT_ABNORMAL": "pause",
    "isv.ACCOUNT_NOT_EXISTS": "pause",
    "isv.PRODUCT_UN_SUBSCRIPT": "pause",
    "isv.PRODUCT_UNSUBSCRIBE": "pause",
    "isv.DAY_LIMIT_CONTROL": "pause",
}
"""What a `Code` from SendSms means for the message (sent / retry / dead / pause).

Business errors arrive as HTTP 200 with a `Code`; gateway errors (keys, signature, throttling) as HTTP 4xx/5xx,
which the SDK raises as `ServerException` carrying the same kind of code. A code not listed here is "dead" when
Aliyun refused the request (HTTP 200 or 4xx: nothing was sent) and "unknown" on HTTP 5xx (it may have been).
"""

# Markers in the SDK's "SDK.HttpError" message for failures before the request was written to the socket:
# only these are safe to retry. Everything else (read timeout, reset, aborted) may follow a delivered request.
_BEFORE_SENDING = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Connection refused",
    "ConnectTimeoutError",
    "connect timeout=",
    "SSLError",
)

_DELIVERY_BY_SEND_STATUS = {1: "pending", 2: "failed", 3: "delivered"}
_STRING_TO_SIGN = re.compile(r" ?server string to sign is:\S*")


class _WithholdStringToSign(logging.Filter):
    """The SDK logs Aliyun's SignatureDoesNotMatch message at ERROR; it holds the phone number and template values."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "string to sign is:" in message:
            record.msg, record.args = _STRING_TO_SIGN.sub(" (string to sign withheld)", message), ()
        return True


logging.getLogger("aliyunsdkcore.client").addFilter(_WithholdStringToSign())


def classify(code: str, *, http_status: int = 200) -> str:
    """The outcome of a SendSms answer with this `Code` (see OUTCOME_BY_CODE)."""
    if code in OUTCOME_BY_CODE:
        return OUTCOME_BY_CODE[code]
    return "unknown" if http_status >= 500 else "dead"


class AliyunSms:
    """Sends template SMS through Aliyun with aliyun-python-sdk-core; one thread-safe client per instance."""

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        endpoint: str,
        sign_name: str,
        scheme: str = "https",
        region: str = "cn-hangzhou",
        timeout_s: float = 5.0,
    ) -> None:
        if scheme not in ("https", "http"):
            raise ValueError(f"aliyun_sms_scheme must be https or http, not {scheme!r}")
        self.endpoint = endpoint
        self.sign_name = sign_name
        self.scheme = scheme
        # auto_retry off: SendSms is not idempotent, and our outbox owns retries. The explicit no-proxy map
        # stops the SDK from reading HTTP(S)_PROXY (it ignores NO_PROXY, so a local stub would be proxied).
        self._client = AcsClient(
            ak=access_key_id,
            secret=access_key_secret,
            region_id=region,
            auto_retry=False,
            connect_timeout=timeout_s,
            timeout=timeout_s,
            proxy={"http": None, "https": None},
        )

    @classmethod
    def from_settings(cls, settings: Any) -> AliyunSms:
        """The adapter configured by `core.settings.Settings` (aliyun_* fields)."""
        return cls(
            access_key_id=settings.aliyun_access_key_id,
            access_key_secret=settings.aliyun_access_key_secret.get_secret_value(),
            endpoint=settings.aliyun_sms_endpoint,
            sign_name=settings.aliyun_sms_sign_name,
            scheme=settings.aliyun_sms_scheme,
        )

    def send(self, *, phone: str, template_code: str, params: dict[str, str], out_id: str) -> SendResult:
        """Send one template SMS; `out_id` is our dedupe key, echoed by QuerySendDetails for reconciliation."""
        request = self._request("SendSms")
        request.add_body_params("PhoneNumbers", phone)
        request.add_body_params("SignName", self.sign_name)
        request.add_body_params("TemplateCode", template_code)
        request.add_body_params("TemplateParam", _compact(params))
        request.add_body_params("OutId", out_id)
        return self._call(request, out_id)

    def _call(self, request: CommonRequest, out_id: str) -> SendResult:
        try:
            body = self._client.do_action_with_exception(request)
        except ServerException as exc:
            code = str(exc.get_error_code())
            # Aliyun echoes the whole string-to-sign (phone number, template values) in SignatureDoesNotMatch.
            message = _STRING_TO_SIGN.sub("", str(exc.get_error_msg()))
            return SendResult(classify(code, http_status=exc.get_http_status() or 0), "", code, message)
        except ClientException as exc:
            return _client_failure(exc)
        except IndexError:
            # The SDK's error parser does `message.split(":")[1]` on a 400 SignatureDoesNotMatch: a message
            # without a colon crashes it. The request was answered and refused, so nothing was sent.
            return SendResult("dead", "", "SignatureDoesNotMatch", "signature refused (the SDK could not parse it)")
        try:
            answer = json.loads(body)
            code = str(answer["Code"])
        except (ValueError, KeyError, TypeError):
            log.warning("aliyun sms: unreadable answer", extra={"fields": {"out_id": out_id}})
            return SendResult("unknown", "", "unreadable", body[:200].decode("utf-8", "replace"))
        outcome = classify(code)
        return SendResult(
            outcome, str(answer.get("BizId") or "") if outcome == "sent" else "", code, answer.get("Message", "")
        )

    def send_batch(self, *, template_code: str, items: list[tuple[str, dict[str, str]]], out_id: str) -> SendResult:
        """Send one template to up to BATCH_MAX numbers, each with its own params, in one SendBatchSms call.

        Aliyun answers the batch as a whole: one `Code`, one BizId for every number (QuerySendDetails finds each
        by phone and BizId, or by phone and this `out_id` when the answer never came).
        """
        if not 1 <= len(items) <= BATCH_MAX:
            raise ValueError(f"a batch holds 1..{BATCH_MAX} numbers, not {len(items)}")
        request = self._request("SendBatchSms")
        request.add_body_params("PhoneNumberJson", _compact([phone for phone, _ in items]))
        request.add_body_params("SignNameJson", _compact([self.sign_name] * len(items)))
        request.add_body_params("TemplateCode", template_code)
        request.add_body_params("TemplateParamJson", _compact([params for _, params in items]))
        request.add_body_params("OutId", out_id)
        return self._call(request, out_id)

    def query(self, *, phone: str, biz_id: str, send_date: date, out_id: str = "") -> str:
        """Delivery state of one send (QuerySendDetails): "delivered" | "failed" | "pending" | "unknown".

        Without a BizId (the send timed out), pass `out_id`: the send is found among that day's sends to `phone`.
        """
        if not biz_id and not out_id:
            raise ValueError("query() needs biz_id or out_id")
        states: list[str] = []
        page = 1
        while True:
            request = self._request("QuerySendDetails")
            request.add_body_params("PhoneNumber", phone)
            if biz_id:
                request.add_body_params("BizId", biz_id)
            request.add_body_params("SendDate", send_date.strftime("%Y%m%d"))
            request.add_body_params("PageSize", "50")
            request.add_body_params("CurrentPage", str(page))
            try:
                answer = json.loads(self._client.do_action_with_exception(request))
            except (ServerException, ClientException, IndexError, ValueError) as exc:
                log.warning("aliyun sms: QuerySendDetails failed", extra={"fields": {"error": str(exc)}})
                return "unknown"
            if answer.get("Code") != "OK":
                return "unknown"
            details = (answer.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
            for detail in details:
                if not out_id or detail.get("OutId") == out_id:
                    states.append(_DELIVERY_BY_SEND_STATUS.get(int(detail.get("SendStatus", 0)), "unknown"))
            if not details or page * 50 >= int(answer.get("TotalCount") or 0):
                break
            page += 1
        return most_hopeful(states)

    def _request(self, action: str) -> CommonRequest:
        # A new request per call: CommonRequest holds the signed nonce and timestamp and is not reusable.
        request = CommonRequest(domain=self.endpoint, version=API_VERSION, action_name=action)
        request.set_method("POST")
        request.set_protocol_type(self.scheme)  # the SDK defaults to http
        request.set_accept_format("json")
        return request


def most_hopeful(states: list[str]) -> str:
    """One delivered copy settles it; otherwise the most hopeful state wins (pending may still turn)."""
    return next((state for state in ("delivered", "pending", "failed") if state in states), "unknown")


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _client_failure(exc: ClientException) -> SendResult:
    """Map the SDK's client-side errors: only a failure to connect is known not to have sent anything."""
    code, message = str(exc.get_error_code()), str(exc.get_error_msg())
    if code != "SDK.HttpError":
        return SendResult("dead", "", code, message)  # refused by the SDK before any I/O (bad parameters)
    if any(marker in message for marker in _BEFORE_SENDING):
        return SendResult("retry", "", "network", message)
    return SendResult("unknown", "", "timeout" if "timed out" in message else "network", message)
