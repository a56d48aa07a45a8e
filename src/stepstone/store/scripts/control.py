"""Operator control: cancel, pause and unpause a run (the rules are
:func:`~stepstone.store.rules.control_transition`), and a cancel's cascade to its descendants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stepstone.core.model import TERMINAL_STATES, Control, Run, RunState
from stepstone.errors import RunNotFound, Transient
from stepstone.store.rules import control_transition
from stepstone.store.scripts import inbox
from stepstone.store.scripts.runs import event, get_run, reread
from stepstone.store.scripts.tx import Tx

__all__ = ["cascade_cancel", "control", "request_control"]


async def request_control(
    tx: Tx, run_id: str, action: Control | None, reason: str | None, now: datetime
) -> Run:
    """Apply an operator's cancel / pause / unpause (None); the run as it is afterwards."""
    run = await get_run(tx, run_id)
    if run is None:
        raise RunNotFound(run_id)
    if tx.attempt == 0 or run.updated_at != now:  # else: the earlier attempt committed
        await control(tx, run, action, reason, now)
    return await reread(tx, run_id)


async def control(
    tx: Tx,
    run: Run,
    action: Control | None,
    reason: str | None,
    now: datetime,
    *,
    cascade: bool = True,
) -> None:
    """Apply cancel / pause / unpause (None) to ``run`` as read in this transaction. Every
    change is guarded by the state it was read in; if the run moved meanwhile (PostgreSQL: a
    concurrent transaction), the transaction runs again (Transient)."""
    change = control_transition(run, action, reason)
    if change.request:
        request = {"run_id": run.run_id, "control": change.control, "reason": change.reason}
        if await tx.run("set_control", {**request, "now": now}) != 1:
            raise Transient(f"run {run.run_id} stopped running while being controlled")
    elif change.state is not None:
        params: dict[str, Any] = {
            "run_id": run.run_id,
            "expected": run.state.value,
            "state": change.state.value,
            "wake_at": now if change.wake_now else None,
            "error": change.error_json,
            "finished_at": now if change.finished else None,
            "now": now,
        }
        if await tx.run("set_state", params) != 1:
            raise Transient(f"run {run.run_id} left state {run.state.value} while being changed")
        if change.state is RunState.CANCELLED:
            said = inbox.outcome_of_cancel(change.reason or "cancelled")
            await inbox.record_outcome(tx, run.run_id, "cancelled", run.lease_token, said, now)
    if change.wake_parent and run.parent_run_id:
        await tx.run("wake_parent", {"run_id": run.parent_run_id, "now": now})
    if change.cascade and cascade:
        await cascade_cancel(tx, run.run_id, change.reason or "cancelled", now)
    if change.event:
        await event(tx, run.run_id, change.event, change.event_data, now)


async def cascade_cancel(tx: Tx, run_id: str, reason: str, now: datetime) -> None:
    """Cancel every unfinished descendant of ``run_id``."""
    for row in await tx.all("descendants", {"run_id": run_id}):
        child = await get_run(tx, row["run_id"])
        if child is None or child.state in TERMINAL_STATES:
            continue
        await control(
            tx, child, "cancel", f"parent {run_id} cancelled: {reason}", now, cascade=False
        )
