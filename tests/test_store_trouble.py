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


# --- PostgreSQL refusing connections under an in-process worker ------------------------------

outage_gate = threading.Event()
outage_calls: Counter[int] = Counter()


@step
async def outage_step(n: int) -> int:
    outage_calls[n] += 1
    if n == 1:
        await asyncio.to_thread(outage_gate.wait, 30)
    return n


@workflow
async def outage_chain(ctx: WorkflowContext) -> int:
    total = 0
    for n in range(3):
        try:
            total += await outage_step(n)
        except Exception as exc:  # must never see a checkpoint error
            caught.append(exc)
            raise
    return total


def _allow_connections(url: str, allow: bool) -> None:
    """Let sessions into the database, or refuse new ones and end those open (an outage)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


@pytest.mark.postgres
async def test_an_unreachable_postgres_hands_the_run_back_and_it_resumes(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from stepstone.store.postgres.store import PostgresStore

    outage_gate.clear(), outage_calls.clear(), caught.clear()
    store = PostgresStore(pg_url, retry_s=0.3)  # the worker's: gives up on the outage at once
    client = AsyncClient(PostgresStore(pg_url), workflows=[outage_chain])  # waits it out
    try:
        # a lease longer than the outage: a shorter one expires meanwhile (its heartbeats fail
        # too), and the run may then be taken over as a recovery before its hand-back lands
        settings = Settings(poll_s=0.05)
        async with Serving(Worker(store, workflows=[outage_chain], settings=settings)):
            handle = await client.start(outage_chain)
            await _until(lambda: outage_calls[1] == 1, "step 1 did not start")
            _allow_connections(pg_url, False)
            outage_gate.set()
            await _until(lambda: caught or "refused to close" in caplog.text, "no outage seen")
            assert caught == [], "workflow code caught the checkpoint error"
            _allow_connections(pg_url, True)
            assert await handle.result(timeout_s=60) == 3
        run = await client.get(handle.run_id)
        released = [e for e in await client.timeline(handle.run_id) if e.kind == "released"]
    finally:
        _allow_connections(pg_url, True)
        outage_gate.set()
        await client.close()
        await client.store.close()
        await store.close()
    assert caught == []
    assert outage_calls[0] == 1 and outage_calls[2] == 1 and outage_calls[1] >= 1
    assert run.recoveries == 0
    assert released and "unavailable" in released[0].detail
