"""Start runs for a worker pool: queues, retries with back-off, timeouts, results by handle.

    python examples/worker_queue.py

This script enqueues runs with ``client.start`` and serves them with a ``Worker`` in a thread of
the same process, so it runs on its own. In production the worker is its own process, started on
as many machines as you like:

    stepstone worker --app examples.worker_queue --concurrency 64
"""

from __future__ import annotations

import random
import tempfile
import threading
from pathlib import Path

from stepstone import (
    Client,
    RetryPolicy,
    RunFailed,
    Settings,
    Worker,
    WorkflowContext,
    current_step,
    open_store,
    step,
    workflow,
)


@step(
    retry=RetryPolicy(max_attempts=5, initial_delay_s=0.05, backoff=2.0, give_up_on=(ValueError,)),
    timeout_s=5,
)
async def call_flaky_api(order_id: int) -> str:
    info = current_step()
    if random.random() < 0.5:  # a transient failure: retried with back-off
        raise ConnectionError(f"attempt {info.attempt} of order {order_id} dropped")
    # the idempotency key is stable across attempts and replays: hand it to the API
    return f"order {order_id} confirmed (key {info.idempotency_key}, attempt {info.attempt})"


@step
async def validate(order_id: int) -> int:
    if order_id < 0:
        raise ValueError(f"order id {order_id} is negative")  # give_up_on: not retried
    return order_id


@workflow
async def process_order(ctx: WorkflowContext, order_id: int) -> str:
    checked = await validate(order_id)
    return await call_flaky_api(checked)


def main() -> None:
    db = Path(tempfile.mkdtemp()) / "queue.db"
    store = open_store(f"sqlite:///{db}", auto_migrate=True)
    worker = Worker(store, workflows=[process_order], concurrency=16, settings=Settings(poll_s=0.1))
    thread = threading.Thread(target=worker.run, daemon=True)
    with Client(store, workflows=[process_order]) as client:
        handles = [client.start(process_order, i) for i in (1, 2, 3, -4)]
        thread.start()
        for handle in handles:
            try:
                print(f"{handle.run_id}: {handle.result(timeout_s=30)}")
            except RunFailed as failed:
                print(f"{handle.run_id}: failed: {failed.error_type}: {failed.message}")
        worker.stop()
        thread.join(timeout=15)


if __name__ == "__main__":
    main()
