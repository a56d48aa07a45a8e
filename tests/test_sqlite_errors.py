"""Real SQLite failures become the right stepstone errors, judged by SQLite's result code."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stepstone.core.model import NewRun
from stepstone.errors import StoreCorrupt, StoreError, StoreReadOnly, StoreUnavailable
from stepstone.store.sqlite.errors import convert
from stepstone.store.sqlite.store import SQLiteStore

URL = "sqlite:///test.db"


async def _migrated(path: Path, **options: float) -> SQLiteStore:
    store = SQLiteStore(path, **options)  # type: ignore[arg-type]
    await store.migrate()
    return store


def _code(exc: BaseException | None) -> int:
    assert isinstance(exc, sqlite3.Error), f"the driver's error is kept in __cause__: {exc!r}"
    return exc.sqlite_errorcode & 0xFF


async def test_a_write_to_a_read_only_database_is_store_read_only(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    await (await _migrated(path)).close()
    # the file opened read-only, as SQLite does for a file it may not write
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    with pytest.raises(sqlite3.Error) as caught:
        conn.execute("INSERT INTO workers (worker_id) VALUES ('w')")
    conn.close()
    assert caught.value.sqlite_errorcode & 0xFF == sqlite3.SQLITE_READONLY
    error = convert(caught.value, URL, 1.0)
    assert type(error) is StoreReadOnly and "refuses writes" in str(error)


async def test_a_database_locked_past_the_busy_timeout_is_store_unavailable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locked.db"
    store = await _migrated(path, busy_timeout_s=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    try:
        with pytest.raises(StoreUnavailable, match="stayed locked") as caught:
            await store.create_run(NewRun("r1", "wf", "v1", "{}"), now=datetime.now(UTC))
        assert _code(caught.value.__cause__) == sqlite3.SQLITE_BUSY
    finally:
        other.execute("ROLLBACK")
        other.close()
    # the lock gone, the same store writes again
    _, created, _ = await store.create_run(NewRun("r1", "wf", "v1", "{}"), now=datetime.now(UTC))
    assert created
    await store.close()


async def test_a_file_that_is_not_a_database_is_store_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "text.db"
    path.write_bytes(b"this is not a database, only text that fills a page\n" * 100)
    store = SQLiteStore(path)
    with pytest.raises(StoreCorrupt, match="not a usable SQLite database") as caught:
        await store.get_run("x")
    assert _code(caught.value.__cause__) == sqlite3.SQLITE_NOTADB
    await store.close()


async def test_an_error_without_a_known_code_stays_a_plain_store_error(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "plain.db")
    conn.execute("CREATE TABLE t (x INTEGER NOT NULL)")
    with pytest.raises(sqlite3.Error) as caught:
        conn.execute("INSERT INTO t VALUES (NULL)")  # SQLITE_CONSTRAINT
    conn.close()
    assert type(convert(caught.value, URL, 1.0)) is StoreError
