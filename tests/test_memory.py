"""ctx.memory: durable JSON documents shared across runs; reads recorded, writes compare-and-set
in the transaction that records their step, conflicting updates run again on the new value."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stepstone import (
    AsyncClient,
    MemoryConflict,
    SyncWorkflowContext,
    WorkflowContext,
    open_store,
    workflow,
)
from stepstone.core.model import RunState
from stepstone.core.port import Store
from stepstone.errors import InvalidArgument, RunFailed
from stepstone.store.copy import copy_store
from tests.test_waits import wait_for_state


@workflow
async def count_visit(ctx: WorkflowContext, user: str) -> int:
    doc = await ctx.memory("user", "visits", owner=user).update(
        lambda v: {"n": v["n"] + 1}, default={"n": 0}
    )
    return int(doc["n"])


async def test_updates_from_many_concurrent_runs_all_land(store: Store) -> None:
    async with AsyncClient(store) as client:
        results = await asyncio.gather(
            *(client.run(count_visit, "ann", run_id=f"v{i}") for i in range(20))
        )
        assert sorted(results) == list(range(1, 21)), "each run saw its own increment"
        doc = await client.memory_get("user", "visits", owner="ann")
        assert doc is not None and doc.value == {"n": 20} and doc.version == 20
        # other owners are other documents
        assert await client.memory_get("user", "visits", owner="bob") is None


@workflow
async def read_then_wait(ctx: WorkflowContext) -> list[object]:
    before = await ctx.memory("global", "motd").get(default="none")
    await ctx.wait_for_signal("go")
    after = await ctx.memory("global", "motd").get(default="none")
    return [before, after]


async def test_a_read_is_recorded_and_replays_what_the_run_saw(store: Store) -> None:
    async with AsyncClient(store) as client:
        await client.memory_set("global", "motd", "hello")
        task = asyncio.create_task(client.run(read_then_wait, run_id="r1"))
        await wait_for_state(client, "r1", RunState.WAITING)
        await client.memory_set("global", "motd", "changed")
        await client.signal("r1", "go", None)
        # the replay after the signal returns the recorded first read, the new read sees now
        assert await task == ["hello", "changed"]


@workflow
async def set_after_read(ctx: WorkflowContext) -> str:
    notes = ctx.memory("session", "notes", owner="s1")
    await notes.get(default=[])
    await ctx.wait_for_signal("go")
    try:
        await notes.set(["mine"])
    except MemoryConflict as exc:
        return f"conflict {exc.expected}->{exc.found}"
    return "written"


async def test_set_on_a_stale_read_raises_and_writes_nothing(store: Store) -> None:
    async with AsyncClient(store) as client:
        task = asyncio.create_task(client.run(set_after_read, run_id="s1"))
        await wait_for_state(client, "s1", RunState.WAITING)
        await client.memory_set("session", "notes", ["theirs"], owner="s1")
        await client.signal("s1", "go", None)
        assert await task == "conflict 0->1"
        doc = await client.memory_get("session", "notes", owner="s1")
        assert doc is not None and doc.value == ["theirs"] and doc.version == 1
        # the failure is recorded: the run's journal holds it, not a half-done write
        steps = await store.load_steps("s1")
        [failed] = [s for s in steps if s.name.startswith("memory.set")]
        assert failed.error is not None and failed.error.type == "MemoryConflict"


@workflow
def sync_counter(ctx: SyncWorkflowContext) -> list[object]:
    mem = ctx.memory("global", "sync")
    first = mem.get(default=0)
    version = mem.set(int(first) + 1)
    return [first, version, mem.get()]


async def test_a_sync_workflow_gets_blocking_calls(store: Store) -> None:
    async with AsyncClient(store) as client:
        assert await client.run(sync_counter, run_id="y1") == [0, 1, 1]
        assert await client.run(sync_counter, run_id="y2") == [1, 2, 2]
        docs = await client.memory_list("global")
        assert [(d.key, d.value, d.version, d.run_id) for d in docs] == [("sync", 2, 2, "y2")]


@workflow
async def bad_scope(ctx: WorkflowContext, scope: str, owner: str | None) -> None:
    await ctx.memory(scope, "k", owner=owner).get()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("scope", "owner", "problem"),
    [
        ("team", None, "memory scope 'team' is not one of session, user, global"),
        ("user", None, "memory scope .user. needs an owner"),
        ("global", "x", "memory scope 'global' takes no owner"),
    ],
)
async def test_a_bad_address_is_refused_naming_it(
    sqlite_store: Store, scope: str, owner: str | None, problem: str
) -> None:
    async with AsyncClient(sqlite_store) as client:
        with pytest.raises(RunFailed, match=problem):
            await client.run(bad_scope, scope, owner, run_id="b1")
        with pytest.raises(InvalidArgument, match=problem):
            await client.memory_set(scope, "k", 1, owner=owner)
        assert await client.memory_list() == []


@pytest.mark.crash
def test_three_worker_processes_one_killed_land_every_update_once(store_url: str) -> None:
    """60 runs on 3 worker processes update one counter; one worker is SIGKILLed mid-way. Each
    update lands exactly once: a write commits with its step's record or not at all."""
    from tests.apps.memory_app import add_one
    from tests.workers import WorkerProcess

    workers = [
        WorkerProcess(store_url, lease_s=2.0, module="tests.apps.memory_worker") for _ in range(3)
    ]

    async def scenario() -> None:
        async with AsyncClient(store_url, workflows=[add_one]) as client:
            for i in range(60):
                await client.start(add_one, i, run_id=f"m{i:02}")
            while len(await client.list(state=RunState.COMPLETED, limit=100)) < 15:
                await asyncio.sleep(0.02)
            workers[0].kill()
            for i in range(60):
                await client.result(f"m{i:02}", timeout_s=60)
            doc = await client.memory_get("global", "counter")
            assert doc is not None and doc.value == {"n": 60} and doc.version == 60
            seen = [await client.memory_get("user", "seen", owner=f"u{k}") for k in range(3)]
            assert sorted(i for d in seen if d for i in d.value) == list(range(60))

    try:
        for w in workers:
            w.wait_ready()
        asyncio.run(scenario())
    finally:
        for w in workers[1:]:
            w.stop()
        workers[0].__exit__()


async def test_db_copy_carries_memory_documents_as_they_are(store: Store, tmp_path: Path) -> None:
    async with AsyncClient(store) as client:
        await client.run(sync_counter, run_id="c1")
        await client.memory_set("user", "prefs", {"theme": "dark"}, owner="ann")
    target = open_store(f"sqlite:///{tmp_path}/copy.db")
    await target.migrate()
    try:
        report = await copy_store(store, target, now=datetime.now(UTC))
        assert report.memory == 2
        assert await target.list_memory() == await store.list_memory()
        again = await copy_store(store, target, now=datetime.now(UTC))
        assert again.memory == 0  # documents already there are kept
    finally:
        await target.close()


def test_the_cli_reads_writes_lists_and_deletes(sqlite_url: str) -> None:
    from stepstone.cli.main import main

    def cli(*args: str) -> tuple[int, object]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main([*args, "--db", sqlite_url, "--json"])
        return code, json.loads(out.getvalue())

    assert cli("migrate")[0] == 0
    code, out = cli("memory", "set", "user", "prefs", '{"theme": "dark"}', "--owner", "ann")
    assert (code, out) == (
        0,
        {
            "ok": True,
            "schema_version": 1,
            "data": {"scope": "user", "owner": "ann", "key": "prefs", "version": 1},
        },
    )
    code, out = cli("memory", "get", "user", "prefs", "--owner", "ann")
    assert code == 0 and out["data"]["value"] == {"theme": "dark"}  # type: ignore[index]
    code, out = cli("memory", "list", "user")
    assert [d["key"] for d in out["data"]] == ["prefs"]  # type: ignore[index]
    code, out = cli("memory", "get", "user", "prefs")  # no --owner: bad input, exit 4
    assert code == 4 and "needs an owner" in out["error"]["message"]  # type: ignore[index]
    code, out = cli("memory", "set", "global", "x", "{not json")
    assert code == 4 and cli("memory", "list")[1]["data"] != []  # type: ignore[index]
    assert cli("memory", "delete", "user", "prefs", "--owner", "ann")[0] == 0
    code, out = cli("memory", "get", "user", "prefs", "--owner", "ann")
    assert code == 3 and out["error"]["type"] == "MemoryNotFound"  # type: ignore[index]
