"""The Flow builder's overhead per task, against sayiir running the same flows, in one run.

    .venv/bin/python bench/flow_bench.py [--reps 5] [--procs 3] [--no-peers] [--no-postgres]

Workloads (median of ``--reps`` timed runs after one warm-up; each a fresh run id):

- ``seq100``: ``Flow`` of 100 ``.then(noop)`` tasks (plain ``def`` tasks, as sayiir users write
  them), µs per task:
  - ``memory``: ``run_workflow(wf, 1)`` (stepstone: the compiled flow over a journal-free
    context, no store; sayiir: its in-memory engine);
  - ``memory, store kept``: ``run_durable_workflow(..., backend=InMemoryBackend())`` reused;
  - ``sqlite``: stepstone only, ``Backend("sqlite:///...")`` reused;
  - ``postgres``: ``PostgresBackend`` on a fresh database, reused;
- ``fork2x1s``: ``.fork().branch(sleep 1 s).branch(sleep 1 s).join(...)``, seconds, with
  one-task branches (parallel steps) and two-task branches (child runs).

``memory`` is measured in ``--procs`` fresh processes of each side (stepstone's and sayiir's
alternating), and the median of their medians is shown: on this VM a whole process now and then
runs every function about twice as slowly (all alike, whichever CPU it is pinned to), which one
process per side would turn into a coin toss for a ~5 µs/task comparison.

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compile_bytecode
from flow_workloads import durable, fork_timings, per_task_us, seq100, timed

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


MEMORY = "seq100 memory (us/task)"


def memory_only(reps: int) -> dict[str, float]:
    wf = seq100(Flow)
    return {MEMORY: per_task_us(timed(lambda i: run_workflow(wf, 1), reps))}


def memory_in_processes(reps: int, procs: int, peers: bool) -> tuple[float, float | None]:
    """The in-memory row: the median over ``procs`` fresh processes per side, alternating."""
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(procs):
        argv = [sys.executable, __file__, "--memory-only", "--reps", str(reps)]
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        ours.append(json.loads(done.stdout.strip().splitlines()[-1])[MEMORY])
        if peers and PEERS_PYTHON.exists():
            argv = [str(PEERS_PYTHON), str(PEER_SCRIPT), "--memory-only", "--reps", str(reps)]
            done = subprocess.run(argv, capture_output=True, text=True, check=True)
            theirs.append(json.loads(done.stdout.strip().splitlines()[-1])[MEMORY])
    print(f"(in memory, per process: stepstone {ours}, sayiir {theirs})", file=sys.stderr)
    return statistics.median(ours), statistics.median(theirs) if theirs else None


def measure_stepstone(reps: int, postgres: bool) -> dict[str, float]:
    wf = seq100(Flow)
    out: dict[str, float] = {}
    with InMemoryBackend() as backend:
        samples = timed(durable(run_durable_workflow, wf, backend, "mem"), reps)
    out["seq100 memory, store kept (us/task)"] = per_task_us(samples)
    folder = tempfile.mkdtemp(prefix="flow-bench-")
    with Backend(f"sqlite:///{folder}/bench.db") as backend:
        samples = timed(durable(run_durable_workflow, wf, backend, "sqlite"), reps)
    out["seq100 sqlite (us/task)"] = per_task_us(samples)
    if postgres:
        import pgdb

        with pgdb.fresh_database("flow_seq") as (_, url), PostgresBackend(url) as backend:
            samples = timed(durable(run_durable_workflow, wf, backend, "pg"), reps)
        out["seq100 postgres (us/task)"] = per_task_us(samples)
    out.update(fork_timings(run_workflow, Flow, reps))
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
    parser.add_argument("--procs", type=int, default=3, help="processes per side for memory")
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_only:
        print(json.dumps(memory_only(args.reps)))
        return
    compile_bytecode()  # as a pip install would have (see bench/common.py)
    memory, peer_memory = memory_in_processes(args.reps, args.procs, not args.no_peers)
    ours = {MEMORY: memory, **measure_stepstone(args.reps, not args.no_postgres)}
    theirs = None if args.no_peers else measure_sayiir(args.reps, not args.no_postgres)
    if theirs is not None and peer_memory is not None:
        theirs[MEMORY] = peer_memory
    print("| workload | stepstone.flow | sayiir | ratio |")
    print("|---|---|---|---|")
    for key, value in ours.items():
        peer = theirs.get(key) if theirs else None
        ratio = f"{value / peer:.2f}x" if peer else "-"
        shown = f"{peer:,.1f}" if peer is not None else "-"
        print(f"| {key} | {value:,.1f} | {shown} | {ratio} |")


if __name__ == "__main__":
    main()
