"""The cost ledger: a priced model call written with its step, the roll-ups over it, and the
budgets checked against it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from stepstone.core.ledger import (
    Budget,
    BudgetScope,
    BudgetSpec,
    BudgetUse,
    CostLine,
    CostQuery,
    LedgerEntry,
)
from stepstone.store.scripts.tx import Row, Tx

__all__ = ["budget_use", "cost", "insert_entry", "list_budgets", "set_budget"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def insert_entry(tx: Tx, entry: LedgerEntry) -> None:
    """Write ``entry``; the caller runs it in the transaction that records its step."""
    call = entry.call
    params = {
        "run_id": entry.run_id,
        "seq": entry.seq,
        "step": entry.step,
        "workflow": entry.workflow,
        "queue": entry.queue,
        "model": call.model,
        "input_tokens": call.input_tokens,
        "output_tokens": call.output_tokens,
        "cache_read_tokens": call.cache_read_tokens,
        "cache_write_tokens": call.cache_write_tokens,
        "cost_usd": call.cost_usd,
        "latency_s": call.latency_s,
        "created_at": tx.columns.time_out(entry.created_at),
    }
    if await tx.run("insert_ledger", params):  # not on a retried transaction's second try
        await tx.run("add_ledger_day", params)


def _days(tx: Tx, since: datetime | None) -> dict[str, Any]:
    """Where a sum from ``since`` splits: whole UTC days from ``first_day`` on (read from
    ledger_days), the ledger rows from ``since`` to ``first_day_at`` (the partial day)."""
    since = (since or _EPOCH).astimezone(UTC)
    midnight = since.replace(hour=0, minute=0, second=0, microsecond=0)
    first = midnight if midnight == since else midnight + timedelta(days=1)
    return {
        "since": tx.columns.time_out(since),
        "first_day": first.date().isoformat(),
        "first_day_at": tx.columns.time_out(first),
    }


async def cost(tx: Tx, query: CostQuery) -> list[CostLine]:
    params = {
        "by": query.by,
        "run_id": query.run_id,
        "workflow": query.workflow,
        "queue": query.queue,
        **_days(tx, query.since),
    }
    block = "cost_rollup" if query.run_id is None else "cost_of_run"
    return [
        CostLine(
            key=r["key"],
            calls=r["calls"],
            input_tokens=r["input_tokens"],
            output_tokens=r["output_tokens"],
            cache_read_tokens=r["cache_read_tokens"],
            cache_write_tokens=r["cache_write_tokens"],
            cost_usd=float(r["cost_usd"]),
            latency_s=float(r["latency_s"]),
        )
        for r in await tx.all(block, params)
    ]


# --- budgets -----------------------------------------------------------------------------------

_SPENT = {"run": "spent_by_run", "workflow": "spent_by_workflow", "queue": "spent_by_queue"}


async def set_budget(
    tx: Tx, scope: BudgetScope, name: str, budget: Budget | None, now: datetime
) -> None:
    """Store (replace) the budget of ``scope``/``name``; None removes it."""
    key = {"scope": scope, "name": name}
    if budget is None:
        await tx.run("delete_budget", key)
        return
    params = {
        **key,
        "usd": budget.usd,
        "tokens": budget.tokens,
        "alerts": json.dumps(list(budget.alerts)),
        "downgrade_at": budget.downgrade_at,
        "period_s": budget.period_s,
        "on_limit": budget.on_limit,
        "now": tx.columns.time_out(now),
    }
    await tx.run("set_budget", params)


async def list_budgets(tx: Tx) -> list[BudgetSpec]:
    return [_spec(tx, r) for r in await tx.all("list_budgets", {})]


async def budget_use(
    tx: Tx, run_id: str, workflow: str, queue: str, now: datetime
) -> list[BudgetUse]:
    """The budgets a model call of this run counts against, each with what the ledger holds
    against it within its period (one indexed sum per budget)."""
    params = {"run_id": run_id, "workflow": workflow, "queue": queue}
    uses = []
    for row in await tx.all("budgets_for", params):
        spec = _spec(tx, row)
        period = spec.budget.period_s
        since = now - timedelta(seconds=period) if period is not None else _EPOCH
        args = {"name": spec.name, **_days(tx, since)}
        spent = await tx.one(_SPENT[spec.scope], args)
        assert spent is not None  # an aggregate always answers
        uses.append(BudgetUse(spec, float(spent["usd"]), int(spent["tokens"])))
    return uses


def _spec(tx: Tx, row: Row) -> BudgetSpec:
    budget = Budget(
        usd=row["usd"],
        tokens=row["tokens"],
        alerts=tuple(json.loads(row["alerts"])),
        downgrade_at=row["downgrade_at"],
        period_s=row["period_s"],
        on_limit=row["on_limit"],
    )
    return BudgetSpec(row["scope"], row["name"], budget, tx.columns.time_in(row["updated_at"]))
