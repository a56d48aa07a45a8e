"""The worker in-process: claims, concurrency, queues, priorities, delays, leases, shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from stepstone import AsyncClient, Settings, Worker, WorkflowContext, step, workflow
from stepstone.core.model import RunState, WorkerInfo
from stepstone.core.port import Store

active = {"now": 0, "max": 0}
order: list[str] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    active.update(now=0, max=0)
    order.clear()


@step
async def busy(name: str, seconds: float) -> str:
    active["now"] += 1
    active["max"] = max(active["max"], active["now"])
    order.append(name)
    try:
        await asyncio.sleep(seconds)
    finally:
        active["now"] -= 1
    return name


@workflow
async def job(ctx: WorkflowContext, name: str, seconds: float = 0.0) -> str:
    return await busy(name, seconds)


@workflow(queue="gpu")
async def gpu_job(ctx: WorkflowContext, name: str) -> str:
    return await busy(name, 0)


class Serving:
    """A worker serving in this event loop, stopped (gracefully) at the end."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Worker:
        self.task = asyncio.create_task(self.worker.serve())
        while not self.worker.ready.is_set():
            assert not self.task.done(), self.task.exception()
            await asyncio.sleep(0.001)
        return self.worker

    async def __aexit__(self, *exc: object) -> None:
        self.worker.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, 30)


@pytest.fixture
async def aclient(store: Store) -> AsyncIterator[AsyncClient]:
    c = AsyncClient(store, workflows=[job, gpu_job])
    yield c
    await c.close()


async def test_start_and_result_through_a_worker(store: Store, aclient: AsyncClient) -> None:
    async with Serving(Worker(store, workflows=[job], settings=Settings(poll_s=0.05))):
        handle = await aclient.start(job, "a")
        assert await handle.result(timeout_s=10) == "a"
        assert await handle.status() is RunState.COMPLETED


async def test_concurrency_is_bounded_by_slots(store: Store, aclient: AsyncClient) -> None:
    handles = [await aclient.start(job, f"j{i}", 0.05) for i in range(12)]
    async with Serving(
        Worker(store, workflows=[job], concurrency=3, settings=Settings(poll_s=0.05))
    ):
        assert [await h.result(timeout_s=20) for h in handles] == [f"j{i}" for i in range(12)]
    assert active["max"] == 3


async def test_queues_and_priorities(store: Store, aclient: AsyncClient) -> None:
    await aclient.start(gpu_job, "g")
    low = await aclient.start(job, "low")
    high = await aclient.start(job, "high", priority=10)
    async with Serving(
        Worker(store, workflows=[job, gpu_job], concurrency=1, settings=Settings(poll_s=0.05))
    ):
        await low.result(timeout_s=10)
        await high.result(timeout_s=10)
    assert order == ["high", "low"], "the gpu queue is not served by a default-queue worker"
    assert (await aclient.list(queue="gpu"))[0].state is RunState.PENDING
    async with Serving(
        Worker(store, workflows=[gpu_job], queue=["gpu"], settings=Settings(poll_s=0.05))
    ):
        assert (
            await aclient.handle((await aclient.list(queue="gpu"))[0].run_id).result(timeout_s=10)
            == "g"
        )


async def test_delayed_start(store: Store, aclient: AsyncClient) -> None:
    async with Serving(Worker(store, workflows=[job], settings=Settings(poll_s=5))):
        started = time.monotonic()
        handle = await aclient.start(job, "later", delay_s=0.3)
        assert await handle.result(timeout_s=10) == "later"
        assert time.monotonic() - started >= 0.3


async def test_heartbeat_keeps_long_steps_leased(store: Store, aclient: AsyncClient) -> None:
    settings = Settings(lease_s=0.3, heartbeat_s=0.05, poll_s=0.05)
    worker = Worker(store, workflows=[job], settings=settings)
    async with Serving(worker):
        handle = await aclient.start(job, "long", 1.0)
        assert await handle.result(timeout_s=10) == "long"
    run = await aclient.get(handle.run_id)
    assert run.recoveries == 0 and worker.runner.heartbeats >= 5


async def test_worker_registers_and_unregisters(store: Store) -> None:
    worker = Worker(store, workflows=[job], queue=["default", "gpu"], concurrency=7)
    async with Serving(worker):
        [info] = [w for w in await store.list_workers() if w.worker_id == worker.worker_id]
        assert (
            isinstance(info, WorkerInfo)
            and info.queues == ("default", "gpu")
            and info.concurrency == 7
        )
    assert worker.worker_id not in {w.worker_id for w in await store.list_workers()}


async def test_many_runs_drain(store: Store, aclient: AsyncClient) -> None:
    handles = [await aclient.start(job, f"n{i}") for i in range(200)]
    async with Serving(
        Worker(store, workflows=[job], concurrency=64, settings=Settings(poll_s=0.05))
    ):
        results: list[Any] = [await h.result(timeout_s=30) for h in handles]
    assert results == [f"n{i}" for i in range(200)]
