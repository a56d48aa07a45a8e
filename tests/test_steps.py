"""Steps: checkpointing, replay without re-execution, values, retries, timeouts, deadlines."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import pydantic
import pytest

from stepstone import (
    AsyncClient,
    EncodeError,
    RetryPolicy,
    RunFailed,
    Settings,
    StepTimeout,
    SyncWorkflowContext,
    WorkflowContext,
    current_step,
    step,
    workflow,
)
from stepstone.core.model import RunState, StepKind, StepStatus

calls: Counter[str] = Counter()
seen: list[Any] = []


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    seen.clear()


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass(frozen=True)
class Order:
    order_id: str
    amount: Decimal
    placed_at: datetime
    color: Color
    blob: bytes
    tags: tuple[str, ...] = ()


class Receipt(pydantic.BaseModel):
    order_id: str
    total: float
    items: list[int]


@step
async def add(a: int, b: int) -> int:
    calls["add"] += 1
    return a + b


@step
def mul(a: int, b: int) -> int:
    calls["mul"] += 1
    return a * b


@step
async def make_order(order_id: str) -> Order:
    calls["make_order"] += 1
    return Order(
        order_id,
        Decimal("12.50"),
        datetime(2026, 5, 1, tzinfo=UTC),
        Color.BLUE,
        b"\x00\xff",
        ("a",),
    )


@step
async def make_receipt(order: Order) -> Receipt:
    calls["make_receipt"] += 1
    return Receipt(order_id=order.order_id, total=float(order.amount), items=[1, 2])


@workflow
async def arithmetic(ctx: WorkflowContext, x: int) -> int:
    a = await add(x, 1)
    b = await ctx.step("times", mul, a, 3)
    c, d = await ctx.parallel(add(b, 1), mul(b, 2))
    both = await ctx.gather(p=add(1, 1), q=ctx.step(mul, 2, 5))
    return c + d + both["p"] + both["q"]


async def test_steps_run_once_and_results_compose(client: AsyncClient) -> None:
    assert await client.run(arithmetic, 2) == (9 + 1) + 18 + 2 + 10
    assert calls == Counter(add=3, mul=3)
    run = (await client.list())[0]
    desc = await client.describe(run.run_id)
    assert [(s.seq, s.name, s.status) for s in desc.steps] == [
        (0, "add", StepStatus.COMPLETED),
        (1, "times", StepStatus.COMPLETED),
        (2, "add", StepStatus.COMPLETED),
        (3, "mul", StepStatus.COMPLETED),
        (4, "add", StepStatus.COMPLETED),
        (5, "mul", StepStatus.COMPLETED),
    ]
    # running the same run id again returns the recorded result without executing anything
    assert await client.run(arithmetic, 2, run_id=run.run_id) == 40
    assert calls == Counter(add=3, mul=3)


@workflow
def sync_flow(ctx: SyncWorkflowContext, x: int) -> dict[str, Any]:
    a = ctx.step("double", lambda v: v * 2, x)
    b = mul(a, 10)  # a @step called in a sync workflow blocks and returns the value
    p, q = ctx.parallel((add, 1, 2), partial(mul, 3, 4))
    return {"a": a, "b": b, "p": p, "q": q, "seq": ctx.run_id != ""}


async def test_sync_workflow_and_sync_steps(client: AsyncClient) -> None:
    assert await client.run(sync_flow, 5) == {"a": 10, "b": 100, "p": 3, "q": 12, "seq": True}
    assert calls == Counter(mul=2, add=1)


@workflow
async def typed(ctx: WorkflowContext, order_id: str) -> Receipt:
    order = await make_order(order_id)
    seen.append(order)
    await ctx.sleep(0.05)  # suspends: the second execution replays make_order from JSON
    receipt = await make_receipt(order)
    seen.append(receipt)
    return receipt


async def test_values_round_trip_through_json_by_annotation(client: AsyncClient) -> None:
    receipt = await client.run(typed, "o-1")
    assert receipt == Receipt(order_id="o-1", total=12.5, items=[1, 2])
    assert calls == Counter(make_order=1, make_receipt=1)
    first, replayed, final = seen  # the order before the sleep, replayed after it, the receipt
    assert (
        isinstance(first, Order) and first.amount == Decimal("12.50") and first.blob == b"\x00\xff"
    )
    assert first.color is Color.BLUE and first.placed_at.tzinfo is not None and first.tags == ("a",)
    assert replayed == first and replayed is not first, "the replay decoded it from JSON"
    assert isinstance(final, Receipt)
    run = (await client.list())[0]
    steps = (await client.describe(run.run_id)).steps
    assert '"amount":"12.50"' in (steps[0].output_json or "")


class Opaque:
    pass


@step
async def returns_opaque() -> Any:
    return {"fine": [1, 2, {"bad": Opaque()}]}


@workflow
async def unencodable(ctx: WorkflowContext) -> None:
    await add(1, 1)
    await returns_opaque()


async def test_unencodable_result_fails_the_step_clearly_and_keeps_earlier_steps(
    client: AsyncClient,
) -> None:
    with pytest.raises(RunFailed) as info:
        await client.run(unencodable)
    assert info.value.error_type == "EncodeError"
    assert "$.fine[2].bad" in info.value.message and "Opaque" in info.value.message
    run = (await client.list())[0]
    desc = await client.describe(run.run_id)
    assert [s.status for s in desc.steps] == [StepStatus.COMPLETED, StepStatus.FAILED]
    with pytest.raises(EncodeError):
        await client.start(arithmetic, Opaque())  # bad input never reaches the store
    assert len(await client.list()) == 1


@step
async def whoami() -> dict[str, Any]:
    info = current_step()
    return {
        "run_id": info.run_id,
        "seq": info.seq,
        "key": info.idempotency_key,
        "attempt": info.attempt,
    }


@workflow
async def identity(ctx: WorkflowContext) -> list[Any]:
    a = await whoami()
    b = await whoami()
    return [a, b, ctx.now(), ctx.random(), ctx.uuid()]


async def test_current_step_and_journaled_values_are_stable(client: AsyncClient) -> None:
    first = await client.run(identity, run_id="fixed-id")
    assert first[0] == {"run_id": "fixed-id", "seq": 0, "key": "fixed-id:0", "attempt": 1}
    assert first[1]["key"] == "fixed-id:1"
    # fork from the end: the new run replays every journaled value
    fork = await client.fork("fixed-id", from_seq=5)
    again = await client.run(identity, run_id=fork.run_id)
    assert again[2:] == first[2:]
    assert isinstance(uuid.UUID(str(first[4])), uuid.UUID)


flaky_failures: dict[str, int] = {}


@step(
    retry=RetryPolicy(
        max_attempts=4, initial_delay_s=0.01, backoff=2.0, jitter=False, give_up_on=(ValueError,)
    )
)
async def flaky(key: str) -> str:
    attempt = current_step().attempt
    calls[key] += 1
    if flaky_failures.get(key, 0) >= attempt:
        raise ValueError("fatal") if key == "fatal" else ConnectionError(f"try {attempt}")
    return f"ok after {attempt}"


@workflow
async def retrying(ctx: WorkflowContext, key: str) -> str:
    return await flaky(key)


async def test_retries_follow_the_policy(client: AsyncClient) -> None:
    flaky_failures.update({"twice": 2, "always": 10, "fatal": 10})
    assert await client.run(retrying, "twice") == "ok after 3"
    assert calls["twice"] == 3
    with pytest.raises(RunFailed) as info:
        await client.run(retrying, "always")
    assert info.value.error_type == "ConnectionError" and calls["always"] == 4
    with pytest.raises(RunFailed) as info:
        await client.run(retrying, "fatal")
    assert info.value.error_type == "ValueError" and calls["fatal"] == 1, (
        "give_up_on is not retried"
    )
    failed = [r for r in await client.list() if r.state is RunState.FAILED]
    always = next(r for r in failed if r.error and r.error.type == "ConnectionError")
    desc = await client.describe(always.run_id)
    assert desc.steps[0].attempts == 4 and desc.steps[0].error is not None
    assert always.error is not None and "Traceback" in (always.error.traceback or "")


@step(retry=RetryPolicy(max_attempts=2, initial_delay_s=0.3, jitter=False))
async def slow_retry() -> str:
    calls["slow_retry"] += 1
    if current_step().attempt == 1:
        raise ConnectionError("later")
    return "second"


@workflow
async def long_backoff(ctx: WorkflowContext) -> str:
    return await slow_retry()


async def test_long_backoff_suspends_instead_of_holding_the_worker(store: Any) -> None:
    client = AsyncClient(store, settings=Settings(retry_suspend_after_s=0.1))
    try:
        assert await client.run(long_backoff) == "second"
        run = (await client.list())[0]
        kinds = [e.kind for e in await client.timeline(run.run_id)]
        assert "sleeping" in kinds, "the back-off suspended the run"
        step_entry = (await client.describe(run.run_id)).steps[0]
        assert step_entry.attempts == 2 and step_entry.status is StepStatus.COMPLETED
    finally:
        await client.close()


@step(timeout_s=0.05)
async def hangs_async() -> None:
    calls["hangs_async"] += 1
    await asyncio.sleep(10)


@step(timeout_s=0.05, retry=RetryPolicy(max_attempts=2, initial_delay_s=0, jitter=False))
def hangs_sync() -> None:
    calls["hangs_sync"] += 1
    time.sleep(0.5)


@workflow
async def timeouts(ctx: WorkflowContext, which: str) -> str:
    try:
        await (hangs_async() if which == "async" else ctx.step(hangs_sync))
    except StepTimeout as exc:
        return f"timed out: {exc.timeout_s}"
    return "finished"


async def test_step_timeouts_async_cancelled_sync_abandoned(client: AsyncClient) -> None:
    started = time.monotonic()
    assert await client.run(timeouts, "async") == "timed out: 0.05"
    assert await client.run(timeouts, "sync") == "timed out: 0.05"
    assert time.monotonic() - started < 2
    assert calls == Counter(hangs_async=1, hangs_sync=2)


@workflow(deadline_s=0.2)
async def past_deadline(ctx: WorkflowContext) -> str:
    await add(1, 2)
    try:
        await hangs_async.fn()  # a plain await, not a step: still stopped by the deadline
    except Exception:
        return "swallowed"
    await ctx.sleep(5)
    return "never"


async def test_deadline_fails_the_run(client: AsyncClient) -> None:
    with pytest.raises(RunFailed) as info:
        await client.run(past_deadline)
    assert info.value.error_type == "DeadlineExceeded"


@workflow
async def with_state(ctx: WorkflowContext, n: int) -> int:
    for i in range(n):
        ctx.state["done"] = i + 1
        ctx.emit("progress", {"done": i + 1, "total": n})
        await add(i, 0)
    await ctx.sleep(0.01)
    return n


async def test_state_and_events_are_visible_and_not_repeated(client: AsyncClient) -> None:
    assert await client.run(with_state, 3) == 3
    run = (await client.list())[0]
    desc = await client.describe(run.run_id)
    assert desc.state == {"done": 3}
    events = [e async for e in client.events(run.run_id)]
    assert [e.kind for e in events] == ["progress"] * 3, (
        "the replay after the sleep emitted nothing"
    )
    assert [e.data_json for e in events][-1] == '{"done":3,"total":3}'
    timeline = await client.timeline(run.run_id)
    assert timeline[0].kind == "created" and timeline[-1].kind == "completed"
    step_entries = [t for t in timeline if t.kind == "step" and "add" in t.detail]
    assert len(step_entries) == 3 and all(t.duration_s is not None for t in step_entries)


async def test_kinds_recorded_for_every_journal_entry(client: AsyncClient) -> None:
    await client.run(identity)
    run = (await client.list())[0]
    kinds = [s.kind for s in (await client.describe(run.run_id)).steps]
    assert kinds == [StepKind.STEP, StepKind.STEP, StepKind.NOW, StepKind.RANDOM, StepKind.UUID]
