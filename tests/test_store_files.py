"""Where a SQLite store lives: in memory, or in private files; and migrating from two processes.

Issue 8's sharp edges on opening stores, each pinned by a test that failed before its fix.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from stepstone import AsyncClient, Client, WorkflowContext, open_store, step, workflow
from stepstone.core.model import NewRun, RunState
from stepstone.flow import Flow, run_durable_workflow, run_workflow


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
