"""Where a SQLite store lives: in memory, or in private files; and migrating from two processes.

Issue 8's sharp edges on opening stores, each pinned by a test that failed before its fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stepstone import AsyncClient, Client, WorkflowContext, open_store, step, workflow
from stepstone.core.model import NewRun, RunState
from stepstone.flow import Flow, run_durable_workflow, run_workflow
from tests.conftest import PG_URL, ROOT


@step
async def shout(text: str) -> str:
    return text.upper()


@workflow
async def greet(ctx: WorkflowContext, name: str) -> str:
    return await shout(f"hello {name}")


@pytest.mark.parametrize("url", [":memory:", "sqlite:///:memory:"])
def test_an_in_memory_store_works_without_migrating(url: str) -> None:
    with Client(url, workflows=[greet]) as client:
        assert client.run(greet, "ada") == "HELLO ADA"
        [run] = client.list()
        assert run.state is RunState.COMPLETED


async def test_an_in_memory_store_is_one_database_for_its_store_object() -> None:
    store = open_store(":memory:")
    other = open_store(":memory:")
    try:
        version, latest = await store.schema_status()
        assert version == latest, "migrated on open"
        await store.create_run(NewRun("r1", "wf", "v1", "{}"), now=datetime.now(UTC))
        # the store's concurrent users (tasks of a client and a worker) see the same database
        found = await asyncio.gather(*(store.get_run("r1") for _ in range(5)))
        assert all(run is not None and run.run_id == "r1" for run in found)
        assert await other.get_run("r1") is None, "another store object is another database"
        async with AsyncClient(store, workflows=[greet]) as client:
            assert await client.run(greet, "bob") == "HELLO BOB"
    finally:
        await store.close()
        await other.close()


def test_run_workflow_on_an_in_memory_store() -> None:
    flow = Flow("shouting").then(upper).build()
    assert run_workflow(flow, "hi", store=":memory:") == "HI"
    status = run_durable_workflow(flow, "i1", "yo", store=":memory:")
    assert status.is_completed() and status.output == "YO"


def upper(text: str) -> str:
    return text.upper()


# --- private files ---------------------------------------------------------------------------


def test_the_default_store_is_private_to_its_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    old_umask = os.umask(0o022)  # the usual umask: files 0644, folders 0755 unless asked
    try:
        with Client(workflows=[greet]) as client:
            assert client.run(greet, "eve") == "HELLO EVE"
            folder = tmp_path / ".stepstone"
            modes = {
                p.name: stat.S_IMODE(p.stat().st_mode)
                for p in folder.iterdir()
                if p.name.startswith("stepstone.db")
            }
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert set(modes) >= {"stepstone.db", "stepstone.db-wal", "stepstone.db-shm"}, modes
    assert all(mode == 0o600 for mode in modes.values()), {k: oct(v) for k, v in modes.items()}


# --- two processes migrating at once ---------------------------------------------------------


def _migrate_cli(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stepstone", "migrate", "--db", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _both_report(procs: list[subprocess.Popen[str]]) -> list[str]:
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    return outputs


def _assert_one_migrated(outputs: list[str]) -> None:
    applied = [o for o in outputs if o.startswith("applied ")]
    current = [o for o in outputs if o.startswith("schema up to date")]
    assert len(applied) == 1 and len(current) == 1, outputs


def _opened_by(pid: int, path: Path) -> bool:
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) == str(path):
                    return True
    return False


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_two_processes_migrating_a_new_sqlite_store_at_once(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock: both processes reach it and wait
    try:
        procs = [_migrate_cli(f"sqlite:///{path}") for _ in range(2)]
        deadline = time.monotonic() + 30
        while not all(_opened_by(p.pid, path) for p in procs):
            assert time.monotonic() < deadline, "the migrations never opened the database"
            assert all(p.poll() is None for p in procs), "a migration ended while locked out"
            time.sleep(0.01)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    _assert_one_migrated(_both_report(procs))


def test_two_processes_migrating_a_new_postgres_store_at_once(pg_template: str) -> None:
    import psycopg

    from stepstone.store.postgres.sql import Q

    name = f"stepstone_m_{uuid.uuid4().hex[:10]}"
    admin = PG_URL.rsplit("/", 1)[0] + "/postgres"
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        key = int(re.findall(r"\d{6,}", Q.migration_lock)[0])
        with psycopg.connect(url, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (key,))
            procs = [_migrate_cli(url) for _ in range(2)]
            deadline = time.monotonic() + 30
            while True:  # both wait for the migration lock
                row = holder.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                ).fetchone()
                if row is not None and row[0] == 2:
                    break
                assert time.monotonic() < deadline, "the migrations never waited for the lock"
                assert all(p.poll() is None for p in procs), "a migration ended while locked out"
                time.sleep(0.01)
            holder.execute("SELECT pg_advisory_unlock(%s)", (key,))
        _assert_one_migrated(_both_report(procs))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
