"""Log lines that repeat (a store that stays unavailable) are written once per period, counted.

A worker whose store is full or unreachable fails the same way many times a minute; one line per
failure buries everything else (and fills the disk that is already full). :class:`QuietLog`
writes the first occurrence of a message key at once and then at most one line per
``period_s``, saying how many were held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["QuietLog"]


class QuietLog:
    """Rate-limits repeated log lines per key (e.g. "claim"), on an injected monotonic clock."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        period_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self._period_s, self._monotonic = logger, period_s, monotonic
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: object) -> bool:
        """Log at WARNING unless ``key`` was logged less than ``period_s`` ago; returns whether
        a line was written."""
        now = self._monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._period_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        held = self._held.pop(key, 0)
        if held:
            message += f" ({held} more like it in the last {now - last:.0f}s)"  # type: ignore[operator]
        self._last[key] = now
        self._log.warning(message, *args)
        return True

    def recovered(self, key: str, message: str, *args: object) -> None:
        """The condition behind ``key`` is over: say so once (if it was logged) and reset."""
        if self._last.pop(key, None) is not None:
            held = self._held.pop(key, 0)
            suffix = f" (after {held} more failure(s))" if held else ""
            self._log.warning(message + suffix, *args)
