"""Schedules: storing their definitions, pausing, and firing due ticks exactly once.

A firing reads the due schedules (PostgreSQL locks them, skipping those another firer holds),
creates each due tick's run (its id is the tick: :func:`~stepstone.core.schedules.tick_run_id`)
and moves the schedule's next fire time, all in one transaction. A second firer either skips the
locked row or finds the next fire time moved; a tick fired again anyway (a backfill, a retried
transaction) finds its run by id. So each tick starts one run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from stepstone.core.model import TERMINAL_STATES, NewRun, Routing
from stepstone.core.schedules import (
    FiredTick,
    FireTemplate,
    ScheduleInfo,
    ScheduleSpec,
    TickPlan,
    jitter_for,
    next_tick,
    plan_ticks,
    tick_run_id,
)
from stepstone.errors import InvalidArgument, ScheduleNotFound, Transient
from stepstone.store.scripts.runs import get_run, insert_run
from stepstone.store.scripts.tx import Tx

__all__ = [
    "delete_schedule",
    "fire_schedules",
    "get_schedule",
    "import_schedules",
    "list_schedules",
    "next_schedule_due",
    "pause_schedule",
    "save_schedule",
    "start_ticks",
]


async def get_schedule(tx: Tx, name: str) -> ScheduleInfo | None:
    row = await tx.one("get_schedule", {"name": name})
    return tx.columns.schedule(row) if row is not None else None


async def list_schedules(tx: Tx) -> list[ScheduleInfo]:
    return [tx.columns.schedule(r) for r in await tx.all("list_schedules", {})]


async def save_schedule(tx: Tx, spec: ScheduleSpec, now: datetime, replace_: bool) -> ScheduleInfo:
    """Store ``spec``: a new schedule first fires at its first tick after ``now``. An existing
    one is an error unless ``replace_``; replaced with the same definition it is left as it is
    (its next fire time and pause kept), with another one it fires from ``now`` on."""
    info = ScheduleInfo(spec, False, next_tick(spec, now), created_at=now, updated_at=now)
    row = await tx.one("insert_schedule", tx.columns.schedule_params(info))
    if row is not None:
        return tx.columns.schedule(row)
    existing = await get_schedule(tx, spec.name)
    if existing is None:  # deleted meanwhile
        raise Transient(f"schedule {spec.name!r} could not be stored")
    if existing.spec.definition() == spec.definition():
        return existing
    if not replace_:
        if tx.attempt > 0 and existing.created_at == now:
            return existing  # our earlier attempt stored it
        raise InvalidArgument(
            f"schedule {spec.name!r} already exists (for {existing.spec.workflow} at "
            f"{existing.spec.cron!r}); delete it first"
        )
    params = tx.columns.schedule_params(replace(info, created_at=existing.created_at))
    updated = await tx.one("redefine_schedule", params)
    if updated is None:
        raise Transient(f"schedule {spec.name!r} changed while being stored")
    return tx.columns.schedule(updated)


async def pause_schedule(tx: Tx, name: str, paused: bool, now: datetime) -> ScheduleInfo:
    """Pause or resume. Resumed, it fires from its first tick after ``now``: the ticks of the
    pause are not caught up."""
    info = await get_schedule(tx, name)
    if info is None:
        raise ScheduleNotFound(name)
    if info.paused == paused:
        return info
    next_fire_at = info.next_fire_at if paused else next_tick(info.spec, now)
    params = {"name": name, "paused": paused, "next_fire_at": next_fire_at, "now": now}
    row = await tx.one("set_schedule_paused", params)
    if row is None:
        raise ScheduleNotFound(name)
    return tx.columns.schedule(row)


async def delete_schedule(tx: Tx, name: str) -> None:
    """Forget the schedule (the runs it started stay)."""
    if await tx.run("delete_schedule", {"name": name}) != 1:
        if tx.attempt > 0:
            return  # our earlier attempt deleted it
        raise ScheduleNotFound(name)


async def next_schedule_due(tx: Tx, workflows: Sequence[str], now: datetime) -> datetime | None:
    row = await tx.one("next_schedule_due", {"workflows": list(workflows), "now": now})
    return tx.columns.time_in(row["due"]) if row is not None else None


async def fire_schedules(
    tx: Tx, templates: Mapping[str, FireTemplate], now: datetime, limit: int
) -> list[FiredTick]:
    """Fire the due schedules of the workflows in ``templates`` (up to ``limit`` of them).

    Those that start every tick (``overlap="allow"``, nothing held back) are fired together:
    one statement creates all their runs, one moves all their next fire times. The others are
    fired one by one (each looks at its last run)."""
    params = {"now": now, "workflows": sorted(templates), "limit": limit}
    fired: list[FiredTick] = []
    together: list[tuple[ScheduleInfo, TickPlan]] = []
    for row in await tx.all("due_schedules", params):
        info = tx.columns.schedule(row)
        template = templates[info.spec.workflow]
        if info.spec.overlap == "allow" and info.buffered_at is None:
            assert info.next_fire_at is not None  # due
            together.append((info, plan_ticks(info.spec, info.next_fire_at, now)))
        else:
            fired += await _fire(tx, info, template, now)
    if together:
        fired += await _fire_together(tx, together, templates, now)
    return fired


async def _fire_together(
    tx: Tx,
    plans: list[tuple[ScheduleInfo, TickPlan]],
    templates: Mapping[str, FireTemplate],
    now: datetime,
) -> list[FiredTick]:
    """Start every planned tick with one statement and advance every schedule with another."""
    t = tx.columns.time_out
    runs: list[dict[str, Any]] = []
    advances: list[dict[str, Any]] = []
    for info, plan in plans:
        spec, template = info.spec, templates[info.spec.workflow]
        for tick in plan.ticks:
            delay = jitter_for(spec, tick)
            runs.append(
                {
                    "run_id": tick_run_id(spec.name, tick),
                    "workflow": spec.workflow,
                    "version": template.version,
                    "input": spec.input_json,
                    "queue": spec.queue or template.queue,
                    "priority": template.priority,
                    "wake_at": t(tick + timedelta(seconds=delay) if delay else now),
                }
            )
        last = plan.ticks[-1] if plan.ticks else None
        advances.append(
            {
                "name": spec.name,
                "expected": t(info.next_fire_at),
                "next_fire_at": t(plan.next_fire_at),
                "last_tick_at": t(last) if last is not None else t(info.last_tick_at),
                "last_run_id": tick_run_id(spec.name, last) if last else info.last_run_id,
            }
        )
    created: set[str] = set()
    if runs:
        rows = await tx.all("create_tick_runs", {**_columns_of(runs), "ticks": runs, "now": now})
        created = {r["run_id"] for r in rows}
    moved = await tx.run(
        "advance_schedules", {**_columns_of(advances), "advances": advances, "now": now}
    )
    if moved != len(advances):  # another firer got to one of them: undo ours
        raise Transient("schedules were fired concurrently")
    return [
        FiredTick(
            info.spec.name,
            tick,
            "started" if (run_id := tick_run_id(info.spec.name, tick)) in created else "existing",
            run_id,
        )
        for info, plan in plans
        for tick in plan.ticks
    ]


def _columns_of(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """``[{"a": 1, "b": 2}, ...]`` as ``{"a_list": [1, ...], "b_list": [2, ...]}``: what a
    statement over arrays takes (PostgreSQL's ``unnest``; SQLite reads the rows as JSON)."""
    return {f"{key}_list": [r[key] for r in rows] for key in rows[0]} if rows else {}


async def _fire(
    tx: Tx, info: ScheduleInfo, template: FireTemplate, now: datetime
) -> list[FiredTick]:
    spec = info.spec
    name = spec.name
    fired: list[FiredTick] = []
    last_run_id, last_tick, buffered = info.last_run_id, info.last_tick_at, info.buffered_at
    # whether the last run is unfinished matters only to skip and buffer_one (a read spared)
    active = spec.overlap != "allow" and await _active(tx, last_run_id)
    if buffered is not None and not active:  # the held-back tick starts now
        run_id, created = await _start(tx, spec, buffered, template, now)
        fired.append(FiredTick(name, buffered, "started" if created else "existing", run_id))
        last_run_id, last_tick, buffered, active = run_id, buffered, None, True
    due = info.next_fire_at
    if due is None or due > now:
        if fired:
            await _advance(tx, info, due, last_tick, last_run_id, buffered, now)
        return fired
    plan = plan_ticks(spec, due, now)
    for tick in plan.ticks:
        if active and spec.overlap == "skip":
            fired.append(FiredTick(name, tick, "skipped"))
            continue
        if active and spec.overlap == "buffer_one":
            if buffered is None:
                buffered = tick
                fired.append(FiredTick(name, tick, "buffered"))
            else:
                fired.append(FiredTick(name, tick, "skipped"))
            continue
        run_id, created = await _start(tx, spec, tick, template, now)
        fired.append(FiredTick(name, tick, "started" if created else "existing", run_id))
        last_run_id, last_tick = run_id, tick
        active = spec.overlap != "allow" and (created or await _active(tx, run_id))
    await _advance(tx, info, plan.next_fire_at, last_tick, last_run_id, buffered, now)
    return fired


async def _advance(
    tx: Tx,
    info: ScheduleInfo,
    next_fire_at: datetime | None,
    last_tick: datetime | None,
    last_run_id: str | None,
    buffered: datetime | None,
    now: datetime,
) -> None:
    params = {
        "name": info.spec.name,
        "expected": info.next_fire_at,
        "next_fire_at": next_fire_at,
        "last_tick_at": last_tick,
        "last_run_id": last_run_id,
        "buffered_at": buffered,
        "now": now,
    }
    if await tx.run("advance_schedule", params) != 1:  # another firer got there: undo ours
        raise Transient(f"schedule {info.spec.name!r} was fired concurrently")


async def _active(tx: Tx, run_id: str | None) -> bool:
    """Whether the run is unfinished (a purged or missing run is not)."""
    if run_id is None:
        return False
    run = await get_run(tx, run_id)
    return run is not None and run.state not in TERMINAL_STATES


async def _start(
    tx: Tx, spec: ScheduleSpec, tick: datetime, template: FireTemplate, now: datetime
) -> tuple[str, bool]:
    """Create the tick's run (or find it): (its id, created?)."""
    run_id = tick_run_id(spec.name, tick)
    delay = jitter_for(spec, tick)
    new = NewRun(
        run_id=run_id,
        workflow=spec.workflow,
        version=template.version,
        input_json=spec.input_json,
        queue=spec.queue or template.queue,
        priority=template.priority,
        start_at=tick + timedelta(seconds=delay) if delay else None,
        routing=Routing(dedup_key=run_id),
    )
    stored, created = await insert_run(tx, new, now, None, 0)
    return stored.run_id, created


async def start_ticks(
    tx: Tx, name: str, ticks: Sequence[datetime], template: FireTemplate, now: datetime
) -> list[FiredTick]:
    """Start a run for each of ``ticks`` now, whatever the overlap policy (trigger, backfill);
    a tick whose run exists (fired or backfilled before) starts nothing new."""
    info = await get_schedule(tx, name)
    if info is None:
        raise ScheduleNotFound(name)
    fired = []
    for tick in ticks:
        run_id, created = await _start(tx, info.spec, tick, template, now)
        fired.append(FiredTick(name, tick, "started" if created else "existing", run_id))
    return fired


async def import_schedules(tx: Tx, schedules: Sequence[ScheduleInfo]) -> int:
    """Add the schedules not here yet (by name) as they are; how many were added."""
    added = 0
    for info in schedules:
        if await tx.one("insert_schedule", tx.columns.schedule_params(info)) is not None:
            added += 1
    return added
