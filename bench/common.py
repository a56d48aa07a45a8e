"""Benchmark plumbing shared by every bench script (stdlib only: it runs in both virtualenvs).

Each bench script (``stepstone_bench.py``, ``peers/dbos_bench.py``, ``peers/langgraph_bench.py``)
is run as ``python SCRIPT --workload NAME [--reps R] [--n N] --work-dir DIR`` and prints one JSON
object on its last stdout line:
``{"system", "workload", "metrics": {name: {"unit", "samples"}}, ...}``.
``bench/run.py`` collects those lines; this module holds what the scripts have in common: the
command line, timing of whole processes, watching a SQLite file from outside, and the output.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
WORK_ROOT = BENCH_DIR / ".work"


def parse_args(workloads: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workload", required=True, choices=list(workloads))
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions (after one warm-up)")
    parser.add_argument(
        "--n", type=int, default=1000, help="number of workflows (throughput workloads)"
    )
    parser.add_argument("--work-dir", type=Path, default=WORK_ROOT / "manual")
    parser.add_argument("--db", type=Path, help="database file (internal modes: worker processes)")
    parser.add_argument("--url", help="database URL (internal modes: PostgreSQL worker processes)")
    parser.add_argument(
        "--poll-s", type=float, default=1.0, help="worker polling interval (internal modes)"
    )
    return parser.parse_args()


def fresh_dir(root: Path, name: str) -> Path:
    """An empty directory ``root/name`` (databases of one measurement live there)."""
    path = root / name
    if path.exists():
        for child in sorted(path.rglob("*"), reverse=True):
            child.rmdir() if child.is_dir() else child.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


def emit(
    system: str, workload: str, metrics: dict[str, tuple[str, Sequence[float]]], **extra: Any
) -> None:
    """Print the result line that ``run.py`` parses (always the last line of stdout).

    ``metrics`` maps a metric name to ``(unit, samples)``; ``extra`` carries notes and settings.
    """
    out: dict[str, Any] = {
        "system": system,
        "workload": workload,
        "metrics": {
            k: {"unit": u, "samples": [round(x, 3) for x in v]} for k, (u, v) in metrics.items()
        },
    }
    out.update(extra)
    print(json.dumps(out), flush=True)


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def time_processes(
    argv_for: Callable[[int], Sequence[str]], reps: int, *, env: dict[str, str] | None = None
) -> list[float]:
    """Wall-clock milliseconds of ``argv_for(i)`` run ``reps`` times (after one unmeasured warm-up
    that fills the OS page cache), each a fresh process; a failing process raises with its
    stderr."""
    samples = []
    for i in range(reps + 1):
        argv = list(argv_for(i))
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env or python_env())
        elapsed = (time.perf_counter() - t0) * 1000
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        if i:
            samples.append(elapsed)
    return samples


def wait_for_count(
    db: Path, sql: str, target: int, *, timeout_s: float, poll_s: float = 0.002
) -> float:
    """Poll ``sql`` (a ``SELECT count(*)``) on the SQLite file ``db`` until it reaches ``target``;
    return the wall time (``time.time()``) at which it was first seen. Used as a neutral outside
    observer of "all runs finished", identical for stepstone and the peers."""
    deadline = time.time() + timeout_s
    conn: sqlite3.Connection | None = None
    try:
        while True:
            now = time.time()
            if now > deadline:
                raise TimeoutError(f"{db}: {sql!r} did not reach {target} within {timeout_s}s")
            try:
                if conn is None:
                    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
                (count,) = conn.execute(sql).fetchone()
                if count >= target:
                    return time.time()
            except sqlite3.OperationalError:
                # The file or table may not exist yet (the worker creates it): look again.
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(poll_s)
    finally:
        if conn is not None:
            conn.close()


def wait_for_file(path: Path, predicate: Callable[[str], bool], *, timeout_s: float) -> float:
    """Poll a text file until ``predicate(content)``; return the wall time it was first true."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if predicate(path.read_text()):
                return time.time()
        except FileNotFoundError:
            pass
        time.sleep(0.0005)
    raise TimeoutError(f"{path}: condition not met within {timeout_s}s")


def compile_bytecode() -> None:
    """Write stepstone's ``.pyc`` files, as ``pip install`` does for the peers' packages.

    An editable install under ``PYTHONDONTWRITEBYTECODE=1`` (set on this machine) otherwise
    compiles every module from source in every process: +60-80 ms per process start, which is a
    property of the checkout, not of stepstone (measured 2026-11-30: ``stepstone run`` of a
    3-step app 250 ms without ``.pyc`` files, 150 ms with them). Called once by each bench
    entry point, in the project's virtualenv."""
    import compileall

    compileall.compile_dir(
        str(Path(__file__).resolve().parent.parent / "src" / "stepstone"), quiet=1
    )


def python_env() -> dict[str, str]:
    """The environment for child processes: unbuffered, no bytecode-writing surprises."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def script_argv(script: Path, *args: str) -> list[str]:
    return [sys.executable, str(script), *args]


def sqlite_floor(commits: int = 300) -> dict[str, float]:
    """µs per BEGIN IMMEDIATE + INSERT of one step-like row + COMMIT, WAL, synchronous NORMAL vs
    FULL: the floor a per-step checkpoint cannot beat on this disk (measured in this run).
    ``FULL`` appends to a growing WAL (a fresh file: each fsync also updates the file size);
    ``FULL_REUSED`` is the same once the WAL has been checkpointed and started over, so commits
    overwrite frames already on disk (the steady state of a store in use)."""
    out = {}
    with tempfile.TemporaryDirectory(dir=WORK_ROOT) as tmp:
        for level in ("NORMAL", "FULL"):
            conn = sqlite3.connect(Path(tmp) / f"{level}.db", isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={level}")
            conn.execute(
                "CREATE TABLE steps (run_id TEXT NOT NULL, seq INTEGER NOT NULL, "
                "name TEXT NOT NULL, status TEXT NOT NULL, output TEXT, started_at REAL, "
                "finished_at REAL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID"
            )
            out[level] = _commit_loop(conn, commits, "r")
            if level == "FULL":
                conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
                out["FULL_REUSED"] = _commit_loop(conn, commits, "s")
            conn.close()
    return out


def _commit_loop(conn: sqlite3.Connection, commits: int, tag: str) -> float:
    samples = []
    for rep in range(3):
        t0 = time.perf_counter()
        for i in range(commits):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO steps VALUES (?, ?, 'noop', 'completed', 'null', ?, ?)",
                (f"01m809g2338fvh8tga25b3d2{tag}{rep}", i, time.time(), time.time()),
            )
            conn.execute("COMMIT")
        samples.append((time.perf_counter() - t0) * 1e6 / commits)
    return median(samples)


# --- child processes ----------------------------------------------------------------------------


def spawn(script: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """Run ``script`` (a bench script's internal mode) with this interpreter, output captured."""
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env={**python_env(), **env},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> str:
    """Stop a process we spawned with ``sig`` (SIGKILL if it outlives 30 s); return its stderr."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""


def ready_time(
    work: Path, index: int, proc: subprocess.Popen[str], what: str, timeout_s: float = 60
) -> float:
    """Wait for process ``index`` to write ``work/ready{index}`` (the moment it was ready, as
    ``time.monotonic()``-comparable text); fail at once if it exits first."""
    path = work / f"ready{index}"
    deadline = time.time() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            err = stop(proc)
            raise RuntimeError(f"{what} {index} exited {proc.returncode}:\n{err[-3000:]}")
        if time.time() > deadline:
            raise TimeoutError(f"{what} {index} not ready within {timeout_s:.0f} s")
        time.sleep(0.001)
    return float(path.read_text())


# --- drains -------------------------------------------------------------------------------------

DRAIN_UNITS = {
    "enqueue_per_s": "runs/s",
    "drain_per_s": "wf/s",
    "e2e_per_s": "wf/s",
    "worker_startup_ms": "ms",
    "ready_gap_ms": "ms",
}


def drain_sample(
    n: int, enqueue_s: float, done_at: float, ready: Sequence[float], spawned_at: float
) -> dict[str, float]:
    """One drain of ``n`` runs: timed from the first worker being ready (``ready``: when each
    was) to ``done_at``; end to end adds the enqueue; ``ready_gap_ms`` with several workers."""
    drain_s = done_at - min(ready)
    sample = {
        "enqueue_per_s": n / enqueue_s,
        "drain_per_s": n / drain_s,
        "e2e_per_s": n / (enqueue_s + drain_s),
        "worker_startup_ms": (min(ready) - spawned_at) * 1000,
    }
    if len(ready) > 1:
        sample["ready_gap_ms"] = (max(ready) - min(ready)) * 1000
    return sample


def drain_metrics(samples: Sequence[dict[str, float]]) -> dict[str, tuple[str, list[float]]]:
    return {k: (DRAIN_UNITS[k], [s[k] for s in samples]) for k in samples[0]}
