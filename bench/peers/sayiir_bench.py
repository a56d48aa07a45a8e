"""sayiir workloads on PostgreSQL (run with bench/.peers/venv/bin/python).

The workloads of ``bench/stepstone_pg_bench.py``, on sayiir (Rust core, Python tasks) with its
``PostgresBackend`` on a fresh database (sayiir creates its tables on first use):

- ``pg_seq100``: ``Flow`` of 100 ``.then(noop)`` tasks run with ``run_durable_workflow``;
- ``pg_drain``: N three-task flows submitted with ``WorkflowClient.submit`` (8 threads), then
  drained by two worker processes (``Worker(..., poll_interval=0.01)``); drain from the first
  worker being started until an outside observer sees no unfinished snapshot;
- ``pg_latency``: one worker process idles; every 1.05-1.35 s this process submits a one-task
  flow whose task records ``time.monotonic()`` when it begins;
- ``pg_par200``: ``Flow.fork()`` with 200 no-op branches and a join task, run with
  ``run_durable_workflow`` (the join is one more task than the other systems run).

sayiir's worker has no concurrency setting; it claims from its backend every ``poll_interval``
and is also woken by LISTEN/NOTIFY hints when a task becomes ready. Its default interval is 5 s;
in this harness a drain advanced about one task per worker per poll, so it runs with 0.01 s, the
interval DBOS's queue gets too.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import common
import pgdb
import psycopg
from sayiir import Flow, PostgresBackend, WorkflowClient, run_durable_workflow
from sayiir import Worker as SayiirWorker

SYSTEM = "sayiir"
HERE = Path(__file__).resolve()
DRAIN_WORKERS = 2
POLL_INTERVAL_S = 0.01
SUBMIT_THREADS = 8
UNFINISHED_SQL = (
    "SELECT NOT EXISTS (SELECT 1 FROM sayiir_workflow_snapshots "
    "WHERE status NOT IN ('Completed', 'Failed', 'Cancelled'))"
)
COMPLETED_SQL = "SELECT count(*) FROM sayiir_workflow_snapshots WHERE status = 'Completed'"


def noop(x: object) -> object:
    return x


def join_all(branches: object) -> int:
    return len(branches)  # type: ignore[arg-type]


def stamp(_: object) -> float:
    return time.monotonic()


def build_seq100() -> object:
    flow = Flow("seq100")
    for i in range(100):
        flow = flow.then(noop, name=f"s{i}")
    return flow.build()


def build_par200() -> object:
    fork = Flow("par200").fork()
    for i in range(200):
        fork = fork.branch(noop, name=f"b{i}")
    return fork.join(join_all, name="join").build()


WF3 = Flow("wf3").then(noop, name="a").then(noop, name="b").then(noop, name="c").build()
PROBE = Flow("probe").then(stamp, name="stamp").build()


# --- in-process workloads ---------------------------------------------------------------------


def timed_runs(label: str, wf: object, reps: int) -> list[float]:
    with pgdb.fresh_database(label) as (_, url):
        backend = PostgresBackend(url)
        samples = []
        for i in range(reps + 1):
            t0 = time.perf_counter()
            status = run_durable_workflow(wf, f"{label}-{i}", 1, backend=backend)  # type: ignore[arg-type]
            elapsed = time.perf_counter() - t0
            if not status.is_completed():
                raise RuntimeError(f"{label} run {i}: {status!r}")
            if i:
                samples.append(elapsed)
        del backend
    return samples


# --- worker processes -------------------------------------------------------------------------


def spawn_worker(url: str, work: Path, index: int, poll_s: float) -> subprocess.Popen[str]:
    argv = ["--workload", "_pg_worker", "--url", url, "--work-dir", str(work), "--n", str(index)]
    return common.spawn(HERE, *argv, "--poll-s", str(poll_s))


def stop(proc: subprocess.Popen[str]) -> str:
    return common.stop(proc, signal.SIGKILL)


def ready_time(work: Path, index: int, proc: subprocess.Popen[str]) -> float:
    return common.ready_time(work, index, proc, "sayiir worker")


def worker_mode(url: str, work: Path, index: int, poll_s: float) -> None:
    """Internal: a sayiir worker until killed; writes the time it was started."""
    backend = PostgresBackend(url)
    worker = SayiirWorker(f"bench-{index}", backend, poll_interval=poll_s)
    worker.start([WF3, PROBE])  # type: ignore[list-item]
    tmp = work / f"ready{index}.tmp"
    tmp.write_text(repr(time.time()))
    tmp.replace(work / f"ready{index}")
    while True:
        time.sleep(3600)


def count(dbname: str, sql: str) -> int:
    with psycopg.connect(pgdb.conninfo_for(dbname)) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def submitter(client: WorkflowClient) -> Callable[[str], object]:
    def submit(instance_id: str) -> object:
        return client.submit(WF3, instance_id, 1)  # type: ignore[arg-type]

    return submit


def bench_drain(work: Path, reps: int, n: int) -> dict[str, tuple[str, list[float]]]:
    samples = []
    for rep in range(reps):
        with pgdb.fresh_database("say_drain") as (name, url):
            client = WorkflowClient(PostgresBackend(url))
            client.submit(WF3, "warm", 1)  # creates the tables; not timed, not counted
            t0 = time.perf_counter()
            ids = [f"r{rep}-{i}" for i in range(n)]
            with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
                list(pool.map(submitter(client), ids))
            enqueue_s = time.perf_counter() - t0
            for old in work.glob("ready*"):
                old.unlink()
            spawned_at = time.time()
            procs = [spawn_worker(url, work, i, POLL_INTERVAL_S) for i in range(DRAIN_WORKERS)]
            try:
                done_at = pgdb.wait_until(name, UNFINISHED_SQL, timeout_s=900)
                ready = [ready_time(work, i, p) for i, p in enumerate(procs)]
            finally:
                for p in procs:
                    stop(p)
            done = count(name, COMPLETED_SQL) - 1
            if done != n:
                raise RuntimeError(f"{done} of {n} workflows completed")
        samples.append(common.drain_sample(n, enqueue_s, done_at, ready, spawned_at))
    return common.drain_metrics(samples)


# --- start latency ----------------------------------------------------------------------------


def bench_latency(work: Path, n: int) -> dict[str, tuple[str, list[float]]]:
    first_step, start_call, result_seen = [], [], []
    rng = random.Random(7)
    with pgdb.fresh_database("say_lat") as (_, url):
        client = WorkflowClient(PostgresBackend(url))
        client.submit(PROBE, "warm", 1)
        proc = spawn_worker(url, work, 0, POLL_INTERVAL_S)
        try:
            ready_time(work, 0, proc)
            wait_output(client, "warm")
            for i in range(n):
                time.sleep(rng.uniform(1.05, 1.35))
                t0 = time.monotonic()
                client.submit(PROBE, f"p{i}", 1)
                t1 = time.monotonic()
                began = wait_output(client, f"p{i}")
                t2 = time.monotonic()
                first_step.append((began - t0) * 1000)
                start_call.append((t1 - t0) * 1000)
                result_seen.append((t2 - t0) * 1000)
        finally:
            stop(proc)
    return {
        "first_step_ms": ("ms", first_step),
        "start_call_ms": ("ms", start_call),
        "result_ms": ("ms", result_seen),
    }


def wait_output(client: WorkflowClient, instance_id: str) -> float:
    """Poll the instance's status (every 1 ms) until it completes; its output."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = client.status(instance_id)
        if status.is_completed():
            return float(status.output)
        if status.is_failed():
            raise RuntimeError(f"{instance_id}: {status!r}")
        time.sleep(0.001)
    raise TimeoutError(f"{instance_id} not completed within 30 s")


# --- main -------------------------------------------------------------------------------------

WORKLOADS = ["pg_seq100", "pg_drain", "pg_latency", "pg_par200", "_pg_worker"]


def main() -> None:
    args = common.parse_args(WORKLOADS)
    name = args.workload
    if name == "_pg_worker":
        return worker_mode(args.url, args.work_dir, args.n, args.poll_s)
    work = common.fresh_dir(args.work_dir, f"sayiir-{name}")
    extra: dict[str, object] = {}
    if name == "pg_seq100":
        secs = timed_runs("say_seq", build_seq100(), args.reps)
        metrics = {"us_per_step": ("µs/step", [s * 1e6 / 100 for s in secs])}
    elif name == "pg_par200":
        secs = timed_runs("say_par", build_par200(), args.reps)
        metrics = {"ms": ("ms", [s * 1000 for s in secs])}
        extra["note"] = "200 branches + 1 join task"
    elif name == "pg_drain":
        metrics = bench_drain(work, args.reps, args.n)
        extra.update(
            n=args.n,
            workers=DRAIN_WORKERS,
            poll_interval=POLL_INTERVAL_S,
            submit_threads=SUBMIT_THREADS,
        )
    else:
        metrics = bench_latency(work, args.n)
        extra.update(n=args.n, poll_interval=POLL_INTERVAL_S, idle_s="1.05-1.35")
    common.emit(SYSTEM, name, metrics, **extra)


if __name__ == "__main__":
    main()
