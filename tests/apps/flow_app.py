"""A Flow for crash tests, and its worker process: ``python -m tests.apps.flow_app DB_URL
[lease_s] [grace_s]``. Every task appends ``start``/``end`` lines with its task id and pid to the
side file it is given; ``CRASH_HOLD=<task id>`` makes that task hold in this process only."""

from __future__ import annotations

import logging
import os
import sys
import time

from stepstone import Settings, Worker
from stepstone.flow import Flow, get_task_context


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
    url = sys.argv[1]
    lease_s = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    grace_s = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(message)s")
    settings = Settings(lease_s=lease_s, poll_s=0.05, grace_s=grace_s)
    Worker(url, workflows=[crashy], settings=settings, concurrency=8).run()


if __name__ == "__main__":
    main()
