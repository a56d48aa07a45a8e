"""sayiir's side of ``bench/flow_bench.py`` (run with bench/.peers/venv/bin/python).

The same flows on sayiir 1.0: 100 ``.then(noop)`` tasks with ``run_workflow`` (its in-memory
engine), ``run_durable_workflow`` on an ``InMemoryBackend`` and on a ``PostgresBackend`` (a fresh
database), and a fork of two 1 s branches. Prints one JSON object keyed like flow_bench.py's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sayiir import Flow, InMemoryBackend, PostgresBackend, run_durable_workflow, run_workflow

TASKS = 100


def noop(x: object) -> object:
    return x


def sleep_1s(x: object) -> object:
    time.sleep(1.0)
    return x


def join(outs: object) -> int:
    return len(outs)  # type: ignore[arg-type]


def seq100() -> object:
    flow = Flow("seq100")
    for i in range(TASKS):
        flow = flow.then(noop, name=f"s{i}")
    return flow.build()


def fork2(chain: int) -> object:
    fork = Flow(f"fork2x1s_{chain}").fork()
    for b in ("a", "b"):
        fork = fork.branch(sleep_1s, *[noop] * (chain - 1), name=b)
    return fork.join(join, name="join").build()


def timed(fn: Callable[[int], object], reps: int) -> list[float]:
    samples = []
    for i in range(reps + 1):
        started = time.perf_counter()
        fn(i)
        if i:
            samples.append(time.perf_counter() - started)
    return samples


def per_task_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6 / TASKS


def durable(wf: object, backend: object, label: str) -> Callable[[int], object]:
    def run(i: int) -> object:
        status = run_durable_workflow(wf, f"{label}-{i}", 1, backend=backend)  # type: ignore[arg-type]
        assert status.is_completed(), status
        return status

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    wf = seq100()
    out: dict[str, float] = {}
    out["seq100 memory (us/task)"] = per_task_us(timed(lambda i: run_workflow(wf, 1), args.reps))
    samples = timed(durable(wf, InMemoryBackend(), "mem"), args.reps)
    out["seq100 memory, store kept (us/task)"] = per_task_us(samples)
    if not args.no_postgres:
        import pgdb

        with pgdb.fresh_database("say_flow") as (_, url):
            backend = PostgresBackend(url)
            out["seq100 postgres (us/task)"] = per_task_us(
                timed(durable(wf, backend, "pg"), args.reps)
            )
            del backend
    for chain in (1, 2):
        forked = fork2(chain)
        samples = timed(lambda i, f=forked: run_workflow(f, 1), max(1, args.reps // 2))
        out[f"fork2x1s, {chain}-task branches (s)"] = statistics.median(samples)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
