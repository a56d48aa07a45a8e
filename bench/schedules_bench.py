"""Schedules under load: 1,000 schedules firing every second on 3 worker processes (issue 12).

    .venv/bin/python bench/schedules_bench.py [--schedules 1000] [--seconds 60] [--workers 3]
                                              [--no-postgres] [--no-sqlite]

For each store (a fresh SQLite file; a fresh PostgreSQL database through ``bench/pgdb.py``): an
app module declaring ``--schedules`` ``Schedule`` objects on a ``* * * * * *`` cron (every
second, catchup ``all``: a late tick is fired late, never dropped) of a no-op workflow; three
``stepstone worker --app`` processes started together, left for ``--seconds``, then stopped
with SIGTERM. Then, from the runs table:

- every tick of every schedule inside the measured window (from 5 s after the workers started
  to 3 s before they were stopped: start-up and shut-down excluded) has exactly one run
  (``missed``: ticks without a run; ``duplicates``: ticks with more than one, which the run id
  makes impossible, counted anyway);
- firing lag = the run's ``created_at`` - its tick (the run id names the tick): p50, p99, max.

The target (issue 12): 0 duplicates, 0 missed, p99 lag under 200 ms on both stores.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from common import compile_bytecode  # noqa: E402

STEPSTONE = Path(sys.executable).parent / "stepstone"

APP = """
from stepstone import Schedule, WorkflowContext, workflow


@workflow
def tick(ctx: WorkflowContext) -> None:
    return None


schedules = [
    Schedule(f"s{{i}}", tick, "* * * * * *", catchup="all") for i in range({n})
]
for s in schedules:
    globals()[s.name] = s
"""


def run_workers(url: str, app: Path, workers: int, seconds: float) -> tuple[datetime, datetime]:
    """Start ``workers`` worker processes, leave them ``seconds``, stop them; the window."""
    env = {**os.environ, "PYTHONPATH": str(app.parent)}
    argv = [str(STEPSTONE), "worker", "--app", app.stem, "--db", url, "--concurrency", "64"]
    logs = [open(app.parent / f"worker-{i}.log", "w") for i in range(workers)]  # noqa: SIM115
    procs = [
        subprocess.Popen(argv, env=env, cwd=app.parent, stdout=log, stderr=log) for log in logs
    ]
    started = datetime.now(UTC)
    try:
        time.sleep(seconds)
    finally:
        stopped = datetime.now(UTC)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    for log in logs:
        log.close()
    for i, proc in enumerate(procs):
        if proc.returncode not in (0, -signal.SIGTERM):
            err = (app.parent / f"worker-{i}.log").read_text()
            raise SystemExit(f"a worker exited {proc.returncode}:\n{err[-2000:]}")
    return started, stopped


def analyse(
    rows: list[tuple[str, datetime]],
    n: int,
    started: datetime,
    stopped: datetime,
) -> dict[str, float]:
    """Missed and duplicated ticks in the window, and the lag of the runs in it."""
    first = (started + timedelta(seconds=5)).replace(microsecond=0) + timedelta(seconds=1)
    last = (stopped - timedelta(seconds=3)).replace(microsecond=0)
    seen: dict[tuple[str, datetime], int] = {}
    lags: list[float] = []
    for run_id, created in rows:
        _, name, stamp = run_id.split(":", 2)
        tick = datetime.fromisoformat(stamp.removesuffix("Z")).replace(tzinfo=UTC)
        if not first <= tick <= last:
            continue
        seen[(name, tick)] = seen.get((name, tick), 0) + 1
        lags.append((created - tick).total_seconds() * 1000)
    ticks = int((last - first).total_seconds()) + 1
    expected = {(f"s{i}", first + timedelta(seconds=k)) for i in range(n) for k in range(ticks)}
    lags.sort()
    return {
        "ticks expected": len(expected),
        "runs in window": len(lags),
        "missed": len(expected - seen.keys()),
        "duplicates": sum(c - 1 for c in seen.values() if c > 1),
        "lag p50 (ms)": statistics.median(lags) if lags else float("nan"),
        "lag p99 (ms)": lags[int(len(lags) * 0.99)] if lags else float("nan"),
        "lag max (ms)": lags[-1] if lags else float("nan"),
    }


def sqlite_rows(path: Path) -> list[tuple[str, datetime]]:
    with sqlite3.connect(path) as conn:
        found = conn.execute(
            "SELECT run_id, created_at FROM runs WHERE run_id LIKE 'schedule:%'"
        ).fetchall()
    return [(run_id, datetime.fromtimestamp(created, UTC)) for run_id, created in found]


def postgres_rows(url: str) -> list[tuple[str, datetime]]:
    import psycopg

    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT run_id, created_at FROM stepstone.runs WHERE run_id LIKE 'schedule:%%'"
        ).fetchall()
    return [(run_id, created) for run_id, created in found]


def migrate(url: str) -> None:
    subprocess.run([str(STEPSTONE), "migrate", "--db", url], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    compile_bytecode()
    folder = Path(tempfile.mkdtemp(prefix="schedules-bench-"))
    app = folder / "bench_schedules_app.py"
    app.write_text(APP.format(n=args.schedules))
    results: dict[str, dict[str, float]] = {}
    if not args.no_sqlite:
        db = folder / "schedules.db"
        url = f"sqlite:///{db}"
        migrate(url)
        started, stopped = run_workers(url, app, args.workers, args.seconds)
        results["sqlite"] = analyse(sqlite_rows(db), args.schedules, started, stopped)
    if not args.no_postgres:
        import pgdb

        with pgdb.fresh_database("schedules") as (_, url):
            migrate(url)
            started, stopped = run_workers(url, app, args.workers, args.seconds)
            results["postgres"] = analyse(postgres_rows(url), args.schedules, started, stopped)
    print(json.dumps(results, indent=2))
    print("| store | ticks | missed | duplicates | lag p50 | lag p99 | lag max |")
    print("|---|---|---|---|---|---|---|")
    for store, r in results.items():
        print(
            f"| {store} | {r['ticks expected']:,.0f} | {r['missed']:,.0f} | "
            f"{r['duplicates']:,.0f} | {r['lag p50 (ms)']:.0f} ms | {r['lag p99 (ms)']:.0f} ms | "
            f"{r['lag max (ms)']:.0f} ms |"
        )


if __name__ == "__main__":
    main()
