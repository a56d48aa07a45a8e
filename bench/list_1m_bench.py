"""`GET /api/runs?limit=50` on an SQLite store of 1M runs (issue 12's list target: p50 < 5 ms).

    .venv/bin/python bench/list_1m_bench.py [--runs 1000000] [--requests 300] [--no-postgres]

The store (a fresh SQLite file; a fresh PostgreSQL database through ``bench/pgdb.py``) is
migrated by ``stepstone migrate``, then filled by one ``INSERT ... SELECT`` over a counter
(completed runs of one workflow, created one per millisecond, ids sortable like the store's
own), analysed, and served by ``stepstone serve`` in its own process. One keep-alive client
asks for the first page, then pages on with ``?before=``, one request at a time. Medians on a
2-core machine shared with other jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
STEPSTONE = str(Path(sys.executable).parent / "stepstone")

FILL_SQLITE = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :runs - 1)
INSERT INTO runs (run_id, workflow, version, state, input, output, queue, priority,
                  created_at, updated_at, started_at, finished_at, lease_token)
SELECT printf('bench%021d', i), 'ticker', 'v1', 'completed', '{"args":[],"kwargs":{}}',
       'null', 'default', 0, :t0 + i / 1000.0, :t0 + i / 1000.0, :t0 + i / 1000.0,
       :t0 + i / 1000.0 + 0.01, 1
FROM n
"""


def _pcts(samples: list[float]) -> dict[str, float]:
    ms = sorted(samples)
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2),
    }


FILL_POSTGRES = """
INSERT INTO stepstone.runs (run_id, workflow, version, state, input, output, queue, priority,
                            created_at, updated_at, started_at, finished_at, lease_token)
SELECT 'bench' || lpad(i::text, 21, '0'), 'ticker', 'v1', 'completed',
       '{"args":[],"kwargs":{}}', 'null', 'default', 0,
       to_timestamp(%(t0)s + i / 1000.0), to_timestamp(%(t0)s + i / 1000.0),
       to_timestamp(%(t0)s + i / 1000.0), to_timestamp(%(t0)s + i / 1000.0 + 0.01), 1
FROM generate_series(0, %(runs)s - 1) AS i
"""


def fill_postgres(url: str, runs: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FILL_POSTGRES, {"runs": runs, "t0": time.time() - runs / 1000.0})
        conn.execute("VACUUM (ANALYZE) stepstone.runs")
        conn.execute("CHECKPOINT")


def fill_sqlite(url: str, runs: int) -> None:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("BEGIN")
    conn.execute(FILL_SQLITE, {"runs": runs, "t0": time.time() - runs / 1000.0})
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def measure(url: str, runs: int, requests: int) -> dict[str, Any]:
    subprocess.run([STEPSTONE, "migrate", "--db", url], check=True, capture_output=True)
    t0 = time.perf_counter()
    (fill_sqlite if url.startswith("sqlite") else fill_postgres)(url, runs)
    fill_s = time.perf_counter() - t0
    env = {**os.environ, "PYTHONPATH": str(BENCH), "STEPSTONE_WEBHOOK_BENCH_SECRET": "unused"}
    serve = subprocess.Popen(
        [STEPSTONE, "serve", "--app", "serve_app", "--db", url, "--port", "0"],
        cwd=BENCH,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert serve.stderr is not None
    try:
        base = None
        for line in serve.stderr:
            found = re.search(r"serving on (http://[0-9.:]+)", line)
            if found:
                base = found.group(1)
                break
        assert base is not None, "serve exited before it was listening"
        threading.Thread(target=serve.stderr.read, daemon=True).start()
        first, paged = [], []
        with httpx.Client(base_url=base, timeout=30) as http:
            for _ in range(20):  # warm up
                http.get("/api/runs?limit=50")
            before = None
            for _ in range(requests):
                t = time.perf_counter()
                r = http.get("/api/runs?limit=50")
                first.append((time.perf_counter() - t) * 1000)
                assert len(r.json()["runs"]) == 50, r.text
                query = f"/api/runs?limit=50&before={before}" if before else "/api/runs?limit=50"
                t = time.perf_counter()
                r = http.get(query)
                paged.append((time.perf_counter() - t) * 1000)
                before = r.json()["runs"][-1]["run_id"]
            total = http.get("/api/runs?limit=1&before=bench000000000000000000001").json()
            assert len(total["runs"]) == 1, "the oldest run is there: the store holds them all"
    finally:
        serve.terminate()
        serve.wait(30)
    return {
        "runs": runs,
        "fill_s": round(fill_s, 1),
        "first_page": _pcts(first),
        "next_pages": _pcts(paged),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = measure(f"sqlite:///{tmp}/list.db", args.runs, args.requests)
    if not args.no_postgres:
        import pgdb

        with pgdb.fresh_database("list_1m") as (_, url):
            results["postgres"] = measure(url, args.runs, args.requests)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
