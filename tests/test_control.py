"""Operator control: cancel, pause, retry, fork, non-determinism, versioning and `check`."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from stepstone import (
    AsyncClient,
    Registry,
    RunFailed,
    RunStateError,
    WorkflowContext,
    step,
    workflow,
)
from stepstone.core.model import RunState, StepStatus
from stepstone.core.port import Store
from tests.test_waits import wait_for_state

calls: Counter[str] = Counter()
gates: dict[str, asyncio.Event] = {}
fail_next: set[str] = set()


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    gates.clear()
    fail_next.clear()


@step
async def work(name: str) -> str:
    calls[name] += 1
    if name in fail_next:
        fail_next.discard(name)
        raise RuntimeError(f"{name} broke")
    gate = gates.get(name)
    if gate is not None:
        gates[f"{name}-started"].set()
        await gate.wait()
    return name


def gate(name: str) -> tuple[asyncio.Event, asyncio.Event]:
    gates[name], gates[f"{name}-started"] = asyncio.Event(), asyncio.Event()
    return gates[f"{name}-started"], gates[name]


@workflow
async def three(ctx: WorkflowContext) -> list[str]:
    a = await work("a")
    b = await work("b")
    await ctx.wait_for_signal("go")
    c = await work("c")
    return [a, b, c]


async def test_cancel_during_a_step_stops_at_the_boundary(client: AsyncClient) -> None:
    started, release = gate("b")
    task = asyncio.create_task(client.run(three, run_id="r"))
    await started.wait()
    run = await client.cancel("r", "operator said so")
    assert run.state is RunState.RUNNING and run.control == "cancel"
    release.set()
    with pytest.raises(RunFailed) as info:
        await task
    assert info.value.state == "cancelled" and info.value.message == "operator said so"
    desc = await client.describe("r")
    assert [s.output_json for s in desc.steps] == ['"a"', '"b"'], "in-flight recorded, no more"
    assert calls == Counter(a=1, b=1)
    with pytest.raises(RunStateError):
        await client.signal("r", "go")


async def test_cancel_during_a_wait_is_immediate(client: AsyncClient) -> None:
    task = asyncio.create_task(client.run(three, run_id="r"))
    await wait_for_state(client, "r", RunState.WAITING)
    run = await client.cancel("r")
    assert run.state is RunState.CANCELLED
    with pytest.raises(RunFailed):
        await task
    assert calls == Counter(a=1, b=1)


async def test_pause_during_a_step_and_during_a_wait(client: AsyncClient, store: Store) -> None:
    started, release = gate("b")
    task = asyncio.create_task(client.run(three, run_id="r"))
    await started.wait()
    await client.pause("r")
    release.set()
    await wait_for_state(client, "r", RunState.PAUSED)
    await client.signal("r", "go", buffer=True)  # buffered: a paused run is not claimed
    assert (await client.get("r")).state is RunState.PAUSED
    assert calls == Counter(a=1, b=1)
    await client.unpause("r")
    assert await task == ["a", "b", "c"]
    assert calls == Counter(a=1, b=1, c=1)
    # pausing a waiting run takes effect at once
    task = asyncio.create_task(client.run(three, run_id="r2"))
    await wait_for_state(client, "r2", RunState.WAITING)
    assert (await client.pause("r2")).state is RunState.PAUSED
    await client.signal("r2", "go")
    assert (await client.get("r2")).state is RunState.PAUSED
    await client.unpause("r2")
    assert await task == ["a", "b", "c"]
    with pytest.raises(RunStateError):
        await client.unpause("r2")


async def test_retry_resumes_keeping_completed_steps(client: AsyncClient) -> None:
    fail_next.add("c")
    task = asyncio.create_task(client.run(three, run_id="r"))
    await wait_for_state(client, "r", RunState.WAITING)
    await client.signal("r", "go")
    with pytest.raises(RunFailed) as info:
        await task
    assert info.value.error_type == "RuntimeError" and "c broke" in info.value.message
    failed = await client.get("r")
    assert failed.error is not None and failed.error.step_seqs == (3,)
    run = await client.retry("r")
    assert run.state is RunState.PENDING
    assert await client.run(three, run_id="r") == ["a", "b", "c"]
    assert calls == Counter(a=1, b=1, c=2), "completed steps did not run again"
    with pytest.raises(RunStateError):
        await client.retry("r")


async def test_fork_with_a_patched_output(client: AsyncClient) -> None:
    task = asyncio.create_task(client.run(three, run_id="r"))
    await wait_for_state(client, "r", RunState.WAITING)
    await client.signal("r", "go")
    assert await task == ["a", "b", "c"]
    forked = await client.fork("r", 2, patch={1: "B-edited"})
    assert forked.forked_from == "r" and forked.state is RunState.PENDING
    task = asyncio.create_task(client.run(three, run_id=forked.run_id))
    await wait_for_state(client, forked.run_id, RunState.WAITING)
    await client.signal(forked.run_id, "go")
    assert await task == ["a", "B-edited", "c"]
    assert calls == Counter(a=1, b=1, c=2)


# --- non-determinism and versions ------------------------------------------------------------


def version_pair() -> tuple[Any, Any]:
    @workflow(name="evolving", version="v1")
    async def v1(ctx: WorkflowContext) -> str:
        await ctx.step("a", work, "a")
        await ctx.wait_for_signal("go")
        return await work("b")

    @workflow(name="evolving", version="v2")
    async def v2(ctx: WorkflowContext) -> str:
        await ctx.step("renamed", work, "renamed")  # position 0 changed: v1 runs cannot go on
        await ctx.wait_for_signal("go")
        return await work("b")

    return v1, v2


async def test_changed_code_blocks_runs_of_the_old_version(store: Store) -> None:
    v1, v2 = version_pair()
    old = AsyncClient(store, workflows=[v1])
    task = asyncio.create_task(old.run(v1, run_id="e1"))
    await wait_for_state(old, "e1", RunState.WAITING)
    task.cancel()  # the old process goes away; the run stays waiting in the store
    await old.close()

    new = AsyncClient(store, workflows=[v2])
    try:
        results = await new.check()
        assert [(r.run_id, r.ok) for r in results] == [("e1", False)]
        assert "recorded 'a', now 'renamed'" in (results[0].problem or "")
        await new.signal("e1", "go")
        with pytest.raises(RunFailed) as info:
            await new.run(v2, run_id="e1")
        assert info.value.state == "blocked"
        run = await new.get("e1")
        assert run.state is RunState.BLOCKED and run.error is not None
        assert "v1" in run.error.message and "v2" in run.error.message
        assert calls == Counter(a=1), "nothing executed on the mismatched replay"
    finally:
        await new.close()

    fixed = AsyncClient(store, workflows=[v1])  # deploy code that can continue them
    try:
        assert [(r.run_id, r.ok) for r in await fixed.check(unblock=True)] == [("e1", True)]
        assert (await fixed.get("e1")).state is RunState.PENDING
        assert await fixed.run(v1, run_id="e1") == "b"
        assert calls == Counter(a=1, b=1)
    finally:
        await fixed.close()


async def test_same_version_mismatch_fails_with_nondeterminism(store: Store) -> None:
    flip = {"name": "a"}

    @workflow(name="flaky_code", version="same")
    async def unstable(ctx: WorkflowContext) -> str:
        await ctx.step(flip["name"], work, flip["name"])
        await ctx.sleep(0.5)  # long enough to see the run sleeping and change the code
        return "done"

    client = AsyncClient(store, workflows=Registry([unstable]))
    try:
        flip["name"] = "a"
        task = asyncio.create_task(client.run(unstable, run_id="n1"))
        await wait_for_state(client, "n1", RunState.SLEEPING)
        flip["name"] = "b"  # orchestration code that is not deterministic
        with pytest.raises(RunFailed) as info:
            await task
        assert info.value.error_type == "NonDeterminismError"
        assert "run n1 step #0: recorded 'a', now 'b'" in info.value.message
    finally:
        await client.close()


async def test_removed_trailing_step_is_a_mismatch(store: Store) -> None:
    @workflow(name="shrinks", version="1")
    async def long(ctx: WorkflowContext) -> str:
        await work("a")
        await work("b")
        await ctx.wait_for_signal("go")
        return "x"

    @workflow(name="shrinks", version="2")
    async def short(ctx: WorkflowContext) -> str:
        await work("a")
        return "x"

    old = AsyncClient(store, workflows=[long])
    task = asyncio.create_task(old.run(long, run_id="s1"))
    await wait_for_state(old, "s1", RunState.WAITING)
    task.cancel()
    await old.close()
    new = AsyncClient(store, workflows=[short])
    try:
        [result] = await new.check()
        assert not result.ok and "(workflow returned)" in (result.problem or "")
        await new.signal("s1", "go")
        with pytest.raises(RunFailed, match="blocked"):
            await new.run(short, run_id="s1")
    finally:
        await new.close()
    assert (await store.load_steps("s1"))[1].status is StepStatus.COMPLETED
