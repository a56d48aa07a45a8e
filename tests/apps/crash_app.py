"""Workflows for crash tests: every step appends start/end lines with its pid to a side file.

``CRASH_HOLD=<seq>`` (and ``CRASH_HOLD_S``) make the step at that seq hold in this process only,
so a test can kill or stop the worker while the step is in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal

from stepstone import WorkflowContext, current_step, step, workflow


def _append(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


@step
async def mark(path: str, seq: int) -> int:
    pid = os.getpid()
    _append(path, f"start {seq} {pid}")
    if os.environ.get("CRASH_HOLD") == str(seq):
        await asyncio.sleep(float(os.environ.get("CRASH_HOLD_S", "60")))
    _append(path, f"end {seq} {pid}")
    return seq


@workflow
async def ten_steps(ctx: WorkflowContext, path: str) -> list[int]:
    return [await mark(path, i) for i in range(10)]


@workflow
async def sleepy(ctx: WorkflowContext, path: str, seconds: float) -> str:
    await mark(path, 0)
    await ctx.sleep(seconds)
    await mark(path, 1)
    return "woke"


@step(at_most_once=True)
async def send_payment(path: str) -> str:
    _append(path, f"payment {os.getpid()}")
    if os.environ.get("CRASH_IN_PAYMENT") == "1":
        os.kill(os.getpid(), signal.SIGKILL)
    return "paid"


@workflow
async def pay(ctx: WorkflowContext, path: str) -> str:
    await mark(path, 0)
    return await send_payment(path)


@step
async def whoami() -> str:
    return current_step().idempotency_key


@step
async def poison(path: str) -> None:
    """Kills the worker that runs it, every time."""
    _append(path, f"poison {os.getpid()}")
    os.kill(os.getpid(), signal.SIGKILL)


@workflow(max_recoveries=2)
async def kills_its_workers(ctx: WorkflowContext, path: str) -> None:
    await mark(path, 0)
    await poison(path)
