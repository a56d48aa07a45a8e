"""The inbox across crashes: a launched run whose worker is SIGKILLed mid-run (or inside an
at-most-once step) gets exactly one item for its outcome, written by the worker that ends it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stepstone import Client, RunFailed
from stepstone.core.model import Launch
from tests.apps import crash_app
from tests.workers import WorkerProcess, step_counts, wait_for_file_line

pytestmark = [pytest.mark.crash, pytest.mark.slow]


@pytest.fixture
def client(store_url: str) -> Iterator[Client]:
    c = Client(store_url, workflows=crash_app)
    c._portal.call(c.store.migrate)
    yield c
    c.close()


def test_sigkill_mid_run_leaves_exactly_one_done_item(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    client.record_launch(Launch("crash-1", "ten-steps"))
    handle = client.start(crash_app.ten_steps, str(side), run_id="crash-1")
    with WorkerProcess(store_url, env={"CRASH_HOLD": "5"}) as first:
        wait_for_file_line(side, r"^start 5 ")
        assert client.inbox() == []  # nothing yet: the run is running
        first.kill()
    with WorkerProcess(store_url) as second:
        assert handle.result(timeout_s=30) == list(range(10))
        second.stop()
    _, ends, _ = step_counts(side)
    assert all(ends[seq] == 1 for seq in range(10))
    [item] = client.inbox(include_read=True)
    assert (item.run_id, item.outcome, item.skill) == ("crash-1", "done", "ten-steps")
    assert item.summary == "[\n  0,\n  1,\n  2,\n  3,\n  4,\n  5,\n  6,\n  7,\n  8,\n  9\n]"
    assert client.get("crash-1").recoveries == 1


def test_a_crash_inside_an_at_most_once_step_is_one_failed_item(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    client.record_launch(Launch("pay-1", "pay"))
    handle = client.start(crash_app.pay, str(side), run_id="pay-1")
    with WorkerProcess(store_url, env={"CRASH_IN_PAYMENT": "1"}) as first:
        wait_for_file_line(side, r"^payment ")
        first.proc.wait(timeout=10)  # it SIGKILLed itself inside the step
    with WorkerProcess(store_url) as second:
        with pytest.raises(RunFailed):
            handle.result(timeout_s=30)
        second.stop()
    [item] = client.inbox()
    assert (item.outcome, item.level) == ("failed", "error")
    assert item.summary.startswith("OutcomeUnknown: ")
    client.retry("pay-1")  # the operator's decision: a new outcome, a new item
    with WorkerProcess(store_url) as third:
        assert client.result("pay-1", timeout_s=30) == "paid"
        third.stop()
    assert [i.outcome for i in client.inbox()] == ["failed", "done"]


def test_fifty_launched_runs_on_two_racing_workers_leave_fifty_items(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    handles = []
    for i in range(50):
        client.record_launch(Launch(f"many-{i}", "ten-steps"))
        handles.append(client.start(crash_app.ten_steps, str(side), run_id=f"many-{i}"))
    with WorkerProcess(store_url) as one, WorkerProcess(store_url) as two:
        for handle in handles:
            assert handle.result(timeout_s=60) == list(range(10))
        one.stop()
        two.stop()
    items = client.inbox(include_read=True, limit=1000)
    assert sorted(i.run_id for i in items) == sorted(f"many-{i}" for i in range(50))
    assert {i.outcome for i in items} == {"done"}
