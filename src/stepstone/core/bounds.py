"""The ranges every store can hold: priorities, step numbers and durations, checked at the API.

SQLite would accept any 64-bit integer where PostgreSQL's columns are ``integer``; a duration
past ``MAX_DURATION_S`` overflows a ``datetime``. One range for both stores, checked where a
value enters (the client, the engine, the CLI), so a bad value is an :class:`InvalidArgument`
naming it and nothing is written.
"""

from __future__ import annotations

import math

from stepstone.errors import InvalidArgument

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MAX_DURATION_S",
    "check_duration",
    "check_int",
]

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
MAX_DURATION_S = 100 * 365.25 * 86_400.0
"""100 years: the longest delay, timeout, deadline or sleep."""


def check_int(what: str, value: object, *, lo: int = INT_MIN, hi: int = INT_MAX) -> int:
    """``value`` as a whole number in ``[lo, hi]``, else InvalidArgument naming ``what``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{what} must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise InvalidArgument(f"{what} must be between {lo} and {hi}, got {value}")
    return value


def check_duration(what: str, value: object, *, positive: bool = False) -> float:
    """``value`` as seconds: finite, >= 0 (> 0 with ``positive``), at most 100 years."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidArgument(f"{what} must be a number of seconds, got {value!r}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or (positive and seconds == 0):
        raise InvalidArgument(f"{what} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    if seconds > MAX_DURATION_S:
        raise InvalidArgument(
            f"{what} must be at most {MAX_DURATION_S:.0f} s (100 years), got {value!r}"
        )
    return seconds
