"""DBOS Transact workloads on PostgreSQL (run with bench/.peers/venv/bin/python).

The workloads of ``bench/stepstone_pg_bench.py``, on DBOS with its system database on a fresh
PostgreSQL database (``system_database_url="postgresql://…"``, DBOS's defaults otherwise):

- ``pg_seq100``: one ``@DBOS.workflow`` of 100 sequential no-op async ``@DBOS.step`` calls;
- ``pg_drain``: N three-step workflows enqueued (``enqueue_async``, 64 at a time) by a process
  that does not dequeue, then drained by two DBOS processes (distinct executor ids) listening to
  the queue with ``worker_concurrency=64`` each; drain from the first process being launched
  until an outside observer sees no ENQUEUED or PENDING workflow;
- ``pg_latency``: one DBOS process listens to the queue and idles; this process enqueues a
  one-step workflow every 1.05-1.35 s; the step records ``time.monotonic()`` when it begins;
- ``pg_par200``: one workflow doing ``asyncio.gather`` of 200 no-op async steps.

DBOS's queues are polled, not notified: ``polling_interval_sec=0.01`` (its default is 1 s, which
would cap a drain at ~64 workflows per second per process and make start latency ~0.5 s).
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import common
import pgdb
from dbos import DBOS, DBOSConfig

SYSTEM = "dbos"
HERE = Path(__file__).resolve()
QUEUE = "bench"
WORKER_CONCURRENCY = 64
DRAIN_WORKERS = 2
POLLING_INTERVAL_S = 0.01
ENQUEUE_CONCURRENCY = 64
UNFINISHED_SQL = (
    "SELECT NOT EXISTS (SELECT 1 FROM dbos.workflow_status WHERE status IN ('ENQUEUED', 'PENDING'))"
)
SUCCESS_SQL = "SELECT count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS'"


def launch(url: str, *, listen: list[str] | None = None, executor_id: str = "local") -> None:
    config: DBOSConfig = {
        "name": "bench",
        "system_database_url": url,
        "run_admin_server": False,
        "log_level": "ERROR",
        "executor_id": executor_id,
    }
    DBOS(config=config)
    if listen is not None:
        DBOS.listen_queues(listen)
    DBOS.launch()


def register_queue() -> object:
    return DBOS.register_queue(
        QUEUE, worker_concurrency=WORKER_CONCURRENCY, polling_interval_sec=POLLING_INTERVAL_S
    )


# --- workflows --------------------------------------------------------------------------------


@DBOS.step()
async def noop() -> None:
    return None


@DBOS.step()
async def stamp() -> float:
    return time.monotonic()


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


@DBOS.workflow()
async def probe() -> float:
    return await stamp()


# --- in-process workloads ---------------------------------------------------------------------


def timed_runs(label: str, wf: object, reps: int, expect: int) -> list[float]:
    with pgdb.fresh_database(label) as (_, url):
        launch(url)
        try:

            async def go() -> list[float]:
                samples = []
                for i in range(reps + 1):
                    t0 = time.perf_counter()
                    assert await wf() == expect  # type: ignore[operator]
                    if i:
                        samples.append(time.perf_counter() - t0)
                return samples

            return asyncio.run(go())
        finally:
            DBOS.destroy()


# --- processes --------------------------------------------------------------------------------


def spawn(mode: str, url: str, work: Path, n: int = 0) -> subprocess.Popen[str]:
    return common.spawn(
        HERE, "--workload", mode, "--url", url, "--work-dir", str(work), "--n", str(n)
    )


def stop(proc: subprocess.Popen[str]) -> str:
    return common.stop(proc, signal.SIGKILL)


def ready_time(work: Path, index: int, proc: subprocess.Popen[str]) -> float:
    return common.ready_time(work, index, proc, "DBOS process", timeout_s=120)


def enqueue_mode(url: str, n: int) -> None:
    """Internal: enqueue n wf3 runs from a process that does not dequeue; print the seconds."""
    launch(url, listen=[])
    queue = register_queue()

    async def go() -> float:
        gate = asyncio.Semaphore(ENQUEUE_CONCURRENCY)

        async def one() -> None:
            async with gate:
                await queue.enqueue_async(wf3)  # type: ignore[attr-defined]

        t0 = time.perf_counter()
        await asyncio.gather(*[one() for _ in range(n)])
        return time.perf_counter() - t0

    elapsed = asyncio.run(go())
    DBOS.destroy()
    print(elapsed, flush=True)


def worker_mode(url: str, work: Path, index: int) -> None:
    """Internal: a DBOS process that dequeues until killed; writes the time it was ready."""
    launch(url, executor_id=f"worker{index}")
    register_queue()
    tmp = work / f"ready{index}.tmp"
    tmp.write_text(repr(time.time()))
    tmp.replace(work / f"ready{index}")
    while True:
        time.sleep(3600)


def bench_drain(work: Path, reps: int, n: int) -> dict[str, tuple[str, list[float]]]:
    samples = []
    for _ in range(reps):
        with pgdb.fresh_database("dbos_drain") as (name, url):
            enq = spawn("_pg_enqueue", url, work, n)
            out, err = enq.communicate(timeout=600)
            if enq.returncode != 0:
                raise RuntimeError(f"enqueuer exited {enq.returncode}:\n{err[-3000:]}")
            enqueue_s = float(out.strip().splitlines()[-1])
            for old in work.glob("ready*"):
                old.unlink()
            spawned_at = time.time()
            procs = [spawn("_pg_worker", url, work, i) for i in range(DRAIN_WORKERS)]
            try:
                done_at = pgdb.wait_until(name, UNFINISHED_SQL, timeout_s=900)
                ready = [ready_time(work, i, p) for i, p in enumerate(procs)]
            finally:
                for p in procs:
                    stop(p)
            done = success_count(name)
            if done != n:
                raise RuntimeError(f"{done} of {n} workflows succeeded")
        samples.append(common.drain_sample(n, enqueue_s, done_at, ready, spawned_at))
    return common.drain_metrics(samples)


def success_count(dbname: str) -> int:
    import psycopg

    with psycopg.connect(pgdb.conninfo_for(dbname)) as conn:
        row = conn.execute(SUCCESS_SQL).fetchone()
    return int(row[0]) if row else 0


# --- start latency ----------------------------------------------------------------------------


def bench_latency(work: Path, n: int) -> dict[str, tuple[str, list[float]]]:
    with pgdb.fresh_database("dbos_lat") as (_, url):
        launch(url, listen=[])
        queue = register_queue()
        proc = spawn("_pg_worker", url, work, 0)
        first_step, start_call, result_seen = [], [], []
        rng = random.Random(7)
        try:
            ready_time(work, 0, proc)

            async def go() -> None:
                handle = await queue.enqueue_async(probe)  # type: ignore[attr-defined]
                await handle.get_result()
                for _ in range(n):
                    await asyncio.sleep(rng.uniform(1.05, 1.35))
                    t0 = time.monotonic()
                    handle = await queue.enqueue_async(probe)  # type: ignore[attr-defined]
                    t1 = time.monotonic()
                    began = await handle.get_result()
                    t2 = time.monotonic()
                    first_step.append((began - t0) * 1000)
                    start_call.append((t1 - t0) * 1000)
                    result_seen.append((t2 - t0) * 1000)

            asyncio.run(go())
        finally:
            stop(proc)
            DBOS.destroy()
    return {
        "first_step_ms": ("ms", first_step),
        "start_call_ms": ("ms", start_call),
        "result_ms": ("ms", result_seen),
    }


# --- main -------------------------------------------------------------------------------------

WORKLOADS = ["pg_seq100", "pg_drain", "pg_latency", "pg_par200", "_pg_enqueue", "_pg_worker"]


def main() -> None:
    args = common.parse_args(WORKLOADS)
    name = args.workload
    if name == "_pg_enqueue":
        return enqueue_mode(args.url, args.n)
    if name == "_pg_worker":
        return worker_mode(args.url, args.work_dir, args.n)
    work = common.fresh_dir(args.work_dir, f"dbos-{name}")
    extra: dict[str, object] = {"polling_interval_sec": POLLING_INTERVAL_S}
    if name == "pg_seq100":
        secs = timed_runs("dbos_seq", seq100, args.reps, 100)
        metrics = {"us_per_step": ("µs/step", [s * 1e6 / 100 for s in secs])}
        extra = {}
    elif name == "pg_par200":
        secs = timed_runs("dbos_par", par200, args.reps, 200)
        metrics = {"ms": ("ms", [s * 1000 for s in secs])}
        extra = {}
    elif name == "pg_drain":
        metrics = bench_drain(work, args.reps, args.n)
        extra.update(
            n=args.n,
            workers=DRAIN_WORKERS,
            worker_concurrency=WORKER_CONCURRENCY,
            enqueue_concurrency=ENQUEUE_CONCURRENCY,
        )
    else:
        metrics = bench_latency(work, args.n)
        extra.update(n=args.n, idle_s="1.05-1.35")
    common.emit(SYSTEM, name, metrics, **extra)


if __name__ == "__main__":
    main()
