"""Concurrency: parallel steps, keyed gather, child workflows, and a child started to join later.

    python examples/fan_out.py

Every call takes its place in the run's journal when it is made, so a replay numbers concurrent
steps the same way. A branch of several steps is a child workflow: its steps live in its own run.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from stepstone import AsyncClient, WorkflowContext, open_store, step, workflow


@step
async def fetch(url: str) -> int:
    await asyncio.sleep(0.05)  # pretend I/O; all fetches overlap
    return len(url)


@step
def score(text_length: int) -> float:  # a sync step runs on a thread
    return text_length / 10


@workflow
async def summarize(ctx: WorkflowContext, url: str) -> dict[str, object]:
    length = await fetch(url)
    return {"url_length": length, "score": await ctx.step(score, length)}


@workflow
async def research(ctx: WorkflowContext, urls: list[str]) -> dict[str, object]:
    lengths = await ctx.parallel(*[fetch(u) for u in urls])
    both = await ctx.gather(first=fetch(urls[0]), last=fetch(urls[-1]))
    reports = await ctx.parallel(*[ctx.child(summarize, u) for u in urls[:2]])
    later = await ctx.start_child(summarize, urls[-1])
    ctx.emit("progress", {"children_done": len(reports)})
    final = await later.result()
    return {"lengths": lengths, "both": both, "reports": reports, "final": final}


async def main() -> None:
    db = Path(tempfile.mkdtemp()) / "fan_out.db"
    async with AsyncClient(open_store(f"sqlite:///{db}", auto_migrate=True)) as client:
        result = await client.run(
            research, ["https://a.example", "https://bb.example", "https://c.example/x"]
        )
        print(result)
        run = (await client.list(workflow="research"))[0]
        desc = await client.describe(run.run_id)
        print(f"{len(desc.steps)} journal entries, children: {[c.run_id for c in desc.children]}")


if __name__ == "__main__":
    asyncio.run(main())
