"""DBOS Transact workloads for the "durable core" benchmark (run with bench/.peers/venv/bin/python).

The same workloads as ``bench/stepstone_bench.py``, on DBOS with its SQLite system database
(``system_database_url="sqlite:///…"``, DBOS's own defaults: rollback journal, synchronous=FULL,
IMMEDIATE transactions):

- ``seq100``: one ``@DBOS.workflow`` of 100 sequential no-op async ``@DBOS.step`` calls, µs/step;
- ``wf3``: N three-step workflows called one after another in-process, workflows per second;
- ``queue``: N three-step workflows enqueued on a registered queue by one process that does not
  listen to it (enqueue rate), then drained by a fresh DBOS process listening with
  ``worker_concurrency=64`` (drain rate from the end of ``DBOS.launch()`` until an outside
  observer sees N workflows in SUCCESS), and end to end (N / (enqueue + drain));
- ``par200``: one workflow doing ``asyncio.gather`` of 200 no-op async steps, milliseconds;
- ``recovery``: a DBOS process running a 10-step workflow is SIGKILLed while step 6 executes;
  milliseconds from spawning a new DBOS process (which recovers pending workflows at launch) to
  an outside observer seeing the workflow in SUCCESS;
- ``startup``: ``python -c "import dbos"`` and a whole process running a 1-step workflow on a
  fresh database (launch included), wall milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import common
from dbos import DBOS, DBOSConfig, SetWorkflowID

SYSTEM = "dbos"
HERE = Path(__file__).resolve()
QUEUE = "bench"
WORKER_CONCURRENCY = 64
POLLING_INTERVAL_S = 0.01  # DBOS's default is 1.0 s; 10 ms lets the queue drain at its best
SUCCESS_SQL = "SELECT count(*) FROM workflow_status WHERE status = 'SUCCESS' AND name LIKE '%wf3%'"


def launch(db: Path, *, listen: list[str] | None = None) -> None:
    config: DBOSConfig = {
        "name": "bench",
        "system_database_url": f"sqlite:///{db.resolve()}",
        "run_admin_server": False,
        "log_level": "ERROR",
    }
    DBOS(config=config)
    if listen is not None:
        DBOS.listen_queues(listen)
    DBOS.launch()


# --- workflows --------------------------------------------------------------------------------


@DBOS.step()
async def noop() -> None:
    return None


@DBOS.workflow()
async def seq100() -> int:
    for _ in range(100):
        await noop()
    return 100


@DBOS.workflow()
async def wf3() -> int:
    await noop()
    await noop()
    await noop()
    return 3


@DBOS.workflow()
async def par200() -> int:
    await asyncio.gather(*[noop() for _ in range(200)])
    return 200


@DBOS.step()
async def mark(i: int, side_file: str) -> int:
    with open(side_file, "a") as f:
        f.write(f"{i}\n")
    if os.environ.get("BENCH_HANG_AT") == str(i):
        await asyncio.sleep(3600)
    return i


@DBOS.workflow()
async def wf10(side_file: str) -> int:
    for i in range(1, 11):
        await mark(i, side_file)
    return 10


# --- in-process workloads ---------------------------------------------------------------------


async def bench_seq100(reps: int) -> dict[str, tuple[str, list[float]]]:
    samples = []
    for i in range(reps + 1):
        t0 = time.perf_counter()
        assert await seq100() == 100
        if i:
            samples.append((time.perf_counter() - t0) * 1e6 / 100)
    return {"us_per_step": ("µs/step", samples)}


async def bench_wf3(reps: int, n: int) -> dict[str, tuple[str, list[float]]]:
    for _ in range(min(50, n)):
        await wf3()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            await wf3()
        samples.append(n / (time.perf_counter() - t0))
    return {"wf_per_s": ("wf/s", samples)}


async def bench_par200(reps: int) -> dict[str, tuple[str, list[float]]]:
    samples = []
    for i in range(reps + 1):
        t0 = time.perf_counter()
        assert await par200() == 200
        if i:
            samples.append((time.perf_counter() - t0) * 1000)
    return {"ms": ("ms", samples)}


# --- queue ------------------------------------------------------------------------------------


def spawn(mode: str, db: Path, work: Path, n: int = 0, **env: str) -> subprocess.Popen[str]:
    argv = ["--workload", mode, "--db", str(db), "--work-dir", str(work), "--n", str(n)]
    return common.spawn(HERE, *argv, **env)


def stop(proc: subprocess.Popen[str]) -> str:
    return common.stop(proc, signal.SIGKILL)


def bench_queue(work: Path, reps: int, n: int) -> dict[str, tuple[str, list[float]]]:
    samples = []
    for rep in range(reps):
        d = common.fresh_dir(work, f"queue{rep}")
        db = d / "queue.sqlite"
        enq = spawn("_enqueue", db, d, n)
        out, err = enq.communicate(timeout=600)
        if enq.returncode != 0:
            raise RuntimeError(f"enqueuer exited {enq.returncode}:\n{err[-3000:]}")
        enqueue_s = float(out.strip().splitlines()[-1])

        spawned_at = time.time()
        proc = spawn("_worker", db, d)
        try:
            done_at = common.wait_for_count(db, SUCCESS_SQL, n, timeout_s=600)
            common.wait_for_file(d / "ready", bool, timeout_s=30)
            ready_at = float((d / "ready").read_text())
        finally:
            err = stop(proc)
        samples.append(common.drain_sample(n, enqueue_s, done_at, [ready_at], spawned_at))
    return common.drain_metrics(samples)


def enqueue_mode(db: Path, n: int) -> None:
    """Internal: enqueue n wf3 runs from a process that does not dequeue; print the seconds."""
    launch(db, listen=[])
    queue = DBOS.register_queue(
        QUEUE, worker_concurrency=WORKER_CONCURRENCY, polling_interval_sec=POLLING_INTERVAL_S
    )

    async def go() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            await queue.enqueue_async(wf3)
        return time.perf_counter() - t0

    elapsed = asyncio.run(go())
    DBOS.destroy()
    print(elapsed, flush=True)


def worker_mode(db: Path, work: Path) -> None:
    """Internal: a DBOS process that dequeues (and recovers) until killed; writes its ready time."""
    launch(db)
    DBOS.register_queue(
        QUEUE, worker_concurrency=WORKER_CONCURRENCY, polling_interval_sec=POLLING_INTERVAL_S
    )
    tmp = work / "ready.tmp"
    tmp.write_text(repr(time.time()))
    tmp.replace(work / "ready")
    while True:
        time.sleep(3600)


def run_wf10_mode(db: Path, work: Path) -> None:
    """Internal: launch, then run wf10 (id "rec") here; BENCH_HANG_AT makes step 6 hang."""
    launch(db)

    async def go() -> None:
        with SetWorkflowID("rec"):
            await wf10(str(work / "side.txt"))

    asyncio.run(go())
    while True:
        time.sleep(3600)


# --- recovery ---------------------------------------------------------------------------------


def bench_recovery(work: Path, reps: int) -> dict[str, tuple[str, list[float]]]:
    total, startup, exactly_once = [], [], []
    done_sql = (
        "SELECT count(*) FROM workflow_status WHERE workflow_uuid = 'rec' AND status = 'SUCCESS'"
    )
    for rep in range(reps):
        d = common.fresh_dir(work, f"recovery{rep}")
        db, side = d / "rec.sqlite", d / "side.txt"
        first = spawn("_run_wf10", db, d, BENCH_HANG_AT="6")
        try:
            common.wait_for_file(side, lambda s: "6\n" in s, timeout_s=60)
        finally:
            stop(first)  # SIGKILL while step 6 runs
        t0 = time.perf_counter()
        spawned_at = time.time()
        second = spawn("_worker", db, d)
        try:
            common.wait_for_count(db, done_sql, 1, timeout_s=120)
            elapsed = time.perf_counter() - t0
            common.wait_for_file(d / "ready", bool, timeout_s=30)
            ready_at = float((d / "ready").read_text())
        finally:
            stop(second)
        counts = Counter(int(x) for x in side.read_text().split())
        ok = all(counts[i] == 1 for i in (1, 2, 3, 4, 5, 7, 8, 9, 10)) and counts[6] == 2
        total.append(elapsed * 1000)
        startup.append((ready_at - spawned_at) * 1000)
        exactly_once.append(1.0 if ok else 0.0)
    return {
        "ms": ("ms", total),
        "worker_startup_ms": ("ms", startup),
        "steps_1_5_exactly_once": ("bool", exactly_once),
    }


# --- whole processes --------------------------------------------------------------------------

ONESHOT = """
import asyncio, sys
from dbos import DBOS

@DBOS.step()
async def one() -> int:
    return 1

@DBOS.workflow()
async def wf1() -> int:
    return await one()

DBOS(config={"name": "oneshot", "system_database_url": "sqlite:///" + sys.argv[1],
             "run_admin_server": False, "log_level": "ERROR"})
DBOS.launch()
assert asyncio.run(wf1()) == 1
DBOS.destroy()
"""


def bench_startup(work: Path, reps: int) -> dict[str, tuple[str, list[float]]]:
    py = sys.executable
    base = common.time_processes(lambda i: [py, "-c", "pass"], reps)
    imp = common.time_processes(lambda i: [py, "-c", "import dbos"], reps)
    one = common.time_processes(
        lambda i: [py, "-c", ONESHOT, str((work / f"one{i}.sqlite").resolve())], reps
    )
    return {"python_ms": ("ms", base), "import_ms": ("ms", imp), "oneshot_ms": ("ms", one)}


# --- main -------------------------------------------------------------------------------------

WORKLOADS = [
    "seq100",
    "wf3",
    "queue",
    "par200",
    "recovery",
    "startup",
    "_enqueue",
    "_worker",
    "_run_wf10",
]


def main() -> None:
    args = common.parse_args(WORKLOADS)
    name = args.workload
    if name == "_enqueue":
        return enqueue_mode(args.db, args.n)
    if name == "_worker":
        return worker_mode(args.db, args.work_dir)
    if name == "_run_wf10":
        return run_wf10_mode(args.db, args.work_dir)
    work = common.fresh_dir(args.work_dir, f"dbos-{name}")
    extra: dict[str, object] = {}
    if name in ("seq100", "wf3", "par200"):
        launch(work / "dbos.sqlite")
        try:
            if name == "seq100":
                metrics = asyncio.run(bench_seq100(args.reps))
            elif name == "wf3":
                metrics = asyncio.run(bench_wf3(args.reps, args.n))
                extra["n"] = args.n
            else:
                metrics = asyncio.run(bench_par200(args.reps))
        finally:
            DBOS.destroy()
    elif name == "queue":
        metrics = bench_queue(work, args.reps, args.n)
        extra.update(
            n=args.n, worker_concurrency=WORKER_CONCURRENCY, polling_interval_sec=POLLING_INTERVAL_S
        )
    elif name == "recovery":
        metrics = bench_recovery(work, args.reps)
    else:
        metrics = bench_startup(work, args.reps)
    common.emit(SYSTEM, name, metrics, **extra)


if __name__ == "__main__":
    main()
