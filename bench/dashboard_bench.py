"""The runs list on a large store (issue 12): ``GET /api/runs?limit=50`` and the dashboard's runs
page, on a SQLite file of 1M runs.

    .venv/bin/python bench/dashboard_bench.py [--runs 1000000] [--requests 200] [--db FILE]

Seeding through the client would take an hour, so the store is migrated by stepstone and then
filled by one bulk INSERT per 50,000 rows straight into ``runs`` (this script's own SQL: finished
runs mostly, some failed, waiting and pending, five workflows, three queues, a label on one run
in 100, creation times one second apart). ``--db`` keeps the file for another try (it is only
seeded when empty). The app is served by uvicorn in a thread; one keep-alive client measures
one request at a time (p50, p99): the API list, filtered lists, the runs page (the list and
every queue's counts, rendered), the run page and the queues page. ``EXPLAIN QUERY PLAN`` of
each list shows which index serves it.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from serve_bench import _pcts, _Server

from stepstone import Client
from stepstone.store.sqlite.sql import Q
from stepstone.web.app import create_app

WORKFLOWS = ("refund", "publish", "checkout", "report", "sync")
QUEUES = ("default", "default", "reports", "payments")
BATCH = 50_000
T0 = 1_764_000_000.0  # creation times count up from here, one second apart


def _state(i: int) -> str:
    r = i % 100
    return "failed" if r < 3 else "waiting" if r < 5 else "pending" if r < 6 else "completed"


def _row(i: int) -> tuple[Any, ...]:
    created = T0 + i
    state = _state(i)
    finished = created + 0.5 if state in ("completed", "failed") else None
    error = (
        json.dumps({"type": "RuntimeError", "message": f"card declined for {i}"})
        if state == "failed"
        else None
    )
    return (
        f"run-{i:09d}",
        WORKFLOWS[i % len(WORKFLOWS)],
        "v1",
        state,
        json.dumps({"args": [i], "kwargs": {}}),
        json.dumps(f"done {i}") if state == "completed" else None,
        error,
        QUEUES[i % len(QUEUES)],
        created if state in ("pending", "waiting") else None,
        created,
        finished or created,
        created,
        finished,
        '{"team":"ops"}' if i % 100 == 7 else None,
    )


def seed(path: Path, runs: int) -> float:
    """Fill the runs table (seconds taken); the rows are what create_run would write."""
    t0 = time.perf_counter()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    sql = (
        "INSERT INTO runs (run_id, workflow, version, state, input, output, error, queue, "
        "wake_at, created_at, updated_at, started_at, finished_at, labels) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    for start in range(0, runs, BATCH):
        with db:
            db.executemany(sql, (_row(i) for i in range(start, min(start + BATCH, runs))))
    db.execute("ANALYZE")
    db.close()
    return time.perf_counter() - t0


def explain(path: Path) -> dict[str, list[str]]:
    """The plan of list_runs for the lists measured."""
    text = Q.list_runs
    base = {"states": None, "workflow": None, "queue": None, "parent_run_id": None}
    base |= {"labels": None, "before": None, "limit": 50}
    cases = {
        "newest": {},
        "state=failed": {"states": '["failed"]'},
        "workflow=refund": {"workflow": "refund"},
        "label team=ops": {"labels": '{"team":"ops"}'},
    }
    db = sqlite3.connect(path)
    plans = {}
    for name, params in cases.items():
        rows = db.execute("EXPLAIN QUERY PLAN " + text, base | params).fetchall()
        plans[name] = [r[-1] for r in rows]
    db.close()
    return plans


def _time(http: httpx.Client, path: str, requests: int) -> dict[str, float]:
    for _ in range(5):
        assert http.get(path).status_code == 200, path
    samples = []
    for _ in range(requests):
        t0 = time.perf_counter()
        r = http.get(path)
        samples.append(time.perf_counter() - t0)
        assert r.status_code == 200, (path, r.text[:200])
    return _pcts(samples)


def measure(path: Path, runs: int, requests: int) -> dict[str, Any]:
    url = f"sqlite:///{path}"
    with Client(url) as client:  # migrates a new file
        client.list(limit=1)
    have = sqlite3.connect(path).execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    seeded_s = seed(path, runs) if have == 0 else None
    count = sqlite3.connect(path).execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    app = create_app(url)
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    server.listening.wait(60)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    paths = {
        "api newest 50": "/api/runs?limit=50",
        "api state=failed": "/api/runs?limit=50&state=failed",
        "api workflow=refund": "/api/runs?limit=50&workflow=refund",
        "api label team=ops": "/api/runs?limit=50&label=team%3Dops",
        "api page 2 (before=)": f"/api/runs?limit=50&before=run-{count - 51:09d}",
        "page / (runs)": "/",
        "api queues (the runs page's counts)": "/api/queues?window_s=3600",
        "page /?state=failed": "/?state=failed",
        "page /runs/{id}": f"/runs/run-{count - 1:09d}",
        "page /queues": "/queues",
    }
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            timings = {name: _time(http, p, requests) for name, p in paths.items()}
    finally:
        server.should_exit = True
        thread.join(30)
    return {"runs": count, "seeded_s": seeded_s, "timings": timings, "plans": explain(path)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--db", type=Path, help="keep the store in this file")
    args = parser.parse_args()
    if args.db is not None:
        result = measure(args.db, args.runs, args.requests)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = measure(Path(tmp) / "runs.db", args.runs, args.requests)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
