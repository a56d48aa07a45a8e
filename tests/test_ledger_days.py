"""The ledger's per-day sums: roll-ups and budget checks read whole days from ledger_days and
the partial first day from the ledger, and must equal a sum over every ledger row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stepstone.core.ledger import Budget, CostQuery, LedgerEntry, MeteredCall
from stepstone.core.port import Store
from tests.test_store_contract import claim_one, step

DAY0 = datetime(2026, 11, 20, tzinfo=UTC)
# (hours after DAY0, workflow, queue, model, tokens in, USD): across four UTC days
CALLS = [
    (1.0, "a", "q1", "m1", 100, 0.01),
    (5.5, "a", "q2", "m2", 200, 0.02),
    (23.9, "b", "q1", "m1", 300, 0.04),
    (24.0, "a", "q1", "m2", 400, 0.08),
    (30.2, "b", "q2", "m1", 500, 0.16),
    (49.0, "a", "q1", "m1", 600, 0.32),
    (71.5, "b", "q1", "m2", 700, 0.64),
    (75.0, "a", "q2", "m1", 800, 1.28),
]


async def _fill(store: Store) -> None:
    for i, (hours, wf, queue, model, tokens, usd) in enumerate(CALLS):
        claim = await claim_one(store, f"r{i}")
        call = MeteredCall(model, tokens, 10, 5 if i % 2 else None, None, usd, 0.5)
        at = DAY0 + timedelta(hours=hours)
        entry = LedgerEntry(f"r{i}", 0, "llm", wf, queue, call, at)
        await store.record_step(claim, step(0), now=at, ledger=entry)
        # the same write again (a retried transaction) adds nothing
        await store.record_step(claim, step(0), now=at, ledger=entry)


def _expected(since: datetime | None, by: str | None, **only: str) -> dict[str | None, float]:
    sums: dict[str | None, float] = {}
    for hours, wf, queue, model, _, usd in CALLS:
        at = DAY0 + timedelta(hours=hours)
        row = {"workflow": wf, "queue": queue, "model": model}
        if (since is not None and at < since) or any(row[k] != v for k, v in only.items()):
            continue
        key = None if by is None else at.date().isoformat() if by == "day" else row[by]
        sums[key] = sums.get(key, 0.0) + usd
    return sums


@pytest.mark.parametrize("since_h", [None, 0.0, 3.0, 24.0, 30.0, 70.0, 80.0])
@pytest.mark.parametrize("by", [None, "model", "workflow", "day"])
async def test_rollups_equal_a_sum_over_every_row(
    store: Store, since_h: float | None, by: str | None
) -> None:
    await _fill(store)
    since = None if since_h is None else DAY0 + timedelta(hours=since_h)
    for only in ({}, {"workflow": "a"}, {"queue": "q1"}):
        lines = await store.cost(CostQuery(since=since, by=by, **only))  # type: ignore[arg-type]
        got = {line.key: round(line.cost_usd, 6) for line in lines}
        want = {k: round(v, 6) for k, v in _expected(since, by, **only).items()}
        assert got == want, (since_h, by, only)


async def test_one_runs_cost_and_the_tokens_add_up(store: Store) -> None:
    await _fill(store)
    [line] = await store.cost(CostQuery(run_id="r4"))
    assert (line.calls, line.input_tokens, line.output_tokens) == (1, 500, 10)
    assert line.cache_read_tokens == 0
    [total] = await store.cost(CostQuery())
    assert total.calls == len(CALLS)
    assert total.input_tokens == sum(c[4] for c in CALLS)
    assert total.cache_read_tokens == 5 * (len(CALLS) // 2)


async def test_budget_checks_split_days_the_same_way(store: Store) -> None:
    await _fill(store)
    now = DAY0 + timedelta(hours=76)
    await store.set_budget("workflow", "a", Budget(usd=10.0), now=now)
    await store.set_budget("queue", "q1", Budget(usd=10.0, period_s=50 * 3600), now=now)
    uses = {u.spec.scope: u for u in await store.budget_use("r0", "a", "q1", now=now)}
    assert round(uses["workflow"].spent_usd, 6) == round(0.01 + 0.02 + 0.08 + 0.32 + 1.28, 6)
    # the last 50 hours: from hour 26 on
    assert round(uses["queue"].spent_usd, 6) == round(0.32 + 0.64, 6)
    tokens = 600 + 10 + 700 + 10 + 5  # r5 in+out, r6 in+out+cache read (odd index)
    assert uses["queue"].spent_tokens == tokens
