"""Durability with a real crash: a worker process is killed mid-run; a new one finishes the run.

    python examples/crash_resume.py

A worker subprocess runs a 10-step workflow and is SIGKILLed after step 5. A second worker
process takes the run over at once (the first one's process is gone, so its lease is released
without waiting for it to expire), replays steps 0-5 from the journal and runs 6-9.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stepstone import Client, Worker, WorkflowContext, open_store, step, workflow


@step
async def work(path: str, n: int) -> int:
    with open(path, "a") as log:
        log.write(f"step {n} ran in pid {os.getpid()}\n")
    if n == 5 and os.environ.get("CRASH_AFTER_5"):
        os.kill(os.getpid(), signal.SIGKILL)  # the process dies before step 5 is recorded
    return n * n


@workflow
async def ten_steps(ctx: WorkflowContext, path: str) -> int:
    return sum([await work(path, n) for n in range(10)])


def serve(db: str) -> None:
    Worker(db, workflows=[ten_steps]).run()


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    db, log = f"sqlite:///{folder / 'crash.db'}", folder / "steps.log"
    with Client(open_store(db, auto_migrate=True), workflows=[ten_steps]) as client:
        handle = client.start(ten_steps, str(log))
        here = str(Path(__file__).resolve().parent)
        env = {**os.environ, "PYTHONPATH": here}
        command = [sys.executable, "-c", f"import crash_resume; crash_resume.serve({db!r})"]
        first = subprocess.Popen(command, env={**env, "CRASH_AFTER_5": "1"})
        print(f"worker {first.pid} exited with {first.wait()} (killed during step 5)")
        started = time.monotonic()
        second = subprocess.Popen(command, env=env)
        print(
            f"result {handle.result(timeout_s=60)} from worker {second.pid} "
            f"in {(time.monotonic() - started) * 1000:.0f} ms after it started"
        )
        second.terminate()
        second.wait()
    print(log.read_text(), end="")


if __name__ == "__main__":
    main()
