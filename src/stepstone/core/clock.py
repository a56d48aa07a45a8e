"""Time, injected: the engine asks a ``Clock`` for the time and never calls ``datetime.now``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "SystemClock", "from_timestamp", "utcnow"]


class Clock(Protocol):
    """Where the engine gets the time from. Times are aware UTC datetimes."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


def utcnow() -> datetime:
    """The current aware UTC time (for code with no clock at hand, such as the CLI)."""
    return datetime.now(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_timestamp(ts: float) -> datetime:
    """An aware UTC datetime from POSIX seconds (exact to the microsecond)."""
    return _EPOCH + timedelta(microseconds=round(ts * 1_000_000))
