"""Deploying changed code: ``check`` tells which in-flight runs the new code can continue.

    python examples/versioning.py

Each run records the version of the code that started it. A run of v1 waits for a signal; v2
renames a step the run already passed, so v2 cannot replay it. ``check`` (the pre-deploy gate,
also ``stepstone check --app MODULE``) reports that; a v2 worker that meets the run anyway marks
it ``blocked`` with the reason instead of failing it; rolling back to compatible code and
``check(unblock=True)`` lets it finish.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stepstone import (
    Client,
    RunState,
    Settings,
    Worker,
    WorkflowContext,
    open_store,
    step,
    workflow,
)


@step
async def charge(amount: int) -> str:
    return f"charged {amount}"


@workflow(name="checkout", version="v1")
async def checkout_v1(ctx: WorkflowContext, amount: int) -> str:
    receipt = await ctx.step("charge", charge, amount)
    await ctx.wait_for_signal("shipped")
    return receipt


@workflow(name="checkout", version="v2")
async def checkout_v2(ctx: WorkflowContext, amount: int) -> str:
    receipt = await ctx.step("charge_card", charge, amount)  # renamed: not replay-compatible
    await ctx.wait_for_signal("shipped")
    return receipt


def deployed(store: Any, wf: Any) -> tuple[Worker, threading.Thread]:
    worker = Worker(store, workflows=[wf], settings=Settings(poll_s=0.05))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return worker, thread


def wait_until(check: Callable[[], bool]) -> None:
    while not check():
        time.sleep(0.02)


def main() -> None:
    store = open_store(f"sqlite:///{Path(tempfile.mkdtemp()) / 'versions.db'}", auto_migrate=True)
    with Client(store, workflows=[checkout_v1]) as client:
        handle = client.start(checkout_v1, 10, run_id="order-1")
        worker, thread = deployed(store, checkout_v1)
        wait_until(lambda: client.status("order-1") is RunState.WAITING)
        worker.stop()
        thread.join()
        print("v1: order-1 charged and waiting for 'shipped'; now deploying v2")

    with Client(store, workflows=[checkout_v2]) as client:
        for result in client.check():
            print(f"check against v2: {result.run_id} can continue: {result.ok} ({result.problem})")
        worker, thread = deployed(store, checkout_v2)  # deployed anyway
        client.signal("order-1", "shipped")
        wait_until(lambda: client.status("order-1") is RunState.BLOCKED)
        run = client.get("order-1")
        print(f"v2 met order-1: it is {run.state.value}: {run.error.message if run.error else ''}")
        worker.stop()
        thread.join()

    with Client(store, workflows=[checkout_v1]) as client:  # roll back
        results = [(r.run_id, r.ok) for r in client.check(unblock=True)]
        print(f"check against v1, unblocking: {results}")
        worker, thread = deployed(store, checkout_v1)
        print(
            f"order-1 finished on v1: {handle.run_id} -> {client.result('order-1', timeout_s=30)}"
        )
        worker.stop()
        thread.join()


if __name__ == "__main__":
    main()
