"""Cron schedules: a workflow started at every tick, exactly once however many workers fire it.

    python examples/schedules.py

The script serves a per-second schedule with a ``Worker`` in a thread until three ticks have
run, then backfills a weekday schedule over three days. In production, declare the schedules in
your app and run workers as usual; each worker fires the schedules of the workflows it serves:

    stepstone worker --app examples.schedules
    stepstone schedule add nightly --cron "0 3 * * *" --tz Europe/Paris \\
        --workflow sample --input '{"sensor": "t9"}' --app examples.schedules
    stepstone schedule list
"""

from __future__ import annotations

import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from stepstone import (
    Client,
    RunState,
    Schedule,
    Settings,
    Worker,
    WorkflowContext,
    step,
    workflow,
)


@workflow(schedule="0 9 * * 1-5", timezone="Europe/Paris")
def weekday_digest(ctx: WorkflowContext) -> str:
    """Every weekday at 09:00 Paris time (08:00 or 07:00 UTC, as daylight saving decides)."""
    return f"digest for {ctx.now():%Y-%m-%d}"


@step
def take_reading(sensor: str) -> float:
    return 20.5


@workflow
def sample(ctx: WorkflowContext, sensor: str) -> float:
    return take_reading(sensor)


# six fields: seconds first. overlap="skip": no new run while the last one is unfinished;
# catchup="latest": after an outage only the most recent missed tick runs.
every_second = Schedule(
    "sample-every-second",
    sample,
    "* * * * * *",
    kwargs={"sensor": "t1"},
    overlap="skip",
    catchup="latest",
)


def main() -> None:
    db = f"sqlite:///{Path(tempfile.mkdtemp()) / 'schedules.db'}"
    worker = Worker(
        db,
        workflows=[weekday_digest, sample],
        schedules=[every_second],
        settings=Settings(poll_s=0.1),
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    worker.ready.wait(10)
    with Client(db, workflows=[weekday_digest, sample]) as client:
        deadline = time.monotonic() + 30
        done: list[str] = []
        while len(done) < 3 and time.monotonic() < deadline:
            runs = client.list(workflow="sample", state=RunState.COMPLETED)
            done = sorted(r.run_id for r in runs)
            time.sleep(0.1)
        for run_id in done[:3]:
            print(f"{run_id} -> {client.result(run_id)}")
        print(f"{len(done[:3])} ticks of sample-every-second, each started once")
        for info in client.schedules():
            print(f"{info.name}: {info.spec.cron!r} {info.spec.timezone}, next {info.next_fire_at}")
        # backfill: the weekday ticks of Monday 2 to Wednesday 4 March 2026 (one run each;
        # a second backfill of the same days starts nothing new)
        start, end = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 4, 23, tzinfo=UTC)
        fired = client.backfill_schedule("weekday_digest", start, end)
        again = client.backfill_schedule("weekday_digest", start, end)
        print(f"backfilled {[f.tick.isoformat() for f in fired]}")
        print(f"again: {[f.outcome for f in again]}")
    worker.stop()
    thread.join(30)


if __name__ == "__main__":
    main()
