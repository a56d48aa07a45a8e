"""Schedules in code and in a worker: declaring them, DST in Europe/Paris (as cronsim decides),
and the worker's firer under an injected clock (a gap of several ticks, no sleeping)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from stepstone import Registry, Schedule, Worker, WorkflowContext, workflow
from stepstone.core.port import Store
from stepstone.core.schedules import ScheduleSpec, backfill_ticks, next_tick, tick_run_id
from stepstone.errors import InvalidArgument, WorkflowNotFound
from stepstone.runtime.schedules import ScheduleFirer

PARIS = "Europe/Paris"


@workflow(schedule="0 9 * * 1-5", timezone=PARIS)
def weekday_report(ctx: WorkflowContext) -> str:
    return "report"


@workflow
def greet(ctx: WorkflowContext, name: str) -> str:
    return f"hello {name}"


class StepClock:
    """A clock the test moves by hand (wall time and monotonic time together)."""

    def __init__(self, start: datetime) -> None:
        self.at = start
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
        self.mono += seconds


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# --- declaring ---------------------------------------------------------------------------------


def test_workflow_schedule_is_a_schedule_named_after_it() -> None:
    s = weekday_report.schedule
    assert s is not None and s.name == "weekday_report"
    assert s.spec.cron == "0 9 * * 1-5" and s.spec.timezone == PARIS
    assert s.spec.catchup == "latest" and s.spec.overlap == "allow"
    # Monday 2026-03-02 09:00 Paris is 08:00 UTC; Friday evening jumps to Monday
    assert next_tick(s.spec, utc(2026, 3, 2, 7)) == utc(2026, 3, 2, 8)
    assert next_tick(s.spec, utc(2026, 3, 6, 12)) == utc(2026, 3, 9, 8)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: workflow(schedule="61 * * * *")(greet.fn),
            "bad cron expression '61 \\* \\* \\* \\*'",
        ),
        (lambda: workflow(schedule="* * *")(greet.fn), "bad cron expression"),
        (
            lambda: workflow(schedule="0 9 * * *", timezone="Mars/Olympus")(greet.fn),
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            lambda: workflow(schedule="0 9 * * *")(greet.fn),
            "schedule 'greet'.*missing a required argument",
        ),
        (lambda: workflow(timezone="Europe/Paris"), "only meaningful with schedule="),
        (
            lambda: Schedule("s", greet, "0 9 * * *", kwargs={"nom": "x"}),
            "schedule 's'.*missing a required argument: 'name'",
        ),
        (
            lambda: Schedule("s", greet, "0 9 * * *", overlap="queue"),
            "overlap must be one of skip, buffer_one, allow",
        ),
        (
            lambda: Schedule("s", greet, "0 9 * * *", catchup="some"),
            "catchup must be one of none, latest, all",
        ),
        (lambda: Schedule("s", greet, "0 9 * * *", jitter_s=-1), "jitter_s must be a number >= 0"),
        (lambda: Schedule("a:b", greet, "0 9 * * *"), "schedule name"),
    ],
)
def test_bad_schedules_fail_where_they_are_declared(make: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        make()  # type: ignore[operator]


def test_registry_collects_schedules_and_refuses_unknown_workflows() -> None:
    morning = Schedule("morning", greet, "0 8 * * *", kwargs={"name": "team"})
    registry = Registry([weekday_report], schedules=[morning])
    assert [s.name for s in registry.schedules()] == ["morning", "weekday_report"]
    assert "greet" in registry.names()  # a Schedule given the workflow object registers it
    orphan = Registry([weekday_report], schedules=[Schedule("orphan", "nowhere", "0 8 * * *")])
    with pytest.raises(WorkflowNotFound, match="nowhere"):
        orphan.schedules()
    with pytest.raises(WorkflowNotFound, match="nowhere"):
        Worker(":memory:", workflows=orphan)


# --- DST in Europe/Paris: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00 ---------------


def _ticks(cron: str, start: datetime, end: datetime) -> list[datetime]:
    return backfill_ticks(ScheduleSpec("dst", "wf", cron, timezone=PARIS), start, end)


def test_dst_gap_a_fixed_time_in_the_skipped_hour_runs_when_the_clock_jumps() -> None:
    # 02:30 does not exist on 29 March: it runs at 03:00 CEST (01:00 UTC), once
    night = _ticks("30 2 * * *", utc(2026, 3, 28, 12), utc(2026, 3, 30, 12))
    assert night == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]


def test_dst_gap_an_hourly_expression_runs_by_elapsed_time() -> None:
    hourly = _ticks("0 * * * *", utc(2026, 3, 28, 23), utc(2026, 3, 29, 2))
    assert hourly == [
        utc(2026, 3, 28, 23),
        utc(2026, 3, 29, 0),
        utc(2026, 3, 29, 1),
        utc(2026, 3, 29, 2),
    ]


def test_dst_repeat_a_fixed_time_runs_once_at_its_first_occurrence() -> None:
    # 02:30 happens twice on 25 October (CEST then CET): it runs at the first, 00:30 UTC
    night = _ticks("30 2 * * *", utc(2026, 10, 24, 12), utc(2026, 10, 26, 12))
    assert night == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_dst_repeat_a_wildcard_expression_runs_in_both_hours() -> None:
    # hour 2 happens twice; with a wildcard minute cronsim follows elapsed time: both hours run
    halves = _ticks("*/30 2 * * *", utc(2026, 10, 24, 23), utc(2026, 10, 25, 3))
    assert halves == [
        utc(2026, 10, 25, 0, 0),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1, 0),
        utc(2026, 10, 25, 1, 30),
    ]
    every = _ticks("*/30 * * * *", utc(2026, 10, 24, 23, 45), utc(2026, 10, 25, 1, 45))
    assert every == [
        utc(2026, 10, 25, 0, 0),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1, 0),
        utc(2026, 10, 25, 1, 30),
    ]


async def test_firing_across_the_repeat_starts_the_fixed_time_once(store: Store) -> None:
    spec = ScheduleSpec("night", "wf", "30 2 * * *", timezone=PARIS, catchup="all")
    await store.save_schedule(spec, now=utc(2026, 10, 24, 12))
    from stepstone.core.schedules import FireTemplate

    templates = {"wf": FireTemplate("v1")}
    fired = []
    for hour in range(13, 52):  # a firing every hour through the night of the change
        fired += await store.fire_schedules(
            templates, now=utc(2026, 10, 24) + timedelta(hours=hour)
        )
    assert [f.run_id for f in fired] == [
        tick_run_id("night", utc(2026, 10, 25, 0, 30)),
        tick_run_id("night", utc(2026, 10, 26, 1, 30)),
    ]


# --- the worker's firer, with an injected clock -------------------------------------------------


@workflow(schedule="*/5 * * * *")
def five_minutely(ctx: WorkflowContext) -> None:
    return None


@pytest.mark.parametrize(("catchup", "expected"), [("none", 0), ("latest", 1), ("all", 3)])
async def test_firer_after_three_missed_ticks(store: Store, catchup: str, expected: int) -> None:
    clock = StepClock(utc(2026, 5, 4, 10, 1))
    registry = Registry([five_minutely])
    every5 = Schedule("every5", five_minutely, "*/5 * * * *", catchup=catchup)
    registry.add_schedule(every5)
    firer = ScheduleFirer(store, registry, clock, check_s=1.0)
    await firer.declare()
    assert await firer.fire_due() == []
    assert firer.wake_in(clock.now()) == 240.0  # it knows when to wake: 10:05
    clock.advance(240)
    fired = await firer.fire_due()
    assert {f.schedule for f in fired} == {"every5", "five_minutely"} and firer.fired == 2
    # the worker is down from 10:06 to 10:22 (10:10, 10:15, 10:20 missed)
    clock.advance(17 * 60)
    fired = await firer.fire_due()
    mine = [f.tick for f in fired if f.schedule == "every5" and f.outcome == "started"]
    assert len(mine) == expected
    if expected == 1:
        assert mine == [utc(2026, 5, 4, 10, 20)]
    info = await store.get_schedule("every5")
    assert info is not None and info.next_fire_at == utc(2026, 5, 4, 10, 25)


async def test_firer_reads_the_store_at_most_every_check_s(store: Store) -> None:
    """Between reads the firer answers from what it knows: with nothing due it does no I/O, so
    a schedule added meanwhile by another process is seen only at the next read."""
    clock = StepClock(utc(2026, 5, 4, 10, 0, 30))
    firer = ScheduleFirer(store, Registry([five_minutely]), clock, check_s=5.0)
    assert await firer.fire_due() == []  # reads: nothing stored
    spec = ScheduleSpec("late", "five_minutely", "* * * * *")
    await store.save_schedule(spec, now=clock.now())
    clock.advance(60)  # due now, but the monotonic clock says the last read is recent
    clock.mono -= 58
    assert await firer.fire_due() == []
    clock.mono += 58
    fired = await firer.fire_due()
    assert [f.run_id for f in fired] == [tick_run_id("late", utc(2026, 5, 4, 10, 1))]


def test_firing_a_per_second_schedule_is_cheap_to_plan() -> None:
    spec = ScheduleSpec("fast", "wf", "* * * * * *", catchup="latest")
    from stepstone.core.schedules import plan_ticks

    began = time.perf_counter()
    plan = plan_ticks(spec, utc(2026, 1, 1), utc(2026, 2, 1))  # a month down, per second
    assert plan.ticks == (utc(2026, 2, 1),) and plan.next_fire_at == utc(2026, 2, 1, 0, 0, 1)
    assert time.perf_counter() - began < 2.0
