"""A schedule firing every second, for the tests that race real worker processes on it. Each run
appends ``<run id> <pid>`` to the file named by STEPSTONE_TEST_TICKS."""

from __future__ import annotations

import os

from stepstone import Schedule, WorkflowContext, step, workflow


@step
def note(run_id: str) -> None:
    with open(os.environ["STEPSTONE_TEST_TICKS"], "a") as log:
        log.write(f"{run_id} {os.getpid()}\n")
        log.flush()
        os.fsync(log.fileno())


@workflow
def every_second(ctx: WorkflowContext) -> None:
    note(ctx.run_id)


# catchup="all": no tick may be dropped, even when every worker is slow for a moment
second = Schedule("second", every_second, "* * * * * *", catchup="all")
