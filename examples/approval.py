"""The main job: a step, a durable sleep and a signal, on the embedded SQLite store.

    python examples/approval.py            # uses ~/.stepstone/stepstone.db (created on first use)
    python examples/approval.py --db sqlite:///demo.db

A purchase workflow fetches a quote (a checkpointed step), waits two seconds on a durable timer
(the run is suspended in the database, no worker is held), then waits for a human approval
signal. An "operator" thread plays the human: it waits until the run asks for approval and sends
the signal, as you would from another terminal with

    stepstone signal <run-id> approval --data '{"approved": true, "by": "you"}'

Kill this script at any point and run it again with the same --run-id: completed steps are not
run again, the timer keeps its original deadline, and a signal sent meanwhile is delivered.
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
import time

from stepstone import (
    Client,
    RunNotFound,
    RunState,
    Store,
    WorkflowContext,
    open_store,
    step,
    workflow,
)


@dataclasses.dataclass(frozen=True)
class Quote:
    item: str
    price: float


@dataclasses.dataclass(frozen=True)
class Approval:
    approved: bool
    by: str


@step
async def fetch_quote(item: str) -> Quote:
    print(f"  [step] fetching a quote for {item!r}")
    return Quote(item, 42.0)


@step
async def place_order(quote: Quote, approver: str) -> str:
    print(f"  [step] placing the order, approved by {approver}")
    return f"ordered {quote.item} for {quote.price:.2f} (approved by {approver})"


@workflow
async def purchase(ctx: WorkflowContext, item: str) -> str:
    quote = await fetch_quote(item)
    ctx.state["quote"] = quote.price
    await ctx.sleep(2)  # durable: survives a crash, holds no worker
    decision = await ctx.wait_for_signal("approval", timeout_s=300, schema=Approval)
    if not decision.approved:
        return "rejected"
    return await place_order(quote, decision.by)


def store_for(db: str | None) -> Store | None:
    """The store at ``db`` (migrated on first use, like the embedded default), or the default."""
    return open_store(db, auto_migrate=True) if db else None


def operator(db: str | None, run_id: str) -> None:
    """Plays the human: waits until the run asks for approval, then approves it."""
    with Client(store_for(db)) as client:
        while True:
            try:
                run = client.get(run_id)
            except RunNotFound:  # not started yet
                run = None
            if run is not None and run.state is RunState.WAITING and run.waits[0].kind == "signal":
                print(f"  [operator] run {run_id} waits for {run.waits[0].name!r}; approving")
                client.signal(run_id, "approval", {"approved": True, "by": "operator"})
                return
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="store URL (default: the embedded ~/.stepstone/stepstone.db)")
    parser.add_argument("--run-id", default=f"purchase-{int(time.time())}")
    args = parser.parse_args()
    approver = threading.Thread(target=operator, args=(args.db, args.run_id), daemon=True)
    with Client(store_for(args.db)) as client:
        print(f"run {args.run_id}: starting (store: {client.store.url})")
        approver.start()
        started = time.monotonic()
        result = client.run(purchase, "espresso machine", run_id=args.run_id)
        print(f"run {args.run_id}: {result!r} after {time.monotonic() - started:.1f}s")
        for entry in client.timeline(args.run_id):
            print(f"  {entry.at:%H:%M:%S.%f}  {entry.kind:<10} {entry.detail}")


if __name__ == "__main__":
    main()
