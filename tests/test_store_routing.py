"""Store contract, part two: routing, flow control, pools, statistics, purge, export and import.

Like the first part, it runs on every adapter unchanged, with time injected.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stepstone import open_store
from stepstone.core.model import (
    ErrorInfo,
    NewRun,
    PoolSpec,
    QueueSpec,
    Routing,
    RunQuery,
    RunState,
    StepKind,
    StepRecord,
    StepStatus,
    WorkerInfo,
)
from stepstone.core.port import ClaimFilter, Completed, Failed, NewEvent, Store
from stepstone.errors import InvalidArgument

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ALL = ClaimFilter(queues=("default", "q"), workflows=("wf",))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def worker(worker_id: str, **kw: object) -> WorkerInfo:
    fields: dict[str, object] = {
        "worker_id": worker_id,
        "host": "h",
        "pid": 1,
        "queues": ("default", "q"),
        "concurrency": 4,
    }
    fields.update(kw)
    return WorkerInfo(**fields)  # type: ignore[arg-type]


def run(run_id: str, queue: str = "default", **routing: object) -> NewRun:
    return NewRun(run_id, "wf", "v1", "{}", queue=queue, routing=Routing(**routing))  # type: ignore[arg-type]


async def claim_ids(store: Store, w: WorkerInfo, now: float, limit: int = 10) -> list[str]:
    return [c.run_id for c in await store.claim_runs(w, ALL, limit=limit, lease_s=30, now=at(now))]


async def test_dedup_key_allows_one_unfinished_run(store: Store) -> None:
    first, created, _ = await store.create_run(run("a", dedup_key="order-1"), now=at(0))
    assert created and first.routing.dedup_key == "order-1"
    again, created, _ = await store.create_run(run("b", dedup_key="order-1"), now=at(1))
    assert not created and again.run_id == "a"
    assert await store.get_run("b") is None
    [claim] = await store.claim_runs(worker("w"), ALL, limit=1, lease_s=30, now=at(2))
    await store.close_claim(claim, Completed("1"), now=at(3))
    third, created, _ = await store.create_run(run("c", dedup_key="order-1"), now=at(4))
    assert created and third.run_id == "c", "a finished run frees its key"


async def test_labels_target_worker_and_routing_fields_round_trip(store: Store) -> None:
    await store.create_run(run("gpu", labels=(("gpu", "true"), ("zone", "eu"))), now=at(0))
    await store.create_run(run("pinned", target_worker="w2"), now=at(0))
    await store.create_run(run("plain", concurrency_key="user-1"), now=at(0))
    stored = await store.get_run("gpu")
    assert stored is not None and stored.routing.labels == (("gpu", "true"), ("zone", "eu"))
    assert await claim_ids(store, worker("w1", labels=(("gpu", "true"),)), 1) == ["plain"]
    w2 = worker("w2", labels=(("gpu", "true"), ("zone", "eu"), ("x", "y")))
    assert sorted(await claim_ids(store, w2, 1)) == ["gpu", "pinned"]


async def test_concurrency_limit_counts_running_runs_across_workers(store: Store) -> None:
    await store.declare_queues([QueueSpec("q", concurrency=2)], now=at(0))
    for i in range(5):
        await store.create_run(run(f"r{i}", queue="q"), now=at(i))
    assert await claim_ids(store, worker("w1"), 10) == ["r0", "r1"]
    assert await claim_ids(store, worker("w2"), 10) == [], "the limit holds across workers"
    [r0] = [c for c in await store.claim_runs(worker("w1"), ALL, limit=1, lease_s=30, now=at(50))]
    assert r0.run_id in ("r0", "r1") and r0.recovered, (
        "an expired lease is reclaimed over the limit"
    )
    await store.close_claim(r0, Completed("1"), now=at(51))
    # r1's lease expired too: its recovery takes no new slot, so r2 also fits in the 2
    assert sorted(await claim_ids(store, worker("w2"), 52)) == ["r1", "r2"]
    assert await store.list_queues() == [QueueSpec("q", concurrency=2)]


async def test_per_key_concurrency(store: Store) -> None:
    await store.declare_queues([QueueSpec("q", per_key_concurrency=1)], now=at(0))
    await store.create_run(run("a1", queue="q", concurrency_key="alice"), now=at(0))
    await store.create_run(run("a2", queue="q", concurrency_key="alice"), now=at(1))
    await store.create_run(run("b1", queue="q", concurrency_key="bob"), now=at(2))
    await store.create_run(run("n1", queue="q"), now=at(3))
    assert await claim_ids(store, worker("w"), 10) == ["a1", "b1", "n1"]
    assert await claim_ids(store, worker("w"), 10) == []


async def test_rate_limit_counts_first_starts_in_the_period(store: Store) -> None:
    await store.declare_queues([QueueSpec("q", rate_limit=2, rate_period_s=10)], now=at(0))
    for i in range(5):
        await store.create_run(run(f"r{i}", queue="q"), now=at(0))
    assert await claim_ids(store, worker("w"), 1) == ["r0", "r1"]
    assert await claim_ids(store, worker("w"), 5) == []
    assert await claim_ids(store, worker("w"), 11.5) == ["r2", "r3"]


async def test_rate_limit_per_key(store: Store) -> None:
    spec = QueueSpec("q", rate_limit=1, rate_period_s=60, rate_limit_per_key=True)
    await store.declare_queues([spec], now=at(0))
    await store.create_run(run("a1", queue="q", concurrency_key="alice"), now=at(0))
    await store.create_run(run("a2", queue="q", concurrency_key="alice"), now=at(1))
    await store.create_run(run("b1", queue="q", concurrency_key="bob"), now=at(2))
    assert await claim_ids(store, worker("w"), 5) == ["a1", "b1"]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("round_robin", ["w1", "w2", "w3", "w1"]),
        ("least_loaded", ["w3", "w3", "w2", "w3"]),
    ],
)
async def test_pool_assignment_strategies(store: Store, strategy: str, expected: list[str]) -> None:
    await store.declare_pools([PoolSpec("p", strategy)], now=at(0))  # type: ignore[arg-type]
    for wid, load in (("w1", 3), ("w2", 2), ("w3", 0)):
        await store.register_worker(worker(wid, pool="p", load=load, concurrency=4), now=at(0))
    assigned = []
    for i in range(4):
        stored, _, _ = await store.create_run(run(f"r{i}", pool="p"), now=at(1))
        assigned.append(stored.assigned_worker)
    # least_loaded counts assigned, unclaimed runs as load: w3 0/4 -> 1/4 -> 2/4 ties w2 (by id)
    assert assigned == expected


async def test_least_loaded_counts_claimed_runs_under_concurrent_creates(
    store: Store, store_url: str
) -> None:
    await store.declare_pools([PoolSpec("p", "least_loaded")], now=at(0))
    for wid in ("w1", "w2"):
        await store.register_worker(worker(wid, pool="p", concurrency=2), now=at(0))
    first, _, _ = await store.create_run(run("r0", pool="p"), now=at(1))
    assert first.assigned_worker == "w1"
    assert await claim_ids(store, worker("w1", pool="p"), 2) == ["r0"]
    # w1 claimed r0 (its reported load is still 0); three creates race from three connections
    others = [open_store(store_url) for _ in range(3)]
    try:
        created = await asyncio.gather(
            *(s.create_run(run(f"r{i + 1}", pool="p"), now=at(3)) for i, s in enumerate(others))
        )
    finally:
        for s in others:
            await s.close()
    assigned = [first.assigned_worker] + [stored.assigned_worker for stored, _, _ in created]
    assert sorted(assigned) == ["w1", "w1", "w2", "w2"], assigned


async def test_threshold_pool_and_release_of_a_dead_workers_runs(store: Store) -> None:
    await store.declare_pools([PoolSpec("p", "threshold", threshold=0.5)], now=at(0))
    await store.register_worker(worker("busy", pool="p", load=3, concurrency=4), now=at(0))
    await store.register_worker(worker("idle", pool="p", load=0, concurrency=4), now=at(0))
    stored, _, _ = await store.create_run(run("r1", pool="p"), now=at(1))
    assert stored.assigned_worker == "idle"
    assert await claim_ids(store, worker("busy", pool="p"), 2) == [], "assigned to another"
    assert await claim_ids(store, worker("outsider"), 2) == [], "pool runs only go to the pool"
    await store.release_worker_runs(["idle"], now=at(3))
    released = await store.get_run("r1")
    assert released is not None and released.assigned_worker is None
    assert await claim_ids(store, worker("busy", pool="p"), 4) == ["r1"]


async def test_all_above_threshold_leaves_the_run_to_any_pool_worker(store: Store) -> None:
    await store.declare_pools([PoolSpec("p", "threshold", threshold=0.5)], now=at(0))
    await store.register_worker(worker("w1", pool="p", load=4, concurrency=4), now=at(0))
    stored, _, _ = await store.create_run(run("r1", pool="p"), now=at(1))
    assert stored.assigned_worker is None
    assert await store.list_pools() == [PoolSpec("p", "threshold", 0.5)]


async def test_dead_targeted_worker_releases_its_run(store: Store) -> None:
    await store.create_run(run("r1", target_worker="gone"), now=at(0))
    assert await claim_ids(store, worker("w1"), 1) == []
    await store.release_worker_runs(["gone"], now=at(2))
    assert await claim_ids(store, worker("w1"), 3) == ["r1"]


async def test_queue_stats(store: Store) -> None:
    await store.create_run(run("p1", queue="q"), now=at(0))
    await store.create_run(run("p2", queue="q"), now=at(5))
    await store.create_run(
        run(
            "later",
            queue="q",
        ),
        now=at(5),
    )
    await store.create_run(
        NewRun("future", "wf", "v1", "{}", queue="q", start_at=at(999)), now=at(5)
    )
    claims = await store.claim_runs(
        worker("w"), ClaimFilter(("default",), ("wf",)), limit=5, lease_s=30, now=at(6)
    )
    assert claims == []
    await store.create_run(run("d1"), now=at(0))
    [c] = await store.claim_runs(
        worker("w"), ClaimFilter(("default",), ("wf",)), limit=1, lease_s=30, now=at(6)
    )
    await store.create_run(run("d2"), now=at(0))
    [c2] = await store.claim_runs(
        worker("w"), ClaimFilter(("default",), ("wf",)), limit=1, lease_s=30, now=at(6)
    )
    await store.close_claim(c2, Completed("1"), now=at(8))
    stats = {s.queue: s for s in await store.queue_stats(now=at(10), window_s=60)}
    assert stats["q"].pending == 4 and stats["q"].running == 0
    assert stats["q"].oldest_pending_age_s == pytest.approx(10)
    assert stats["default"].running == 1 and stats["default"].completed_recently == 1
    assert stats["default"].throughput_per_s == pytest.approx(1 / 60)
    assert c.run_id == "d1"


async def test_purge_deletes_old_finished_runs_with_everything(store: Store) -> None:
    for i in range(3):
        await store.create_run(run(f"r{i}"), now=at(0))
    claims = await store.claim_runs(worker("w"), ALL, limit=3, lease_s=30, now=at(1))
    await store.record_step(
        claims[0], StepRecord(0, "s", StepKind.STEP, StepStatus.COMPLETED, "1"), now=at(2)
    )
    await store.append_events(claims[0], [NewEvent("e", None, 0)], now=at(2))
    await store.close_claim(claims[0], Completed("1"), now=at(10))
    await store.close_claim(claims[1], Failed(ErrorInfo("E", "m")), now=at(100))
    with pytest.raises(InvalidArgument):
        await store.purge_runs(finished_before=at(50), states=[RunState.RUNNING])
    assert (
        await store.purge_runs(finished_before=at(50), states=[RunState.COMPLETED, RunState.FAILED])
        == 1
    )
    assert await store.get_run(claims[0].run_id) is None
    assert await store.load_steps(claims[0].run_id) == []
    assert await store.read_events(claims[0].run_id) == []
    assert await store.get_run(claims[1].run_id) is not None, "finished too recently"
    assert await store.get_run(claims[2].run_id) is not None, "not finished"


@pytest.fixture
async def other_store(tmp_path: Path) -> AsyncIterator[Store]:
    """Another SQLite store: where the exported runs go."""
    s = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    await s.migrate()
    yield s
    await s.close()


async def test_export_and_import_round_trip(store: Store, other_store: Store) -> None:
    await store.create_run(run("r1", dedup_key="k", labels=(("a", "b"),)), now=at(0))
    w = worker("w", labels=(("a", "b"),))
    [claim] = await store.claim_runs(w, ALL, limit=1, lease_s=30, now=at(1))
    await store.record_step(
        claim,
        StepRecord(
            0, "s", StepKind.STEP, StepStatus.COMPLETED, "1", started_at=at(1), finished_at=at(2)
        ),
        now=at(2),
    )
    await store.send_signal("r1", "go", '{"x":1}', now=at(3))
    await store.append_events(claim, [NewEvent("progress", '{"n":1}', 0)], now=at(3))
    await store.create_run(run("r2"), now=at(4))
    exported = await store.export_runs(after_run_id=None, limit=10)
    assert [e.run.run_id for e in exported] == ["r1", "r2"]
    assert await store.export_runs(after_run_id="r1", limit=10) == exported[1:]
    assert await other_store.import_runs(exported) == 2
    assert await other_store.import_runs(exported) == 0, "importing again adds nothing"
    again = await other_store.export_runs(after_run_id=None, limit=10)
    assert [e.run for e in again] == [e.run for e in exported]
    assert [e.steps for e in again] == [e.steps for e in exported]
    assert [[(s.name, s.payload_json) for s in e.signals] for e in again] == [
        [(s.name, s.payload_json) for s in e.signals] for e in exported
    ]
    assert [[(v.kind, v.data_json, v.idx) for v in e.events] for e in again] == [
        [(v.kind, v.data_json, v.idx) for v in e.events] for e in exported
    ]
    assert [r.run_id for r in await other_store.list_runs(RunQuery())] == ["r2", "r1"]
