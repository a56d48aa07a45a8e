"""The cost ledger's values: one row per model call, and the roll-ups ``stepstone cost`` shows.

A :class:`LedgerEntry` is written by the store in the same transaction as the step record of the
``ctx.llm`` call it prices, so the ledger never counts a call the journal does not hold, nor
misses one it does. Ledger rows outlive the runs they price (purging runs keeps their cost); a
step run again after ``retry`` made a new call and adds a row of its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from stepstone.core.frozen import frozen

__all__ = [
    "BUDGET_SCOPES",
    "Budget",
    "BudgetScope",
    "BudgetSpec",
    "BudgetUse",
    "CostGroup",
    "CostLine",
    "CostQuery",
    "LedgerEntry",
    "MeteredCall",
]

CostGroup = Literal["model", "workflow", "day"]


@frozen
class MeteredCall:
    """What a model call cost, as the step that made it reports it to be journaled."""

    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    cost_usd: float
    latency_s: float


@frozen
class LedgerEntry:
    """One model call's row: where it ran (run, step, workflow, queue) and what it cost."""

    run_id: str
    seq: int
    step: str
    workflow: str
    queue: str
    call: MeteredCall
    created_at: datetime
    concurrency_key: str | None = None
    """The run's concurrency key (``StartOptions(concurrency_key=)``): what a ``key`` budget
    counts, e.g. one customer's tokens per minute."""


@frozen
class CostQuery:
    """Which ledger rows to add up (all filters optional) and how to group them (``by``)."""

    run_id: str | None = None
    workflow: str | None = None
    queue: str | None = None
    since: datetime | None = None
    by: CostGroup | None = None


@frozen
class CostLine:
    """One group of a roll-up (``key`` None for the total): calls, tokens, USD, latency."""

    key: str | None
    calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    latency_s: float


BudgetScope = Literal["run", "workflow", "queue", "key"]
BUDGET_SCOPES: tuple[BudgetScope, ...] = ("run", "workflow", "queue", "key")


@frozen
class Budget:
    """A spending limit on model calls, checked against the ledger before each call.

    ``usd`` and ``tokens`` (all tokens: in, out, cache): limits (None: no limit of that kind).
    ``alerts``: fractions of a limit whose crossing emits a ``budget_alert`` event.
    ``downgrade_at``: past this fraction, a call asking for a ``tier`` gets the next cheaper
    one (best -> balanced -> fast); a call naming its ``model=`` is never changed.
    ``period_s``: count only the calls of the last ``period_s`` seconds (a workflow's or a
    queue's daily budget: 86400); None counts every call. At 100% the run pauses, with reason
    ``budget``, before the call that would go past the limit (the call's worst case: its
    prompt and ``max_tokens`` at the model's price); raise the budget and unpause it.
    ``on_limit="wait"`` (with ``period_s``) makes it a rate limit instead: the run sleeps for
    ``period_s`` (durably, no worker held) and tries again, e.g. a queue's tokens per minute.

    >>> @workflow(budget=Budget(usd=2.0, alerts=(0.5, 0.8)))
    >>> client.set_budget(Budget(tokens=200_000, period_s=60, on_limit="wait"), queue="agents")
    """

    usd: float | None = None
    tokens: int | None = None
    alerts: tuple[float, ...] = (0.8,)
    downgrade_at: float | None = 0.8
    period_s: float | None = None
    on_limit: Literal["pause", "wait"] = "pause"

    def __post_init__(self) -> None:
        from stepstone.errors import InvalidArgument

        if self.usd is None and self.tokens is None:
            raise InvalidArgument("Budget needs usd= or tokens= (or both)")
        if (self.usd is not None and self.usd < 0) or (self.tokens is not None and self.tokens < 0):
            raise InvalidArgument("Budget limits must be >= 0")
        for fraction in (*self.alerts, self.downgrade_at or 0.5):
            if not 0 < fraction <= 1:
                raise InvalidArgument(f"Budget fractions must be in (0, 1], got {fraction}")
        if self.period_s is not None and self.period_s <= 0:
            raise InvalidArgument(f"Budget period_s must be > 0, got {self.period_s}")
        if self.on_limit not in ("pause", "wait"):
            raise InvalidArgument(
                f"Budget on_limit must be 'pause' or 'wait', got {self.on_limit!r}"
            )
        if self.on_limit == "wait" and self.period_s is None:
            raise InvalidArgument("Budget on_limit='wait' needs period_s (the window to wait for)")


@frozen
class BudgetSpec:
    """A budget as stored: its scope (``run``, ``workflow``, ``queue`` or ``key``: a
    concurrency key) and name."""

    scope: BudgetScope
    name: str
    budget: Budget
    updated_at: datetime | None = None


@frozen
class BudgetUse:
    """A budget and what the ledger holds against it (within its period) now."""

    spec: BudgetSpec
    spent_usd: float
    spent_tokens: int

    def fraction(self, extra_usd: float = 0.0, extra_tokens: int = 0) -> float:
        """How much of the budget is used (1.0 = all), with a call's worst case added."""
        b = self.spec.budget
        parts = [0.0]
        if b.usd is not None:
            parts.append(_ratio(self.spent_usd + extra_usd, b.usd))
        if b.tokens is not None:
            parts.append(_ratio(self.spent_tokens + extra_tokens, b.tokens))
        return max(parts)

    def describe(self) -> str:
        b, parts = self.spec.budget, []
        if b.usd is not None:
            parts.append(f"${self.spent_usd:.6f} of ${b.usd:g}")
        if b.tokens is not None:
            parts.append(f"{self.spent_tokens} of {b.tokens} tokens")
        return f"{self.spec.scope} {self.spec.name!r} budget: " + ", ".join(parts)


def _ratio(spent: float, limit: float) -> float:
    if limit > 0:
        return spent / limit
    return 1.0 if spent <= 0 else float("inf")  # a zero budget is used up from the start
