"""A five-step workflow for the chaos test. Every step appends ``start``/``end`` lines with the
run, seq, pid and CLOCK_MONOTONIC time to one side file (O_APPEND: each line lands whole), so the
test can tell which process executed which step when."""

from __future__ import annotations

import asyncio
import os
import time

from stepstone import WorkflowContext, current_step, step, workflow

LOG = os.environ.get("CHAOS_LOG", "chaos.log")
HOLD_S = float(os.environ.get("CHAOS_HOLD_S", "0.02"))


def _log(kind: str) -> None:
    info = current_step()
    line = f"{kind} {info.run_id} {info.seq} {os.getpid()} {time.monotonic():.6f}\n"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@step
async def work(n: int) -> int:
    _log("start")
    await asyncio.sleep(HOLD_S)  # long enough for a kill to land while steps are in flight
    _log("end")
    return n


@workflow
async def five(ctx: WorkflowContext) -> int:
    total = 0
    for i in range(5):
        total += await work(i)
    return total
