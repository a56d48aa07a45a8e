"""Waits: durable sleeps, signals (buffered, ordered, validated, timing out), child runs."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from stepstone import (
    AsyncClient,
    RunFailed,
    SignalPayloadError,
    WaitTimeout,
    WorkflowContext,
    step,
    workflow,
)
from stepstone.core.model import RunState, StepKind, StepStatus
from stepstone.core.port import Store

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


@step
async def record(name: str) -> str:
    calls[name] += 1
    return name


@dataclasses.dataclass(frozen=True)
class Approval:
    approved: bool
    by: str
    note: str = ""


async def wait_for_state(
    client: AsyncClient, run_id: str, *states: RunState, timeout: float = 10
) -> None:
    """Wait (on store changes, not sleeps) until the run is in one of ``states``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        token = await client.store.change_token()
        run = await client.store.get_run(run_id)  # None until the starting task created it
        if run is not None and run.state in states:
            return
        assert loop.time() < deadline, f"run {run_id} never reached {states}"
        await client.store.wait_for_change(0.5, since=token)


async def run_in_background(
    client: AsyncClient, wf: Any, *args: Any, run_id: str
) -> asyncio.Task[Any]:
    task = asyncio.create_task(client.run(wf, *args, run_id=run_id))
    await wait_for_state(client, run_id, RunState.WAITING, RunState.SLEEPING, RunState.RUNNING)
    return task


@pytest.fixture
async def second_client(store: Store) -> AsyncIterator[AsyncClient]:
    """Another client on the same store: the sender side, as another process would be."""
    c = AsyncClient(store)
    yield c
    await c.close()


# --- sleeps ----------------------------------------------------------------------------------


@workflow
async def napper(ctx: WorkflowContext, seconds: float) -> str:
    await record("before")
    await ctx.sleep(seconds)
    return await record("after")


async def test_sleep_suspends_the_run_and_resumes_after(client: AsyncClient) -> None:
    started = time.monotonic()
    task = asyncio.create_task(client.run(napper, 0.3, run_id="nap"))
    await wait_for_state(client, "nap", RunState.SLEEPING)
    run = await client.get("nap")
    assert run.lease_owner is None, "a sleeping run holds no worker"
    assert run.wake_at is not None and run.waits[0].kind == "timer"
    assert calls == Counter(before=1)
    assert await task == "after"
    assert time.monotonic() - started >= 0.3
    assert calls == Counter(before=1, after=1)
    sleep_entry = (await client.describe("nap")).steps[1]
    assert sleep_entry.kind is StepKind.SLEEP and sleep_entry.status is StepStatus.COMPLETED


# --- signals ---------------------------------------------------------------------------------


@workflow
async def approver(ctx: WorkflowContext) -> dict[str, Any]:
    await record("asked")
    decision = await ctx.wait_for_signal("approval", schema=Approval)
    assert isinstance(decision, Approval)
    return {"approved": decision.approved, "by": decision.by}


async def test_signal_after_the_wait(client: AsyncClient, second_client: AsyncClient) -> None:
    task = asyncio.create_task(client.run(approver, run_id="a1"))
    await wait_for_state(client, "a1", RunState.WAITING)
    desc = await client.describe("a1")
    assert desc.waiting_for == ("signal 'approval'",)
    await second_client.signal("a1", "approval", {"approved": True, "by": "ana"})
    assert await task == {"approved": True, "by": "ana"}
    assert calls == Counter(asked=1)


async def test_run_waiting_for_a_signal_leaves_the_loop_free(client: AsyncClient) -> None:
    # client.run polls a parked run; its own failed claim must not end each poll at once
    task = asyncio.create_task(client.run(approver, run_id="a0"))
    await wait_for_state(client, "a0", RunState.WAITING)
    started = time.monotonic()
    await asyncio.wait_for(asyncio.sleep(0.05), timeout=5)
    assert time.monotonic() - started < 2
    await client.signal("a0", "approval", {"approved": True, "by": "cy"})
    assert await task == {"approved": True, "by": "cy"}


async def test_signal_before_the_wait_is_buffered(client: AsyncClient) -> None:
    handle = await client.start(approver, run_id="a2")
    # the workflow neither declares 'approval' nor waits for it yet: an early send says so
    await client.signal("a2", "approval", {"approved": False, "by": "bo"}, buffer=True)
    assert await client.run(approver, run_id=handle.run_id) == {"approved": False, "by": "bo"}
    signals = await client.store.list_signals("a2")
    assert [s.consumed_seq for s in signals] == [1]


async def test_malformed_signal_is_rejected_and_the_run_untouched(
    client: AsyncClient, second_client: AsyncClient
) -> None:
    task = asyncio.create_task(client.run(approver, run_id="a3"))
    await wait_for_state(client, "a3", RunState.WAITING)
    before = await client.get("a3")
    with pytest.raises(SignalPayloadError) as info:
        await second_client.signal("a3", "approval", {"approved": "yes", "by": "x"})
    assert "$.approved" in str(info.value) and "boolean" in str(info.value)
    with pytest.raises(SignalPayloadError, match="missing required property 'by'"):
        await second_client.signal("a3", "approval", {"approved": True})
    with pytest.raises(SignalPayloadError, match="unexpected property"):
        await second_client.signal("a3", "approval", {"approved": True, "by": "x", "extra": 1})
    after = await client.get("a3")
    assert after.state is RunState.WAITING and after.updated_at == before.updated_at
    # each refusal is on record as rejected by the wait (#1), none pending for it to take
    refused = await client.store.list_signals("a3")
    assert [(s.consumed_seq, s.rejected) for s in refused] == [(1, True)] * 3
    assert "$.approved" in (refused[0].problem or "")
    assert (await client.describe("a3")).pending_signals == ()
    await second_client.signal("a3", "approval", {"approved": True, "by": "ok"})
    assert (await task)["by"] == "ok"


@workflow
async def collector(ctx: WorkflowContext, n: int) -> list[Any]:
    return [await ctx.wait_for_signal("item") for _ in range(n)]


async def test_signals_are_delivered_in_order_exactly_once(client: AsyncClient) -> None:
    await client.start(collector, 4, run_id="c1")
    for i in range(3):
        await client.signal("c1", "item", i, buffer=True)
    task = asyncio.create_task(client.run(collector, 4, run_id="c1"))
    await wait_for_state(client, "c1", RunState.WAITING)
    await client.signal("c1", "item", 3)
    assert await task == [0, 1, 2, 3]


@workflow
async def impatient(ctx: WorkflowContext, timeout_s: float) -> str:
    try:
        await ctx.wait_for_signal("reply", timeout_s=timeout_s)
    except WaitTimeout:
        return await record("fallback")
    return "replied"


async def test_wait_timeout_raises_in_the_workflow(client: AsyncClient) -> None:
    assert await client.run(impatient, 0.2, run_id="t1") == "fallback"
    entry = next(s for s in (await client.describe("t1")).steps if s.kind is StepKind.SIGNAL)
    assert entry.status is StepStatus.COMPLETED and entry.output_json == '{"timeout":true}'
    # a late signal is buffered but the recorded timeout stands
    with pytest.raises(Exception, match="completed"):
        await client.signal("t1", "reply", "late")


async def test_signal_to_unknown_or_finished_run(client: AsyncClient) -> None:
    from stepstone import RunNotFound, RunStateError

    with pytest.raises(RunNotFound):
        await client.signal("nope", "x", 1)
    await client.run(napper, 0)
    run = (await client.list())[0]
    with pytest.raises(RunStateError, match="completed"):
        await client.signal(run.run_id, "x", 1)


# --- children --------------------------------------------------------------------------------


@workflow
async def child_wf(ctx: WorkflowContext, n: int) -> int:
    if n < 0:
        raise ValueError("negative")
    await record(f"child-{n}")
    await ctx.sleep(0.01)
    return n * 10


@workflow
async def parent_wf(ctx: WorkflowContext) -> dict[str, Any]:
    one = await ctx.child(child_wf, 1)
    two, three = await ctx.parallel(ctx.child(child_wf, 2), ctx.child(child_wf, 3))
    handle = await ctx.start_child(child_wf, 4)
    try:
        await ctx.child(child_wf, -1)
    except RunFailed as exc:
        failure = exc.error_type
    four = await handle.result()
    return {"sum": one + two + three + four, "failure": failure, "handle": handle.run_id}


async def test_child_runs(client: AsyncClient) -> None:
    result = await client.run(parent_wf, run_id="p1")
    assert result == {"sum": 100, "failure": "ValueError", "handle": "p1.3"}
    assert calls == Counter({"child-1": 1, "child-2": 1, "child-3": 1, "child-4": 1})
    children = (await client.describe("p1")).children
    assert [c.run_id for c in children] == ["p1.0", "p1.1", "p1.2", "p1.3", "p1.4"]
    assert [c.state for c in children].count(RunState.FAILED) == 1
    assert all(c.parent_run_id == "p1" for c in children)


@workflow
async def waits_forever(ctx: WorkflowContext) -> None:
    await ctx.child(approver)


async def test_cancel_cascades_to_children(client: AsyncClient) -> None:
    task = asyncio.create_task(client.run(waits_forever, run_id="w1"))
    await wait_for_state(client, "w1.0", RunState.WAITING)
    await wait_for_state(client, "w1", RunState.WAITING)
    await client.cancel("w1", "abandoned")
    with pytest.raises(RunFailed) as info:
        await task
    assert info.value.state == "cancelled" and info.value.message == "abandoned"
    child = await client.get("w1.0")
    assert child.state is RunState.CANCELLED and child.error is not None
    assert "w1" in child.error.message


# --- what a wait tells whoever answers it ------------------------------------------------------

DECISION = {
    "type": "object",
    "required": ["decision"],
    "properties": {"decision": {"type": "string", "enum": ["approve", "reject"]}},
}


@workflow
async def asks_a_person(ctx: WorkflowContext) -> Any:
    return await ctx.wait_for_signal(
        "change_approval",
        schema=DECISION,
        timeout_s=3600,
        prompt="Approve or reject the change.",
        summary="publish page 123",
        audience="user",
        risk_level="high",
        step="approval",
    )


async def test_a_wait_keeps_its_prompt_audience_and_json_schema(
    client: AsyncClient, second_client: AsyncClient
) -> None:
    task = asyncio.create_task(client.run(asks_a_person, run_id="ask1"))
    await wait_for_state(client, "ask1", RunState.WAITING)
    (wait,) = (await second_client.get("ask1")).waits  # read back from the store
    assert wait.name == "change_approval" and wait.until is not None
    assert wait.info is not None
    assert (wait.info.step, wait.info.prompt, wait.info.summary) == (
        "approval",
        "Approve or reject the change.",
        "publish page 123",
    )
    assert (wait.info.audience, wait.info.risk_level) == ("user", "high")
    assert wait.schema_json is not None and '"enum"' in wait.schema_json
    assert (
        (await client.describe("ask1"))
        .waiting_for[0]
        .startswith("signal 'change_approval' at step 'approval'")
    )
    # the JSON Schema mapping checks payloads at the door, and the payload comes back as JSON
    with pytest.raises(SignalPayloadError, match=r"\$\.decision"):
        await second_client.signal("ask1", "change_approval", {"decision": "maybe"})
    await second_client.signal("ask1", "change_approval", {"decision": "approve"})
    assert await task == {"decision": "approve"}


@workflow
async def bad_audience(ctx: WorkflowContext) -> Any:
    return await ctx.wait_for_signal("x", audience="everyone")  # type: ignore[call-overload]


async def test_a_wait_refuses_an_unknown_audience(client: AsyncClient) -> None:
    with pytest.raises(RunFailed, match="audience= must be one of user, agent, system"):
        await client.run(bad_audience, run_id="aud")
