"""Budgets: stored in the database, checked against the ledger before each model call; a run
pauses (reason: budget) before the call that would pass its budget, and goes on once raised."""

from __future__ import annotations

import asyncio
import json

import pytest

from stepstone import AsyncClient, Budget, WorkflowContext, workflow
from stepstone.core.llm import Models, Price, Usage
from stepstone.core.model import RunState
from stepstone.core.port import Store
from stepstone.errors import InvalidArgument
from stepstone.models import ScriptedProvider, ScriptedReply
from tests.test_waits import wait_for_state

PRICES = {"cheap": Price(1.0, 1.0), "dear": Price(10.0, 10.0)}


@workflow(budget=Budget(usd=0.003005, alerts=(0.5,), downgrade_at=None))
async def four_calls(ctx: WorkflowContext) -> list[str]:
    return [(await ctx.llm(f"call {i}", model="cheap", max_tokens=10)).text for i in range(4)]


def provider() -> ScriptedProvider:
    # each call: 1000 in + 0 out at 1 USD/Mtok = 0.001 USD
    return ScriptedProvider([ScriptedReply(text="ok", usage=Usage(1000, 0), repeat=True)])


async def test_a_run_pauses_before_the_call_that_would_pass_its_budget(store: Store) -> None:
    scripted = provider()
    async with AsyncClient(store, models=Models([scripted], prices=PRICES)) as client:
        task = asyncio.create_task(client.run(four_calls, run_id="b1"))
        await wait_for_state(client, "b1", RunState.PAUSED)
        run = await client.get("b1")
        assert run.error is not None and run.error.type == "BudgetExhausted"
        assert "run 'b1' budget: $0.003000 of $0.003005" in run.error.message
        assert scripted.calls == 3, "the third call fit; the fourth might not (its worst case)"
        [line] = await client.cost("b1")
        assert line.calls == 3
        events = await store.read_events("b1")
        [paused] = [json.loads(e.data_json or "") for e in events if e.kind == "paused"]
        assert paused["reason"] == "budget" and "may cost up to" in paused["message"]
        alerts = [json.loads(e.data_json or "") for e in events if e.kind == "budget_alert"]
        assert [(a["scope"], a["threshold"]) for a in alerts] == [("run", 0.5)]
        # unpausing without raising the budget pauses it again, before any call
        await client.unpause("b1")
        await wait_for_state(client, "b1", RunState.PAUSED)
        assert scripted.calls == 3
        await client.set_budget(Budget(usd=1.0), run_id="b1")
        await client.unpause("b1")
        assert await task == ["ok"] * 4
    assert scripted.calls == 4


@workflow
async def tiered(ctx: WorkflowContext, n: int) -> list[str]:
    return [(await ctx.llm(f"q{i}", tier="best", max_tokens=1)).model for i in range(n)]


async def test_past_downgrade_at_a_tier_call_gets_the_next_cheaper_tier(store: Store) -> None:
    scripted = provider()
    tiers = {"best": "dear", "balanced": "cheap", "fast": "cheap"}
    models = Models([scripted], tiers=tiers, prices=PRICES)
    async with AsyncClient(store, models=models) as client:
        await client.set_budget(Budget(usd=1.0, downgrade_at=0.015), workflow="tiered")
        # dear: 0.01 per call; after the 2nd call the workflow spent 2% > 1.5%
        models_used = await client.run(tiered, 3, run_id="t1")
        assert models_used == ["scripted/dear", "scripted/dear", "scripted/cheap"]
        [use] = await client.budget_use("t1")
        assert use.spec.scope == "workflow" and use.spent_usd == pytest.approx(0.021)


async def test_budgets_are_stored_listed_and_refused_when_malformed(store: Store) -> None:
    async with AsyncClient(store) as client:
        await client.set_budget(Budget(tokens=100), queue="default")
        await client.set_budget(Budget(usd=2.0, period_s=86400), workflow="w")
        specs = await client.budgets()
        assert [(s.scope, s.name, s.budget) for s in specs] == [
            ("queue", "default", Budget(tokens=100)),
            ("workflow", "w", Budget(usd=2.0, period_s=86400)),
        ]
        await client.set_budget(None, queue="default")
        assert [s.name for s in await client.budgets()] == ["w"]
        with pytest.raises(InvalidArgument, match="exactly one"):
            await client.set_budget(Budget(usd=1), run_id="r", queue="q")
    with pytest.raises(InvalidArgument, match="usd= or tokens="):
        Budget()
    with pytest.raises(InvalidArgument, match="fractions"):
        Budget(usd=1, alerts=(1.5,))


@workflow
async def queued(ctx: WorkflowContext) -> str:
    return (await ctx.llm("one", model="cheap", max_tokens=10)).text


async def test_a_queue_budget_is_read_from_the_store_by_every_client(store: Store) -> None:
    first = provider()
    async with AsyncClient(store, models=Models([first], prices=PRICES)) as client:
        await client.set_budget(Budget(usd=0.001005), queue="default")
        assert await client.run(queued, run_id="q1") == "ok"
    second = provider()  # another process: nothing in memory is shared with the first
    async with AsyncClient(store, models=Models([second], prices=PRICES)) as other:
        task = asyncio.create_task(other.run(queued, run_id="q2"))
        await wait_for_state(other, "q2", RunState.PAUSED)
        assert second.calls == 0
        [use] = await other.budget_use("q2")
        assert use.spec.scope == "queue" and use.spent_usd == pytest.approx(0.001)
        await other.cancel("q2", "test over")
        with pytest.raises(Exception, match="cancelled"):
            await task


@workflow
async def chatty(ctx: WorkflowContext) -> list[str]:
    return [(await ctx.llm(f"turn {i}", model="cheap", max_tokens=10)).text for i in range(2)]


async def test_a_rate_limit_budget_sleeps_for_its_window_instead_of_pausing(
    store: Store,
) -> None:
    scripted = provider()  # 1000 tokens a call
    async with AsyncClient(store, models=Models([scripted], prices=PRICES)) as client:
        limit = Budget(tokens=1005, period_s=1.0, on_limit="wait", alerts=())
        await client.set_budget(limit, queue="default")
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.create_task(client.run(chatty, run_id="tpm"))
        await wait_for_state(client, "tpm", RunState.SLEEPING)
        run = await client.get("tpm")
        assert [w.kind for w in run.waits] == ["retry"] and run.lease_owner is None
        assert scripted.calls == 1
        assert await task == ["ok", "ok"]
        assert loop.time() - started >= 1.0, "the second call waited for the window"
    assert scripted.calls == 2
    with pytest.raises(InvalidArgument, match="needs period_s"):
        Budget(tokens=1, on_limit="wait")


@workflow(concurrency_key=lambda customer: customer)
async def for_customer(ctx: WorkflowContext, customer: str) -> str:
    return (await ctx.llm(f"for {customer}", model="cheap", max_tokens=10)).text


async def test_a_key_budget_limits_the_runs_of_one_concurrency_key_only(store: Store) -> None:
    """Per-key tokens per minute: runs started with one concurrency key share its budget; a
    run of another key is not held back by it."""
    from stepstone import Settings, Worker
    from tests.test_worker import Serving

    scripted = provider()  # 1000 tokens a call
    models = Models([scripted], prices=PRICES)
    worker = Worker(store, workflows=[for_customer], models=models, settings=Settings(poll_s=0.05))
    async with AsyncClient(store, workflows=[for_customer]) as client, Serving(worker):
        await client.set_budget(Budget(tokens=1005, period_s=3600, alerts=()), key="acme")
        assert await (await client.start(for_customer, "acme", run_id="a1")).result() == "ok"
        globex = await client.start(for_customer, "globex", run_id="g1")
        assert await globex.result() == "ok"  # another key: its own count
        held = await client.start(for_customer, "acme", run_id="a2")
        await wait_for_state(client, "a2", RunState.PAUSED)
        [use] = await client.budget_use("a2")
        assert (use.spec.scope, use.spec.name) == ("key", "acme")
        assert use.spent_tokens == 1000  # a1: one call of 1000 tokens (g1 counts for globex)
        assert scripted.calls == 2
        await client.set_budget(None, key="acme")
        await client.unpause("a2")
        assert await held.result() == "ok"
