"""Bad input gets a clear error naming what is wrong, and nothing is lost or half-written."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stepstone import (
    AsyncClient,
    InvalidArgument,
    RetryPolicy,
    RunFailed,
    SchemaError,
    StoreCorrupt,
    StoreReadOnly,
    Worker,
    WorkflowContext,
    WorkflowNotFound,
    open_store,
    step,
    workflow,
)
from stepstone.core.model import NewRun, RunQuery
from stepstone.core.port import Store


@step
async def noop() -> None:
    return None


@workflow
async def needs_two(ctx: WorkflowContext, a: int, b: int) -> int:
    await noop()
    return a + b


@workflow
async def misuses_parallel(ctx: WorkflowContext) -> None:
    async def branch() -> None:
        await noop()

    await ctx.parallel(branch())


async def test_unknown_workflow_name_and_bad_arguments_store_nothing(client: AsyncClient) -> None:
    with pytest.raises(WorkflowNotFound, match="unknown workflow 'nope'"):
        await client.start("nope")
    with pytest.raises(InvalidArgument, match=r"needs_two.*missing a required argument: 'b'"):
        await client.start(needs_two, 1)
    with pytest.raises(InvalidArgument, match="unexpected keyword argument 'c'"):
        await client.start(needs_two, 1, 2, c=3)
    with pytest.raises(InvalidArgument, match="run_id"):
        await client.start(needs_two, 1, 2, run_id="")
    with pytest.raises(InvalidArgument, match="queue"):
        await client.start(needs_two, 1, 2, queue="")
    with pytest.raises(InvalidArgument, match="delay_s"):
        await client.start(needs_two, 1, 2, delay_s=-1)
    with pytest.raises(InvalidArgument, match="start_at"):
        await client.start(needs_two, 1, 2, start_at=datetime(2030, 1, 1))
    with pytest.raises(InvalidArgument, match="unknown state"):
        await client.list(state="nonsense")
    assert await client.list() == []
    # a known name works once the workflow is registered
    await client.start(needs_two, 1, 2, run_id="ok")
    assert [r.run_id for r in await client.list()] == ["ok"]
    with pytest.raises(InvalidArgument, match="belongs to workflow 'needs_two'"):
        await client.start(misuses_parallel, run_id="ok")


async def test_parallel_of_a_bare_coroutine_fails_the_run_clearly(client: AsyncClient) -> None:
    with pytest.raises(RunFailed) as info:
        await client.run(misuses_parallel)
    assert info.value.error_type == "InvalidArgument" and "child workflow" in info.value.message


def test_invalid_definitions_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(InvalidArgument, match="backoff"):
        RetryPolicy(backoff=0.5)
    with pytest.raises(InvalidArgument, match="timeout_s"):
        step(timeout_s=0)
    with pytest.raises(InvalidArgument, match="context as its first parameter"):
        workflow(lambda: None)
    with pytest.raises(InvalidArgument, match="at least one workflow"):
        Worker(open_store("sqlite:///unused.db"), workflows=[])


# --- broken databases -------------------------------------------------------------------------


async def test_corrupt_file_is_reported_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    store = open_store(f"sqlite:///{path}")
    with pytest.raises(StoreCorrupt, match="not a usable SQLite database"):
        await store.get_run("x")
    with pytest.raises(StoreCorrupt):
        await store.migrate()
    await store.close()
    assert path.read_bytes() == garbage


async def test_foreign_sqlite_database_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    store = open_store(f"sqlite:///{path}")
    with pytest.raises(StoreCorrupt, match="not a stepstone store"):
        await store.migrate()
    await store.close()
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    conn.close()
    assert tables == ["customers"]


async def test_unmigrated_and_too_new_schemas(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    store = open_store(url)
    with pytest.raises(SchemaError, match=r"stepstone migrate --db sqlite:///"):
        await store.get_run("x")
    await store.close()
    auto = open_store(url, auto_migrate=True)
    assert await auto.get_run("x") is None
    await auto.close()
    conn = sqlite3.connect(tmp_path / "fresh.db")
    conn.execute("INSERT INTO stepstone_schema VALUES (999, 'future', 0)")
    conn.commit()
    conn.close()
    store = open_store(url)
    with pytest.raises(SchemaError, match="newer than this stepstone"):
        await store.get_run("x")
    await store.close()


@contextlib.contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make files/folders really read-only, also for root (which chmod does not stop)."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a file read-only")
    done = []
    try:
        for p in paths:
            result = subprocess.run(["chattr", "+i", str(p)], capture_output=True, text=True)
            if result.returncode != 0:
                pytest.skip(f"chattr +i not supported here: {result.stderr.strip()}")
            done.append(p)
        yield
    finally:
        for p in reversed(done):
            subprocess.run(["chattr", "-i", str(p)], check=True)


async def test_read_only_file_reads_work_and_writes_fail_clearly(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    store: Store = open_store(f"sqlite:///{path}")
    await store.migrate()
    await store.create_run(NewRun("kept", "wf", "v1", "{}"), now=datetime.now(UTC))
    await store.close()
    with read_only(path):
        store = open_store(f"sqlite:///{path}")
        run = await store.get_run("kept")
        assert run is not None and run.run_id == "kept"
        with pytest.raises(StoreReadOnly, match="refuses writes"):
            await store.create_run(NewRun("new", "wf", "v1", "{}"), now=datetime.now(UTC))
        await store.close()
    store = open_store(f"sqlite:///{path}")
    assert await store.get_run("kept") is not None and await store.get_run("new") is None
    await store.close()


async def test_read_only_folder_is_named_in_the_error(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    path = folder / "s.db"
    store = open_store(f"sqlite:///{path}")
    await store.migrate()
    await store.close()  # WAL files are removed on a clean close
    with read_only(folder):
        store = open_store(f"sqlite:///{path}")
        with pytest.raises(StoreReadOnly, match=r"folder .* cannot be written"):
            await store.get_run("x")
        await store.close()


async def test_reading_a_missing_database_does_not_create_it(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "missing.db"
    store = open_store(f"sqlite:///{path}")
    with pytest.raises(SchemaError, match=r"there is no database at .*stepstone migrate"):
        await store.list_runs(RunQuery())
    version, latest = await store.schema_status()
    assert version == 0 and latest >= 1
    await store.close()
    assert not path.exists() and not path.parent.exists()
