"""`stepstone serve` with a real worker (issue 12): SSE delivery latency, webhook to run started.

    .venv/bin/python bench/serve_live_bench.py [--events 300] [--hooks 200] [--no-postgres]

For each store (a fresh SQLite file; a fresh PostgreSQL database through ``bench/pgdb.py``), two
processes as in production: ``stepstone worker --app serve_app`` and ``stepstone serve --app
serve_app`` (``bench/serve_app.py``); this process is the HTTP client.

- **SSE**: a ``ticker`` run emits ``--events`` events 20 ms apart from the worker, each
  carrying ``time.time()`` when emitted; this process follows ``GET /api/runs/{id}/events``
  and takes, per event, the time it was received minus that time. The emit is written to the
  store a little after it is called (the write is batched with the next step), so this is the
  commit-to-receive latency plus that: an upper bound.
- **Webhook**: ``--hooks`` signed ``POST /hooks/bench`` deliveries, one at a time, 50 ms apart
  (an idle worker each time): the time to the 202 (the run stored), and the time from sending
  to the run's ``started_at`` (a worker claimed it and began executing it).

Targets (issue 12): SSE delivers an event within 50 ms of its commit; webhook to run started
p50 under 10 ms. Numbers are medians on a 2-core machine shared with other jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from stepstone.web import sign

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
SECRET = "bench-secret-0123456789"
STEPSTONE = str(Path(sys.executable).parent / "stepstone")


def _pcts(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p90_ms": round(ms[int(len(ms) * 0.9) - 1], 2),
        "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2),
        "max_ms": round(ms[-1], 2),
    }


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str], ready: str) -> Iterator[str]:
    """A stepstone process, yielded with the stderr line that matched ``ready``."""
    proc = subprocess.Popen(
        [STEPSTONE, *args], cwd=BENCH, env=env, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if re.search(ready, line):
                break
        else:
            raise RuntimeError(f"stepstone {args[0]} exited before it was ready")
        # keep reading its log, or a full pipe would stall the process
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        yield line
    finally:
        proc.terminate()
        proc.wait(30)


async def _sse(base: str, events: int) -> list[float]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        r = await http.post(
            "/api/runs", json={"workflow": "ticker", "kwargs": {"n": events, "gap_s": 0.02}}
        )
        assert r.status_code in (200, 201, 202), r.text
        run_id = r.json()["run_id"]
        latencies: list[float] = []
        async with http.stream("GET", f"/api/runs/{run_id}/events") as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data: ") and '"kind": "tick"' in line:
                    received = time.time()
                    sent = json.loads(line[6:])["data"]["t"]
                    latencies.append((received - sent) * 1000)
                elif line.startswith("event: end"):
                    break
        return latencies


def _hooks(base: str, count: int, gap_s: float) -> tuple[list[float], list[float]]:
    acked, started = [], []
    with httpx.Client(base_url=base, timeout=30) as http:
        sent_at: dict[str, float] = {}
        for i in range(count):
            body = json.dumps({"n": i}).encode()
            headers = {
                **sign(SECRET, body, timestamp=int(time.time())),
                "X-Stepstone-Delivery": f"bench-{gap_s}-{i}",
            }
            wall, t0 = time.time(), time.perf_counter()
            r = http.post("/hooks/bench", content=body, headers=headers)
            acked.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 202, r.text
            sent_at[r.json()["run_id"]] = wall
            time.sleep(gap_s)
        time.sleep(1)
        for run_id, wall in sent_at.items():
            run = http.get(f"/api/runs/{run_id}").json()
            began = datetime.fromisoformat(run["started_at"]).timestamp()
            started.append((began - wall) * 1000)
    return acked, started


def measure(url: str, events: int, hooks: int) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": str(BENCH),
        "STEPSTONE_WEBHOOK_BENCH_SECRET": SECRET,
    }
    worker = ["worker", "--app", "serve_app", "--db", url, "--concurrency", "64"]
    serve = ["serve", "--app", "serve_app", "--db", url, "--port", "0"]
    with (
        _process(worker, env, r" ready: "),
        _process(serve, env, r"serving on http://") as line,
    ):
        base = re.search(r"(http://[0-9.:]+)", line)
        assert base is not None
        port = base.group(1)
        asyncio.run(_sse(port, 10))  # warm up
        sse = asyncio.run(_sse(port, events))
        acked, started = _hooks(port, hooks, 0.05)
        back_to_back, _ = _hooks(port, hooks, 0.0)
    return {
        "sse_emit_to_receive": _pcts(sse),
        "webhook_to_202": _pcts(acked),
        "webhook_to_run_started": _pcts(started),
        "webhook_to_202_back_to_back": _pcts(back_to_back),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--hooks", type=int, default=200)
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/live.db"
        subprocess.run([STEPSTONE, "migrate", "--db", url], check=True, capture_output=True)
        results["sqlite"] = measure(url, args.events, args.hooks)
    if not args.no_postgres:
        import pgdb

        with pgdb.fresh_database("serve_live") as (_, url):
            subprocess.run([STEPSTONE, "migrate", "--db", url], check=True, capture_output=True)
            results["postgres"] = measure(url, args.events, args.hooks)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
