"""`stepstone serve` latencies (issue 12): GET /api/runs?limit=50, and webhook to run started.

    .venv/bin/python bench/serve_bench.py [--runs 20000] [--requests 300] [--no-postgres]

For each store (a fresh SQLite file; a fresh PostgreSQL database through ``bench/pgdb.py``):
``--runs`` runs are created through the client, the app is served by uvicorn on a local port
(in a thread of this process), and one keep-alive HTTP client measures, one request at a time:

- ``GET /api/runs?limit=50``: the newest 50 runs as JSON (p50, p99);
- ``POST /hooks/bench`` with a fresh signed delivery each time: verified, the run created,
  answered 202 (p50, p99) - the time from a sender's delivery to its run being stored.

The targets (issue 12): the list under 5 ms p50 on a store of 1M runs, a webhook under 10 ms
p50. The script says how many runs the store held (seeding 1M takes long: say --runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from stepstone import AsyncClient, WorkflowContext, workflow
from stepstone.web import WebhookBinding, sign
from stepstone.web.app import create_app

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
SECRET = "bench-secret-0123456789"


@workflow
def noop(ctx: WorkflowContext, payload: dict[str, Any]) -> None:
    return None


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.listening.set()


async def _seed(url: str, runs: int) -> None:
    async with AsyncClient(url, workflows=[noop]) as client:
        for i in range(0, runs, 500):
            await asyncio.gather(
                *(client.start(noop, {"i": j}) for j in range(i, min(i + 500, runs)))
            )


def _pcts(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2),
    }


def measure(url: str, runs: int, requests: int) -> dict[str, Any]:
    asyncio.run(_seed(url, runs))
    hook = WebhookBinding("bench", "noop", "stepstone", SECRET)
    app = create_app(url, workflows=[noop], hooks=[hook])
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    server.listening.wait(30)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        with httpx.Client(base_url=base) as http:
            listing, hooks = [], []
            for _ in range(20):  # warm up both paths
                http.get("/api/runs?limit=50")
            for _ in range(requests):
                t0 = time.perf_counter()
                r = http.get("/api/runs?limit=50")
                listing.append(time.perf_counter() - t0)
                assert r.status_code == 200
                assert len(r.json()["runs"]) == 50
            for i in range(requests):
                body = json.dumps({"n": i}).encode()
                headers = {
                    **sign(SECRET, body, timestamp=int(time.time())),
                    "X-Stepstone-Delivery": f"d{i}",
                }
                t0 = time.perf_counter()
                r = http.post("/hooks/bench", content=body, headers=headers)
                hooks.append(time.perf_counter() - t0)
                assert r.status_code == 202, r.text
    finally:
        server.should_exit = True
        thread.join(30)
    return {"runs": runs, "list_runs_limit_50": _pcts(listing), "webhook_to_run": _pcts(hooks)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = measure(f"sqlite:///{tmp}/serve.db", args.runs, args.requests)
    if not args.no_postgres:
        import pgdb

        with pgdb.fresh_database("serve") as (_, url):
            stepstone = Path(sys.executable).parent / "stepstone"
            subprocess.run(
                [str(stepstone), "migrate", "--db", url], check=True, capture_output=True
            )
            results["postgres"] = measure(url, args.runs, args.requests)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
