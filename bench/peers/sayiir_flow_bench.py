"""sayiir's side of ``bench/flow_bench.py`` (run with bench/.peers/venv/bin/python).

The same flows on sayiir 1.0: 100 ``.then(noop)`` tasks with ``run_workflow`` (its in-memory
engine), ``run_durable_workflow`` on an ``InMemoryBackend`` and on a ``PostgresBackend`` (a fresh
database), and a fork of two 1 s branches. Prints one JSON object keyed like flow_bench.py's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from flow_workloads import durable, fork_timings, per_task_us, seq100, timed
from sayiir import Flow, InMemoryBackend, PostgresBackend, run_durable_workflow, run_workflow


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--memory-only", action="store_true")
    args = parser.parse_args()
    wf = seq100(Flow)
    out: dict[str, float] = {}
    out["seq100 memory (us/task)"] = per_task_us(timed(lambda i: run_workflow(wf, 1), args.reps))
    if args.memory_only:
        print(json.dumps(out))
        return
    samples = timed(durable(run_durable_workflow, wf, InMemoryBackend(), "mem"), args.reps)
    out["seq100 memory, store kept (us/task)"] = per_task_us(samples)
    if not args.no_postgres:
        import pgdb

        with pgdb.fresh_database("say_flow") as (_, url):
            backend = PostgresBackend(url)
            samples = timed(durable(run_durable_workflow, wf, backend, "pg"), args.reps)
            out["seq100 postgres (us/task)"] = per_task_us(samples)
            del backend
    out.update(fork_timings(run_workflow, Flow, args.reps))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
