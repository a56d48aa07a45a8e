"""Start options and worker credentials: one place for how a run starts, secrets kept out of it.

    python examples/start_options.py

``client.with_options(StartOptions(...))`` gives a starter whose ``start``/``run`` keep the
workflow's own parameter types (a type checker sees ``charge(customer: str, cents: int)``) while
the options say how the run starts: its queue, priority, a dedup key (one unfinished run per
key), a deadline. The worker's credentials (an API key, say) reach steps through
``worker_credentials()``; they are never part of a run's input, the store or a log line. From
the command line the same worker is:

    stepstone worker --app examples.start_options --credential PAYMENTS_KEY=PAYMENTS_KEY_ENV
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from stepstone import (
    Client,
    Settings,
    StartOptions,
    Worker,
    WorkflowContext,
    open_store,
    step,
    worker_credentials,
    workflow,
)


@step
async def call_payments(customer: str, cents: int) -> str:
    key = worker_credentials()["PAYMENTS_KEY"]  # from the worker, never from the run's input
    return f"charged {customer} {cents / 100:.2f} with key ...{key[-4:]}"


@workflow
async def charge(ctx: WorkflowContext, customer: str, cents: int) -> str:
    return await call_payments(customer, cents)


def main() -> None:
    db = Path(tempfile.mkdtemp()) / "options.db"
    store = open_store(f"sqlite:///{db}", auto_migrate=True)
    worker = Worker(
        store,
        workflows=[charge],
        queue="payments",
        credentials={"PAYMENTS_KEY": "sk-test-0000-4242"},
        settings=Settings(poll_s=0.1),
    )
    with Client(store, workflows=[charge]) as client:
        urgent = client.with_options(
            StartOptions(queue="payments", priority=10, dedup_key="charge:ana", deadline_s=60)
        )
        first = urgent.start(charge, "ana", 4200)
        again = urgent.start(charge, "ana", 4200)  # the same key while unfinished: the same run
        print(f"dedup: second start returned the first run: {again.run_id == first.run_id}")
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        print(first.result(timeout_s=30))
        stored = client.get(first.run_id)
        print(
            f"queue {stored.queue}, priority {stored.priority}; the key is not in the input: "
            f"{'sk-test' not in stored.input_json}"
        )
        worker.stop()
        thread.join(timeout=15)


if __name__ == "__main__":
    main()
