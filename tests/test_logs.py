"""Repeated log lines are rate-limited per key and counted (a full or unreachable store)."""

from __future__ import annotations

import logging

import pytest

from stepstone.runtime.logs import QuietLog


def test_repeats_are_held_back_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    quiet = QuietLog(logging.getLogger("t.quiet"), period_s=30, monotonic=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="t.quiet"):
        assert quiet.warning("claim", "claiming failed (%s)", "disk full")
        for _ in range(1000):
            now[0] += 0.01
            assert not quiet.warning("claim", "claiming failed (%s)", "disk full")
        assert quiet.warning("other", "heartbeat failed")  # another key is not held back
        now[0] += 30
        assert quiet.warning("claim", "claiming failed (%s)", "disk full")
        quiet.recovered("claim", "claiming again")
        quiet.recovered("claim", "claiming again")  # said once
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "claiming failed (disk full)",
        "heartbeat failed",
        "claiming failed (disk full) (1000 more like it in the last 40s)",
        "claiming again",
    ]
