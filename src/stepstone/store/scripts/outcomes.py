"""How a claim ends: the run finishes (completed, failed, cancelled) or is parked (paused,
blocked, suspended on its waits, handed back), with the wake-ups and cascade that follow."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from stepstone.core import port
from stepstone.core.model import Claim, InboxOutcome, RunState
from stepstone.core.records import waits_event
from stepstone.errors import LeaseLost
from stepstone.store.rules import parked_state
from stepstone.store.scripts import inbox
from stepstone.store.scripts.control import cascade_cancel
from stepstone.store.scripts.runs import event, fence, get_run
from stepstone.store.scripts.tx import Tx
from stepstone.store.serde import dump_error, dump_waits

__all__ = ["close_claim"]


async def close_claim(
    tx: Tx, claim: Claim, outcome: port.ClaimOutcome, now: datetime, state_json: str | None
) -> RunState:
    """End ``claim`` with ``outcome``; the state the run is left in."""
    base: dict[str, Any] = {
        "run_id": claim.run_id,
        "token": claim.lease_token,
        "now": now,
        "state_data": state_json,
    }
    if isinstance(outcome, port.Completed | port.Failed | port.Cancelled):
        reason = ""
        if isinstance(outcome, port.Completed):
            state, output, error = RunState.COMPLETED, outcome.output_json, None
        elif isinstance(outcome, port.Failed):
            state, output, error = RunState.FAILED, None, dump_error(outcome.error)
        else:
            state, output = RunState.CANCELLED, None
            current = await get_run(tx, claim.run_id)
            reason = outcome.reason or (current.control_reason if current else None) or "cancelled"
            error = json.dumps({"type": "Cancelled", "message": reason})
        params = {**base, "state": state.value, "output": output, "error": error}
        if await tx.run("finish_run", params) != 1:
            return await _closed_before(tx, claim, now)
        if isinstance(outcome, port.Completed):
            said = inbox.outcome_of_end(outcome.output_json, None)
        elif isinstance(outcome, port.Failed):
            said = inbox.outcome_of_end(None, outcome.error)
        else:
            said = inbox.outcome_of_cancel(reason)
        ended = _ENDED[state]
        await inbox.record_outcome(tx, claim.run_id, ended, claim.lease_token, said, now)
        if claim.run.parent_run_id:
            await tx.run("wake_parent", {"run_id": claim.run.parent_run_id, "now": now})
        if isinstance(outcome, port.Cancelled):
            await cascade_cancel(tx, claim.run_id, reason, now)
        return state  # the row itself records the end (state, finished_at, error)
    waits: str | None = None
    wake_at: datetime | None = None
    error = None
    if isinstance(outcome, port.Paused):
        state = RunState.PAUSED
        if outcome.reason is not None:  # the run paused itself: shown as its error until resumed
            error = json.dumps({"type": "BudgetExhausted", "message": outcome.reason})
    elif isinstance(outcome, port.Blocked):
        state = RunState.BLOCKED
        error = json.dumps({"type": "NonDeterminismError", "message": outcome.reason})
    elif isinstance(outcome, port.Released):
        state, wake_at = RunState.PENDING, now + timedelta(seconds=outcome.delay_s)
    else:
        assert isinstance(outcome, port.Suspended)
        try:
            await fence(tx, claim)  # PostgreSQL: a signal or a child's end now waits for us
        except LeaseLost:
            return await _closed_before(tx, claim, now)
        state, wake_at, waits = await _suspended_state(tx, claim.run_id, outcome, now)
    params = {**base, "state": state.value, "error": error, "waits": waits, "wake_at": wake_at}
    if await tx.run("park_run", params) != 1:
        return await _closed_before(tx, claim, now)
    if isinstance(outcome, port.Paused) and outcome.reason is not None:  # by a budget
        said = inbox.outcome_of_budget(outcome.reason)
        await inbox.record_outcome(tx, claim.run_id, "paused", claim.lease_token, said, now)
    if state is RunState.WAITING and isinstance(outcome, port.Suspended):
        question = inbox.outcome_of_wait(outcome.waits)
        if question is not None:
            await inbox.record_outcome(
                tx, claim.run_id, "waiting", claim.lease_token, question, now
            )
    detail = waits_event(outcome.waits) if isinstance(outcome, port.Suspended) else None
    if isinstance(outcome, port.Released) and outcome.reason is not None:
        detail = {"reason": outcome.reason, "retry_after_s": outcome.delay_s}
    if isinstance(outcome, port.Paused) and outcome.reason is not None:
        detail = {"reason": "budget", "message": outcome.reason}
    kind = {RunState.PENDING: "released"}.get(state, state.value)
    await event(tx, claim.run_id, kind, detail, now)
    return state


_ENDED: dict[RunState, InboxOutcome] = {
    RunState.COMPLETED: "done",
    RunState.FAILED: "failed",
    RunState.CANCELLED: "cancelled",
}


async def _closed_before(tx: Tx, claim: Claim, now: datetime) -> RunState:
    """The fenced update matched nothing: the lease is gone, unless this is a retry and the
    earlier attempt closed the claim (same token, no holder, stamped with this ``now``)."""
    if tx.attempt > 0:
        run = await get_run(tx, claim.run_id)
        if (
            run is not None
            and run.lease_token == claim.lease_token
            and run.lease_owner is None
            and run.updated_at == now
        ):
            return run.state
    raise LeaseLost(claim.run_id, claim.lease_token)


async def _suspended_state(
    tx: Tx, run_id: str, outcome: port.Suspended, now: datetime
) -> tuple[RunState, datetime | None, str | None]:
    """Where a suspending run goes (see :func:`~stepstone.store.rules.parked_state`), checking
    here whether a signal or a child's end it waits for arrived meanwhile."""
    waits = outcome.waits
    signals = [w.name for w in waits if w.kind == "signal" and w.name]
    children = [w.name for w in waits if w.kind == "child" and w.name]
    satisfied = False
    if signals:
        row = await tx.one("signal_waiting", {"run_id": run_id, "names": signals})
        satisfied = bool(row and row["found"])
    if children and not satisfied:
        row = await tx.one("child_finished", {"run_ids": children})
        satisfied = bool(row and row["found"])
    state, wake = parked_state(waits, satisfied, now)
    return state, wake, dump_waits(waits)
