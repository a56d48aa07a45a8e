"""A Flow for crash tests, and its worker process: ``python -m tests.apps.flow_app DB_URL
[lease_s] [grace_s]``. Every task appends ``start``/``end`` lines with its task id and pid to the
side file it is given; ``CRASH_HOLD=<task id>`` makes that task hold in this process only."""

from __future__ import annotations

import os
import time

from stepstone.flow import Flow, get_task_context
from tests.apps import worker_main


def mark(path: str) -> str:
    ctx = get_task_context()
    assert ctx is not None
    pid = os.getpid()
    with open(path, "a") as f:
        f.write(f"start {ctx.task_id} {pid}\n")
    if os.environ.get("CRASH_HOLD") == ctx.task_id:
        time.sleep(60)
    with open(path, "a") as f:
        f.write(f"end {ctx.task_id} {pid}\n")
        f.flush()
        os.fsync(f.fileno())
    return path


flow = Flow("crashy")
for i in range(3):
    flow = flow.then(mark, name=f"t{i}")
flow = (
    flow.fork()
    .branch(mark, mark, name="f1")
    .branch(mark, name="g")
    .join(lambda outs: outs["g"], name="join")
)
for i in range(3, 6):
    flow = flow.then(mark, name=f"t{i}")
crashy = flow.build()
TASKS = ["t0", "t1", "t2", "f1", "mark", "g", "t3", "t4", "t5"]


def main() -> None:
    worker_main.main([crashy])


if __name__ == "__main__":
    main()
