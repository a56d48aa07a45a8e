"""Workflows for the memory race test: each run adds one to a shared counter, in a step that
also sleeps a little (so a worker killed mid-run is likely mid-update)."""

from __future__ import annotations

import asyncio

from stepstone import WorkflowContext, workflow


@workflow
async def add_one(ctx: WorkflowContext, i: int) -> int:
    async def slow_increment(doc: dict[str, int]) -> dict[str, int]:
        await asyncio.sleep(0.002)
        return {"n": doc["n"] + 1}

    doc = await ctx.memory("global", "counter").update(slow_increment, default={"n": 0})
    await ctx.memory("user", "seen", owner=f"u{i % 3}").update(lambda v: [*v, i], default=[])
    return int(doc["n"])
