"""Routing and flow control end to end: limits, labels, pools, credentials, dead letters."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from stepstone import (
    AsyncClient,
    DuplicateRun,
    Pool,
    Queue,
    RunFailed,
    Settings,
    Worker,
    WorkflowContext,
    current_step,
    step,
    worker_credentials,
    workflow,
)
from stepstone.core.model import RunState, WorkerInfo
from stepstone.core.port import Store
from tests.test_worker import Serving

spans: dict[str, tuple[float, float]] = {}
executed_by: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _reset() -> None:
    spans.clear()
    executed_by.clear()


@step
async def hold(seconds: float) -> str:
    info = current_step()
    started = time.monotonic()
    await asyncio.sleep(seconds)
    spans[info.run_id] = (started, time.monotonic())
    who = worker_credentials().get("name", "?")
    executed_by[info.run_id] = who
    return who


@workflow
async def task(ctx: WorkflowContext, seconds: float = 0.0, user: str = "") -> str:
    return await hold(seconds)


@workflow(concurrency_key=lambda seconds=0.0, user="": user or None, labels={"tier": "gold"})
async def keyed(ctx: WorkflowContext, seconds: float = 0.0, user: str = "") -> str:
    return await hold(seconds)


@step
async def explode() -> None:
    raise RuntimeError("boom")


@workflow
async def doomed(ctx: WorkflowContext) -> None:
    await explode()


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def worker(store: Store, name: str, **kw: Any) -> Worker:
    settings = kw.pop("settings", Settings(poll_s=0.02, heartbeat_s=0.1))
    return Worker(
        store,
        workflows=[task, keyed, doomed],
        credentials={"name": name, "secret": f"s3cr3t-{name}"},
        settings=settings,
        worker_id=name,
        **kw,
    )


@pytest.fixture
async def aclient(store: Store) -> AsyncIterator[AsyncClient]:
    c = AsyncClient(store, workflows=[task, keyed, doomed])
    yield c
    await c.close()


async def test_dedup_key_on_start(aclient: AsyncClient) -> None:
    first = await aclient.start(task, dedup_key="invoice-7")
    again = await aclient.start(task, dedup_key="invoice-7")
    assert again.run_id == first.run_id
    with pytest.raises(DuplicateRun, match="dedup key 'invoice-7'") as info:
        await aclient.start(task, dedup_key="invoice-7", on_conflict="raise")
    assert info.value.run_id == first.run_id
    with pytest.raises(DuplicateRun, match="this run id"):
        await aclient.start(task, run_id=first.run_id, on_conflict="raise")
    assert len(await aclient.list()) == 1


async def test_global_concurrency_limit_across_workers(store: Store, aclient: AsyncClient) -> None:
    q = Queue("limited", concurrency=2)
    handles = [await aclient.start(task, 0.05, queue="limited") for _ in range(12)]
    # three workers with one slot each: without the queue's limit three runs would overlap
    workers = [worker(store, f"w{i}", queue=[q], concurrency=1) for i in range(3)]
    async with Serving(workers[0]), Serving(workers[1]), Serving(workers[2]):
        for h in handles:
            await h.result(timeout_s=30)
    assert max_overlap(list(spans.values())) == 2, "two at once, never three"


async def test_per_key_concurrency_and_workflow_defaults(
    store: Store, aclient: AsyncClient
) -> None:
    q = Queue("default", per_key_concurrency=1)
    handles = [await aclient.start(keyed, 0.03, user=u) for u in "ababab"]
    run = await aclient.get(handles[0].run_id)
    assert run.routing.concurrency_key == "a" and run.routing.labels == (("tier", "gold"),)
    async with Serving(worker(store, "gold", queue=[q], labels={"tier": "gold"}, concurrency=8)):
        for h in handles:
            await h.result(timeout_s=30)
    by_key: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for h, user in zip(handles, "ababab", strict=True):
        by_key[user].append(spans[h.run_id])
    assert max_overlap(by_key["a"]) == 1 and max_overlap(by_key["b"]) == 1
    assert max_overlap(list(spans.values())) == 2, "different keys ran side by side"


async def test_rate_limit_within_one_period(store: Store, aclient: AsyncClient) -> None:
    q = Queue("metered", rate_limit=(3, 0.5))
    handles = [await aclient.start(task, queue="metered") for _ in range(7)]
    async with Serving(worker(store, "w", queue=[q], concurrency=16)):
        for h in handles:
            await h.result(timeout_s=30)
    # The limit governs claims: each run's started_at is the claim's time as the store counted
    # it. (When the steps began lags the claim by a varying amount: a first claim's runs can
    # begin tens of ms later than the next period's, so step times could not be checked.)
    starts = []
    for h in handles:
        started_at = (await aclient.get(h.run_id)).started_at
        assert started_at is not None
        starts.append(started_at.timestamp())
    starts.sort()
    for i, first in enumerate(starts):
        in_window = [s for s in starts[i:] if s - first < 0.5]
        assert len(in_window) <= 3, f"more than 3 starts within 0.5 s: {starts}"
    assert starts[-1] - starts[0] >= 1.0, "7 starts at 3 per 0.5 s take two whole periods"


async def test_labels_target_worker_and_credentials(store: Store, aclient: AsyncClient) -> None:
    gpu = await aclient.start(task, labels={"gpu": "true"})
    pinned = await aclient.start(task, worker_id="plain")
    anywhere = [await aclient.start(task) for _ in range(4)]
    async with (
        Serving(worker(store, "plain")),
        Serving(worker(store, "gpu-box", labels={"gpu": True})),
    ):
        assert await gpu.result(timeout_s=10) == "gpu-box"
        assert await pinned.result(timeout_s=10) == "plain"
        for h in anywhere:
            await h.result(timeout_s=10)
    registry = {w.worker_id for w in await aclient.workers()}
    assert "plain" not in registry, "stopped workers leave the registry"


async def test_credentials_are_never_stored(
    store: Store, aclient: AsyncClient, store_url: str
) -> None:
    handle = await aclient.start(task)
    w = worker(store, "vault")
    async with Serving(w):
        await handle.result(timeout_s=10)
        workers = await aclient.workers()
    assert "s3cr3t" not in repr(workers) and "s3cr3t" not in repr(w.runner.credentials)
    assert repr(w.runner.credentials) == "<credentials: name, secret>"
    dumped = await store.export_runs(after_run_id=None, limit=100)
    assert "s3cr3t" not in repr(dumped)
    if store_url.startswith("sqlite"):
        path = store_url.removeprefix("sqlite:///")
        for suffix in ("", "-wal"):
            file = Path(path + suffix)
            if file.exists():
                assert b"s3cr3t" not in file.read_bytes()


async def test_round_robin_pool_spreads_runs(store: Store, aclient: AsyncClient) -> None:
    pool = Pool("render", strategy="round_robin")
    workers = [worker(store, f"r{i}", pool=pool, concurrency=4) for i in range(3)]
    async with Serving(workers[0]), Serving(workers[1]), Serving(workers[2]):
        handles = [await aclient.start(task, pool="render") for _ in range(6)]
        assigned = [(await aclient.get(h.run_id)).assigned_worker for h in handles]
        for h in handles:
            await h.result(timeout_s=10)
    assert assigned == ["r0", "r1", "r2", "r0", "r1", "r2"]
    assert [executed_by[h.run_id] for h in handles] == assigned


async def test_least_loaded_pool_counts_runs_claimed_since_the_last_heartbeat(
    store: Store, aclient: AsyncClient
) -> None:
    # default heartbeats (every 10 s): the load a worker reported says nothing of its new claims
    pool = Pool("render", strategy="least_loaded")
    settings = Settings(poll_s=0.02)
    w0, w1 = (worker(store, f"w{i}", pool=pool, concurrency=2, settings=settings) for i in (0, 1))
    async with Serving(w0), Serving(w1):
        handles = []
        for _ in range(4):  # each run is claimed before the next one is assigned
            handle = await aclient.start(task, 2.0, pool="render")
            handles.append(handle)
            deadline = time.monotonic() + 10
            while await handle.status() is not RunState.RUNNING:
                assert time.monotonic() < deadline, "the run was never claimed"
                await asyncio.sleep(0.01)
        assigned = [(await aclient.get(h.run_id)).assigned_worker for h in handles]
        for h in handles:
            await h.result(timeout_s=20)
    assert sorted(assigned) == ["w0", "w0", "w1", "w1"], assigned


async def test_run_pinned_to_a_worker_that_dies_is_released(
    store: Store, aclient: AsyncClient
) -> None:
    # a worker on another machine that stopped beating ten seconds ago (its lease is 1 s)
    gone = WorkerInfo("gone", "other-host", 4242, ("default",), 4, lease_s=1.0)
    await store.register_worker(gone, now=aclient.clock.now() - timedelta(seconds=10))
    handle = await aclient.start(task, worker_id="gone")
    survivor = worker(store, "survivor", settings=Settings(poll_s=0.02, heartbeat_s=0.05))
    async with Serving(survivor):
        # the survivor's reaper finds the stale heartbeat and returns the pinned run to the queue
        assert await handle.result(timeout_s=10) == "survivor"
    assert "gone" not in {w.worker_id for w in await aclient.workers()}


async def test_dead_letters_retry_fresh_and_purge(store: Store, aclient: AsyncClient) -> None:
    with pytest.raises(RunFailed):
        await aclient.run(doomed)
    [dead] = await aclient.dead_letters()
    assert dead.state is RunState.FAILED and dead.error is not None
    assert dead.error.type == "RuntimeError"
    fresh = await aclient.retry(dead.run_id, fresh=True)
    assert fresh.retry_of == dead.run_id and fresh.state is RunState.PENDING
    assert fresh.run_id != dead.run_id and fresh.input_json == dead.input_json
    assert await aclient.purge(older_than_s=3600) == 0
    assert await aclient.purge(older_than_s=0, state="failed") == 1
    assert [r.run_id for r in await aclient.list()] == [fresh.run_id]


async def test_queue_stats_and_worker_registry(store: Store, aclient: AsyncClient) -> None:
    for _ in range(3):
        await aclient.start(task, queue="stats")
    [stats] = [s for s in await aclient.queue_stats() if s.queue == "stats"]
    assert stats.pending == 3 and stats.running == 0
    assert stats.oldest_pending_age_s is not None and stats.oldest_pending_age_s >= 0
    w = worker(store, "counter", queue=["stats"])
    async with Serving(w):
        for r in await aclient.list(queue="stats"):
            await aclient.result(r.run_id, timeout_s=10)
        [info] = [x for x in await aclient.workers() if x.worker_id == "counter"]
        assert info.queues == ("stats",) and info.alive_at(aclient.clock.now())
        assert info.version == w.registry.version and len(info.version) == 12
    [stats] = [s for s in await aclient.queue_stats() if s.queue == "stats"]
    assert stats.pending == 0 and stats.completed_recently == 3 and stats.throughput_per_s > 0
