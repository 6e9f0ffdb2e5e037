"""Message templates: Chinese, named params, checked against each channel's rules before anything is sent.

Templates are data (`data/templates.json`): a city puts its own Aliyun template codes and WeChat template ids there.
Aliyun template variables are strings of at most 35 characters; WeChat subscribe-message fields have types with
their own limits (thing ≤ 20 characters, phrase ≤ 5 Chinese characters, character_string ≤ 32 of letters, digits
and symbols, number ≤ 32 digits, time and date as dates).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.errors import NotFoundError, ValidationFailed

TEMPLATES_PATH = Path(__file__).parent / "data" / "templates.json"
SMS_PARAM_MAX = 35
_PHONE = re.compile(r"1[3-9]\d{9}")
_OPENID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_CHARACTER_STRING = re.compile(r"[\x21-\x7e]{1,32}")
_NUMBER = re.compile(r"[0-9.+-]{1,32}")
_PHRASE = re.compile(r"[\u4e00-\u9fff]{1,5}")
_TIME = re.compile(r"\d{4}[-年/]\d{1,2}[-月/]\d{1,2}日?( \d{1,2}:\d{2}(:\d{2})?)?")
WECHAT_TEXT_MAX = {"thing": 20, "text": 200}


@dataclass(frozen=True)
class Rendered:
    """What a provider sends: an Aliyun template code with string params, a WeChat template id with fields, or text."""

    channel: str
    template_id: str
    data: dict[str, str]
    text: str


@lru_cache
def templates() -> dict[str, Any]:
    return json.loads(TEMPLATES_PATH.read_text(encoding="utf-8"))


def normalise_phone(value: str) -> str:
    """A mainland mobile number as 11 digits (+86 and separators removed), or a refusal."""
    digits = re.sub(r"[\s-]", "", value)
    digits = digits.removeprefix("+86").removeprefix("0086")
    if not _PHONE.fullmatch(digits):
        raise ValidationFailed("bad_phone", f"{value!r} is not a mainland mobile number")
    return digits


def check_recipient(channel: str, recipient: str) -> str:
    if channel == "sms":
        return normalise_phone(recipient)
    if not _OPENID.fullmatch(recipient):
        raise ValidationFailed("bad_openid", "a WeChat openid has 16 to 64 letters, digits, - or _")
    return recipient


def render(template: str, channel: str, params: dict[str, Any]) -> Rendered:
    """Check the params against the template and the channel, and build what the provider sends."""
    spec = templates().get(template)
    if spec is None:
        raise NotFoundError("unknown_template", f"there is no template {template!r}")
    if channel not in spec:
        raise ValidationFailed("template_not_on_channel", f"template {template!r} has no {channel} form")
    values = {k: str(v) for k, v in params.items() if v is not None}
    text = _text(spec["text"], values)
    form = spec[channel]
    match channel:
        case "sms":
            data = {}
            for name in form["params"]:
                value = _required(values, name)
                if len(value) > SMS_PARAM_MAX:
                    raise ValidationFailed(
                        "param_too_long", f"{name} has {len(value)} characters, at most {SMS_PARAM_MAX}"
                    )
                data[name] = value
            return Rendered(channel, form["template_code"], data, text)
        case "wechat_subscribe" | "wechat_template":
            data = {
                key: _wechat_value(name, kind, _required(values, name)) for key, (name, kind) in form["fields"].items()
            }
            return Rendered(channel, form["template_id"], data, text)
        case "wechat_kf":
            return Rendered(channel, "", {}, text)
    raise ValidationFailed("template_not_on_channel", f"unknown channel {channel!r}")


def _required(values: dict[str, str], name: str) -> str:
    value = values.get(name, "").strip()
    if not value:
        raise ValidationFailed("missing_param", f"the template needs {name!r}")
    return value


def _text(pattern: str, values: dict[str, str]) -> str:
    try:
        return pattern.format(**values)
    except KeyError as exc:
        raise ValidationFailed("missing_param", f"the template needs {exc.args[0]!r}") from None


def _wechat_value(name: str, kind: str, value: str) -> str:
    """One subscribe/template field, checked by its WeChat type."""
    ok = {
        "thing": len(value) <= WECHAT_TEXT_MAX["thing"],
        "text": len(value) <= WECHAT_TEXT_MAX["text"],
        "phrase": bool(_PHRASE.fullmatch(value)),
        "character_string": bool(_CHARACTER_STRING.fullmatch(value)),
        "number": bool(_NUMBER.fullmatch(value)),
        "time": bool(_TIME.fullmatch(value)),
        "date": bool(_TIME.fullmatch(value)),
    }.get(kind)
    if ok is None:
        raise ValidationFailed("bad_param", f"unknown WeChat field type {kind!r}")
    if not ok:
        code = "param_too_long" if kind in ("thing", "text") else "bad_param"
        raise ValidationFailed(code, f"{name}={value!r} is not a valid WeChat {kind}")
    return value
