"""Firing schedules from a worker: declare the app's schedules, then start due ticks cheaply.

A worker asks the store when its next schedule is due at most every ``schedule_check_s`` (one
small indexed read, none in between however often its claim loop turns), wakes at that time
(:meth:`ScheduleFirer.wake_in`) and fires. Any number of workers may fire the same schedules:
the store starts each tick once (see :meth:`~stepstone.core.port.Store.fire_schedules`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from stepstone.core.clock import Clock
from stepstone.core.definitions import Registry
from stepstone.core.port import Store
from stepstone.core.schedules import FiredTick, FireTemplate

__all__ = ["ScheduleFirer", "templates_of"]

log = logging.getLogger("stepstone.schedules")

BATCH = 100
"""Schedules fired per transaction (more due: another transaction at once)."""


def templates_of(registry: Registry) -> dict[str, FireTemplate]:
    """What the store needs to start runs of each of these workflows."""
    return {wf.name: FireTemplate.of(wf) for wf in registry}


class ScheduleFirer:
    """Fires the due schedules of one registry's workflows; the clock is injected, so tests move
    time instead of sleeping."""

    def __init__(self, store: Store, registry: Registry, clock: Clock, check_s: float) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.check_s = check_s
        self.templates = templates_of(registry)
        self.workflows = sorted(self.templates)
        self.fired = 0
        """Runs started by this firer (ticks found already started are not counted)."""
        self._due: datetime | None = None
        self._checked = float("-inf")

    async def declare(self) -> None:
        """Store the schedules declared in code (a changed definition replaces the stored one
        and fires from now on; an unchanged one keeps its next fire time)."""
        now = self.clock.now()
        for schedule in self.registry.schedules():
            await self.store.save_schedule(schedule.spec, now=now, replace=True)
        self._checked = float("-inf")

    async def fire_due(self) -> list[FiredTick]:
        """Fire what is due now; reads the next due time when the last read is older than
        ``check_s`` (or its due time has come)."""
        now = self.clock.now()
        if self._due is None or self._due > now:
            if self.clock.monotonic() - self._checked < self.check_s:
                return []
            await self._refresh(now)
            if self._due is None or self._due > now:
                return []
        fired: list[FiredTick] = []
        while True:  # batches of BATCH schedules until none is left due
            batch = await self.store.fire_schedules(self.templates, now=now, limit=BATCH)
            fired += batch
            if len({f.schedule for f in batch}) < BATCH:
                break
        self.fired += sum(1 for f in fired if f.outcome == "started")
        for f in fired:
            level = logging.INFO if f.outcome == "started" else logging.DEBUG
            log.log(level, "schedule %s tick %s: %s %s", f.schedule, f.tick, f.outcome, f.run_id)
        await self._refresh(now)
        if self._due is not None and self._due <= now:
            # still due (a tick held back until a run finishes): look again after check_s
            self._due = None
        return fired

    def wake_in(self, now: datetime) -> float | None:
        """Seconds until the next known due time (None: none known)."""
        if self._due is None:
            return None
        return max((self._due - now).total_seconds(), 0.0)

    async def _refresh(self, now: datetime) -> None:
        self._due = await self.store.next_schedule_due(self.workflows, now=now)
        self._checked = self.clock.monotonic()
