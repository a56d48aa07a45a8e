"""The run's journal: recording steps (fenced by the lease), starting a child as a step, and the
run's events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from stepstone.core.ledger import LedgerEntry
from stepstone.core.memory import MemoryWrite
from stepstone.core.model import (
    Claim,
    Control,
    EventRecord,
    NewRun,
    Run,
    StepRecord,
    StepStatus,
)
from stepstone.core.port import NewEvent
from stepstone.core.records import failure_event
from stepstone.errors import LeaseLost
from stepstone.store.scripts.inbox import record_child_launch
from stepstone.store.scripts.ledger import insert_entry
from stepstone.store.scripts.memory import write_memory
from stepstone.store.scripts.runs import event, fence, insert_run
from stepstone.store.scripts.tx import Tx

__all__ = ["append_events", "load_steps", "read_events", "record_step", "start_child"]


async def load_steps(tx: Tx, run_id: str) -> list[StepRecord]:
    return [tx.columns.step(r) for r in await tx.all("load_steps", {"run_id": run_id})]


async def record_step(
    tx: Tx,
    claim: Claim,
    record: StepRecord,
    state_json: str | None,
    ledger: LedgerEntry | None = None,
    memory: MemoryWrite | None = None,
) -> Control | None:
    """Record ``record`` while ``claim`` holds the run (else LeaseLost), with the workflow's
    state if it changed, the model call it priced (``ledger``) and the memory document it wrote
    (``memory``: MemoryConflict rolls it all back), all in one transaction; the
    control an operator requested for the run, if any. A failed
    attempt with more to come (RETRYING) is also logged as an ``attempt_failed`` event: the
    next attempt's record replaces this one, and its error must stay in the history."""
    failure: dict[str, Any] | None = None
    failed_at = record.finished_at
    if record.status is StepStatus.RETRYING and record.error is not None and failed_at:
        failure = failure_event(record.error, record)
    params = tx.columns.step_params(claim.run_id, claim.lease_token, record)
    params["failed_attempt"] = json.dumps(failure) if failure is not None else None
    row = await tx.one("record_step", params)
    if row is None:
        raise LeaseLost(claim.run_id, claim.lease_token)
    if failure is not None and failed_at is not None and not tx.record_step_logs_failures:
        await event(tx, claim.run_id, "attempt_failed", failure, failed_at)
    if state_json is not None:
        params = {"run_id": claim.run_id, "token": claim.lease_token, "state_data": state_json}
        await tx.run("save_state", params)
    if ledger is not None:
        await insert_entry(tx, ledger)
    if memory is not None:
        await write_memory(tx, claim.run_id, record.seq, memory, record.finished_at)
    control: Control | None = row["control"]
    return control


async def start_child(
    tx: Tx, claim: Claim, record: StepRecord, child: NewRun, now: datetime
) -> Run:
    """Create ``child`` and record the step that started it, together."""
    await fence(tx, claim)
    stored, _ = await insert_run(tx, child, now, None, 0)
    await record_child_launch(tx, claim.run_id, child.run_id, now)
    await tx.run("record_step", tx.columns.step_params(claim.run_id, claim.lease_token, record))
    return stored


async def append_events(tx: Tx, claim: Claim, events: Sequence[NewEvent], now: datetime) -> None:
    """Append the run's own events (an event already stored at its index is kept)."""
    await fence(tx, claim)
    for e in events:
        params = {
            "run_id": claim.run_id,
            "idx": e.idx,
            "kind": e.kind,
            "data": e.data_json,
            "source": "user",
            "now": now,
        }
        await tx.run("insert_event", params)


async def read_events(tx: Tx, run_id: str, after_id: int, limit: int) -> list[EventRecord]:
    params = {"run_id": run_id, "after_id": after_id, "limit": limit}
    return [tx.columns.event(r) for r in await tx.all("read_events", params)]
