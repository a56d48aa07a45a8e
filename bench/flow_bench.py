"""The Flow builder's overhead per task, against sayiir running the same flows, in one run.

    .venv/bin/python bench/flow_bench.py [--reps 5] [--no-peers] [--no-postgres]

Workloads (median of ``--reps`` timed runs after one warm-up; each a fresh run id):

- ``seq100``: ``Flow`` of 100 ``.then(noop)`` tasks (plain ``def`` tasks, as sayiir users write
  them), µs per task:
  - ``memory``: ``run_workflow(wf, 1)`` (stepstone: a temporary SQLite store per call, its
    creation included; sayiir: its in-memory engine);
  - ``memory, store kept``: ``run_durable_workflow(..., backend=InMemoryBackend())`` reused;
  - ``sqlite``: stepstone only, ``Backend("sqlite:///...")`` reused;
  - ``postgres``: ``PostgresBackend`` on a fresh database, reused;
- ``fork2x1s``: ``.fork().branch(sleep 1 s).branch(sleep 1 s).join(...)``, seconds, with
  one-task branches (parallel steps) and two-task branches (child runs).

sayiir runs in the peers' virtualenv (``bench/peers/setup.sh``; ``bench/.peers/venv``) through
``bench/peers/sayiir_flow_bench.py``; without it only stepstone is measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stepstone.flow import (
    Backend,
    Flow,
    InMemoryBackend,
    PostgresBackend,
    run_durable_workflow,
    run_workflow,
)

BENCH = Path(__file__).resolve().parent
PEERS_PYTHON = BENCH / ".peers" / "venv" / "bin" / "python"
PEER_SCRIPT = BENCH / "peers" / "sayiir_flow_bench.py"
TASKS = 100


def noop(x: object) -> object:
    return x


def sleep_1s(x: object) -> object:
    time.sleep(1.0)
    return x


def seq100() -> Any:
    flow = Flow("seq100")
    for i in range(TASKS):
        flow = flow.then(noop, name=f"s{i}")
    return flow.build()


def fork2(chain: int) -> Any:
    fork = Flow(f"fork2x1s_{chain}").fork()
    for b in ("a", "b"):
        fork = fork.branch(sleep_1s, *[noop] * (chain - 1), name=b)
    return fork.join(lambda outs: len(outs), name="join").build()


def timed(fn: Callable[[int], object], reps: int) -> list[float]:
    """Seconds per call, one warm-up call first."""
    samples = []
    for i in range(reps + 1):
        started = time.perf_counter()
        fn(i)
        if i:
            samples.append(time.perf_counter() - started)
    return samples


def per_task_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6 / TASKS


def durable(wf: Any, backend: Backend, label: str) -> Callable[[int], object]:
    def run(i: int) -> object:
        status = run_durable_workflow(wf, f"{label}-{i}-{time.time_ns()}", 1, backend=backend)
        assert status.is_completed(), status
        return status

    return run


def measure_stepstone(reps: int, postgres: bool) -> dict[str, float]:
    wf = seq100()
    out: dict[str, float] = {}
    out["seq100 memory (us/task)"] = per_task_us(timed(lambda i: run_workflow(wf, 1), reps))
    with InMemoryBackend() as backend:
        samples = timed(durable(wf, backend, "mem"), reps)
    out["seq100 memory, store kept (us/task)"] = per_task_us(samples)
    folder = tempfile.mkdtemp(prefix="flow-bench-")
    with Backend(f"sqlite:///{folder}/bench.db") as backend:
        samples = timed(durable(wf, backend, "sqlite"), reps)
    out["seq100 sqlite (us/task)"] = per_task_us(samples)
    if postgres:
        import pgdb

        with pgdb.fresh_database("flow_seq") as (_, url), PostgresBackend(url) as backend:
            samples = timed(durable(wf, backend, "pg"), reps)
        out["seq100 postgres (us/task)"] = per_task_us(samples)
    for chain in (1, 2):
        forked = fork2(chain)
        samples = timed(lambda i, wf=forked: run_workflow(wf, 1), max(1, reps // 2))
        out[f"fork2x1s, {chain}-task branches (s)"] = statistics.median(samples)
    return out


def measure_sayiir(reps: int, postgres: bool) -> dict[str, float] | None:
    if not PEERS_PYTHON.exists():
        print(f"(no {PEERS_PYTHON}: run bench/peers/setup.sh to measure sayiir)", file=sys.stderr)
        return None
    argv = [str(PEERS_PYTHON), str(PEER_SCRIPT), "--reps", str(reps)]
    if not postgres:
        argv.append("--no-postgres")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        print(f"sayiir bench failed:\n{done.stderr}", file=sys.stderr)
        return None
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    ours = measure_stepstone(args.reps, not args.no_postgres)
    theirs = None if args.no_peers else measure_sayiir(args.reps, not args.no_postgres)
    print("| workload | stepstone.flow | sayiir | ratio |")
    print("|---|---|---|---|")
    for key, value in ours.items():
        peer = theirs.get(key) if theirs else None
        ratio = f"{value / peer:.2f}x" if peer else "-"
        shown = f"{peer:,.1f}" if peer is not None else "-"
        print(f"| {key} | {value:,.1f} | {shown} | {ratio} |")


if __name__ == "__main__":
    main()
