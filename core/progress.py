"""How long-running services report progress without knowing who watches (a rich bar, a log, nothing)."""

from __future__ import annotations

from typing import Protocol


class ProgressSink(Protocol):
    def phase(self, name: str, total: int | None = None) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class NoProgress:
    """Progress that goes nowhere, for tests and jobs."""

    def phase(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass
