"""Logging for processes that run workflows: repeated lines held back, the run on each record.

Log lines that repeat (a store that stays unavailable) are written once per period, counted.

A worker whose store is full or unreachable fails the same way many times a minute; one line per
failure buries everything else (and fills the disk that is already full). :class:`QuietLog`
writes the first occurrence of a message key at once and then at most one line per
``period_s``, saying how many were held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from stepstone.core.scope import step_scope

__all__ = ["QuietLog", "RunContextFormatter", "install_run_context"]


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


def install_run_context() -> None:
    """Put the run on every log record made inside a step body: ``run_id``, ``workflow``,
    ``seq``, ``step`` and ``attempt`` attributes (a formatter may show them; stepstone's CLI
    worker does). Process-wide by nature (logging's record factory); installing twice is a
    no-op, and records made outside a step are left as they are."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_stepstone_run_context", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        info = step_scope.get()
        if info is not None and not hasattr(record, "run_id"):
            record.run_id = info.run_id
            record.workflow = info.workflow
            record.seq = info.seq
            record.step = info.name
            record.attempt = info.attempt
        return record

    factory._stepstone_run_context = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class RunContextFormatter(logging.Formatter):
    """A formatter that appends ``[run=... seq=... step=...]`` to records that carry a run."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        run_id = getattr(record, "run_id", None)
        if run_id is None:
            return text
        where = [f"run={run_id}"]
        seq = getattr(record, "seq", None)
        if seq is not None:
            where.append(f"seq={seq}")
        step = getattr(record, "step", None)
        if step is not None:
            where.append(f"step={step}")
        return f"{text} [{' '.join(where)}]"
