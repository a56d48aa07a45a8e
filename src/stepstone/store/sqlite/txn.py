"""What runs inside one SQLite write transaction: creating, claiming, parking and finishing runs,
operator control and cancel cascades. Each function takes the open connection and does its part
of the transaction the store opened; raising undoes that part (the store's savepoint)."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import datetime
from typing import Any

from stepstone.core.clock import from_timestamp
from stepstone.core.model import (
    Claim,
    Control,
    NewRun,
    PoolSpec,
    Run,
    RunState,
    WorkerInfo,
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
from stepstone.errors import RunStateError
from stepstone.store.admission import Candidate, Limits, PoolWorker, choose_pool_worker
from stepstone.store.rules import control_transition, parked_state, wait_details
from stepstone.store.serde import dump_error, dump_waits
from stepstone.store.sqlite.rows import COLUMNS, dump_labels, run_from_row, ts
from stepstone.store.sqlite.sql import Q

__all__ = [
    "apply_control",
    "assign_in_pool",
    "cascade_cancel",
    "claim_many",
    "claim_one",
    "close_claim",
    "event",
    "fence",
    "insert_run",
]


def event(
    conn: sqlite3.Connection, run_id: str, kind: str, data: dict[str, Any] | None, now: datetime
) -> None:
    conn.execute(
        Q.insert_event,
        {
            "run_id": run_id,
            "idx": None,
            "kind": kind,
            "data": json.dumps(data) if data else None,
            "source": "system",
            "now": now.timestamp(),
        },
    )


def fence(conn: sqlite3.Connection, claim: Claim) -> None:
    row = conn.execute(
        Q.lease_check, {"run_id": claim.run_id, "token": claim.lease_token}
    ).fetchone()
    if row is None:
        raise LeaseLost(claim.run_id, claim.lease_token)


def insert_run(
    conn: sqlite3.Connection,
    run: NewRun,
    now: datetime,
    claim_for: WorkerInfo | None,
    lease_s: float,
    *,
    state_json: str | None = None,
) -> tuple[bool, str]:
    """Insert ``run``; returns (created?, the id of the run stored: the new one, the existing
    one with this id, or the unfinished run that already holds its dedup key)."""
    if run.routing.dedup_key is not None:
        holder = conn.execute(Q.find_dedup, {"dedup_key": run.routing.dedup_key}).fetchone()
        if holder is not None:
            return False, str(holder["run_id"])
    assigned = None
    if run.routing.pool is not None and claim_for is None and run.routing.target_worker is None:
        assigned = assign_in_pool(conn, run.routing.pool, now)
    params = COLUMNS.new_run(
        run,
        now,
        owner=claim_for.worker_id if claim_for else None,
        lease_s=lease_s,
        state_json=state_json,
        assigned_worker=assigned,
    )
    created: bool = conn.execute(Q.create_run, params).rowcount == 1
    return created, run.run_id


def assign_in_pool(conn: sqlite3.Connection, pool: str, now: datetime) -> str | None:
    """The worker of ``pool`` a new run goes to, by the pool's stored strategy (None: any)."""
    row = conn.execute(Q.get_pool, {"name": pool}).fetchone()
    if row is None:
        return None
    spec = PoolSpec(row["name"], row["strategy"], row["threshold"])
    if spec.strategy == "direct":
        return None
    workers = [
        PoolWorker(r["worker_id"], r["concurrency"], r["load"])
        for r in conn.execute(Q.pool_workers, {"pool": pool, "now": now.timestamp()})
    ]
    chosen = choose_pool_worker(spec, workers, row["last_worker"])
    if chosen is not None:
        conn.execute(Q.set_pool_cursor, {"name": pool, "worker_id": chosen})
    return chosen


def claim_many(
    conn: sqlite3.Connection,
    worker: WorkerInfo,
    queues: tuple[str, ...],
    workflows: tuple[str, ...],
    limit: int,
    lease_s: float,
    now: datetime,
) -> list[Claim]:
    """Claim up to ``limit`` runs for ``worker`` within its routing and the queues' limits."""
    stamp = now.timestamp()
    specs = {
        r["name"]: COLUMNS.queue(r)
        for r in conn.execute(Q.get_queues, {"names": json.dumps(queues)})
    }
    running: Counter[tuple[str, str | None]] = Counter()
    starts: list[tuple[str, str | None, datetime]] = []
    if specs:
        limited = json.dumps(sorted(specs))
        for r in conn.execute(Q.running_counts, {"queues": limited}):
            running[(r["queue"], r["concurrency_key"])] = r["n"]
        longest = max((s.rate_period_s or 0.0 for s in specs.values()), default=0.0)
        if longest:
            starts = [
                (r["queue"], r["key"], from_timestamp(r["started_at"]))
                for r in conn.execute(
                    Q.recent_starts, {"queues": limited, "since": stamp - longest}
                )
            ]
    limits = Limits(specs, running, starts, now)
    closed = limits.closed_queues()
    params = {
        "now": stamp,
        "queues": json.dumps(queues),
        "due_queues": json.dumps([q for q in queues if q not in closed]),
        "workflows": json.dumps(workflows),
        "worker_id": worker.worker_id,
        "pool": worker.pool,
        "labels": dump_labels(worker.labels) or "{}",
        "full_keys": json.dumps([list(k) for k in limits.full_keys()]),
        # overfetch when limits may turn down some of the first candidates
        "limit": limit * 4 if specs else limit,
    }
    candidates = [
        Candidate(r["run_id"], r["state"], r["queue"], r["concurrency_key"], bool(r["first_start"]))
        for r in conn.execute(Q.find_claimable, params)
    ]
    claims = []
    for candidate in limits.admit(candidates, limit):
        got = claim_one(
            conn, candidate.run_id, candidate.state, worker, lease_s, now, candidate.first_start
        )
        if got is None:
            continue
        claims.append(got)
        if candidate.first_start and limits.counts_start(candidate.queue):
            conn.execute(
                Q.record_start,
                {"queue": candidate.queue, "key": candidate.concurrency_key, "now": stamp},
            )
    for queue, spec in specs.items():
        if spec.rate_limit is not None and spec.rate_period_s is not None:
            conn.execute(Q.prune_starts, {"queue": queue, "before": stamp - spec.rate_period_s})
    return claims


def claim_one(
    conn: sqlite3.Connection,
    run_id: str,
    state: str,
    worker: WorkerInfo,
    lease_s: float,
    now: datetime,
    first_start: bool,
) -> Claim | None:
    """Claim one run found claimable in this transaction (``state`` as found: a ``running`` run
    is a recovery). ``first_start``: it was never started, so a fresh run has no journal yet."""
    row = conn.execute(
        Q.claim_run,
        {
            "run_id": run_id,
            "owner": worker.worker_id,
            "expires_at": now.timestamp() + lease_s,
            "now": now.timestamp(),
        },
    ).fetchone()
    if row is None:
        return None
    recovered = state == "running"
    event(conn, run_id, "recovered" if recovered else "claimed", {"worker": worker.worker_id}, now)
    run = run_from_row(row)
    fresh = first_start and run.forked_from is None  # a fork starts with copied steps
    return Claim(run, worker.worker_id, row["lease_token"], recovered=recovered, fresh=fresh)


def close_claim(
    conn: sqlite3.Connection,
    claim: Claim,
    outcome: ClaimOutcome,
    now: datetime,
    state_json: str | None,
) -> RunState:
    base = {
        "run_id": claim.run_id,
        "token": claim.lease_token,
        "now": now.timestamp(),
        "state_data": state_json,
    }
    if isinstance(outcome, Completed | Failed | Cancelled):
        if isinstance(outcome, Completed):
            state, output, error = RunState.COMPLETED, outcome.output_json, None
        elif isinstance(outcome, Failed):
            state, output, error = RunState.FAILED, None, dump_error(outcome.error)
        else:
            state, output = RunState.CANCELLED, None
            reason = outcome.reason or control_reason(conn, claim.run_id) or "cancelled"
            error = json.dumps({"type": "Cancelled", "message": reason})
        cur = conn.execute(
            Q.finish_run, {**base, "state": state.value, "output": output, "error": error}
        )
        if cur.rowcount != 1:
            raise LeaseLost(claim.run_id, claim.lease_token)
        if claim.run.parent_run_id:
            conn.execute(Q.wake_parent, {"run_id": claim.run.parent_run_id, "now": now.timestamp()})
        if isinstance(outcome, Cancelled):
            cascade_cancel(conn, claim.run_id, reason, now)
        return state  # the row itself records the end (state, finished_at, error)
    waits, wake_at, error = None, None, None
    if isinstance(outcome, Paused):
        state = RunState.PAUSED
    elif isinstance(outcome, Blocked):
        state = RunState.BLOCKED
        error = json.dumps({"type": "NonDeterminismError", "message": outcome.reason})
    elif isinstance(outcome, Released):
        state, wake_at = RunState.PENDING, now.timestamp()
    else:
        assert isinstance(outcome, Suspended)
        state, wake_at, waits = suspended_state(conn, claim.run_id, outcome, now)
    cur = conn.execute(
        Q.park_run,
        {**base, "state": state.value, "error": error, "waits": waits, "wake_at": wake_at},
    )
    if cur.rowcount != 1:
        raise LeaseLost(claim.run_id, claim.lease_token)
    detail_waits = wait_details(outcome.waits) if isinstance(outcome, Suspended) else None
    kind = {RunState.PENDING: "released"}.get(state, state.value)
    event(conn, claim.run_id, kind, detail_waits, now)
    return state


def control_reason(conn: sqlite3.Connection, run_id: str) -> str | None:
    row = conn.execute(Q.get_run, {"run_id": run_id}).fetchone()
    return row["control_reason"] if row is not None else None


def suspended_state(
    conn: sqlite3.Connection, run_id: str, outcome: Suspended, now: datetime
) -> tuple[RunState, float | None, str | None]:
    """Where a suspending run goes (see :func:`parked_state`), checking here whether a signal or
    a child's end it waits for arrived meanwhile."""
    waits = outcome.waits
    signals = [w.name for w in waits if w.kind == "signal" and w.name]
    children = [w.name for w in waits if w.kind == "child" and w.name]
    satisfied = bool(
        signals
        and conn.execute(
            Q.signal_waiting, {"run_id": run_id, "names": json.dumps(signals)}
        ).fetchone()[0]
    ) or bool(
        children and conn.execute(Q.child_finished, {"run_ids": json.dumps(children)}).fetchone()[0]
    )
    state, wake = parked_state(waits, satisfied, now)
    return state, ts(wake), dump_waits(waits)


def cascade_cancel(conn: sqlite3.Connection, run_id: str, reason: str, now: datetime) -> None:
    for row in conn.execute(Q.descendants, {"run_id": run_id}).fetchall():
        apply_control(
            conn,
            run_from_row(conn.execute(Q.get_run, {"run_id": row["run_id"]}).fetchone()),
            "cancel",
            f"parent {run_id} cancelled: {reason}",
            now,
            cascade=False,
        )


def apply_control(
    conn: sqlite3.Connection,
    run: Run,
    action: Control | None,
    reason: str | None,
    now: datetime,
    *,
    cascade: bool = True,
) -> None:
    """Apply cancel / pause / unpause (None) to a run read in this transaction."""
    change = control_transition(run, action, reason)
    stamp = now.timestamp()
    if change.request:
        params = {"run_id": run.run_id, "control": change.control, "reason": change.reason}
        conn.execute(Q.set_control, {**params, "now": stamp})
    elif change.state is not None:
        wake_at = stamp if change.wake_now else None
        error, finished = change.error_json, change.finished
        set_state(conn, run, change.state, now, wake_at=wake_at, error=error, finished=finished)
    if change.wake_parent and run.parent_run_id:
        conn.execute(Q.wake_parent, {"run_id": run.parent_run_id, "now": stamp})
    if change.cascade and cascade:
        cascade_cancel(conn, run.run_id, change.reason or "cancelled", now)
    if change.event:
        event(conn, run.run_id, change.event, change.event_data, now)


def set_state(
    conn: sqlite3.Connection,
    run: Run,
    state: RunState,
    now: datetime,
    *,
    wake_at: float | None = None,
    error: str | None = None,
    finished: bool = False,
) -> None:
    cur = conn.execute(
        Q.set_state,
        {
            "run_id": run.run_id,
            "expected": run.state.value,
            "state": state.value,
            "wake_at": wake_at,
            "error": error,
            "finished_at": now.timestamp() if finished else None,
            "now": now.timestamp(),
        },
    )
    if cur.rowcount != 1:  # cannot happen inside one transaction; kept as a guard
        raise RunStateError(run.run_id, run.state.value, f"move to {state.value}")
