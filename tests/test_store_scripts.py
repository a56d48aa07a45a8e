"""The store scripts run on SQLite without ever suspending: drive() finishes them in one send."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stepstone.core.model import NewRun, RunQuery, RunState
from stepstone.store import scripts
from stepstone.store.sqlite.store import SQLiteStore
from stepstone.store.sqlite.tx import SQLiteTx, drive


async def _answer() -> int:
    return 42


async def _suspends() -> int:
    await asyncio.sleep(0)  # yields to the loop: never allowed inside a SQLite transaction
    return 0


def test_drive_returns_what_a_script_returns_and_refuses_one_that_suspends() -> None:
    assert drive(_answer()) == 42
    with pytest.raises(RuntimeError, match="suspended"):
        drive(_suspends())


async def test_a_script_runs_synchronously_on_a_sqlite_connection(tmp_path: Path) -> None:
    """The same script the PostgreSQL store awaits runs here to its end in one call, with times
    and lists converted to what SQLite stores (REAL seconds, JSON text)."""
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    await store.migrate()
    await store.close()
    now = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    tx = SQLiteTx(conn)
    conn.execute("BEGIN IMMEDIATE")
    run, created, claim = drive(
        scripts.runs.create_run(tx, NewRun("r1", "wf", "v1", "{}"), now, None, 0)
    )
    conn.execute("COMMIT")
    assert created and claim is None and run.created_at == now
    assert conn.execute("SELECT created_at FROM runs").fetchone()[0] == now.timestamp()
    query = RunQuery(states=(RunState.PENDING,))
    assert [r.run_id for r in drive(scripts.runs.list_runs(tx, query))] == ["r1"]
    conn.close()
