"""stepstone workloads on PostgreSQL (run with /work/main/.venv/bin/python).

Each measurement runs on a fresh database (``bench/pgdb.py``), migrated with ``store.migrate()``:

- ``pg_seq100``: one workflow of 100 sequential no-op steps, µs per step (``AsyncClient.run``);
- ``pg_drain``: N three-step runs enqueued with ``AsyncClient.start`` (64 at a time), then two
  worker processes (``Worker(url, concurrency=64)``) drain them: workflows per second from the
  first worker being ready until an outside observer (polling the database every 2 ms) sees no
  unfinished run; also the enqueue rate and end to end (N / (enqueue + drain));
- ``pg_latency``: one worker process (``Settings(poll_s=5.0)``: polling cannot explain a
  millisecond) sits idle; every 1.05-1.35 s (so it has been idle for more than a second) this
  process takes ``time.monotonic()`` and calls ``start``; the step records ``time.monotonic()``
  when it begins (CLOCK_MONOTONIC is one clock for all processes on Linux) and returns it:
  start-to-first-step milliseconds, plus how long ``start`` itself took and when this process saw
  the result;
- ``pg_par200``: one workflow awaiting 200 no-op steps with ``ctx.parallel``, milliseconds.

Internal mode ``_pg_worker`` is the worker process the above spawn (``--url``).
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import pgdb
from stepstone_bench import par200, seq100, wf3

from stepstone import AsyncClient, Settings, Worker, WorkflowContext, open_store, step, workflow

SYSTEM = "stepstone"
HERE = Path(__file__).resolve()
WORKER_CONCURRENCY = 64
DRAIN_WORKERS = 2
DRAIN_POLL_S = 1.0  # the default: wake-ups come from LISTEN/NOTIFY
LATENCY_POLL_S = 5.0
ENQUEUE_CONCURRENCY = 64
WORKER_STDERR: list[str] = []  # what worker processes printed (warnings, tracebacks), reported
# Polled every 2 ms: both parts must find their rows by index (runs_due, runs_leased; a
# running run holds a lease), or on the 1M-run table the observer's own scans slow the drain.
UNFINISHED_SQL = (
    "SELECT NOT EXISTS (SELECT 1 FROM stepstone.runs WHERE state IN "
    "('pending', 'sleeping', 'waiting')) AND NOT EXISTS (SELECT 1 FROM stepstone.runs "
    "WHERE lease_expires_at IS NOT NULL AND state = 'running')"
)


# --- workflows --------------------------------------------------------------------------------


@step
async def stamp() -> float:
    """The moment this step began, on the machine-wide monotonic clock."""
    return time.monotonic()


@workflow
async def probe(ctx: WorkflowContext) -> float:
    return await stamp()


ALL = [seq100, wf3, par200, probe]


# --- in-process workloads ---------------------------------------------------------------------


async def timed_runs(url: str, wf: object, reps: int, expect: int) -> list[float]:
    """Seconds of ``reps`` runs of ``wf`` with ``AsyncClient.run`` (after one warm-up run)."""
    store = open_store(url)
    await store.migrate()
    samples = []
    try:
        async with AsyncClient(store, workflows=ALL) as client:
            for i in range(reps + 1):
                t0 = time.perf_counter()
                assert await client.run(wf) == expect  # type: ignore[call-overload]
                if i:
                    samples.append(time.perf_counter() - t0)
    finally:
        await store.close()
    return samples


def bench_seq100(reps: int) -> dict[str, tuple[str, list[float]]]:
    with pgdb.fresh_database("ss_seq") as (_, url):
        secs = asyncio.run(timed_runs(url, seq100, reps, 100))
    return {"us_per_step": ("µs/step", [s * 1e6 / 100 for s in secs])}


def bench_par200(reps: int) -> dict[str, tuple[str, list[float]]]:
    with pgdb.fresh_database("ss_par") as (_, url):
        secs = asyncio.run(timed_runs(url, par200, reps, 200))
    return {"ms": ("ms", [s * 1000 for s in secs])}


# --- worker processes -------------------------------------------------------------------------


def spawn_worker(
    url: str, work: Path, index: int, poll_s: float, trace: bool = False
) -> subprocess.Popen[str]:
    argv = ["--workload", "_pg_worker", "--url", url, "--work-dir", str(work), "--n", str(index)]
    env = {"BENCH_TRACE_FILE": str(work / f"trace{index}.json")} if trace else {}
    return common.spawn(HERE, *argv, "--poll-s", str(poll_s), **env)


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM a worker we spawned (graceful shutdown); return its stderr."""
    err = common.stop(proc)
    if proc.returncode not in (0, -signal.SIGTERM):
        raise RuntimeError(f"worker exited {proc.returncode}:\n{err[-3000:]}")
    if err.strip() and len(WORKER_STDERR) < 3:
        WORKER_STDERR.append(err.strip()[-1500:])
    return err


def ready_time(work: Path, index: int, proc: subprocess.Popen[str]) -> float:
    return common.ready_time(work, index, proc, "worker")


def serve_worker(url: str, work: Path, index: int, poll_s: float) -> None:
    """Internal mode: one worker until SIGTERM; writes the time it became ready (and, with
    BENCH_TRACE_FILE, the statements it sent: see ``bench/pgtrace.py``)."""
    import pgtrace

    tracer = pgtrace.trace_to_file_on_exit()
    worker = Worker(
        url, workflows=ALL, concurrency=WORKER_CONCURRENCY, settings=Settings(poll_s=poll_s)
    )

    def announce() -> None:
        worker.ready.wait()
        tmp = work / f"ready{index}.tmp"
        tmp.write_text(repr(time.time()))
        tmp.replace(work / f"ready{index}")

    threading.Thread(target=announce, daemon=True).start()
    worker.run()
    pgtrace.dump(tracer)


# --- drain ------------------------------------------------------------------------------------


async def enqueue(url: str, n: int, *, migrate: bool = True) -> float:
    """Start ``n`` wf3 runs, ``ENQUEUE_CONCURRENCY`` at a time; the seconds it took."""
    store = open_store(url)
    if migrate:
        await store.migrate()
    gate = asyncio.Semaphore(ENQUEUE_CONCURRENCY)
    try:
        async with AsyncClient(store, workflows=ALL) as client:

            async def one() -> None:
                async with gate:
                    await client.start(wf3)

            t0 = time.perf_counter()
            await asyncio.gather(*[one() for _ in range(n)])
            return time.perf_counter() - t0
    finally:
        await store.close()


def drain_once(
    dbname: str, url: str, work: Path, n: int, *, migrate: bool = True, trace: bool = False
) -> dict[str, float]:
    """Enqueue ``n`` runs into ``url``, then drain them with two worker processes (``trace``:
    they write what they sent to ``work/trace<i>.json``)."""
    since = time.time()
    enqueue_s = asyncio.run(enqueue(url, n, migrate=migrate))
    for old in work.glob("ready*"):
        old.unlink()
    spawned_at = time.time()
    procs = [spawn_worker(url, work, i, DRAIN_POLL_S, trace) for i in range(DRAIN_WORKERS)]
    try:
        done_at = pgdb.wait_until(dbname, UNFINISHED_SQL, timeout_s=600)
        ready = [ready_time(work, i, p) for i, p in enumerate(procs)]
    finally:
        for p in procs:
            stop(p)
    completed = count_completed(dbname, since)
    if completed != n:
        raise RuntimeError(f"{completed} of {n} runs completed")
    return common.drain_sample(n, enqueue_s, done_at, ready, spawned_at)


def count_completed(dbname: str, since: float) -> int:
    import psycopg

    with psycopg.connect(pgdb.conninfo_for(dbname)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM stepstone.runs WHERE state = 'completed' "
            "AND finished_at >= to_timestamp(%s)",
            (since,),
        ).fetchone()
    return int(row[0]) if row else 0


def bench_drain(work: Path, reps: int, n: int) -> dict[str, tuple[str, list[float]]]:
    samples = []
    for _ in range(reps):
        with pgdb.fresh_database("ss_drain") as (name, url):
            samples.append(drain_once(name, url, work, n))
    return common.drain_metrics(samples)


# --- start latency ----------------------------------------------------------------------------


IDLE_INSERT = (
    "INSERT INTO floor_steps (run_id, seq, name, kind, status)"
    " VALUES ('idle', %s, 'noop', 'step', 'completed')"
)


async def probe_starts(dbname: str, url: str, n: int) -> dict[str, list[float]]:
    """``n`` timed starts, each after 1.05-1.35 s of idleness; after every fifth, one more idle
    gap and a raw INSERT + COMMIT (psycopg, prepared): what one commit costs on a machine that
    has been idle for a second (CPUs and the server's backend asleep), for comparison."""
    import psycopg

    store = open_store(url)
    first_step, start_call, result_seen, raw = [], [], [], []
    rng = random.Random(7)
    conn = await psycopg.AsyncConnection.connect(pgdb.conninfo_for(dbname), autocommit=True)
    try:
        await conn.execute(pgdb.STEP_TABLE)
        await conn.execute(IDLE_INSERT, (-1,), prepare=True)
        async with AsyncClient(store, workflows=ALL) as client:
            handle = await client.start(probe)  # warm-up: connections, prepared statements
            await handle.result(timeout_s=30)
            for i in range(n):
                await asyncio.sleep(rng.uniform(1.05, 1.35))  # the worker idles > 1 s
                t0 = time.monotonic()
                handle = await client.start(probe)
                t1 = time.monotonic()
                began = await handle.result(timeout_s=30)
                t2 = time.monotonic()
                first_step.append((began - t0) * 1000)
                start_call.append((t1 - t0) * 1000)
                result_seen.append((t2 - t0) * 1000)
                if i % 5 == 4:
                    await asyncio.sleep(rng.uniform(1.05, 1.35))
                    t0 = time.monotonic()
                    await conn.execute(IDLE_INSERT, (i,), prepare=True)
                    raw.append((time.monotonic() - t0) * 1000)
    finally:
        await conn.close()
        await store.close()
    return {
        "first_step_ms": first_step,
        "start_call_ms": start_call,
        "result_ms": result_seen,
        "idle_insert_commit_ms": raw,
    }


async def migrate(url: str) -> None:
    store = open_store(url)
    await store.migrate()
    await store.close()


def bench_latency(work: Path, n: int) -> dict[str, tuple[str, list[float]]]:
    with pgdb.fresh_database("ss_lat") as (name, url):
        asyncio.run(migrate(url))
        for old in work.glob("ready*"):
            old.unlink()
        proc = spawn_worker(url, work, 0, LATENCY_POLL_S)
        try:
            ready_time(work, 0, proc)
            out = asyncio.run(probe_starts(name, url, n))
        finally:
            stop(proc)
    return {k: ("ms", v) for k, v in out.items()}


# --- main -------------------------------------------------------------------------------------

WORKLOADS = ["pg_seq100", "pg_drain", "pg_latency", "pg_par200", "_pg_worker"]


def main() -> None:
    args = common.parse_args(WORKLOADS)
    name = args.workload
    if name == "_pg_worker":
        serve_worker(args.url, args.work_dir, args.n, args.poll_s)
        return
    work = common.fresh_dir(args.work_dir, f"stepstone-{name}")
    extra: dict[str, object] = {}
    if name == "pg_seq100":
        metrics = bench_seq100(args.reps)
    elif name == "pg_par200":
        metrics = bench_par200(args.reps)
    elif name == "pg_drain":
        metrics = bench_drain(work, args.reps, args.n)
        extra.update(
            n=args.n,
            workers=DRAIN_WORKERS,
            concurrency=WORKER_CONCURRENCY,
            poll_s=DRAIN_POLL_S,
            enqueue_concurrency=ENQUEUE_CONCURRENCY,
        )
    else:
        metrics = bench_latency(work, args.n)
        extra.update(n=args.n, poll_s=LATENCY_POLL_S, idle_s="1.05-1.35")
    if WORKER_STDERR:
        extra["worker_stderr"] = WORKER_STDERR
    common.emit(SYSTEM, name, metrics, **extra)


if __name__ == "__main__":
    main()
