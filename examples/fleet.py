"""A small fleet: queue limits, per-user concurrency, labels, a worker pool, credentials, and
dead letters.

    python examples/fleet.py                               # on a temporary SQLite file
    python examples/fleet.py --db postgresql://user@host/db   # migrated with `stepstone migrate`

Three workers share one store (threads here; processes on many machines in production, which is
the same code: `stepstone worker --app examples.fleet --label gpu=true --pool render`). Limits are
declared in code and stored, so every worker enforces the same ones.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from stepstone import (
    AsyncClient,
    Pool,
    Queue,
    RetryPolicy,
    RunFailed,
    Settings,
    Worker,
    WorkflowContext,
    current_step,
    open_store,
    step,
    worker_credentials,
    workflow,
)

# at most 2 reports at once across the fleet, one per user at a time, 10 starts per second
reports = Queue("reports", concurrency=2, per_key_concurrency=1, rate_limit=(10, 1.0))
render = Pool("render", strategy="round_robin")
seen: dict[str, list[tuple[str, float, float]]] = defaultdict(list)


@step
async def build_report(user: str) -> str:
    started = time.monotonic()
    await asyncio.sleep(0.05)
    worker = worker_credentials()["worker"]  # per-worker credentials, never stored
    seen[user].append((worker, started, time.monotonic()))
    return f"report for {user} by {worker}"


@workflow(queue="reports", concurrency_key=lambda user: user)
async def report(ctx: WorkflowContext, user: str) -> str:
    return await build_report(user)


@step
async def render_frame(n: int) -> str:
    return f"frame {n} on {worker_credentials()['worker']} ({current_step().run_id})"


@workflow(pool="render", labels={"gpu": "true"})
async def frame(ctx: WorkflowContext, n: int) -> str:
    return await render_frame(n)


@step(retry=RetryPolicy(max_attempts=2, initial_delay_s=0.01))
async def call_flaky_partner() -> str:
    raise ConnectionError("partner API is down")


@workflow
async def sync_partner(ctx: WorkflowContext) -> str:
    return await call_flaky_partner()


def worker(store: object, name: str, **kw: object) -> Worker:
    return Worker(
        store,  # type: ignore[arg-type]
        workflows=[report, frame, sync_partner],
        credentials={"worker": name},
        settings=Settings(poll_s=0.05),
        worker_id=name,
        **kw,  # type: ignore[arg-type]
    )


async def main(db: str | None) -> None:
    url = db or f"sqlite:///{Path(tempfile.mkdtemp()) / 'fleet.db'}"
    store = open_store(url, auto_migrate=db is None)
    fleet = [
        worker(store, "cpu-1", queue=[reports, "default"]),
        worker(store, "gpu-1", queue=[reports, "default"], labels={"gpu": "true"}, pool=render),
        worker(store, "gpu-2", queue=["default"], labels={"gpu": "true"}, pool=render),
    ]
    serving = [asyncio.create_task(w.serve()) for w in fleet]
    while not all(w.ready.is_set() for w in fleet):
        await asyncio.sleep(0.01)
    async with AsyncClient(store, workflows=[report, frame, sync_partner]) as client:
        users = ["ana", "bo", "ana", "cy", "bo", "ana"]
        handles = [await client.start(report, u) for u in users]
        frames = [await client.start(frame, n) for n in range(4)]
        failing = await client.start(sync_partner)
        for h in handles + frames:
            print(await h.result(timeout_s=30))
        try:
            await failing.result(timeout_s=30)
        except RunFailed as exc:
            print(f"dead letter: {exc.error_type}: {exc.message}")
        spans = [(s, e) for runs in seen.values() for _, s, e in runs]
        edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
        most = max(sum(d for _, d in edges[: i + 1]) for i in range(len(edges)))
        print(f"reports running at once, at most: {most} (limit 2, one per user)")
        for stats in await client.queue_stats():
            print(f"queue {stats.queue}: {stats.completed_recently} done, {stats.pending} pending")
        print(f"dead letters: {[r.run_id for r in await client.dead_letters()]}")
    for w in fleet:
        w.stop()
    await asyncio.gather(*serving)
    await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="store URL (default: a temporary SQLite file)")
    asyncio.run(main(parser.parse_args().db))
