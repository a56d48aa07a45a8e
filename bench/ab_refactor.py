"""Before/after on one machine, in one run: the stepstone SQLite and PostgreSQL workloads with the
code of an earlier commit (``--old-src``, e.g. ``git archive 947dd65 src | tar -x -C /tmp/old``)
and with this checkout, interleaved round by round, so a noisy stretch hits both.

    .venv/bin/python bench/ab_refactor.py --old-src /tmp/old/src --rounds 3

Prints one line per job and a table of medians (old, new, new/old) as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
JOBS = [
    ("stepstone_bench.py", "seq100", 5),
    ("stepstone_bench.py", "wf3", 3),
    ("stepstone_bench.py", "queue", 3),
    ("stepstone_bench.py", "par200", 5),
    ("stepstone_bench.py", "recovery", 3),
    ("stepstone_bench.py", "startup", 5),
    ("stepstone_pg_bench.py", "pg_seq100", 5),
    ("stepstone_pg_bench.py", "pg_par200", 5),
    ("stepstone_pg_bench.py", "pg_latency", 5),
]


def run(script: str, workload: str, reps: int, src: Path, work: Path) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    args = [sys.executable, str(BENCH / script), "--workload", workload, "--reps", str(reps)]
    args += ["--work-dir", str(work)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{script} {workload} failed:\n{done.stderr[-2000:]}")
    last = done.stdout.strip().splitlines()[-1]
    metrics = json.loads(last)["metrics"]
    return {name: m["samples"] for name, m in metrics.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--old-src", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="workloads to run (default: all)")
    ns = parser.parse_args()
    sides = {"old": ns.old_src.resolve(), "new": (ROOT / "src").resolve()}
    samples: dict[tuple[str, str, str], list[float]] = {}
    jobs = [j for j in JOBS if not ns.only or j[1] in ns.only]
    for r in range(ns.rounds):
        for script, workload, reps in jobs:
            for side, src in sides.items() if r % 2 == 0 else reversed(sides.items()):
                work = BENCH / ".work" / f"ab-{side}"
                got = run(script, workload, reps, src, work)
                for metric, values in got.items():
                    samples.setdefault((workload, metric, side), []).extend(values)
                shown = ", ".join(f"{k}={statistics.median(v):.4g}" for k, v in got.items())
                print(f"round {r + 1} {side} {workload}: {shown}", flush=True)
    print("\n| workload | metric | old (median) | new (median) | new / old |")
    print("|---|---|---|---|---|")
    for (workload, metric, side), values in samples.items():
        if side != "old":
            continue
        new = samples.get((workload, metric, "new"))
        if not new:
            continue
        o, n = statistics.median(values), statistics.median(new)
        ratio = n / o if o else float("nan")
        print(
            f"| {workload} | {metric} | {o:.4g} (n={len(values)}) | {n:.4g} (n={len(new)}) "
            f"| {ratio:.2f} |"
        )


if __name__ == "__main__":
    main()
