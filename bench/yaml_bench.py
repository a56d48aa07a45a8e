"""YAML workflows: per-step overhead and whole-process time, against checkpointflow, in one run.

    .venv/bin/python bench/yaml_bench.py [--reps 5] [--no-peers]

Workloads (medians of ``--reps`` runs after one warm-up; every process gets a fresh state
directory):

- ``cli``: a document of 300 ``cli`` steps running ``true``; per-step overhead =
  (wall time of 301 steps - wall time of 1 step) / 300, whole ``run -f`` processes, so process
  start and loading cancel out (and a process's noise is spread over 300 steps). Compared
  with the raw spawn of ``sh -c true`` from Python
  (``subprocess.run``, the floor any shell step pays) and with checkpointflow's ``cpf run -f``
  of the same document (it runs ``checkpointflow/v1`` unchanged).
- ``python``: 300 ``python`` steps (stepstone/v1: a registered function, no process spawned);
  same formula. checkpointflow has no in-process step kind: its number is its ``cli`` step.
  ``in-process`` rows: the same documents loaded once and run with ``Client.run`` in this
  process, median of ``--reps`` runs / 300 (no process start at all).
- ``run3``: one ``stepstone run -f`` process of a 3-step document (``python`` steps), wall time,
  beside ``python -c 'import asyncio'`` (the start-up floor of any asyncio program, to read the
  machine's state in the same run) and, when valgrind is installed, the instructions the 3-step
  process executes (callgrind: repeatable, whatever else the machine is doing).

checkpointflow runs in the peers' virtualenv (``bench/peers/setup.sh``; ``bench/.peers/venv``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from common import compile_bytecode  # noqa: E402

STEPSTONE = Path(sys.executable).parent / "stepstone"
CPF = BENCH / ".peers" / "venv" / "bin" / "cpf"

HELPER = """
def noop(**inputs):
    return {"ok": True}
"""


def document(n: int, kind: str, version: str) -> str:
    """A workflow of ``n`` steps of ``kind`` (``cli``: ``true``; ``python``: ``steps_fn:noop``)."""
    lines = [
        f"schema_version: {version}",
        "workflow:",
        f"  id: bench_{kind}_{n}",
        f"  name: {n} {kind} steps",
        "  version: 1.0.0",
        "  inputs:",
        "    type: object",
        "  steps:",
    ]
    for i in range(n):
        lines.append(f"    - id: s{i}")
        if kind == "cli":
            lines += ["      kind: cli", '      command: "true"']
        else:
            lines += ["      kind: python", '      function: "steps_fn:noop"']
    return "\n".join(lines) + "\n"


def wall(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        command = " ".join(argv)
        raise SystemExit(f"{command} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return took


def samples(argv_for: object, cwd: Path, reps: int, label: str) -> list[float]:
    """Seconds per process; each process a fresh state folder (HOME and --db)."""
    out = []
    for i in range(reps + 1):
        state = Path(tempfile.mkdtemp(prefix=f"yaml-bench-{label}-"))
        env = {**os.environ, "HOME": str(state)}
        took = wall(argv_for(state), cwd, env)  # type: ignore[operator]
        if i:
            out.append(took)
    return out


STEPS = 300


def per_step_ms(one: list[float], many: list[float]) -> float:
    return (statistics.median(many) - statistics.median(one)) * 1000 / STEPS


def in_process_ms(path: Path, reps: int) -> float:
    """Median ms per step of ``Client.run`` of the document at ``path`` (loaded once)."""
    from stepstone import Client
    from stepstone.spec import load_workflow

    wf = load_workflow(path)
    folder = Path(tempfile.mkdtemp(prefix="yaml-bench-inproc-"))
    times = []
    with Client(f"sqlite:///{folder / 's.db'}", workflows=wf.registry()) as client:
        for i in range(reps + 1):
            started = time.perf_counter()
            client.run(wf, {})
            if i:
                times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000 / (STEPS + 1)


def raw_spawn_ms(n: int = 300) -> float:
    """Median milliseconds of ``subprocess.run(["sh", "-c", "true"])`` from Python."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(["sh", "-c", "true"], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def instructions(argv_for: object, cwd: Path) -> int | None:
    """Instructions one process executes, counted by valgrind's callgrind (the same count
    whatever else the machine does, unlike its wall time); None without valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    state = Path(tempfile.mkdtemp(prefix="yaml-bench-cg-"))
    argv = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv_for(state)]  # type: ignore[operator]
    done = subprocess.run(
        argv, cwd=cwd, env={**os.environ, "HOME": str(state)}, capture_output=True, text=True
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    return int(found.group(1)) if found and done.returncode == 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args()
    compile_bytecode()  # as `pip install` does: an editable checkout otherwise compiles each run
    work = Path(tempfile.mkdtemp(prefix="yaml-bench-"))
    (work / "steps_fn.py").write_text(HELPER)
    for n in (1, 3, STEPS + 1):
        for kind in ("cli", "python"):
            (work / f"{kind}{n}.yaml").write_text(document(n, kind, "stepstone/v1"))
        (work / f"cpf_cli{n}.yaml").write_text(document(n, "cli", "checkpointflow/v1"))

    def ours(name: str) -> object:
        return lambda state: [
            str(STEPSTONE),
            "run",
            "-f",
            name,
            "--input",
            "{}",
            "--db",
            str(state / "s.db"),
        ]

    results: dict[str, float] = {}
    results["raw spawn sh -c true (ms)"] = raw_spawn_ms()
    for kind in ("cli", "python"):
        one = samples(ours(f"{kind}1.yaml"), work, args.reps, kind)
        many = samples(ours(f"{kind}{STEPS + 1}.yaml"), work, args.reps, kind)
        results[f"stepstone {kind} step (ms/step)"] = per_step_ms(one, many)
        cwd = os.getcwd()
        os.chdir(work)  # python steps import steps_fn from the document's folder
        try:
            results[f"stepstone {kind} step, in-process (ms/step)"] = in_process_ms(
                work / f"{kind}{STEPS + 1}.yaml", args.reps
            )
        finally:
            os.chdir(cwd)
    for kind in ("python", "cli"):
        run3 = samples(ours(f"{kind}3.yaml"), work, args.reps, f"run3{kind}")
        key = f"stepstone run -f, 3 {kind} steps, whole process (ms)"
        results[key] = statistics.median(run3) * 1000
    # the machine's state in the same run: the floor of any asyncio program's start
    floor = samples(lambda state: [sys.executable, "-c", "import asyncio"], work, args.reps, "aio")
    results["python -c 'import asyncio', whole process (ms)"] = statistics.median(floor) * 1000
    counted = instructions(ours("python3.yaml"), work)
    if counted is not None:
        results["stepstone run -f, 3 python steps (M instructions, callgrind)"] = counted / 1e6
    if not args.no_peers and CPF.exists():

        def theirs(name: str) -> object:
            return lambda state: [str(CPF), "run", "-f", name, "--input", "{}"]

        one = samples(theirs("cpf_cli1.yaml"), work, args.reps, "cpf")
        many = samples(theirs(f"cpf_cli{STEPS + 1}.yaml"), work, args.reps, "cpf")
        results["checkpointflow cli step (ms/step)"] = per_step_ms(one, many)
        run3 = samples(theirs("cpf_cli3.yaml"), work, args.reps, "cpf3")
        results["checkpointflow run -f, 3 cli steps, whole process (ms)"] = (
            statistics.median(run3) * 1000
        )
    elif not args.no_peers:
        print(f"(no {CPF}: run bench/peers/setup.sh to measure checkpointflow)", file=sys.stderr)
    for key, value in results.items():
        print(f"| {key} | {value:,.2f} |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
