"""The bodies of the store's write transactions: creating runs, ending claims, operator control
(cancel, pause, unpause) with its cascade. Claims are in :mod:`.claims`.

Each runs on the writer's connection inside the transaction the writer opened (or alone in
autocommit when it is one statement), and gets its attempt number: attempt > 0 means an earlier
attempt may have committed without the answer arriving, and the body recognises that commit by
the ``now`` it wrote (every write stamps ``updated_at``/``created_at`` with the caller's ``now``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from stepstone.core.model import (
    TERMINAL_STATES,
    Claim,
    Control,
    NewRun,
    Run,
    RunState,
)
from stepstone.core.port import (
    Blocked,
    Cancelled,
    ClaimOutcome,
    Completed,
    Failed,
    LeaseLost,
    Paused,
    Released,
    Suspended,
)
from stepstone.errors import Transient
from stepstone.store.admission import PoolWorker, choose_pool_worker
from stepstone.store.postgres.link import Conn
from stepstone.store.postgres.rows import COLUMNS, run_from
from stepstone.store.postgres.sql import Q
from stepstone.store.rules import control_transition, parked_state, wait_details
from stepstone.store.serde import dump_error, dump_waits

__all__ = [
    "Q",
    "all_rows",
    "assign_in_pool",
    "close_claim",
    "control",
    "event",
    "fence",
    "get_run",
    "insert_run",
    "one_row",
    "write",
]


async def all_rows(conn: Conn, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cur = await conn.execute(sql, params)
    return await cur.fetchall() if cur.description is not None else []


async def one_row(conn: Conn, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
    cur = await conn.execute(sql, params)
    return await cur.fetchone() if cur.description is not None else None


async def write(conn: Conn, sql: str, params: dict[str, Any]) -> int:
    """Execute; the number of rows changed (or returned, for a statement that returns rows)."""
    cur = await conn.execute(sql, params)
    return cur.rowcount


async def get_run(conn: Conn, run_id: str) -> Run | None:
    row = await one_row(conn, Q.get_run, {"run_id": run_id})
    return run_from(row) if row is not None else None


async def event(
    conn: Conn, run_id: str, kind: str, data: dict[str, Any] | None, now: datetime
) -> None:
    params = {
        "run_id": run_id,
        "idx": None,
        "kind": kind,
        "data": json.dumps(data) if data else None,
        "source": "system",
        "now": now,
    }
    await conn.execute(Q.insert_event, params)


async def fence(conn: Conn, claim: Claim) -> Control | None:
    """Hold the run FOR SHARE while this lease is current (until the transaction ends), or raise
    LeaseLost. Returns the control requested for the run."""
    row = await one_row(conn, Q.lease_check, {"run_id": claim.run_id, "token": claim.lease_token})
    if row is None:
        raise LeaseLost(claim.run_id, claim.lease_token)
    control: Control | None = row["control"]
    return control


async def insert_run(
    conn: Conn,
    run: NewRun,
    now: datetime,
    owner: str | None,
    lease_s: float,
    attempt: int,
    *,
    state_json: str | None = None,
) -> tuple[Run, bool]:
    """Create ``run`` unless its id, or (while that run is unfinished) its dedup key, exists:
    (the run as stored, created?). On a retry, the row this call wrote in the earlier attempt
    (same id, workflow, input and creation time) counts as created by it."""
    dedup_key = run.routing.dedup_key
    if dedup_key is not None:
        holder = await one_row(conn, Q.find_dedup, {"dedup_key": dedup_key})
        if holder is not None:
            found = run_from(holder)
            return found, _mine(found, run, now, owner, attempt)
    assigned = None
    if run.routing.pool is not None and owner is None and run.routing.target_worker is None:
        assigned = await assign_in_pool(conn, run.routing.pool, now)
    params = COLUMNS.new_run(
        run, now, owner=owner, lease_s=lease_s, state_json=state_json, assigned_worker=assigned
    )
    row = await one_row(conn, Q.create_run, params)
    if row is not None:
        return run_from(row), True
    stored = await get_run(conn, run.run_id)
    if stored is None and dedup_key is not None:  # a concurrent create took the key first
        holder = await one_row(conn, Q.find_dedup, {"dedup_key": dedup_key})
        stored = run_from(holder) if holder is not None else None
    if stored is None:  # the holder finished and was purged meanwhile: try again
        raise Transient(f"run {run.run_id} could not be created or found")
    return stored, _mine(stored, run, now, owner, attempt)


def _mine(stored: Run, run: NewRun, now: datetime, owner: str | None, attempt: int) -> bool:
    return (
        attempt > 0
        and stored.run_id == run.run_id
        and stored.created_at == now
        and stored.workflow == run.workflow
        and stored.input_json == run.input_json
        and (owner is None or (stored.lease_owner == owner and stored.lease_token == 1))
    )


async def assign_in_pool(conn: Conn, pool: str, now: datetime) -> str | None:
    """The worker of ``pool`` a new run goes to, by the pool's stored strategy (None: any). The
    pool row stays locked until the run is stored, so concurrent assignments take turns."""
    row = await one_row(conn, Q.get_pool, {"name": pool})
    if row is None:
        return None
    spec = COLUMNS.pool(row)
    if spec.strategy == "direct":
        return None
    workers = [
        PoolWorker(r["worker_id"], r["concurrency"], r["load"])
        for r in await all_rows(conn, Q.pool_workers, {"pool": pool, "now": now})
    ]
    chosen = choose_pool_worker(spec, workers, row["last_worker"])
    if chosen is not None:
        await conn.execute(Q.set_pool_cursor, {"name": pool, "worker_id": chosen})
    return chosen


# --- how a claim ends ------------------------------------------------------------------------


async def close_claim(
    conn: Conn,
    claim: Claim,
    outcome: ClaimOutcome,
    now: datetime,
    state_json: str | None,
    attempt: int,
) -> RunState:
    base: dict[str, Any] = {
        "run_id": claim.run_id,
        "token": claim.lease_token,
        "now": now,
        "state_data": state_json,
    }
    if isinstance(outcome, Completed | Failed | Cancelled):
        reason = ""
        if isinstance(outcome, Completed):
            state, output, error = RunState.COMPLETED, outcome.output_json, None
        elif isinstance(outcome, Failed):
            state, output, error = RunState.FAILED, None, dump_error(outcome.error)
        else:
            state, output = RunState.CANCELLED, None
            current = await get_run(conn, claim.run_id)
            reason = outcome.reason or (current.control_reason if current else None) or "cancelled"
            error = json.dumps({"type": "Cancelled", "message": reason})
        params = {**base, "state": state.value, "output": output, "error": error}
        if await write(conn, Q.finish_run, params) != 1:
            return await _closed_before(conn, claim, now, attempt)
        if claim.run.parent_run_id:
            await conn.execute(Q.wake_parent, {"run_id": claim.run.parent_run_id, "now": now})
        if isinstance(outcome, Cancelled):
            await _cascade_cancel(conn, claim.run_id, reason, now)
        return state  # the row itself records the end (state, finished_at, error)
    waits: str | None = None
    wake_at: datetime | None = None
    error = None
    if isinstance(outcome, Paused):
        state = RunState.PAUSED
    elif isinstance(outcome, Blocked):
        state = RunState.BLOCKED
        error = json.dumps({"type": "NonDeterminismError", "message": outcome.reason})
    elif isinstance(outcome, Released):
        state, wake_at = RunState.PENDING, now
    else:
        assert isinstance(outcome, Suspended)
        try:
            await fence(conn, claim)  # a signal or a child's end now waits for this to commit
        except LeaseLost:
            return await _closed_before(conn, claim, now, attempt)
        state, wake_at, waits = await _suspended_state(conn, claim.run_id, outcome, now)
    params = {**base, "state": state.value, "error": error, "waits": waits, "wake_at": wake_at}
    if await write(conn, Q.park_run, params) != 1:
        return await _closed_before(conn, claim, now, attempt)
    detail = wait_details(outcome.waits) if isinstance(outcome, Suspended) else None
    kind = {RunState.PENDING: "released"}.get(state, state.value)
    await event(conn, claim.run_id, kind, detail, now)
    return state


async def _closed_before(conn: Conn, claim: Claim, now: datetime, attempt: int) -> RunState:
    """The fenced update matched nothing: the lease is gone, unless this is a retry and the
    earlier attempt closed the claim (same token, no holder, stamped with this ``now``)."""
    if attempt > 0:
        run = await get_run(conn, claim.run_id)
        if (
            run is not None
            and run.lease_token == claim.lease_token
            and run.lease_owner is None
            and run.updated_at == now
        ):
            return run.state
    raise LeaseLost(claim.run_id, claim.lease_token)


async def _suspended_state(
    conn: Conn, run_id: str, outcome: Suspended, now: datetime
) -> tuple[RunState, datetime | None, str | None]:
    """Where a suspending run goes (see :func:`~stepstone.store.rules.parked_state`), checking
    here whether a signal or a child's end it waits for arrived meanwhile."""
    waits = outcome.waits
    signals = [w.name for w in waits if w.kind == "signal" and w.name]
    children = [w.name for w in waits if w.kind == "child" and w.name]
    satisfied = False
    if signals:
        row = await one_row(conn, Q.signal_waiting, {"run_id": run_id, "names": signals})
        satisfied = bool(row and row["found"])
    if children and not satisfied:
        row = await one_row(conn, Q.child_finished, {"run_ids": children})
        satisfied = bool(row and row["found"])
    state, wake = parked_state(waits, satisfied, now)
    return state, wake, dump_waits(waits)


# --- operator control ----------------------------------------------------------------------


async def _cascade_cancel(conn: Conn, run_id: str, reason: str, now: datetime) -> None:
    for row in await all_rows(conn, Q.descendants, {"run_id": run_id}):
        child = await get_run(conn, row["run_id"])
        if child is None or child.state in TERMINAL_STATES:
            continue
        await control(
            conn, child, "cancel", f"parent {run_id} cancelled: {reason}", now, cascade=False
        )


async def control(
    conn: Conn,
    run: Run,
    action: Control | None,
    reason: str | None,
    now: datetime,
    *,
    cascade: bool = True,
) -> None:
    """Apply cancel / pause / unpause (None) to ``run`` as read in this transaction (the rules
    are :func:`~stepstone.store.rules.control_transition`). Every change is guarded by the state
    it was read in; if the run moved meanwhile, the transaction runs again (Transient)."""
    change = control_transition(run, action, reason)
    if change.request:
        await _set_control(conn, run, change.control, change.reason, now)
    elif change.state is not None:
        wake_at = now if change.wake_now else None
        error, finished = change.error_json, change.finished
        await _set_state(
            conn, run, change.state, now, wake_at=wake_at, error=error, finished=finished
        )
    if change.wake_parent and run.parent_run_id:
        await conn.execute(Q.wake_parent, {"run_id": run.parent_run_id, "now": now})
    if change.cascade and cascade:
        await _cascade_cancel(conn, run.run_id, change.reason or "cancelled", now)
    if change.event:
        await event(conn, run.run_id, change.event, change.event_data, now)


async def _set_control(
    conn: Conn, run: Run, action: Control | None, reason: str | None, now: datetime
) -> None:
    params = {"run_id": run.run_id, "control": action, "reason": reason, "now": now}
    if await write(conn, Q.set_control, params) != 1:
        raise Transient(f"run {run.run_id} stopped running while being controlled")


async def _set_state(
    conn: Conn,
    run: Run,
    state: RunState,
    now: datetime,
    *,
    wake_at: datetime | None = None,
    error: str | None = None,
    finished: bool = False,
) -> None:
    params = {
        "run_id": run.run_id,
        "expected": run.state.value,
        "state": state.value,
        "wake_at": wake_at,
        "error": error,
        "finished_at": now if finished else None,
        "now": now,
    }
    if await write(conn, Q.set_state, params) != 1:
        raise Transient(f"run {run.run_id} left state {run.state.value} while being changed")
