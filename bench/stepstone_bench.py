"""stepstone workloads for the "durable core" benchmark (run with /work/main/.venv/bin/python).

Measures, on an embedded SQLite store in ``--work-dir``:

- ``seq100`` / ``seq100_full``: one workflow of 100 sequential no-op steps, µs per step
  (durability "normal" = WAL + synchronous=NORMAL for checkpoints; "full" = fsync every commit);
- ``wf3``: N workflows of 3 no-op steps run one after another in-process (``AsyncClient.run``),
  workflows per second;
- ``queue``: N three-step runs enqueued with ``AsyncClient.start`` (enqueue rate), then drained by
  one ``Worker`` (concurrency 64) in a separate process (drain rate, from the worker being ready
  until an outside observer sees N completed runs), and end to end (N / (enqueue + drain));
- ``par200``: one workflow awaiting 200 no-op steps with ``ctx.parallel``, milliseconds;
- ``recovery``: a worker process running a 10-step workflow is SIGKILLed while step 6 executes
  (steps 1-5 recorded); milliseconds from spawning a new worker process to the parent's
  ``client.result`` returning, and a check that steps 1-5 ran exactly once;
- ``startup``: ``python -c "import stepstone"`` and a whole process running a 1-step durable
  workflow on a fresh database, wall milliseconds (with ``python -c pass`` as the baseline).

Internal modes (``_worker``, ``_recovery_worker``) are the worker processes the above spawn.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

from stepstone import (
    AsyncClient,
    Settings,
    Worker,
    WorkflowContext,
    open_store,
    step,
    workflow,
)

SYSTEM = "stepstone"
HERE = Path(__file__).resolve()
WORKER_CONCURRENCY = 64
WORKER_SETTINGS = Settings(poll_s=0.05)
COMPLETED_SQL = "SELECT count(*) FROM runs WHERE state = 'completed'"


# --- workflows --------------------------------------------------------------------------------


@step
async def noop() -> None:
    return None


@workflow
async def seq100(ctx: WorkflowContext) -> int:
    for _ in range(100):
        await noop()
    return 100


@workflow
async def wf3(ctx: WorkflowContext) -> int:
    await noop()
    await noop()
    await noop()
    return 3


@workflow
async def par200(ctx: WorkflowContext) -> int:
    await ctx.parallel(*[noop() for _ in range(200)])
    return 200


@step
async def mark(i: int, side_file: str) -> int:
    """Append ``i`` to the side file; with BENCH_HANG_AT=i, then hang (the parent kills us)."""
    with open(side_file, "a") as f:
        f.write(f"{i}\n")
    if os.environ.get("BENCH_HANG_AT") == str(i):
        await asyncio.sleep(3600)
    return i


@workflow
async def wf10(ctx: WorkflowContext, side_file: str) -> int:
    for i in range(1, 11):
        await mark(i, side_file)
    return 10


ALL = [seq100, wf3, par200, wf10]


def url(db: Path) -> str:
    return f"sqlite:///{db.resolve()}"


# --- in-process workloads ---------------------------------------------------------------------


async def bench_seq100(
    work: Path, reps: int, durability: str
) -> dict[str, tuple[str, list[float]]]:
    store = open_store(url(work / "seq.db"), durability=durability)  # type: ignore[arg-type]
    await store.migrate()
    samples = []
    async with AsyncClient(store, workflows=ALL) as client:
        for i in range(reps + 1):
            t0 = time.perf_counter()
            assert await client.run(seq100) == 100
            elapsed = time.perf_counter() - t0
            if i:  # the first run is a warm-up
                samples.append(elapsed * 1e6 / 100)
        metrics = {"us_per_step": ("µs/step", samples)}
        if durability == "full":
            # The first runs on a fresh file append to a growing WAL (each fsync then also
            # updates the file size); once the store has checkpointed and started the WAL over,
            # commits overwrite it. Measure that steady state too, after 0.5 s of use.
            until = time.perf_counter() + 0.5
            while time.perf_counter() < until:
                await client.run(seq100)
            steady = []
            for _ in range(reps):
                t0 = time.perf_counter()
                assert await client.run(seq100) == 100
                steady.append((time.perf_counter() - t0) * 1e6 / 100)
            metrics["us_per_step_steady"] = ("µs/step", steady)
    await store.close()
    return metrics


async def bench_wf3(work: Path, reps: int, n: int) -> dict[str, tuple[str, list[float]]]:
    store = open_store(url(work / "wf3.db"))
    await store.migrate()
    samples = []
    async with AsyncClient(store, workflows=ALL) as client:
        for _ in range(min(50, n)):  # warm-up
            await client.run(wf3)
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(n):
                await client.run(wf3)
            samples.append(n / (time.perf_counter() - t0))
    await store.close()
    return {"wf_per_s": ("wf/s", samples)}


async def bench_par200(work: Path, reps: int) -> dict[str, tuple[str, list[float]]]:
    store = open_store(url(work / "par.db"))
    await store.migrate()
    samples = []
    async with AsyncClient(store, workflows=ALL) as client:
        for i in range(reps + 1):
            t0 = time.perf_counter()
            assert await client.run(par200) == 200
            elapsed = time.perf_counter() - t0
            if i:
                samples.append(elapsed * 1000)
    await store.close()
    return {"ms": ("ms", samples)}


# --- worker throughput ------------------------------------------------------------------------


def spawn(mode: str, db: Path, work: Path, **env: str) -> subprocess.Popen[str]:
    argv = ["--workload", mode, "--db", str(db), "--work-dir", str(work)]
    return common.spawn(HERE, *argv, **env)


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> str:
    """Stop a worker process we spawned; return its stderr (for error reports)."""
    return common.stop(proc, sig)


async def bench_queue(work: Path, reps: int, n: int) -> dict[str, tuple[str, list[float]]]:
    samples = []
    for rep in range(reps):
        d = common.fresh_dir(work, f"queue{rep}")
        db = d / "queue.db"
        store = open_store(url(db))
        await store.migrate()
        async with AsyncClient(store, workflows=ALL) as client:
            t0 = time.perf_counter()
            for _ in range(n):
                await client.start(wf3)
            enqueue_s = time.perf_counter() - t0
        await store.close()

        spawned_at = time.time()
        proc = spawn("_worker", db, d)
        try:
            done_at = common.wait_for_count(db, COMPLETED_SQL, n, timeout_s=300)
            ready_at = common.wait_for_file(d / "ready", bool, timeout_s=10)
            ready_at = float((d / "ready").read_text())
        finally:
            err = stop(proc)
        if proc.returncode not in (0, -signal.SIGTERM):
            raise RuntimeError(f"worker exited {proc.returncode}:\n{err[-3000:]}")
        samples.append(common.drain_sample(n, enqueue_s, done_at, [ready_at], spawned_at))
    return common.drain_metrics(samples)


def serve_worker(db: Path, work: Path) -> None:
    """Internal mode: one worker (concurrency 64) until SIGTERM; writes its ready time."""
    worker = Worker(
        url(db), workflows=ALL, concurrency=WORKER_CONCURRENCY, settings=WORKER_SETTINGS
    )

    def announce() -> None:
        worker.ready.wait()
        tmp = work / "ready.tmp"
        tmp.write_text(repr(time.time()))
        tmp.replace(work / "ready")

    threading.Thread(target=announce, daemon=True).start()
    worker.run()


# --- recovery ---------------------------------------------------------------------------------


async def bench_recovery(work: Path, reps: int) -> dict[str, tuple[str, list[float]]]:
    total, startup, exactly_once = [], [], []
    for rep in range(reps):
        d = common.fresh_dir(work, f"recovery{rep}")
        db, side = d / "rec.db", d / "side.txt"
        store = open_store(url(db))
        await store.migrate()
        async with AsyncClient(store, workflows=ALL) as client:
            handle = await client.start(wf10, str(side))
            first = spawn("_worker", db, d, BENCH_HANG_AT="6")
            try:
                common.wait_for_file(side, lambda s: "6\n" in s, timeout_s=30)
            finally:
                first.kill()  # SIGKILL: step 6 is running, steps 1-5 are recorded
                first.communicate()
            (d / "ready").unlink(missing_ok=True)

            t0 = time.perf_counter()
            spawned_at = time.time()
            second = spawn("_worker", db, d)
            try:
                assert await handle.result(timeout_s=60) == 10
                elapsed = time.perf_counter() - t0
                common.wait_for_file(d / "ready", bool, timeout_s=10)
                ready_at = float((d / "ready").read_text())
            finally:
                err = stop(second)
            if second.returncode not in (0, -signal.SIGTERM):
                raise RuntimeError(f"recovering worker exited {second.returncode}:\n{err[-3000:]}")
        await store.close()
        counts = Counter(int(x) for x in side.read_text().split())
        ok = all(counts[i] == 1 for i in (1, 2, 3, 4, 5, 7, 8, 9, 10)) and counts[6] == 2
        total.append(elapsed * 1000)
        startup.append((ready_at - spawned_at) * 1000)
        exactly_once.append(1.0 if ok else 0.0)
        if not ok:
            print(f"recovery rep {rep}: step execution counts {dict(counts)}", file=sys.stderr)
    return {
        "ms": ("ms", total),
        "worker_startup_ms": ("ms", startup),
        "steps_1_5_exactly_once": ("bool", exactly_once),
    }


# --- whole processes --------------------------------------------------------------------------

ONESHOT = """
import asyncio, sys
from stepstone import AsyncClient, WorkflowContext, open_store, step, workflow

@step
async def one() -> int:
    return 1

@workflow
async def wf1(ctx: WorkflowContext) -> int:
    return await one()

async def main() -> None:
    store = open_store("sqlite:///" + sys.argv[1])
    await store.migrate()
    async with AsyncClient(store, workflows=[wf1]) as client:
        assert await client.run(wf1) == 1
    await store.close()

asyncio.run(main())
"""


def bench_startup(work: Path, reps: int) -> dict[str, tuple[str, list[float]]]:
    py = sys.executable
    base = common.time_processes(lambda i: [py, "-c", "pass"], reps)
    imp = common.time_processes(lambda i: [py, "-c", "import stepstone"], reps)
    one = common.time_processes(
        lambda i: [py, "-c", ONESHOT, str((work / f"one{i}.db").resolve())], reps
    )
    return {"python_ms": ("ms", base), "import_ms": ("ms", imp), "oneshot_ms": ("ms", one)}


# --- main -------------------------------------------------------------------------------------

WORKLOADS = ["seq100", "seq100_full", "wf3", "queue", "par200", "recovery", "startup", "_worker"]


def main() -> None:
    args = common.parse_args(WORKLOADS)
    name = args.workload
    if name == "_worker":
        serve_worker(args.db, args.work_dir)
        return
    work = common.fresh_dir(args.work_dir, f"stepstone-{name}")
    extra: dict[str, object] = {}
    if name == "seq100":
        metrics = asyncio.run(bench_seq100(work, args.reps, "normal"))
    elif name == "seq100_full":
        metrics = asyncio.run(bench_seq100(work, args.reps, "full"))
    elif name == "wf3":
        metrics = asyncio.run(bench_wf3(work, args.reps, args.n))
        extra["n"] = args.n
    elif name == "queue":
        metrics = asyncio.run(bench_queue(work, args.reps, args.n))
        extra.update(n=args.n, concurrency=WORKER_CONCURRENCY, poll_s=WORKER_SETTINGS.poll_s)
    elif name == "par200":
        metrics = asyncio.run(bench_par200(work, args.reps))
    elif name == "recovery":
        metrics = asyncio.run(bench_recovery(work, args.reps))
    else:
        metrics = bench_startup(work, args.reps)
    common.emit(SYSTEM, name, metrics, **extra)


if __name__ == "__main__":
    main()
