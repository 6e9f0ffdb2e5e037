"""The current time, in China time.

SQLite keeps tortoise's timestamps as text in the configured zone (+08:00) and compares them as text, and
sqlite3 binds a datetime parameter as text in the parameter's own zone. A comparison is right only when both
sides carry the same offset, so every moment we compare against stored times is made in China time.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")

# Set only by the demo's simulation, which replays days of a city's work in seconds.
_simulated: datetime | None = None


def now() -> datetime:
    """The current moment, timezone-aware, in China time (the simulated moment while a simulation runs)."""
    if _simulated is not None:
        return _simulated
    return datetime.now(CHINA)


def simulate(moment: datetime | None) -> None:
    """Make `now()` answer `moment` (None: back to the real time). For the demo's simulation only."""
    global _simulated
    _simulated = china(moment) if moment is not None else None


def china(moment: datetime) -> datetime:
    """The same moment in China time (for filters on stored timestamps)."""
    return moment.astimezone(CHINA)


def china_of(moment: datetime) -> datetime:
    """A moment given by a client or a command in China time; a time without an offset is China time already."""
    return china(moment) if moment.tzinfo is not None else moment.replace(tzinfo=CHINA)
