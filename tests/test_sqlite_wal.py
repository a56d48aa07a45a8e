"""The SQLite store's WAL under continuous writes: checkpointed in the background and started
over, so commits overwrite the log instead of growing it (a growing WAL doubles the cost of each
synchronous=FULL commit on this kind of disk)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from stepstone import AsyncClient, WorkflowContext, open_store, step, workflow


@step
async def tick(i: int) -> int:
    return i


@workflow(name="wal_ten_steps")
async def ten_steps(ctx: WorkflowContext) -> int:
    total = 0
    for i in range(10):
        total += await tick(i)
    return total


RESTARTS_WITHIN_S = 3.0


def wal_salt(path: Path) -> bytes:
    """The WAL header's salts: SQLite draws new ones each time it starts the log over."""
    with open(f"{path}-wal", "rb") as wal:
        return wal.read(32)[16:24]


async def test_wal_starts_over_while_writes_continue(tmp_path: Path) -> None:
    db = tmp_path / "wal.db"
    store = open_store(f"sqlite:///{db}", durability="full")
    await store.migrate()
    async with AsyncClient(store, workflows=[ten_steps]) as client:
        assert await client.run(ten_steps) == 45
        # Writes never pause. The background checkpoint runs every 0.2 s; after each, the
        # writer's own short checkpoint lets its next transaction start the log over (new
        # salts). Without it the log started over only when a checkpoint happened to finish
        # between two commits: measured every 2.5-5 s here, against every 0.2 s with it.
        salts = [wal_salt(db)]
        deadline = time.monotonic() + RESTARTS_WITHIN_S
        while len(salts) < 3:
            assert time.monotonic() < deadline, f"the WAL started over {len(salts) - 1} time(s)"
            assert await client.run(ten_steps) == 45
            if wal_salt(db) != salts[-1]:
                salts.append(wal_salt(db))
                if len(salts) == 2:
                    size = os.path.getsize(f"{db}-wal")
        # Started over, the log keeps its size while its frames are overwritten.
        assert os.path.getsize(f"{db}-wal") <= 4 * size
    await store.close()


async def test_settle_runs_between_transactions_only(tmp_path: Path) -> None:
    """Concurrent writers (group commit) and the writer's own checkpoint share one connection:
    every run still completes."""
    db = tmp_path / "wal.db"
    store = open_store(f"sqlite:///{db}", durability="full")
    await store.migrate()
    async with AsyncClient(store, workflows=[ten_steps]) as client:
        first = None
        deadline = time.monotonic() + RESTARTS_WITHIN_S
        while True:
            results = await asyncio.gather(*(client.run(ten_steps) for _ in range(20)))
            assert results == [45] * 20
            salt = wal_salt(db)
            if first is None:
                first = salt
            elif salt != first:
                break
            assert time.monotonic() < deadline, "the WAL was never started over"
        runs = await client.list(workflow="wal_ten_steps", limit=10_000)
        assert len(runs) >= 40
        assert {r.state for r in runs} == {"completed"}
    await store.close()


async def test_the_first_commit_after_an_idle_moment_pays_no_checkpoint(tmp_path: Path) -> None:
    """After a background checkpoint that no commit overlapped, every frame is copied back and
    the next commit starts the log over by itself: the writer is not asked to settle (which
    would add a checkpoint's fsyncs to that commit: 10 ms on this disk after an idle moment)."""
    from stepstone.store.sqlite.checkpoint import Checkpointer

    db = tmp_path / "wal.db"
    store = open_store(f"sqlite:///{db}", durability="full")
    await store.migrate()
    await store.close()
    checkpointer = Checkpointer(str(db), 5.0)
    checkpointer.start()
    try:
        checkpointer.wake()  # a commit, then nothing
        assert await asyncio.to_thread(checkpointer.ran.wait, 10)
        assert not checkpointer.settle()
    finally:
        checkpointer.stop()
