"""Start options as one object: ``StartOptions`` passed whole, keywords winning over it."""

from __future__ import annotations

import pytest

from stepstone import AsyncClient, DuplicateRun, StartOptions, WorkflowContext, workflow
from stepstone.core.port import Store


@workflow
async def echo(ctx: WorkflowContext, value: int) -> int:
    return value


async def test_options_object_sets_queue_priority_and_routing(store: Store) -> None:
    async with AsyncClient(store, workflows=[echo]) as client:
        opts = StartOptions(
            run_id="r-opts", queue="payments", priority=7, labels={"gpu": "a100"}, delay_s=60
        )
        handle = await client.start(echo, 1, options=opts)
        run = await client.get(handle.run_id)
        assert (run.run_id, run.queue, run.priority) == ("r-opts", "payments", 7)
        assert run.routing.labels == (("gpu", "a100"),)
        assert run.wake_at is not None and run.wake_at > run.created_at


async def test_a_keyword_wins_over_the_options_object(store: Store) -> None:
    async with AsyncClient(store, workflows=[echo]) as client:
        opts = StartOptions(queue="payments", priority=7)
        handle = await client.start(echo, 1, options=opts, priority=1)
        run = await client.get(handle.run_id)
        assert (run.queue, run.priority) == ("payments", 1)


async def test_on_conflict_raise_from_the_options_object(store: Store) -> None:
    async with AsyncClient(store, workflows=[echo]) as client:
        opts = StartOptions(dedup_key="k", on_conflict="raise")
        await client.start(echo, 1, options=opts)
        with pytest.raises(DuplicateRun):
            await client.start(echo, 2, options=opts)
