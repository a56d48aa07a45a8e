"""Runs: creating one (dedup, pool assignment), reading and listing, retrying, forking; and the
system events and lease fence every other script uses."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from stepstone.core.model import (
    Claim,
    Control,
    NewRun,
    Run,
    RunQuery,
    RunState,
    StepStatus,
    WorkerInfo,
)
from stepstone.core.records import failure_event
from stepstone.errors import InvalidArgument, LeaseLost, RunNotFound, RunStateError, Transient
from stepstone.store.admission import PoolWorker, choose_pool_worker
from stepstone.store.rules import fork_of
from stepstone.store.scripts.tx import Tx

__all__ = [
    "create_run",
    "event",
    "fence",
    "fork_run",
    "get_run",
    "insert_run",
    "list_runs",
    "reread",
    "retry_run",
]


async def event(tx: Tx, run_id: str, kind: str, data: dict[str, Any] | None, now: datetime) -> None:
    """Log a system event of the run."""
    params = {
        "run_id": run_id,
        "idx": None,
        "kind": kind,
        "data": json.dumps(data) if data else None,
        "source": "system",
        "now": now,
    }
    await tx.run("insert_event", params)


async def fence(tx: Tx, claim: Claim) -> Control | None:
    """Raise LeaseLost unless this lease is current; PostgreSQL also holds the run FOR SHARE
    until the transaction ends. Returns the control requested for the run."""
    row = await tx.one("lease_check", {"run_id": claim.run_id, "token": claim.lease_token})
    if row is None:
        raise LeaseLost(claim.run_id, claim.lease_token)
    control: Control | None = row["control"]
    return control


async def get_run(tx: Tx, run_id: str) -> Run | None:
    row = await tx.one("get_run", {"run_id": run_id})
    return tx.columns.run(row) if row is not None else None


async def reread(tx: Tx, run_id: str) -> Run:
    """The run as this transaction left it."""
    run = await get_run(tx, run_id)
    if run is None:
        raise RunNotFound(run_id)
    return run


async def list_runs(tx: Tx, query: RunQuery) -> list[Run]:
    if query.limit < 1:
        raise InvalidArgument(f"limit must be >= 1, got {query.limit}")
    params = {
        "states": [s.value for s in query.states] if query.states else None,
        "workflow": query.workflow,
        "queue": query.queue,
        "parent_run_id": query.parent_run_id,
        "before": query.before_run_id,
        "labels": json.dumps(dict(query.labels)) if query.labels else None,
        "limit": query.limit,
    }
    only_parent = query.parent_run_id is not None and query == RunQuery(
        parent_run_id=query.parent_run_id, limit=query.limit
    )
    name = "list_children" if only_parent else "list_runs"
    return [tx.columns.run(r) for r in await tx.all(name, params)]


async def create_run(
    tx: Tx, run: NewRun, now: datetime, claim_for: WorkerInfo | None, lease_s: float
) -> tuple[Run, bool, Claim | None]:
    """Store ``run`` (claimed by ``claim_for`` if given): (the run stored, created?, claim)."""
    owner = claim_for.worker_id if claim_for else None
    stored, created = await insert_run(tx, run, now, owner, lease_s)
    claim = None
    if created and owner is not None:
        claim = Claim(stored, owner, stored.lease_token, fresh=True)
    return stored, created, claim


async def insert_run(
    tx: Tx,
    run: NewRun,
    now: datetime,
    owner: str | None,
    lease_s: float,
    *,
    state_json: str | None = None,
) -> tuple[Run, bool]:
    """Create ``run`` unless its id, or (while that run is unfinished) its dedup key, exists:
    (the run as stored, created?). On a retry, the row this call wrote in the earlier attempt
    (same id, workflow, input and creation time) counts as created by it."""
    dedup_key = run.routing.dedup_key
    if dedup_key is not None:
        holder = await tx.one("find_dedup", {"dedup_key": dedup_key})
        if holder is not None:
            found = tx.columns.run(holder)
            return found, _mine(tx, found, run, now, owner)
    assigned = None
    if run.routing.pool is not None and owner is None and run.routing.target_worker is None:
        assigned = await assign_in_pool(tx, run.routing.pool, now)
    params = tx.columns.new_run(
        run, now, owner=owner, lease_s=lease_s, state_json=state_json, assigned_worker=assigned
    )
    row = await tx.one("create_run", params)
    if row is not None:
        return tx.columns.run(row), True
    stored = await get_run(tx, run.run_id)
    if stored is None and dedup_key is not None:  # a concurrent create took the key first
        holder = await tx.one("find_dedup", {"dedup_key": dedup_key})
        stored = tx.columns.run(holder) if holder is not None else None
    if stored is None:  # the holder finished and was purged meanwhile: try again
        raise Transient(f"run {run.run_id} could not be created or found")
    return stored, _mine(tx, stored, run, now, owner)


def _mine(tx: Tx, stored: Run, run: NewRun, now: datetime, owner: str | None) -> bool:
    """Whether ``stored`` is this very write's, committed by an attempt whose answer was lost."""
    return (
        tx.attempt > 0
        and stored.run_id == run.run_id
        and stored.created_at == now
        and stored.workflow == run.workflow
        and stored.input_json == run.input_json
        and (owner is None or (stored.lease_owner == owner and stored.lease_token == 1))
    )


async def assign_in_pool(tx: Tx, pool: str, now: datetime) -> str | None:
    """The worker of ``pool`` a new run goes to, by the pool's stored strategy (None: any).
    PostgreSQL locks the pool's row until the run is stored, so assignments take turns."""
    row = await tx.one("get_pool", {"name": pool})
    if row is None:
        return None
    spec = tx.columns.pool(row)
    if spec.strategy == "direct":
        return None
    workers = [
        PoolWorker(r["worker_id"], r["concurrency"], r["load"])
        for r in await tx.all("pool_workers", {"pool": pool, "now": now})
    ]
    chosen = choose_pool_worker(spec, workers, row["last_worker"])
    if chosen is not None:
        await tx.run("set_pool_cursor", {"name": pool, "worker_id": chosen})
    return chosen


async def retry_run(tx: Tx, run_id: str, now: datetime) -> Run:
    """Make a failed or blocked run pending again, dropping its failed steps (their errors, and
    the run's, stay in its events)."""
    run = await get_run(tx, run_id)
    if run is None:
        raise RunNotFound(run_id)
    if tx.attempt > 0 and run.state is RunState.PENDING and run.updated_at == now:
        return run  # the earlier attempt committed
    if run.state not in (RunState.FAILED, RunState.BLOCKED):
        raise RunStateError(run_id, run.state.value, "retry", "failed or blocked")
    params = {"run_id": run_id, "expected": run.state.value, "now": now}
    if await tx.run("reset_for_retry", params) != 1:
        raise Transient(f"run {run_id} changed while being retried")
    seqs = list(run.error.step_seqs) if run.error else []
    await _keep_failures(tx, run, seqs, now)
    await tx.run("delete_failed_steps", {"run_id": run_id, "seqs": seqs})
    await event(tx, run_id, "retried", {"from": run.state.value}, now)
    return await reread(tx, run_id)


async def _keep_failures(tx: Tx, run: Run, seqs: list[int], now: datetime) -> None:
    """Log what a retry erases: the failed steps' last attempts (their rows are deleted) and
    the run's failure (its row is reset), each at the time it happened."""
    for step in await tx.all("load_steps", {"run_id": run.run_id}):
        record = tx.columns.step(step)
        dropped = record.status in (StepStatus.FAILED, StepStatus.STARTED)
        if record.seq in seqs and dropped and record.error is not None:
            data = failure_event(record.error, record)
            await event(tx, run.run_id, "attempt_failed", data, record.finished_at or now)
    if run.state is RunState.FAILED and run.error is not None:
        await event(tx, run.run_id, "failed", failure_event(run.error), run.finished_at or now)


async def fork_run(
    tx: Tx, run_id: str, from_seq: int, patch: dict[int, str], new_run_id: str, now: datetime
) -> Run:
    """A new run replaying ``run_id``'s steps before ``from_seq``, some outputs patched."""
    source = await get_run(tx, run_id)
    if source is None:
        raise RunNotFound(run_id)
    new = fork_of(source, from_seq=from_seq, patch=patch, new_run_id=new_run_id)
    if tx.attempt > 0:
        earlier = await get_run(tx, new_run_id)
        if earlier and earlier.forked_from == run_id and earlier.created_at == now:
            return earlier  # the earlier attempt committed the whole fork
    _, created = await insert_run(tx, new, now, None, 0, state_json=source.state_json)
    if not created:
        raise InvalidArgument(f"fork: a run with id {new_run_id!r} already exists")
    params = {"run_id": run_id, "new_run_id": new_run_id, "from_seq": from_seq}
    await tx.run("copy_steps", params)
    for seq, output in sorted(patch.items()):
        changed = await tx.run("patch_step", {"run_id": new_run_id, "seq": seq, "output": output})
        if changed != 1:
            raise InvalidArgument(f"fork: run {run_id} has no recorded step #{seq} to patch")
    await event(tx, new_run_id, "forked", {"from": run_id, "from_seq": from_seq}, now)
    return await reread(tx, new_run_id)
