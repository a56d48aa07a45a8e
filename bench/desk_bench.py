"""The desk's benchmarks (issue 11): launch latency warm and cold, 1,000 launches, the hook.

    .venv/bin/python bench/desk_bench.py [--reps 9] [--launches 1000] [--processes]
                                         [--inbox 10000] [--only NAME ...]

Each measurement runs in a fresh home (``HOME`` and the current directory in a temporary
folder, the skill scaffolded by ``stepstone skill new hello``, the default embedded store
``~/.stepstone/stepstone.db``), through the installed ``stepstone`` command as a user runs it:

- ``warm``: ``stepstone launch hello --arg name=ann --await`` as a whole process (start to exit,
  the result printed), with the daemon already running and one launch before the timed ones.
  ``--await`` executes the run in the launching process; the daemon is only there (target: at
  most 250 ms). Also ``warm_daemon``: ``launch`` without ``--await``, from the process' start
  until the daemon has completed the run (the store polled every 2 ms from outside).
- ``cold``: a home with no store and no daemon. ``stepstone launch hello --arg name=ann``
  (without ``--await``: that is the launch that starts a daemon), from the process' start
  until (a) it exits (it returns once a daemon holds the lease) and (b) the run is completed
  by the daemon it started; (b) is the issue's "cold" (target: at most 1.5 s). The daemon is
  stopped after each rep. Also ``cold_await``: ``launch ... --await`` in a home with no store
  (it creates and migrates it; no daemon is needed).
- ``loop``: ``--launches`` launches in a loop with a warm daemon, then the wait until the
  daemon finished them all; the inbox must then hold exactly one ``done`` row per launch.
  By default the loop calls the command's ``main(argv)`` in this process (the launch code
  path, without an interpreter start per launch); ``--processes`` starts one ``stepstone
  launch`` process per launch instead (slow: ~0.3 s each).
- ``hook``: ``stepstone hook session-start`` as a whole process on an inbox of ``--inbox``
  unread rows (inserted directly with sqlite3 into a migrated store) (target: under 100 ms).

Numbers are medians (and min/max) over ``--reps``: the machine has 2 noisy cores.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
STEPSTONE = str(BIN / "stepstone") if (BIN / "stepstone").exists() else "stepstone"


class Home:
    """A fresh home and project folder with the scaffolded `hello` skill."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STEPSTONE_")}
        self.env.update(HOME=str(root), NO_COLOR="1")
        self.db = root / ".stepstone" / "stepstone.db"
        self.run("skill", "new", "hello")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [STEPSTONE, *args], cwd=self.root, env=self.env, capture_output=True, text=True
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"stepstone {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
        return proc

    def timed(self, *args: str) -> tuple[float, str]:
        began = time.perf_counter()
        proc = self.run(*args)
        return time.perf_counter() - began, proc.stdout.strip()

    def state(self, run_id: str) -> str | None:
        try:
            conn = sqlite3.connect(f"{self.db.as_uri()}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error:
            return None
        try:
            row = conn.execute("SELECT state FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        except sqlite3.Error:
            return None
        finally:
            conn.close()
        return row[0] if row else None

    def wait_completed(self, run_id: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while self.state(run_id) != "completed":
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {run_id} not completed within {timeout_s} s")
            time.sleep(0.002)

    def stop_daemon(self) -> None:
        self.run("daemon", "stop", check=False)


@contextlib.contextmanager
def home() -> Iterator[Home]:
    with tempfile.TemporaryDirectory(prefix="desk-bench-") as tmp:
        h = Home(Path(tmp))
        try:
            yield h
        finally:
            h.stop_daemon()


def summary(samples: list[float], unit: str = "ms", scale: float = 1000.0) -> dict[str, Any]:
    values = [s * scale for s in samples]
    return {
        "unit": unit,
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
        "n": len(values),
    }


def bench_warm(reps: int) -> dict[str, Any]:
    with home() as h:
        h.run("daemon", "start")
        h.run("launch", "hello", "--arg", "name=ann", "--await")  # warm-up (the store, caches)
        awaited = []
        for _ in range(reps):
            took, out = h.timed("launch", "hello", "--arg", "name=ann", "--await")
            assert out == "Hello, ann!", out
            awaited.append(took)
        through_daemon = []
        for i in range(reps):
            run_id = f"warm-{i}"
            began = time.perf_counter()
            h.run("launch", "hello", "--arg", "name=ann", "--run-id", run_id)
            h.wait_completed(run_id)
            through_daemon.append(time.perf_counter() - began)
    return {"warm": summary(awaited), "warm_daemon": summary(through_daemon)}


def bench_cold(reps: int) -> dict[str, Any]:
    returned, completed, awaited = [], [], []
    for i in range(reps):
        with home() as h:
            run_id = f"cold-{i}"
            began = time.perf_counter()
            h.run("launch", "hello", "--arg", "name=ann", "--run-id", run_id)
            returned.append(time.perf_counter() - began)
            h.wait_completed(run_id)
            completed.append(time.perf_counter() - began)
        with home() as h:
            took, out = h.timed("launch", "hello", "--arg", "name=ann", "--await")
            assert out == "Hello, ann!", out
            awaited.append(took)
    return {
        "cold_launch_returns": summary(returned),
        "cold": summary(completed),
        "cold_await": summary(awaited),
    }


def _in_process(h: Home) -> Callable[[list[str]], int]:
    from stepstone.cli.main import main

    os.chdir(h.root)  # ./skills is looked up from the current directory
    db = ["--db", f"sqlite:///{h.db}"]  # the default store is found through this process's HOME

    def launch(argv: list[str]) -> int:
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main([*argv, *db], env=h.env)
        if code != 0:
            raise RuntimeError(f"stepstone {' '.join(argv)}: exit {code}\n{err.getvalue()}")
        return code

    return launch


def bench_loop(launches: int, processes: bool) -> dict[str, Any]:
    with home() as h:
        h.run("daemon", "start")
        launch = None if processes else _in_process(h)
        began = time.perf_counter()
        for i in range(launches):
            argv = ["launch", "hello", "--arg", f"name=n{i}", "--run-id", f"loop-{i:05d}"]
            if launch is None:
                h.run(*argv)
            elif launch(argv) != 0:
                raise RuntimeError(f"launch {i} failed")
        looped = time.perf_counter() - began
        deadline = time.monotonic() + 600
        conn = sqlite3.connect(f"{h.db.as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            while True:
                (left,) = conn.execute(
                    "SELECT COUNT(*) FROM runs WHERE run_id LIKE 'loop-%' AND state != 'completed'"
                ).fetchone()
                if not left or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            done = time.perf_counter() - began
            rows, runs, done_rows = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT run_id), SUM(outcome = 'done') FROM inbox"
            ).fetchone()
        finally:
            conn.close()
        os.chdir(Path(__file__).resolve().parent)
    ok = rows == launches == runs == done_rows
    return {
        "loop": {
            "launches": launches,
            "how": "processes" if processes else "in-process main(argv)",
            "loop_s": round(looped, 2),
            "per_launch_ms": round(looped / launches * 1000, 2),
            "all_completed_s": round(done, 2),
            "inbox_rows": rows,
            "inbox_runs": runs,
            "inbox_done_rows": done_rows,
            "exactly_one_per_launch": ok,
        }
    }


def bench_hook(reps: int, rows: int) -> dict[str, Any]:
    with home() as h:
        h.run("migrate")
        now = time.time()
        conn = sqlite3.connect(h.db)
        with conn:
            conn.executemany(
                "INSERT INTO inbox (run_id, skill, outcome, mark, level, summary, created_at) "
                "VALUES (?, 'hello', 'done', 1, 'info', ?, ?)",
                ((f"hook-{i:06d}", f"Hello, n{i}!", now + i * 1e-3) for i in range(rows)),
            )
        conn.close()
        h.run("hook", "session-start")  # warm-up (page cache)
        samples = []
        for _ in range(reps):
            took, out = h.timed("hook", "session-start")
            assert f"{rows} unread" in out, out[:200]
            samples.append(took)
    return {"hook": {**summary(samples), "inbox_rows": rows}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--launches", type=int, default=1000)
    parser.add_argument("--processes", action="store_true", help="loop: one process a launch")
    parser.add_argument("--inbox", type=int, default=10_000)
    parser.add_argument("--only", nargs="*", choices=["warm", "cold", "loop", "hook"])
    ns = parser.parse_args()
    wanted = ns.only or ["warm", "cold", "loop", "hook"]
    results: dict[str, Any] = {}
    if "warm" in wanted:
        results |= bench_warm(ns.reps)
    if "cold" in wanted:
        results |= bench_cold(ns.reps)
    if "loop" in wanted:
        results |= bench_loop(ns.launches, ns.processes)
    if "hook" in wanted:
        results |= bench_hook(ns.reps, ns.inbox)
    for name, value in results.items():
        print(f"{name:22} {json.dumps(value)}")


if __name__ == "__main__":
    main()
