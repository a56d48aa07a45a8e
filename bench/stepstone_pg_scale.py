"""stepstone's claim path with 1,000,000 finished runs in the table vs an empty one (PostgreSQL).

Run with /work/main/.venv/bin/python as ``--workload pg_claims [--reps R] [--n N]``:

1. a fresh database is migrated and filled with ``BENCH_PG_ROWS`` (default 1,000,000) completed
   runs by one ``INSERT … SELECT generate_series`` into ``stepstone.runs`` (finished over the
   last 30 days), then ``VACUUM (ANALYZE)`` (so autovacuum does not start in the middle of the
   measurement) and ``CHECKPOINT`` (so the load's dirty pages are not written while we
   measure); another fresh database is migrated, vacuumed and left empty;
2. claim latency, in-process, on each (interleaved, after starting enough runs of a workflow no
   worker serves): ``store.has_claimable`` (the store's cheap "anything to claim?" read),
   ``store.claim_runs(limit=1)`` and ``store.claim_runs(limit=64)``, and both when nothing is
   claimable (``claim_runs`` finding nothing is an idle worker's poll); then those runs are
   deleted and both tables vacuumed;
3. drain throughput (``pg_drain`` of ``stepstone_pg_bench.py``: N runs, two worker processes) on
   each, alternating, ``--reps`` times; both databases keep their drained runs, so they go
   through the same history and differ only by the 1M finished runs;
4. ``EXPLAIN (ANALYZE, BUFFERS)`` of the claim statement (``find_claimable`` in
   ``src/stepstone/store/postgres/queries.sql``) and of ``has_claimable``, each with the
   parameters the store itself sent (captured from a real ``claim_runs`` call), prepared with a
   generic plan on a connection with the store's own session options (``LinkSettings`` of the
   adapter: ``plan_cache_mode=force_generic_plan`` and the rest), inside a transaction that is
   rolled back;
5. µs per step of a 100-step workflow (``AsyncClient.run``) on each database before the claims
   and again while 10,000 (quick: 3,000) runs claimed by hand are running (their leases held),
   with the plans of ``record_step`` and ``finish_run`` at that moment (they are fenced by
   ``state = 'running'``, which a partial index over running runs may also match).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import pgdb
import psycopg
from psycopg.sql import SQL, Literal
from stepstone_pg_bench import (
    ALL,
    WORKER_STDERR,
    drain_once,
    migrate,
    seq100,
)

from stepstone import AsyncClient, WorkflowContext, open_store, step, workflow
from stepstone.core.model import WorkerInfo
from stepstone.core.port import ClaimFilter
from stepstone.store.postgres.sql import Q, positional

SYSTEM = "stepstone"
SIZES = ("empty", "1m")
BUSY_RUNNING = 10_000  # runs holding leases while the per-step cost is measured again (3,000 quick)

# Old runs get ids that sort before every new one, in creation order, as stepstone's time-sortable
# ids do (so new runs are appended at the right edge of the primary key, as in production).
FILL_SQL = """
INSERT INTO stepstone.runs (
    run_id, workflow, version, state, input, output, queue, lease_token,
    created_at, updated_at, started_at, finished_at)
SELECT '00' || lpad(i::text, 24, '0'), 'wf3', 'bench', 'completed', '[]', '3', 'default', 1,
       t, t + interval '5 ms', t, t + interval '5 ms'
FROM generate_series(1, %(rows)s) AS i,
     LATERAL (SELECT now() - interval '30 days' + i * (interval '30 days' / %(rows)s)) AS s (t)
"""


@step
async def unserved() -> None:
    return None


@workflow
async def claimonly(ctx: WorkflowContext) -> None:
    """Started for the claim-latency part; no worker serves it, the bench claims it by hand."""
    await unserved()


# --- building the large table -----------------------------------------------------------------


def fill(dbname: str, url: str, rows: int) -> dict[str, Any]:
    """Migrate, insert ``rows`` completed runs, vacuum and analyze."""
    asyncio.run(migrate(url))
    t0 = time.perf_counter()
    with psycopg.connect(pgdb.conninfo_for(dbname), autocommit=True) as conn:
        if rows:
            conn.execute(FILL_SQL, {"rows": rows})
        t1 = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) stepstone.runs")
        conn.execute("CHECKPOINT")  # the load's dirty pages are written now, not while we measure
        t2 = time.perf_counter()
        size = conn.execute(
            "SELECT pg_size_pretty(pg_table_size('stepstone.runs')),"
            " pg_size_pretty(pg_indexes_size('stepstone.runs'))"
        ).fetchone()
    assert size is not None
    return {
        "rows": rows,
        "insert_s": round(t1 - t0, 2),
        "vacuum_analyze_checkpoint_s": round(t2 - t1, 2),
        "table_size": size[0],
        "indexes_size": size[1],
    }


# --- claim latency ----------------------------------------------------------------------------


class Capture:
    """Records the (SQL, params) the store sends, by patching psycopg's async cursor."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self._orig: Callable[..., Any] | None = None

    def __enter__(self) -> Capture:
        self._orig = orig = psycopg.AsyncCursor.execute
        sent = self.sent

        async def execute(cur: Any, query: Any, params: Any = None, **kw: Any) -> Any:
            if isinstance(params, dict):
                sent.append((str(query), dict(params)))
            return await orig(cur, query, params, **kw)

        psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        psycopg.AsyncCursor.execute = self._orig  # type: ignore[method-assign]


async def start_runs(url: str, n: int) -> None:
    store = open_store(url)
    gate = asyncio.Semaphore(64)
    try:
        async with AsyncClient(store, workflows=[*ALL, claimonly]) as client:

            async def one() -> None:
                async with gate:
                    await client.start(claimonly)

            await asyncio.gather(*[one() for _ in range(n)])
    finally:
        await store.close()


async def claim_block(
    url: str, k1: int, k64: int, capture: dict[str, tuple[str, dict[str, Any]]]
) -> dict[str, list[float]]:
    """Time the claim path on ``url``: has_claimable, claim_runs of 1 and of 64 (ms each)."""
    store = open_store(url)
    worker = WorkerInfo("bench-claimer", "bench", os.getpid(), ("default",), 64)
    flt = ClaimFilter(queues=("default",), workflows=("claimonly",))
    out: dict[str, list[float]] = {"has_claimable_ms": [], "claim1_ms": [], "claim64_ms": []}
    try:
        # warm-up: connect, prepare both statements (the first execution plans them)
        await store.has_claimable(flt, now=datetime.now(UTC))
        await store.claim_runs(worker, flt, limit=1, lease_s=30.0, now=datetime.now(UTC))
        if "find_claimable" not in capture:
            with Capture() as cap:
                await store.has_claimable(flt, now=datetime.now(UTC))
                taken = await store.claim_runs(
                    worker, flt, limit=64, lease_s=30.0, now=datetime.now(UTC)
                )
            assert len(taken) == 64, f"only {len(taken)} claimable runs"
            for sql, params in cap.sent:
                if sql == Q.find_claimable:
                    capture["find_claimable"] = (sql, params)
                elif sql == Q.has_claimable:
                    capture["has_claimable"] = (sql, params)
        for _ in range(k1 + k64):  # claimable runs exist: the first EXISTS answers
            t0 = time.perf_counter()
            assert await store.has_claimable(flt, now=datetime.now(UTC))
            out["has_claimable_ms"].append((time.perf_counter() - t0) * 1000)
        for limit, count, key in ((1, k1, "claim1_ms"), (64, k64, "claim64_ms")):
            for _ in range(count):
                t0 = time.perf_counter()
                taken = await store.claim_runs(
                    worker, flt, limit=limit, lease_s=30.0, now=datetime.now(UTC)
                )
                out[key].append((time.perf_counter() - t0) * 1000)
                if len(taken) != limit:
                    raise RuntimeError(f"claimed {len(taken)} of {limit}")
    finally:
        await store.close()
    return out


async def step_cost(
    url: str, reps: int, capture: dict[str, tuple[str, dict[str, Any]]], running: int
) -> list[float]:
    """µs per step of ``seq100`` (``AsyncClient.run``, after a warm-up run); also captures the
    store's ``record_step`` and ``finish_run`` statements."""
    store = open_store(url)
    samples = []
    try:
        async with AsyncClient(store, workflows=[*ALL, claimonly]) as client:
            with Capture() as cap:
                await client.run(seq100)
            for sql, params in cap.sent:
                for name in ("record_step", "finish_run"):
                    if sql == getattr(Q, name):
                        capture[f"{name}, {running:,} runs running"] = (sql, params)
            for _ in range(reps):
                t0 = time.perf_counter()
                await client.run(seq100)
                samples.append((time.perf_counter() - t0) * 1e6 / 100)
    finally:
        await store.close()
    return samples


async def idle_polls(
    url: str, count: int, capture: dict[str, tuple[str, dict[str, Any]]]
) -> dict[str, list[float]]:
    """When nothing is claimable (every started run is claimed): ``claim_runs(limit=64)``, what
    an idle worker's poll runs, and ``has_claimable``; ms each."""
    store = open_store(url)
    worker = WorkerInfo("bench-poller", "bench", os.getpid(), ("default",), 64)
    flt = ClaimFilter(queues=("default",), workflows=("claimonly", "wf3"))
    out: dict[str, list[float]] = {"idle_claim_ms": [], "idle_has_claimable_ms": []}

    async def claim() -> list[Any]:
        return await store.claim_runs(worker, flt, limit=64, lease_s=30.0, now=datetime.now(UTC))

    try:
        await store.has_claimable(flt, now=datetime.now(UTC))
        await claim()
        with Capture() as cap:
            await claim()
            await store.has_claimable(flt, now=datetime.now(UTC))
        for sql, params in cap.sent:
            for name in ("find_claimable", "has_claimable"):
                if sql == getattr(Q, name):
                    capture[f"{name}, nothing claimable"] = (sql, params)
        # one after the other, not interleaved: a parallel plan of one must not slow the other
        for _ in range(count):
            t0 = time.perf_counter()
            assert not await claim()
            out["idle_claim_ms"].append((time.perf_counter() - t0) * 1000)
        for _ in range(count):
            t0 = time.perf_counter()
            assert not await store.has_claimable(flt, now=datetime.now(UTC))
            out["idle_has_claimable_ms"].append((time.perf_counter() - t0) * 1000)
    finally:
        await store.close()
    return out


# --- EXPLAIN ----------------------------------------------------------------------------------


def explain(dbname: str, sql: str, params: dict[str, Any]) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of ``sql`` as a prepared statement with a generic plan, the way
    the store's sessions run it, with ``params``; rolled back. A failure is returned as text."""
    try:
        return _explain(dbname, sql, params)
    except (psycopg.Error, KeyError) as exc:
        return f"EXPLAIN failed: {exc!r}"


def _explain(dbname: str, sql: str, params: dict[str, Any]) -> str:
    body, names = positional(sql)
    with psycopg.connect(store_conninfo(dbname), autocommit=True) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        args = ", ".join(Literal(params[n]).as_string(conn) for n in names)
        conn.execute("BEGIN")
        try:
            conn.execute(SQL("PREPARE bench_q AS {}").format(SQL(body)))  # type: ignore[arg-type]
            rows = conn.execute(
                SQL("EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_q ({})").format(SQL(args))  # type: ignore[arg-type]
            ).fetchall()
        finally:
            conn.execute("ROLLBACK")
    options = conn_options(dbname)
    return f"-- session options: {options}\n" + "\n".join(r[0] for r in rows)


def store_conninfo(dbname: str) -> str:
    """The connection string the store's own sessions use (its session options: generic plans,
    and whatever else the adapter sets), so EXPLAIN plans what the store runs."""
    try:
        from stepstone.store.postgres.connection import LinkSettings

        url = pgdb.url_for(dbname)
        return LinkSettings.from_url(url, url, pool_size=1, synchronous_commit="on").conninfo
    except (ImportError, AttributeError, TypeError):  # the adapter changed: our own options
        return pgdb.conninfo_for(dbname)


def conn_options(dbname: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(store_conninfo(dbname)).get("options") or "")


# --- the workload -----------------------------------------------------------------------------


def bench_claims(work: Path, reps: int, n: int, rows: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both databases live through the same history (claims, clean-up, drains); only the 1M
    finished runs differ."""
    metrics: dict[str, tuple[str, list[float]]] = {}

    def add(key: str, unit: str, values: list[float]) -> None:
        metrics.setdefault(key, (unit, []))[1].extend(values)

    k1, k64, busy_running = (100, 20, BUSY_RUNNING) if reps > 1 else (50, 10, 3_000)
    extra: dict[str, Any] = {"n": n, "k_claim1": k1, "k_claim64": k64}
    with pgdb.fresh_database("ss_big") as big, pgdb.fresh_database("ss_empty") as empty:
        dbs = {"empty": empty, "1m": big}
        extra["fill"] = fill(*big, rows)
        fill(*empty, 0)
        extra["indexes"], extra["schema_version"] = index_definitions(big[0])
        # claims, in two interleaved blocks per database
        per_db = k1 + 64 * k64 + 64 + 2  # + the capture's claim, + a warm-up claim per block
        captured: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {s: {} for s in SIZES}
        plans: dict[str, dict[str, str]] = {s: {} for s in SIZES}
        for size in SIZES:
            add(f"step_us_{size}", "µs/step", asyncio.run(step_cost(dbs[size][1], 3, {}, 0)))
            asyncio.run(start_runs(dbs[size][1], per_db))
        for half in range(2):
            for size in SIZES if half == 0 else SIZES[::-1]:
                name, url = dbs[size]
                got = asyncio.run(claim_block(url, k1 // 2, k64 // 2, captured[size]))
                for key, values in got.items():
                    add(f"{key}_{size}", "ms", values)
                if half == 0:
                    for query, (sql, params) in captured[size].items():
                        plans[size][query] = explain(name, sql, params)
        for size in SIZES:
            name, url = dbs[size]
            asyncio.run(claim_all(url))
            idle: dict[str, tuple[str, dict[str, Any]]] = {}
            for key, values in asyncio.run(idle_polls(url, 100, idle)).items():
                add(f"{key}_{size}", "ms", values)
            for query, (sql, params) in idle.items():
                plans[size][query] = explain(name, sql, params)
            # the same 100-step workflow while BUSY_RUNNING claimed runs hold their leases
            asyncio.run(start_runs(url, busy_running - per_db))
            asyncio.run(claim_all(url))
            busy: dict[str, tuple[str, dict[str, Any]]] = {}
            add(
                f"step_busy_us_{size}",
                "µs/step",
                asyncio.run(step_cost(url, 3, busy, busy_running)),
            )
            for query, (sql, params) in busy.items():
                plans[size][query] = explain(name, sql, params)
        extra["running_during_busy"] = busy_running
        extra["explain"] = plans
        for size in SIZES:
            remove_claimed(dbs[size][0])
        # drains, alternating between the two databases
        for rep in range(reps):
            for size in SIZES if rep % 2 == 0 else SIZES[::-1]:
                name, url = dbs[size]
                for key, value in drain_once(name, url, work, n, migrate=False).items():
                    add(f"{key}_{size}", common.DRAIN_UNITS[key], [value])
        extra["runs_in_table"] = {s: table_count(dbs[s][0]) for s in SIZES}
        extra["after_drains"] = {s: table_health(dbs[s][0]) for s in SIZES}
    return metrics, extra


def index_definitions(dbname: str) -> tuple[list[str], int]:
    """The indexes of stepstone.runs as migrated (the adapter is being changed), and the
    schema version."""
    with psycopg.connect(pgdb.conninfo_for(dbname)) as conn:
        defs = [
            str(r[0])
            .replace("CREATE UNIQUE INDEX ", "UNIQUE ")
            .replace("CREATE INDEX ", "")
            .replace(" USING btree", "")
            for r in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'stepstone'"
                " AND tablename = 'runs' ORDER BY indexname"
            )
        ]
        row = conn.execute("SELECT max(version) FROM stepstone.migrations").fetchone()
    return defs, int(row[0]) if row and row[0] is not None else 0


def table_health(dbname: str) -> dict[str, Any]:
    """After the drains: dead rows and (auto)vacuums of stepstone.runs, and the size of the
    claim path's partial indexes (dead entries stay in them until a vacuum)."""
    with psycopg.connect(pgdb.conninfo_for(dbname)) as conn:
        row = conn.execute(
            "SELECT n_live_tup, n_dead_tup, vacuum_count, autovacuum_count FROM"
            " pg_stat_user_tables WHERE schemaname = 'stepstone' AND relname = 'runs'"
        ).fetchone()
        sizes = conn.execute(
            "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes"
            " WHERE schemaname = 'stepstone' AND indexrelname = ANY(%s) ORDER BY 1",
            (["runs_due", "runs_leased", "runs_by_owner", "runs_timers"],),
        ).fetchall()
    assert row is not None
    return {
        "live_rows": row[0],
        "dead_rows": row[1],
        "vacuums": row[2],
        "autovacuums": row[3],
        "index_kb": {name: size // 1024 for name, size in sizes},
    }


def remove_claimed(dbname: str) -> None:
    """Delete the runs the claim part took by hand (no worker serves them), then vacuum."""
    with psycopg.connect(pgdb.conninfo_for(dbname), autocommit=True) as conn:
        conn.execute(
            "DELETE FROM stepstone.events WHERE run_id IN "
            "(SELECT run_id FROM stepstone.runs WHERE workflow = 'claimonly')"
        )
        conn.execute("DELETE FROM stepstone.runs WHERE workflow = 'claimonly'")
        conn.execute("VACUUM (ANALYZE) stepstone.runs")
        conn.execute("VACUUM (ANALYZE) stepstone.events")


async def claim_all(url: str) -> None:
    """Claim whatever is still claimable (so the idle poll finds nothing)."""
    store = open_store(url)
    worker = WorkerInfo("bench-claimer", "bench", os.getpid(), ("default",), 64)
    flt = ClaimFilter(queues=("default",), workflows=("claimonly", "wf3"))
    try:
        while await store.claim_runs(worker, flt, limit=500, lease_s=3600.0, now=datetime.now(UTC)):
            pass
    finally:
        await store.close()


def table_count(dbname: str) -> int:
    with psycopg.connect(pgdb.conninfo_for(dbname)) as conn:
        row = conn.execute("SELECT count(*) FROM stepstone.runs").fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    args = common.parse_args(["pg_claims"])
    work = common.fresh_dir(args.work_dir, "stepstone-pg_claims")
    rows = int(os.environ.get("BENCH_PG_ROWS", "1000000"))
    metrics, extra = bench_claims(work, args.reps, args.n, rows)
    if WORKER_STDERR:
        extra["worker_stderr"] = WORKER_STDERR
    common.emit(SYSTEM, "pg_claims", metrics, **extra)


if __name__ == "__main__":
    main()
