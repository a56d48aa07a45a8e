"""The schedules part of the store contract, on SQLite and PostgreSQL (time injected: no sleeps).

Firing is :meth:`Store.fire_schedules` with ``now`` passed in, so a worker "down for 3 ticks" is a
firing whose ``now`` is 3 ticks past the schedule's next fire time.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stepstone import open_store
from stepstone.core.model import RunQuery, RunState
from stepstone.core.port import ClaimFilter, Completed, Store
from stepstone.core.schedules import FireTemplate, ScheduleSpec, tick_run_id
from stepstone.errors import InvalidArgument, ScheduleNotFound
from stepstone.store.copy import copy_store
from tests.test_store_contract import W1

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)  # a Monday, on the minute
TEMPLATES = {"wf": FireTemplate(version="v1")}


def minute(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def every_minute(name: str = "tick", **kw: object) -> ScheduleSpec:
    fields: dict[str, object] = {"name": name, "workflow": "wf", "cron": "* * * * *"}
    fields.update(kw)
    return ScheduleSpec(**fields)  # type: ignore[arg-type]


async def started(store: Store, now: datetime) -> list[str]:
    fired = await store.fire_schedules(TEMPLATES, now=now)
    return [f.run_id for f in fired if f.outcome == "started" and f.run_id is not None]


async def finish(store: Store, run_id: str, now: datetime) -> None:
    claim = await store.claim_run(run_id, W1, lease_s=30, now=now)
    assert claim is not None, run_id
    await store.close_claim(claim, Completed("null"), now=now)


async def test_save_get_list_replace_pause_delete(store: Store) -> None:
    info = await store.save_schedule(every_minute(), now=minute(0.5))
    assert info.next_fire_at == minute(1) and not info.paused
    assert await store.get_schedule("tick") == info
    assert [s.name for s in await store.list_schedules()] == ["tick"]
    # the same definition again (every worker declares the app's schedules): left as it is
    assert await store.save_schedule(every_minute(), now=minute(5)) == info
    with pytest.raises(InvalidArgument, match="already exists"):
        await store.save_schedule(every_minute(cron="0 * * * *"), now=minute(5))
    replaced = await store.save_schedule(
        every_minute(cron="0 * * * *"), now=minute(5), replace=True
    )
    assert replaced.spec.cron == "0 * * * *" and replaced.next_fire_at == minute(60)
    paused = await store.pause_schedule("tick", True, now=minute(6))
    assert paused.paused and paused.next_fire_at == minute(60)
    assert await store.fire_schedules(TEMPLATES, now=minute(200)) == []
    resumed = await store.pause_schedule("tick", False, now=minute(200))
    assert not resumed.paused and resumed.next_fire_at == minute(240)  # the pause is not caught up
    await store.delete_schedule("tick")
    assert await store.get_schedule("tick") is None
    with pytest.raises(ScheduleNotFound):
        await store.delete_schedule("tick")
    with pytest.raises(ScheduleNotFound):
        await store.pause_schedule("tick", True, now=minute(7))


async def test_each_tick_fires_once_and_is_the_run_id_and_dedup_key(store: Store) -> None:
    await store.save_schedule(every_minute(input_json='{"args":[7],"kwargs":{}}'), now=T0)
    assert await store.fire_schedules(TEMPLATES, now=minute(0.9)) == []  # not due yet
    assert await started(store, minute(1)) == [tick_run_id("tick", minute(1))]
    assert await started(store, minute(1.5)) == []  # a second firer finds it moved
    run = await store.get_run(tick_run_id("tick", minute(1)))
    assert run is not None and run.routing.dedup_key == run.run_id
    assert run.input_json == '{"args":[7],"kwargs":{}}' and run.version == "v1"
    info = await store.get_schedule("tick")
    assert info is not None and info.next_fire_at == minute(2) and info.last_tick_at == minute(1)
    assert info.last_run_id == run.run_id
    # only firers serving the workflow fire it
    assert await store.fire_schedules({"other": FireTemplate("v1")}, now=minute(2)) == []


async def test_firers_racing_start_each_tick_once(store: Store) -> None:
    """Several store objects (each its own connections) fire the same ticks at once."""
    await store.save_schedule(every_minute(), now=T0)
    await store.save_schedule(every_minute("other", catchup="all"), now=T0)
    peers = [open_store(store.url) for _ in range(3)]
    try:
        for n in range(1, 6):
            results = await asyncio.gather(*(started(p, minute(n)) for p in [store, *peers]))
            ids = sorted(i for r in results for i in r)
            assert ids == sorted([tick_run_id("tick", minute(n)), tick_run_id("other", minute(n))])
    finally:
        for p in peers:
            await p.close()


@pytest.mark.parametrize(
    ("catchup", "expected"),
    [("none", []), ("latest", [3]), ("all", [1, 2, 3])],
)
async def test_catchup_after_three_missed_ticks(
    store: Store, catchup: str, expected: list[int]
) -> None:
    await store.save_schedule(every_minute(catchup=catchup), now=minute(0.5))
    # nobody fired at 1, 2 and 3; a worker comes back at 3:30
    ids = await started(store, minute(3.5))
    assert ids == [tick_run_id("tick", minute(n)) for n in expected]
    info = await store.get_schedule("tick")
    assert info is not None and info.next_fire_at == minute(4)


async def test_catchup_none_still_fires_a_tick_that_is_only_late(store: Store) -> None:
    await store.save_schedule(every_minute(catchup="none"), now=minute(0.5))
    assert await started(store, minute(1) + timedelta(seconds=2)) == [
        tick_run_id("tick", minute(1))
    ]


async def test_overlap_policies(store: Store) -> None:
    for policy in ("skip", "buffer_one", "allow"):
        await store.save_schedule(every_minute(policy, overlap=policy), now=T0)
    first = await store.fire_schedules(TEMPLATES, now=minute(1))
    assert {f.schedule: f.outcome for f in first} == dict.fromkeys(
        ("skip", "buffer_one", "allow"), "started"
    )
    # the runs of minute 1 are still pending at minute 2 and 3
    second = {f.schedule: f.outcome for f in await store.fire_schedules(TEMPLATES, now=minute(2))}
    assert second == {"skip": "skipped", "buffer_one": "buffered", "allow": "started"}
    third = {f.schedule: f.outcome for f in await store.fire_schedules(TEMPLATES, now=minute(3))}
    assert third == {"skip": "skipped", "buffer_one": "skipped", "allow": "started"}
    # minute 1's buffer_one run finishes: the held-back tick (minute 2) starts at the next firing
    await finish(store, tick_run_id("buffer_one", minute(1)), minute(3.2))
    later = await store.fire_schedules(TEMPLATES, now=minute(3.5))
    assert [(f.schedule, f.outcome, f.tick) for f in later] == [
        ("buffer_one", "started", minute(2))
    ]
    info = await store.get_schedule("buffer_one")
    assert info is not None and info.buffered_at is None
    assert info.last_run_id == tick_run_id("buffer_one", minute(2))
    assert await store.next_schedule_due(["wf"], now=minute(3.5)) == minute(4)


async def test_next_schedule_due_is_cheap_and_scoped(store: Store) -> None:
    assert await store.next_schedule_due(["wf"], now=T0) is None
    await store.save_schedule(every_minute(), now=T0)
    await store.save_schedule(every_minute("later", cron="0 12 * * *"), now=T0)
    assert await store.next_schedule_due(["wf"], now=T0) == minute(1)
    assert await store.next_schedule_due(["nothing"], now=T0) is None
    await store.pause_schedule("tick", True, now=T0)
    assert await store.next_schedule_due(["wf"], now=T0) == T0.replace(hour=12)


async def test_trigger_and_backfill_start_runs_once_per_tick(store: Store) -> None:
    await store.save_schedule(every_minute(overlap="skip"), now=T0)
    assert await started(store, minute(1)) == [tick_run_id("tick", minute(1))]
    # a backfill over fired and unfired ticks starts only the unfired ones, overlap or not
    fired = await store.start_ticks(
        "tick", [minute(-1), minute(0), minute(1)], TEMPLATES["wf"], now=minute(1.5)
    )
    assert [f.outcome for f in fired] == ["started", "started", "existing"]
    with pytest.raises(ScheduleNotFound):
        await store.start_ticks("nope", [T0], TEMPLATES["wf"], now=T0)
    runs = {r.run_id for r in await store.list_runs(_all_runs())}
    assert runs == {tick_run_id("tick", minute(n)) for n in (-1, 0, 1)}
    # a tick backfilled ahead of time is found by the firing, which starts nothing more
    await store.save_schedule(every_minute("ahead"), now=minute(1))
    await store.start_ticks("ahead", [minute(2)], TEMPLATES["wf"], now=minute(1.5))
    fired = await store.fire_schedules(TEMPLATES, now=minute(2))
    assert {(f.schedule, f.outcome) for f in fired} == {("ahead", "existing"), ("tick", "skipped")}


async def test_jitter_delays_the_start_by_the_same_amount_everywhere(store: Store) -> None:
    await store.save_schedule(every_minute(jitter_s=30), now=T0)
    (run_id,) = await started(store, minute(1))
    run = await store.get_run(run_id)
    assert run is not None and run.wake_at is not None
    delay = (run.wake_at - minute(1)).total_seconds()
    assert 0 <= delay < 30
    flt = ClaimFilter(queues=("default",), workflows=("wf",))
    assert await store.has_claimable(flt, now=run.wake_at)
    assert delay == 0 or not await store.has_claimable(flt, now=minute(1))


async def test_copy_store_copies_schedules(store: Store, tmp_path: Path) -> None:
    await store.save_schedule(every_minute(timezone="Europe/Paris", overlap="skip"), now=T0)
    await store.pause_schedule("tick", True, now=T0)
    target = open_store(f"sqlite:///{tmp_path}/copy.db")
    await target.migrate()
    try:
        report = await copy_store(store, target, now=T0)
        assert report.schedules == 1
        assert await target.list_schedules() == await store.list_schedules()
        again = await copy_store(store, target, now=T0)  # schedules already there are skipped
        assert again.schedules == 0
    finally:
        await target.close()


def _all_runs() -> RunQuery:
    return RunQuery(states=(RunState.PENDING,), limit=100)
