"""The app `bench/serve_live_bench.py` serves: a run that emits timed events, a webhook's run."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from stepstone import WorkflowContext, step, workflow


@step
async def pause(gap_s: float) -> None:
    await asyncio.sleep(gap_s)


@workflow
async def ticker(ctx: WorkflowContext, n: int, gap_s: float) -> int:
    """Emit ``n`` events ``gap_s`` apart, each carrying the wall-clock time it was emitted."""
    for i in range(n):
        await pause(gap_s)
        ctx.emit("tick", {"i": i, "t": time.time()})
    return n


@workflow(webhook="bench")
async def hooked(ctx: WorkflowContext, payload: dict[str, Any]) -> None:
    return None
