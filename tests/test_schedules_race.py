"""Exactly one run per tick with real worker processes racing on one store (SQLite and
PostgreSQL), one of them killed with SIGKILL along the way and another started in its place."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stepstone import open_store
from stepstone.core.model import RunQuery
from tests.workers import WorkerProcess

pytestmark = pytest.mark.crash

_TICK = re.compile(r"^schedule:second:(\d{8}T\d{6})Z (\d+)$")


def _ticks(path: Path) -> list[tuple[datetime, int]]:
    found = []
    for line in path.read_text().splitlines():
        m = _TICK.match(line)
        assert m, f"unexpected line {line!r}"
        at = datetime.strptime(m.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        found.append((at, int(m.group(2))))
    return found


def test_three_workers_start_each_tick_once(store_url: str, tmp_path: Path) -> None:
    ticks = tmp_path / "ticks.log"
    env = {"STEPSTONE_TEST_TICKS": str(ticks)}
    workers = [
        WorkerProcess(store_url, env=env, module="tests.apps.schedule_worker") for _ in range(3)
    ]
    try:
        for w in workers:
            w.wait_ready()
        _wait_lines(ticks, 4)
        workers[0].kill()  # mid-anything: the others go on firing
        replacement = WorkerProcess(store_url, env=env, module="tests.apps.schedule_worker")
        workers.append(replacement)
        replacement.wait_ready()
        seen = len(ticks.read_text().splitlines())
        _wait_lines(ticks, seen + 4)
    finally:
        for w in workers[1:]:
            w.stop()
        workers[0].__exit__()
    fired = _ticks(ticks)
    counts = Counter(at for at, _ in fired)
    # a tick's step ran twice only if the killed worker ran it before it could record it (steps
    # are at-least-once); a second run of a tick would show up from two live workers
    killed = workers[0].pid
    for at, n in counts.items():
        pids = [pid for t, pid in fired if t == at]
        assert n == 1 or (n == 2 and killed in pids), f"tick {at} ran {n} times, in {pids}"
    first, last = min(counts), max(counts)
    expected = int((last - first).total_seconds()) + 1
    # every second between the first and the last tick started one run: none missed, none twice
    missing = [
        first + timedelta(seconds=i)
        for i in range(expected)
        if first + timedelta(seconds=i) not in counts
    ]
    assert not missing, missing
    assert len({pid for _, pid in fired}) >= 2  # more than one worker executed them
    asyncio.run(_check_store(store_url, len(counts)))


async def _check_store(url: str, executed: int) -> None:
    store = open_store(url)
    try:
        info = await store.get_schedule("second")
        assert info is not None and info.spec.catchup == "all"
        runs = await store.list_runs(RunQuery(workflow="every_second", limit=10_000))
        ids = [r.run_id for r in runs]
        assert len(ids) == len(set(ids)) >= executed
        assert all(r.routing.dedup_key == r.run_id for r in runs)
    finally:
        await store.close()


def _wait_lines(path: Path, n: int, timeout: float = 30.0) -> None:
    """Wait until the side file has ``n`` lines (each written and fsynced by a run's step)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.02)
    text = path.read_text() if path.exists() else "(no file)"
    raise AssertionError(f"{path} has fewer than {n} lines after {timeout}s:\n{text}")
