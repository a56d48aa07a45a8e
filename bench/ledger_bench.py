"""Cost ledger roll-ups over 1M ledger rows on PostgreSQL (issue 10's target: <= 200 ms).

    .venv/bin/python bench/ledger_bench.py [--rows 1000000] [--reps 7]

A fresh database is migrated by stepstone, then ``rows`` ledger rows are generated in the server
(``generate_series``: 20,000 runs of 50 calls over 30 days, 5 models, 8 workflows, 4 queues),
and ``ledger_days`` (which each ledger insert keeps up to date) is filled from them in bulk.
Each roll-up is then timed through ``Client.cost`` (the code ``stepstone cost`` runs): the whole
ledger as one total and by model / workflow / day, one workflow, one queue, the last 24 hours,
one run. Medians of ``reps`` runs after one warm-up. The EXPLAIN (ANALYZE) of ``--by model``,
of ``--since 24h`` and of a workflow's budget check (the store's own statements, prepared as
its sessions prepare them) is printed for RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from pgdb import conninfo_for, fresh_database

from stepstone import AsyncClient

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SEED = """
INSERT INTO stepstone.ledger (run_id, seq, step, workflow, queue, model, input_tokens,
    output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, latency_s, created_at)
SELECT 'run-' || lpad((i / 50)::text, 7, '0'), i %% 50, 'llm',
       'wf-' || (i %% 8), 'q-' || (i %% 4), 'model-' || (i %% 5),
       500 + i %% 1000, 100 + i %% 300, NULL, NULL, (i %% 97) * 0.0001, 0.5,
       now() - ((%(rows)s - i) * interval '30 days' / %(rows)s)
FROM generate_series(0, %(rows)s - 1) AS i
"""

DAYS = """
INSERT INTO stepstone.ledger_days
SELECT (created_at AT TIME ZONE 'UTC')::date, workflow, queue, model, count(*),
       sum(input_tokens), sum(output_tokens), coalesce(sum(cache_read_tokens), 0),
       coalesce(sum(cache_write_tokens), 0), sum(cost_usd), sum(latency_s)
FROM stepstone.ledger GROUP BY 1, 2, 3, 4
"""


async def timed(client: AsyncClient, reps: int, **query: Any) -> tuple[float, int]:
    await client.cost(**query)  # warm-up
    times = []
    lines = 0
    for _ in range(reps):
        t0 = time.perf_counter()
        result = await client.cost(**query)
        times.append(time.perf_counter() - t0)
        lines = len(result)
    return statistics.median(times) * 1000, lines


async def measure(url: str, reps: int) -> list[tuple[str, float, int]]:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("total", {}),
        ("--by model", {"by": "model"}),
        ("--by workflow", {"by": "workflow"}),
        ("--by day", {"by": "day"}),
        ("--workflow wf-3", {"workflow": "wf-3"}),
        ("--queue q-1", {"queue": "q-1"}),
        ("--since 24h", {"since": timedelta(hours=24)}),
        ("RUN", {"run_id": "run-0012345"}),
    ]
    out = []
    async with AsyncClient(url) as client:
        for label, query in cases:
            ms, lines = await timed(client, reps, **query)
            out.append((label, ms, lines))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    with fresh_database("ledger") as (dbname, url):
        asyncio.run(_migrate(url))
        with psycopg.connect(conninfo_for(dbname), autocommit=True) as conn:
            t0 = time.perf_counter()
            conn.execute(SEED, {"rows": args.rows})
            conn.execute(DAYS)  # what the ledger's inserts keep up to date, done in bulk here
            conn.execute("VACUUM ANALYZE stepstone.ledger")
            conn.execute("VACUUM ANALYZE stepstone.ledger_days")
            print(f"seeded {args.rows:,} ledger rows in {time.perf_counter() - t0:.1f} s")
        plans = _plans(dbname)
        results = asyncio.run(measure(url, args.reps))
    print(f"\n| roll-up over {args.rows:,} rows | median ms | lines |\n|---|---|---|")
    for label, ms, lines in results:
        print(f"| `stepstone cost {label}` | {ms:.1f} | {lines} |")
    for name, plan in plans.items():
        print(f"\nEXPLAIN ANALYZE ({name}):\n{plan}")


def _plans(dbname: str) -> dict[str, str]:
    """EXPLAIN ANALYZE of the store's own statements, as its sessions run them."""
    from stepstone_pg_scale import explain

    from stepstone.store.postgres.sql import Q

    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    whole = {"since": EPOCH, "first_day": "1970-01-01", "first_day_at": EPOCH}
    last_day = {
        "since": now - timedelta(hours=24),
        "first_day": midnight.date().isoformat(),
        "first_day_at": midnight,
    }
    none = {"run_id": None, "workflow": None, "queue": None}
    return {
        "cost --by model": explain(
            dbname, Q.blocks["cost_rollup"], {"by": "model", **none, **whole}
        ),
        "cost --since 24h": explain(
            dbname, Q.blocks["cost_rollup"], {"by": None, **none, **last_day}
        ),
        "a workflow budget check (before each model call)": explain(
            dbname, Q.blocks["spent_by_workflow"], {"name": "wf-3", **whole}
        ),
    }


async def _migrate(url: str) -> None:
    from stepstone import open_store

    store = open_store(url)
    try:
        await store.migrate()
    finally:
        await store.close()


if __name__ == "__main__":
    main()
