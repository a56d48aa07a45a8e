"""Durable memory shared across runs: a per-user profile and a global counter.

    python examples/memory.py

``ctx.memory(scope, key, owner=)`` is a JSON document in the store, shared by every run:
``session`` and ``user`` documents belong to an owner (a session or user id), ``global`` ones to
everybody. A read is a recorded step (a replay sees what the run saw); a write lands in the
transaction that records its step, compare-and-set on the version read. ``update(fn)`` reads,
applies ``fn`` and writes in one step, and runs again on the newer value when another run wrote
in between: here 12 concurrent runs add to one counter and none of their additions is lost.
Afterwards: ``stepstone memory list --db sqlite:///...``.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from stepstone import AsyncClient, WorkflowContext, workflow


@workflow
async def greet(ctx: WorkflowContext, user: str, topic: str) -> str:
    profile = ctx.memory("user", "profile", owner=user)
    seen = await profile.get(default={"topics": []})
    await profile.update(lambda p: {"topics": sorted({*(p or {"topics": []})["topics"], topic})})
    visits = await ctx.memory("global", "visits").update(lambda n: n + 1, default=0)
    known = ", ".join(seen["topics"]) or "nothing yet"
    return f"{user} asked about {topic} (known interests: {known}); visit #{visits}"


async def main() -> None:
    db = Path(tempfile.mkdtemp()) / "memory.db"
    async with AsyncClient(f"sqlite:///{db}") as client:
        print(await client.run(greet, "ann", "durability", run_id="first"))
        print(await client.run(greet, "ann", "schedules", run_id="second"))
        users = ["bo", "cy", "di"]
        await asyncio.gather(
            *(client.run(greet, users[i % 3], f"topic-{i}", run_id=f"r{i}") for i in range(12))
        )
        visits = await client.memory_get("global", "visits")
        ann: Any = await client.memory_get("user", "profile", owner="ann")
        assert visits is not None
        assert ann is not None
        print(f"visits: {visits.value} (version {visits.version}); ann: {ann.value['topics']}")


if __name__ == "__main__":
    asyncio.run(main())
