"""The current time, in China time.

SQLite keeps tortoise's timestamps as text in the configured zone (+08:00) and compares them as text, and
sqlite3 binds a datetime parameter as text in the parameter's own zone. A comparison is right only when both
sides carry the same offset, so every moment we compare against stored times is made in China time.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    """The current moment, timezone-aware, in China time."""
    return datetime.now(CHINA)


def china(moment: datetime) -> datetime:
    """The same moment in China time (for filters on stored timestamps)."""
    return moment.astimezone(CHINA)
