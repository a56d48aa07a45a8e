"""Schedules from a client: add, list, pause, resume, delete, trigger now, backfill a range."""

from __future__ import annotations

import builtins
from datetime import datetime

from stepstone.client.base import ClientBase
from stepstone.core.schedules import (
    FiredTick,
    FireTemplate,
    Schedule,
    ScheduleInfo,
    backfill_ticks,
)
from stepstone.errors import InvalidArgument, ScheduleNotFound

__all__ = ["Scheduling"]


class Scheduling(ClientBase):
    """Managing the store's schedules (the workers serving their workflows fire them)."""

    async def add_schedule(self, schedule: Schedule, *, replace: bool = False) -> ScheduleInfo:
        """Store ``schedule``; it first fires at its first tick from now. A name already stored
        with another definition raises InvalidArgument unless ``replace``. The workflow must be
        one this client knows (its input is checked against it)."""
        wf = self.registry.resolve(schedule.workflow)
        wf.bind_input(schedule.args, schedule.kwargs)
        return await self.store.save_schedule(schedule.spec, now=self.clock.now(), replace=replace)

    async def schedules(self) -> builtins.list[ScheduleInfo]:
        """Every stored schedule, by name."""
        return await self.store.list_schedules()

    async def get_schedule(self, name: str) -> ScheduleInfo:
        """The stored schedule ``name`` (ScheduleNotFound if there is none)."""
        info = await self.store.get_schedule(name)
        if info is None:
            raise ScheduleNotFound(name)
        return info

    async def pause_schedule(self, name: str) -> ScheduleInfo:
        """Stop firing ``name`` until resumed (its runs already started go on)."""
        return await self.store.pause_schedule(name, True, now=self.clock.now())

    async def resume_schedule(self, name: str) -> ScheduleInfo:
        """Fire ``name`` again from its next tick (ticks of the pause are not caught up)."""
        return await self.store.pause_schedule(name, False, now=self.clock.now())

    async def delete_schedule(self, name: str) -> None:
        """Forget ``name``; the runs it started stay."""
        await self.store.delete_schedule(name)

    async def trigger_schedule(self, name: str) -> str:
        """Start a run of the schedule now, outside its ticks and whatever its overlap policy;
        returns the run id (``schedule:NAME:<now>``)."""
        info = await self.get_schedule(name)
        template = FireTemplate.of(self.registry.get(info.spec.workflow))
        now = self.clock.now()
        (fired,) = await self.store.start_ticks(name, [now], template, now=now)
        assert fired.run_id is not None
        return fired.run_id

    async def backfill_schedule(
        self, name: str, start: datetime, end: datetime
    ) -> builtins.list[FiredTick]:
        """Start the runs of the schedule's ticks in ``[start, end]``; ticks already fired (or
        backfilled) start nothing new (outcome ``existing``)."""
        for label, at in (("start", start), ("end", end)):
            if not isinstance(at, datetime) or at.tzinfo is None:
                raise InvalidArgument(f"backfill {label} must be an aware datetime, got {at!r}")
        info = await self.get_schedule(name)
        template = FireTemplate.of(self.registry.get(info.spec.workflow))
        ticks = backfill_ticks(info.spec, start, end)
        if not ticks:
            return []
        return await self.store.start_ticks(name, ticks, template, now=self.clock.now())
