"""Issue 8, #1 and #2: no run stays running when something goes wrong inside stepstone, and a
store that refuses writes hands the run back instead of failing it (real workers, real stores).

The full-disk tests mount a small tmpfs (root only; skipped elsewhere); the real-process one is in
test_full_disk.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepstone import (
    AsyncClient,
    RunFailed,
    Settings,
    SyncWorkflowContext,
    Worker,
    WorkflowContext,
    open_store,
    step,
    workflow,
)
from stepstone.core.model import RunState
from stepstone.core.port import Store
from stepstone.runtime.endings import StoreBackOff
from tests.fulldisk import Disk, small_disk
from tests.test_worker import Serving

QUICK = Settings(lease_s=0.5, heartbeat_s=0.1, poll_s=0.05)


class Unprintable(Exception):
    """An error whose message cannot be read: storing it raises inside stepstone."""

    def __str__(self) -> str:
        raise RuntimeError("this error cannot say what it is")


@workflow
async def unprintable(ctx: WorkflowContext) -> None:
    raise Unprintable()


async def test_a_defect_inside_stepstone_fails_the_run_naming_it(store: Store) -> None:
    """An exception inside stepstone while it ends a run used to leave the run running (its
    lease renewed for ever, or recovered until max_recoveries): it fails the run at once."""
    client = AsyncClient(store, workflows=[unprintable])
    try:
        async with Serving(Worker(store, workflows=[unprintable], settings=QUICK)):
            handle = await client.start(unprintable)
            with pytest.raises(RunFailed) as failed:
                await handle.result(timeout_s=20)
        run = await client.get(handle.run_id)
    finally:
        await client.close()
    assert run.state is RunState.FAILED and run.lease_owner is None
    assert run.recoveries == 0, "the claim was left running and recovered"
    assert failed.value.error_type == "RuntimeError"
    assert "this error cannot say what it is" in failed.value.message
    assert "inside stepstone" in failed.value.message


def test_the_store_back_off_grows_per_consecutive_failure_of_a_run() -> None:
    back_off = StoreBackOff(first_s=0.5, max_s=4.0)
    assert [back_off.next_s("a") for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert back_off.next_s("b") == 0.5
    back_off.reset("a")
    assert back_off.next_s("a") == 0.5


# --- a full disk under an in-process worker, with a sync workflow ----------------------------


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    yield from small_disk(tmp_path)


entered, gate = threading.Event(), threading.Event()
calls: Counter[int] = Counter()
caught: list[BaseException] = []


@step
def chunk(n: int) -> str:
    calls[n] += 1
    if n == 1:
        entered.set()
        gate.wait(30)
    return str(n) * (256 * 1024)  # too big for the full disk


@workflow
def sync_chain(ctx: SyncWorkflowContext) -> int:
    total = 0
    for n in range(3):
        try:
            total += len(chunk(n))
            ctx.emit("progress", {"done": n})
        except Exception as exc:  # must never see a checkpoint error
            caught.append(exc)
            raise
    return total


async def _until(condition: object, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


@pytest.mark.slow
async def test_a_full_disk_hands_a_sync_workflow_back_and_it_resumes(
    disk: Disk, caplog: pytest.LogCaptureFixture
) -> None:
    entered.clear(), gate.clear(), calls.clear(), caught.clear()
    store = open_store(f"sqlite:///{disk.path / 't.db'}")
    await store.migrate()
    client = AsyncClient(store, workflows=[sync_chain])
    worker = Worker(store, workflows=[sync_chain], settings=Settings(poll_s=0.05))
    try:
        async with Serving(worker):
            handle = await client.start(sync_chain)
            await asyncio.to_thread(entered.wait, 30)
            disk.fill(leave=0)
            gate.set()
            await _until(
                lambda: "refused to close its claim" in caplog.text, "no close was refused"
            )
            assert await handle.status() is RunState.RUNNING
            disk.free_up()
            assert await handle.result(timeout_s=60) == 3 * 256 * 1024
        run = await client.get(handle.run_id)
        events = [e.data_json async for e in client.events(handle.run_id)]
        released = [e for e in await client.timeline(handle.run_id) if e.kind == "released"]
    finally:
        disk.free_up()
        gate.set()
        await client.close()
        await store.close()
    assert caught == []
    assert calls[0] == 1 and calls[2] == 1 and calls[1] >= 1, calls
    assert run.recoveries == 0
    assert events == ['{"done":0}', '{"done":1}', '{"done":2}']
    assert released and "disk is full" in released[0].detail
