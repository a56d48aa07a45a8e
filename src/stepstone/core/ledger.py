"""The cost ledger's values: one row per model call, and the roll-ups ``stepstone cost`` shows.

A :class:`LedgerEntry` is written by the store in the same transaction as the step record of the
``ctx.llm`` call it prices, so the ledger never counts a call the journal does not hold, nor
misses one it does. Ledger rows outlive the runs they price (purging runs keeps their cost); a
step run again after ``retry`` made a new call and adds a row of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = ["CostGroup", "CostLine", "CostQuery", "LedgerEntry", "MeteredCall"]

CostGroup = Literal["model", "workflow", "day"]


@dataclass(frozen=True, slots=True)
class MeteredCall:
    """What a model call cost, as the step that made it reports it to be journaled."""

    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    cost_usd: float
    latency_s: float


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One model call's row: where it ran (run, step, workflow, queue) and what it cost."""

    run_id: str
    seq: int
    step: str
    workflow: str
    queue: str
    call: MeteredCall
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CostQuery:
    """Which ledger rows to add up (all filters optional) and how to group them (``by``)."""

    run_id: str | None = None
    workflow: str | None = None
    queue: str | None = None
    since: datetime | None = None
    by: CostGroup | None = None


@dataclass(frozen=True, slots=True)
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
