"""Who sends: one small interface, with a console provider for the demo and a recording provider for tests.

The Aliyun SMS and WeChat adapters (`sms_aliyun.py`, `wechat_send.py`) plug in behind the same interface.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

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


def provider_for(channel: str, word: str) -> Provider:
    """The provider a settings word names for a channel (console, recording; vendors when configured)."""
    if word == "console":
        return _console
    if word == "recording":
        return recording
    raise ValueError(f"unknown provider {word!r} for {channel}; choose console or recording")
