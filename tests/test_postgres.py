"""PostgreSQL-specific behaviour: schema snapshot, concurrent migrators and claimers, LISTEN/NOTIFY
wake-ups, retries that recognise their own unacknowledged commits, and surviving dropped
connections and a database restart in the middle of a run.

The store contract itself (tests/test_store_contract.py, test_store_routing.py) runs on PostgreSQL
through the ``store`` fixture; these are the things only this adapter has.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import re
import shutil
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from stepstone import AsyncClient, Settings, Worker, WorkflowContext, step, workflow
from stepstone.core.model import (
    NewRun,
    RunQuery,
    RunState,
    StepKind,
    StepRecord,
    StepStatus,
    Wait,
    WorkerInfo,
)
from stepstone.core.port import ClaimFilter, Completed, Suspended
from stepstone.errors import SchemaError, StoreReadOnly, StoreUnavailable
from stepstone.store.queries import load_migrations
from tests.conftest import PG_URL, require_postgres

MIGRATIONS = load_migrations("stepstone.store.postgres")
ALL_MIGRATIONS = [f"{version:04d}_{name}" for version, name, _ in MIGRATIONS]
LATEST = MIGRATIONS[-1][0]

pytestmark = pytest.mark.postgres

psycopg = pytest.importorskip("psycopg")

from stepstone.store.postgres.connection import connect  # noqa: E402
from stepstone.store.postgres.store import PostgresStore  # noqa: E402
from stepstone.store.postgres.tx import PostgresTx  # noqa: E402
from stepstone.store.scripts import claims as pg_claims  # noqa: E402
from stepstone.store.scripts import outcomes as pg_outcomes  # noqa: E402
from stepstone.store.scripts import runs as pg_runs  # noqa: E402

ADMIN = PG_URL.rsplit("/", 1)[0] + "/postgres"
FLT = ClaimFilter(queues=("default",), workflows=("wf",))


def _now() -> datetime:
    return datetime.now(UTC)


def _new_run(run_id: str) -> NewRun:
    return NewRun(run_id, "wf", "v1", '{"args":[],"kwargs":{}}')


@pytest.fixture
def empty_db() -> Iterator[str]:
    """A database with no stepstone schema at all."""
    require_postgres()
    name = f"stepstone_e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(pg_url)
    yield store
    await store.close()


def _db_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _terminate_backends(url: str) -> int:
    """Kill every session of this database (as a crashed network or a failover would)."""
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (_db_name(url),),
        ).fetchall()
    return len(rows)


# --- schema ------------------------------------------------------------------------------------


def _catalog(url: str) -> dict[str, Any]:
    """The stepstone schema as the server sees it: columns, constraints and indexes."""
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            """
            SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid), a.attidentity, coll.collname
            FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            LEFT JOIN pg_collation coll ON coll.oid = a.attcollation
            WHERE n.nspname = 'stepstone' AND c.relkind = 'r' AND a.attnum > 0
              AND NOT a.attisdropped
            ORDER BY c.relname, a.attname
            """
        ).fetchall()
        constraints = conn.execute(
            """
            SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'stepstone' ORDER BY c.relname, k.conname
            """
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'stepstone' "
            "ORDER BY indexname"
        ).fetchall()
    return {"columns": columns, "constraints": constraints, "indexes": indexes}


async def test_migrations_equal_schema_snapshot(empty_db: str) -> None:
    store = PostgresStore(empty_db)
    assert await store.migrate() == ALL_MIGRATIONS
    assert await store.schema_status() == (LATEST, LATEST)
    await store.close()
    snapshot = empty_db + "_snap"
    name = _db_name(snapshot)
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        text = resources.files("stepstone.store.postgres").joinpath("schema.sql").read_text()
        with psycopg.connect(snapshot, autocommit=True) as conn:
            conn.execute(text.encode())
        migrated, expected = _catalog(empty_db), _catalog(snapshot)
        assert migrated["columns"] and migrated["indexes"]
        assert migrated == expected
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_concurrent_migrators_apply_once(empty_db: str) -> None:
    stores = [PostgresStore(empty_db) for _ in range(4)]
    try:
        results = await asyncio.gather(*(s.migrate() for s in stores))
    finally:
        for s in stores:
            await s.close()
    assert sorted(results) == [[], [], [], ALL_MIGRATIONS]
    with psycopg.connect(empty_db) as conn:
        rows = conn.execute("SELECT version FROM stepstone.migrations ORDER BY version").fetchall()
        assert rows == [(version,) for version, _, _ in MIGRATIONS], "each applied once"


async def test_schema_missing_or_newer_says_what_to_do(empty_db: str) -> None:
    secret_url = empty_db.replace("://postgres@", "://postgres:s3cr3t-pw@")
    store = PostgresStore(secret_url)
    with pytest.raises(SchemaError) as missing:
        await store.get_run("x")
    message = str(missing.value)
    assert "s3cr3t-pw" not in message and "stepstone migrate --db postgresql://postgres:***@" in (
        message
    )
    assert store.url == secret_url.replace("s3cr3t-pw", "***")
    await store.migrate()
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("INSERT INTO stepstone.migrations VALUES (99, 'future', now())")
    newer = PostgresStore(empty_db)
    with pytest.raises(SchemaError, match="upgrade stepstone"):
        await newer.get_run("x")
    await newer.close()
    await store.close()


async def test_auto_migrate_on_first_use(empty_db: str) -> None:
    store = PostgresStore(empty_db, auto_migrate=True)
    assert await store.get_run("nope") is None
    assert await store.schema_status() == (LATEST, LATEST)
    await store.close()


async def test_unreachable_server_and_read_only_database(pg_url: str) -> None:
    down = PostgresStore("postgresql://postgres:pw@127.0.0.1:1/x", retry_s=0.5)
    with pytest.raises(StoreUnavailable) as unreachable:
        await down.get_run("r")
    assert "pw@" not in str(unreachable.value) and "127.0.0.1:1" in str(unreachable.value)
    await down.close()
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{_db_name(pg_url)}" SET default_transaction_read_only = on')
    store = PostgresStore(pg_url)
    try:
        with pytest.raises(StoreReadOnly):
            await store.create_run(_new_run("r1"), now=_now())
        assert await store.get_run("r1") is None  # reads still work
    finally:
        await store.close()


# --- claims --------------------------------------------------------------------------------------


async def test_concurrent_claimers_never_share_a_run(pg_url: str) -> None:
    total = 600
    seed = PostgresStore(pg_url)
    now = _now()
    await asyncio.gather(*(seed.create_run(_new_run(f"r{i:04d}"), now=now) for i in range(total)))
    await seed.close()
    stores = [PostgresStore(pg_url, pool_size=4) for _ in range(4)]
    taken: list[tuple[str, str]] = []

    async def claimer(store: PostgresStore, n: int) -> None:
        worker = WorkerInfo(f"w{n}", "host", n)
        while True:
            got = await store.claim_runs(worker, FLT, limit=7, lease_s=60, now=_now())
            if not got and not await store.has_claimable(FLT, now=_now()):
                return
            taken.extend((c.run_id, worker.worker_id) for c in got)

    try:
        # 4 stores (4 pools, 4 writers) x 3 claim loops each, all at once
        await asyncio.gather(
            *(claimer(s, i * 10 + k) for i, s in enumerate(stores) for k in range(3))
        )
    finally:
        for s in stores:
            await s.close()
    ids = [run_id for run_id, _ in taken]
    assert len(ids) == total and len(set(ids)) == total, "every run claimed exactly once"
    assert len({w for _, w in taken}) > 1, "the work was actually shared"
    with psycopg.connect(pg_url) as conn:
        [(running, tokens)] = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE lease_token = 1) FROM stepstone.runs "
            "WHERE state = 'running'"
        ).fetchall()
    assert running == total and tokens == total


# --- wake-ups ----------------------------------------------------------------------------------


async def test_notify_wakes_wait_for_change_promptly(pg_url: str) -> None:
    waiter, writer = PostgresStore(pg_url), PostgresStore(pg_url)
    try:
        await writer.get_run("warm-up")
        latencies = []
        for i in range(10):
            token = await waiter.change_token()

            async def start(i: int = i) -> float:
                await asyncio.sleep(0.01)
                t = time.perf_counter()
                await writer.create_run(_new_run(f"n{i}"), now=_now())
                return t

            task = asyncio.create_task(start())
            await waiter.wait_for_change(10, since=token)
            latencies.append(time.perf_counter() - await task)
        # a raw NOTIFY from any session (another process) wakes it too
        token = await waiter.change_token()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("NOTIFY stepstone")
        t = time.perf_counter()
        await waiter.wait_for_change(10, since=token)
        latencies.append(time.perf_counter() - t)
    finally:
        await waiter.close()
        await writer.close()
    # typically ~1 ms from the start of the commit; asserted loosely for slow machines
    assert statistics.median(latencies) < 0.5, latencies


async def test_a_change_before_the_wait_is_not_missed(pg_store: PostgresStore, pg_url: str) -> None:
    token = await pg_store.change_token()
    other = PostgresStore(pg_url)
    await other.create_run(_new_run("early"), now=_now())
    await other.close()
    await asyncio.sleep(0.05)  # the notification has arrived before anyone waits
    t = time.perf_counter()
    await pg_store.wait_for_change(5, since=token)
    assert time.perf_counter() - t < 0.1


async def test_listener_comes_back_after_its_connection_is_killed(
    pg_store: PostgresStore, pg_url: str
) -> None:
    await pg_store.wait_for_change(0.01)
    _terminate_backends(pg_url)
    await asyncio.sleep(0.3)  # reconnects with back-off (50 ms first)
    token = await pg_store.change_token()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("NOTIFY stepstone")
    t = time.perf_counter()
    await pg_store.wait_for_change(5, since=token)
    assert time.perf_counter() - t < 1.0


# --- retries after an unacknowledged commit ----------------------------------------------------


async def test_a_retried_claim_hands_over_what_the_lost_attempt_took(
    pg_store: PostgresStore, pg_url: str
) -> None:
    worker = WorkerInfo("w1", "h", 1)
    now = _now()
    await pg_store.create_run(_new_run("r1"), now=now)
    [first] = await pg_store.claim_runs(worker, FLT, limit=5, lease_s=30, now=now)
    # the same claim again, as the writer retries it when the first answer was lost
    async with await connect(pg_store._settings.conninfo) as conn:
        [again] = await pg_claims.claim_many(
            PostgresTx(conn, attempt=1), worker, FLT.queues, FLT.workflows, 5, 30, now
        )
        assert await pg_claims.claim_one(PostgresTx(conn, attempt=0), "r1", worker, 30, now) is None
    assert again.run_id == "r1" and again.lease_token == first.lease_token + 1
    assert again.run.recoveries == 0 and not again.recovered and again.fresh
    events = [e.kind for e in await pg_store.read_events("r1")]
    assert events == ["claimed"], "the lost attempt's claim is not logged twice"


async def test_retried_writes_recognise_their_own_commit(pg_store: PostgresStore) -> None:
    worker = WorkerInfo("w1", "h", 1)
    now = _now()
    _, created, claim = await pg_store.create_run(
        _new_run("r1"), now=now, claim_for=worker, lease_s=30
    )
    assert created and claim is not None
    async with await connect(pg_store._settings.conninfo) as conn:
        stored, mine = await pg_runs.insert_run(
            PostgresTx(conn, attempt=1), _new_run("r1"), now, "w1", 30
        )
        assert mine and stored.lease_token == claim.lease_token
        _, not_mine = await pg_runs.insert_run(
            PostgresTx(conn, attempt=0), _new_run("r1"), now, "w1", 30
        )
        assert not not_mine
    await pg_store.send_signal("r1", "go", '"a"', now=now)
    await pg_store.send_signal("r1", "go", '"b"', now=now + timedelta(seconds=1))
    assert await pg_store.take_signal(claim, 0, "go", until=None, now=now) == '"a"'
    # a retry of that take must return the same payload, not consume the next signal
    assert await pg_store.take_signal(claim, 0, "go", until=None, now=now) == '"a"'
    assert [s.consumed_seq for s in await pg_store.list_signals("r1")] == [0, None]
    later = now + timedelta(seconds=2)
    assert await pg_store.close_claim(claim, Completed("1"), now=later) is RunState.COMPLETED
    async with await connect(pg_store._settings.conninfo) as conn, conn.transaction():
        state = await pg_outcomes.close_claim(
            PostgresTx(conn, attempt=1), claim, Completed("1"), later, None
        )
        assert state is RunState.COMPLETED
        with pytest.raises(BaseException, match="no longer held"):
            await pg_outcomes.close_claim(
                PostgresTx(conn, attempt=0), claim, Completed("1"), later, None
            )


async def test_a_signal_racing_a_suspend_is_never_lost(pg_url: str) -> None:
    """The run suspends (waiting for "go") while another session sends "go": whichever commits
    first, the run ends up pending, never waiting forever."""
    for i in range(20):
        a, b = PostgresStore(pg_url), PostgresStore(pg_url)
        try:
            now = _now()
            run_id = f"race{i}"
            _, _, claim = await a.create_run(
                _new_run(run_id), now=now, claim_for=WorkerInfo("w", "h", 1), lease_s=30
            )
            assert claim is not None
            assert await a.take_signal(claim, 0, "go", until=None, now=now) is None

            await asyncio.gather(
                a.close_claim(claim, Suspended((Wait("signal", 0, "go"),)), now=now),
                b.send_signal(run_id, "go", "1", now=now),
            )
            run = await a.get_run(run_id)
            assert run is not None and run.state is RunState.PENDING, (i, run.state)
        finally:
            await a.close()
            await b.close()


# --- surviving lost connections and restarts -------------------------------------------------

executions: collections.Counter[str] = collections.Counter()
kill_at: dict[str, set[int]] = {}  # per test tag: the steps that kill every session of the db
kill_at_url: dict[str, str] = {}


@step
async def pg_work(tag: str, i: int) -> int:
    executions[f"{tag}:{i}"] += 1
    if i in kill_at.get(tag, set()):
        url = kill_at_url[tag]
        await asyncio.to_thread(_terminate_backends, url)
    return i


@workflow
async def pg_flow(ctx: WorkflowContext, tag: str, n: int) -> int:
    total = 0
    for i in range(n):
        total += await pg_work(tag, i)
    parallel = await ctx.parallel(*[pg_work(tag, 1000 + j) for j in range(8)])
    return total + sum(parallel)


def _expected(n: int) -> int:
    return sum(range(n)) + sum(1000 + j for j in range(8))


async def test_dropped_connections_during_an_in_process_run(pg_url: str) -> None:
    tag = uuid.uuid4().hex[:6]
    kill_at[tag], kill_at_url[tag] = {2, 5, 6, 1003}, pg_url
    store = PostgresStore(pg_url)
    client = AsyncClient(store, workflows=[pg_flow])
    try:
        assert await client.run(pg_flow, tag, 10) == _expected(10)
    finally:
        await client.close()
        await store.close()
    mine = {k: v for k, v in executions.items() if k.startswith(tag)}
    assert len(mine) == 18 and set(mine.values()) == {1}, mine


async def test_dropped_connections_while_a_worker_serves(pg_url: str) -> None:
    tag = uuid.uuid4().hex[:6]
    kill_at[tag], kill_at_url[tag] = {1, 4, 1005}, pg_url
    client_store, worker_store = PostgresStore(pg_url), PostgresStore(pg_url)
    client = AsyncClient(client_store, workflows=[pg_flow])
    worker = Worker(worker_store, workflows=[pg_flow], settings=Settings(poll_s=0.5))
    serving = asyncio.create_task(worker.serve())
    try:
        handle = await client.start(pg_flow, tag, 8)
        assert await handle.result(timeout_s=30) == _expected(8)
    finally:
        worker.stop()
        await asyncio.wait_for(serving, 30)
        await client.close()
        await client_store.close()
        await worker_store.close()
    mine = {k: v for k, v in executions.items() if k.startswith(tag)}
    assert len(mine) == 16 and set(mine.values()) == {1}, mine


def _cluster() -> tuple[str, str] | None:
    root = Path("/etc/postgresql")
    if shutil.which("pg_ctlcluster") is None or not root.is_dir() or os.geteuid() != 0:
        return None
    for version in sorted(root.iterdir(), reverse=True):
        for cluster in sorted(version.iterdir()):
            if (cluster / "postgresql.conf").exists():
                return version.name, cluster.name
    return None


def _wait_until_up(timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(ADMIN, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@step
async def slow_work(i: int) -> int:
    executions[f"slow:{i}"] += 1
    if i == 4:
        restart_now.set()
    await asyncio.sleep(0.03)
    return i


restart_now = threading.Event()


@workflow
async def slow_flow(ctx: WorkflowContext, n: int) -> int:
    total = 0
    for i in range(n):
        total += await slow_work(i)
    return total


@pytest.mark.slow
async def test_database_restart_in_the_middle_of_a_run(pg_url: str) -> None:
    cluster = _cluster()
    if cluster is None:
        pytest.skip("needs pg_ctlcluster and root to restart the local server")
    version, name = cluster
    restart_now.clear()
    for key in [k for k in executions if k.startswith("slow:")]:
        del executions[key]
    restarted: dict[str, Any] = {}

    def restart() -> None:
        if not restart_now.wait(30):
            return
        t = time.monotonic()
        result = subprocess.run(
            ["pg_ctlcluster", version, name, "restart"], capture_output=True, text=True
        )
        restarted.update(code=result.returncode, took=time.monotonic() - t, err=result.stderr)

    thread = threading.Thread(target=restart, daemon=True)
    thread.start()
    client_store, worker_store = PostgresStore(pg_url), PostgresStore(pg_url)
    client = AsyncClient(client_store, workflows=[slow_flow])
    worker = Worker(worker_store, workflows=[slow_flow], settings=Settings(poll_s=0.2))
    serving = asyncio.create_task(worker.serve())
    try:
        handle = await client.start(slow_flow, 40)
        assert await handle.result(timeout_s=90) == sum(range(40))
        await asyncio.to_thread(thread.join, 60)
        assert restarted.get("code") == 0, restarted
        slow = {k: v for k, v in executions.items() if k.startswith("slow:")}
        assert len(slow) == 40 and set(slow.values()) == {1}, slow
    finally:
        worker.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 30)
        await client.close()
        await client_store.close()
        await worker_store.close()
        thread.join(60)
        # whatever happened, leave the server running for the tests after this one
        try:
            _wait_until_up(5)
        except psycopg.OperationalError:
            subprocess.run(["pg_ctlcluster", version, name, "start"], check=False)
            _wait_until_up()


# --- group commit -------------------------------------------------------------------------------


async def test_a_failing_write_in_a_batch_undoes_only_itself(pg_store: PostgresStore) -> None:
    await pg_store.create_run(_new_run("src"), now=_now())
    [export] = await pg_store.export_runs(after_run_id=None, limit=1)
    # out of the integer column's range: the server refuses the statement
    broken = dataclasses.replace(
        export, run=dataclasses.replace(export.run, run_id="bad", priority=2**40)
    )
    writer = pg_store._loops[asyncio.get_running_loop()].writer
    batches = writer.batches
    results = await asyncio.gather(
        *(pg_store.create_run(_new_run(f"b{i}"), now=_now()) for i in range(5)),
        # raises in Python after writing: its savepoint is rolled back
        pg_store.fork_run("src", from_seq=1, patch={5: "1"}, new_run_id="f1", now=_now()),
        # a statement fails: the batch runs again, with a savepoint per write
        pg_store.import_runs([broken]),
        return_exceptions=True,
    )
    assert writer.batches > batches, "the writes were grouped"
    assert [type(r).__name__ for r in results[5:]] == ["InvalidArgument", "StoreError"]
    assert all(isinstance(r, tuple) and r[1] for r in results[:5]), results
    assert {r.run_id for r in await pg_store.list_runs(RunQuery(limit=20))} == {
        "src",
        *(f"b{i}" for i in range(5)),
    }


# --- recording a journal entry ------------------------------------------------------------------


async def test_record_step_in_durable_utc_sessions(pg_store: PostgresStore) -> None:
    worker = WorkerInfo("w1", "h", 1)
    _, _, claim = await pg_store.create_run(
        _new_run("r1"), now=_now(), claim_for=worker, lease_s=30
    )
    assert claim is not None
    record = StepRecord(0, "s", StepKind.STEP, StepStatus.COMPLETED, "1", started_at=_now())
    assert await pg_store.record_step(claim, record, now=_now()) is None
    with psycopg.connect(pg_store._settings.conninfo) as conn:
        [(steps, token)] = conn.execute(
            "SELECT (SELECT count(*) FROM stepstone.steps), lease_token FROM stepstone.runs"
        ).fetchall()
        # the store's sessions: a recorded step is flushed before the call returns, times in UTC
        settings = conn.execute(
            "SELECT current_setting('synchronous_commit'), current_setting('TimeZone')"
        ).fetchone()
    assert steps == 1 and token == claim.lease_token
    assert settings == ("on", "UTC")


# --- plans ---------------------------------------------------------------------------------------

BIG_TABLES = ("runs", "steps", "events", "signals")
STATEMENTS_WITHOUT_PLAN = ("listen", "create_schema_table")  # utility statements: no plan


def _generic_plan(conn: psycopg.Connection[Any], sql: str) -> str:
    """The generic plan of one queries.sql block, as the store's sessions would run it: the
    block prepared with unknown parameters, explained (not executed) with NULL for each."""
    from stepstone.store.postgres.sql import positional

    body, names = positional(sql)
    conn.execute("BEGIN")
    prepared = False
    try:
        conn.execute(f"PREPARE plan_q AS {body}")  # type: ignore[arg-type]
        prepared = True
        args = ", ".join(["NULL"] * len(names))
        rows = conn.execute(
            f"EXPLAIN EXECUTE plan_q ({args})" if names else "EXPLAIN EXECUTE plan_q"
        ).fetchall()  # type: ignore[arg-type]
    finally:
        conn.execute("ROLLBACK")
        if prepared:  # a prepared statement outlives the transaction
            conn.execute("DEALLOCATE plan_q")
    return "\n".join(str(r[0]) for r in rows)


async def test_no_statement_scans_a_whole_table(pg_url: str) -> None:
    """Every statement the store sends finds the rows of runs, steps, events and signals
    through an index: a sequential scan of one of them costs O(all history) per call (with
    1,000,000 finished runs, 142 MB read per claim of a limited queue). The store's sessions
    turn sequential scans off, so a plan that still shows one has no index path at all."""
    from stepstone.store.postgres.connection import LinkSettings
    from stepstone.store.postgres.sql import Q

    store = PostgresStore(pg_url)
    await store.migrate()
    await store.close()
    conninfo = LinkSettings.from_url(pg_url, pg_url, pool_size=1, synchronous_commit="on").conninfo
    scans: dict[str, list[str]] = {}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for name, sql in Q.blocks.items():
            if name in STATEMENTS_WITHOUT_PLAN:
                continue
            plan = _generic_plan(conn, sql)
            found = [t for t in BIG_TABLES if re.search(rf"Seq Scan on {t}\b", plan)]
            if found:
                scans[name] = found
    assert not scans, f"statements that scan a whole table: {scans}"
