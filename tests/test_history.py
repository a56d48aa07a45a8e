"""A run's history keeps every error: failed attempts of a step that later succeeded, and the
original failure of a run that was retried (issue 8, item 11)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from stepstone import AsyncClient, RetryPolicy, RunFailed, WorkflowContext, step, workflow
from stepstone.client.shapes import description_json
from stepstone.core.model import RunState
from stepstone.core.port import Store

calls: dict[str, int] = {}
broken = {"charge": True}


@step(retry=RetryPolicy(max_attempts=3, initial_delay_s=0.01, jitter=False))
async def flaky() -> str:
    calls["flaky"] = calls.get("flaky", 0) + 1
    if calls["flaky"] < 3:
        raise ConnectionError(f"attempt {calls['flaky']} refused")
    return "ok"


@step
async def charge() -> str:
    if broken["charge"]:
        raise ValueError("card declined")
    return "charged"


@workflow
async def persevere(ctx: WorkflowContext) -> str:
    return await flaky()


@workflow
async def checkout(ctx: WorkflowContext) -> str:
    return await charge()


@pytest.fixture
async def aclient(store: Store) -> AsyncIterator[AsyncClient]:
    calls.clear()
    broken["charge"] = True
    client = AsyncClient(store, workflows=[persevere, checkout])
    yield client
    await client.close()


async def test_errors_of_failed_attempts_stay_after_the_step_succeeds(aclient: AsyncClient) -> None:
    assert await aclient.run(persevere, run_id="p1") == "ok"
    desc = await aclient.describe("p1")
    [step_row] = desc.steps
    assert step_row.attempts == 3 and step_row.error is None
    assert [(f.seq, f.step, f.attempt, f.error.type, f.error.message) for f in desc.failures] == [
        (0, "flaky", 1, "ConnectionError", "attempt 1 refused"),
        (0, "flaky", 2, "ConnectionError", "attempt 2 refused"),
    ]
    timeline = await aclient.timeline("p1")
    failed = [e.detail for e in timeline if e.kind == "attempt_failed"]
    assert failed == [
        "flaky attempt 1 failed: ConnectionError: attempt 1 refused",
        "flaky attempt 2 failed: ConnectionError: attempt 2 refused",
    ]
    assert all(e.seq == 0 for e in timeline if e.kind == "attempt_failed")
    shown = description_json(desc)["failures"]
    assert [f["error"]["message"] for f in shown] == ["attempt 1 refused", "attempt 2 refused"]


async def test_a_retried_run_keeps_its_original_failure(aclient: AsyncClient) -> None:
    with pytest.raises(RunFailed):
        await aclient.run(checkout, run_id="c1")
    failed = await aclient.get("c1")
    assert failed.finished_at is not None and failed.error is not None
    broken["charge"] = False
    await aclient.retry("c1")
    assert await aclient.run(checkout, run_id="c1") == "charged"
    desc = await aclient.describe("c1")
    assert desc.run.state is RunState.COMPLETED
    assert [(f.seq, f.step, f.attempt, f.error.message) for f in desc.failures] == [
        (0, "charge", 1, "card declined"),
        (None, None, None, "card declined"),
    ]
    assert desc.failures[1].at == failed.finished_at, "the failure keeps its own time"
    timeline = await aclient.timeline("c1")
    kinds = [(e.kind, e.detail) for e in timeline if e.kind in ("attempt_failed", "failed")]
    assert kinds == [
        ("attempt_failed", "charge attempt 1 failed: ValueError: card declined"),
        ("failed", "ValueError: card declined"),
    ]
    order = [e.kind for e in timeline]
    assert order.index("failed") < order.index("retried") < order.index("completed")
