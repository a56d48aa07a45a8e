"""Claims: which runs a worker takes, within its routing and the queues' stored limits.

The candidates are found by ``find_claimable`` (PostgreSQL locks them ``FOR UPDATE SKIP
LOCKED``, so concurrent claimers take disjoint runs and never wait for each other; SQLite's
write lock serialises claims). When no candidate's queue has limits the claim is that statement
alone on PostgreSQL (see :attr:`Tx.claims_in_one_statement`). Otherwise, inside one transaction,
the limited queues are read (PostgreSQL locks their rows, so claims of a limited queue count its
running runs and recent starts one after the other), the admission decision is
:mod:`stepstone.store.admission`, and the admitted runs are taken by ``claim_run``, which checks
each again at its newest version.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from stepstone.core.model import Claim, WorkerInfo
from stepstone.store.admission import Candidate, Limits
from stepstone.store.records import dump_labels
from stepstone.store.scripts.runs import event, get_run
from stepstone.store.scripts.tx import Row, Tx

__all__ = ["claim_many", "claim_one", "has_claimable", "next_wake_at"]


async def claim_many(
    tx: Tx,
    worker: WorkerInfo,
    queues: tuple[str, ...],
    workflows: tuple[str, ...],
    limit: int,
    lease_s: float,
    now: datetime,
) -> list[Claim]:
    """Claim up to ``limit`` runs for ``worker`` within its routing and the queues' limits."""
    params: dict[str, Any] = {
        "now": now,
        "queues": list(queues),
        "due_queues": list(queues),
        "workflows": list(workflows),
        "worker_id": worker.worker_id,
        "pool": worker.pool,
        "labels": dump_labels(worker.labels) or "{}",
        "full_queues": [],
        "full_keys": [],
        "limit": limit,
        "retry": tx.attempt > 0,
        "take": True,
        "expires_at": now + timedelta(seconds=lease_s),
        "event": json.dumps({"worker": worker.worker_id}),
    }
    found = await tx.all("find_claimable", params)
    if not any(r["limited"] for r in found):
        if tx.claims_in_one_statement:  # find_claimable took them
            return [_claim_from(tx, r, worker.worker_id) for r in found if r["run_id"] is not None]
        return await _take(tx, [_candidate(r) for r in found], worker, lease_s, now)
    async with tx.atomic():
        limits = await _limits(tx, queues, now)
        closed = limits.closed_queues()
        full = limits.full_keys()
        params["due_queues"] = [q for q in queues if q not in closed]
        params["full_queues"] = [q for q, _ in full]
        params["full_keys"] = [k for _, k in full]
        params["limit"] = limit * 4  # overfetch: limits may turn down the first candidates
        params["take"] = False
        candidates = [_candidate(r) for r in await tx.all("find_claimable", params)]
        admitted = limits.admit(candidates, limit)
        if not admitted:
            return []
        claims = await _take(tx, admitted, worker, lease_s, now)
        started = {c.run_id for c in claims}
        for candidate in admitted:
            if (
                candidate.run_id in started
                and candidate.first_start
                and limits.counts_start(candidate.queue)
            ):
                start = {"queue": candidate.queue, "key": candidate.concurrency_key, "now": now}
                await tx.run("record_start", start)
        for queue, spec in limits.specs.items():
            if spec.rate_limit is not None and spec.rate_period_s is not None:
                before = now - timedelta(seconds=spec.rate_period_s)
                await tx.run("prune_starts", {"queue": queue, "before": before})
        return claims


async def claim_one(
    tx: Tx, run_id: str, worker: WorkerInfo, lease_s: float, now: datetime
) -> Claim | None:
    """Claim this run if it is claimable now (routing does not apply: it runs in-process)."""
    candidate = Candidate(run_id, "", "", None, False)
    if not tx.claims_in_one_statement:  # what the run was comes from reading it (see _take)
        run = await get_run(tx, run_id)
        if run is None:
            return None
        first = run.started_at is None
        candidate = Candidate(run_id, run.state.value, run.queue, None, first)
    claims = await _take(tx, [candidate], worker, lease_s, now)
    return claims[0] if claims else None


async def _take(
    tx: Tx, candidates: list[Candidate], worker: WorkerInfo, lease_s: float, now: datetime
) -> list[Claim]:
    """Take these runs if they are still claimable, in this order. PostgreSQL's ``claim_run``
    also reports each run's prior state and logs the claim (and, on a retry, hands over again
    the runs this worker took at this ``now``); SQLite's UPDATE ... RETURNING can only report
    the new row, so the state comes from the candidate and the claim is logged here."""
    params = {
        "run_ids": [c.run_id for c in candidates],
        "owner": worker.worker_id,
        "expires_at": now + timedelta(seconds=lease_s),
        "now": now,
        "retry": tx.attempt > 0,
        "event": json.dumps({"worker": worker.worker_id}),
    }
    rows = {r["run_id"]: r for r in await tx.all("claim_run", params)}
    claims = []
    for candidate in candidates:
        row = rows.get(candidate.run_id)
        if row is None:
            continue
        if tx.claims_in_one_statement:
            claims.append(_claim_from(tx, row, worker.worker_id))
            continue
        recovered = candidate.state == "running"
        kind = "recovered" if recovered else "claimed"
        await event(tx, candidate.run_id, kind, {"worker": worker.worker_id}, now)
        run = tx.columns.run(row)
        fresh = candidate.first_start and run.forked_from is None  # a fork has copied steps
        claims.append(
            Claim(run, worker.worker_id, row["lease_token"], recovered=recovered, fresh=fresh)
        )
    return claims


def _claim_from(tx: Tx, row: Row, worker_id: str) -> Claim:
    """A claim from a row that says the run's ``prior_state`` (a "lost" run is one this worker
    took in an attempt whose answer was lost). ``fresh``: never started before and not a fork,
    so it has no journal to load."""
    prior = row["prior_state"]
    recovered = prior == "running" or (prior == "lost" and row["recoveries"] > 0)
    run = tx.columns.run(row)
    fresh = bool(row["first_start"]) and run.forked_from is None
    return Claim(run, worker_id, row["lease_token"], recovered=recovered, fresh=fresh)


def _candidate(row: Row) -> Candidate:
    # a run this worker took in a lost attempt already holds its slot, like a recovery
    state = row["candidate_state"]
    return Candidate(
        row["candidate"],
        "running" if state == "lost" else state,
        row["candidate_queue"],
        row["candidate_key"],
        bool(row["candidate_first_start"]) and state != "lost",
    )


async def _limits(tx: Tx, queues: tuple[str, ...], now: datetime) -> Limits:
    """Read (PostgreSQL: lock until the claim commits) the limited queues among ``queues`` and
    count what they run and recently started."""
    specs = {
        r["name"]: tx.columns.queue(r) for r in await tx.all("get_queues", {"names": list(queues)})
    }
    running: Counter[tuple[str, str | None]] = Counter()
    starts: list[tuple[str, str | None, datetime]] = []
    if specs:
        limited = sorted(specs)
        for r in await tx.all("running_counts", {"queues": limited}):
            running[(r["queue"], r["concurrency_key"])] = r["n"]
        longest = max((s.rate_period_s or 0.0 for s in specs.values()), default=0.0)
        if longest:
            window = {"queues": limited, "since": now - timedelta(seconds=longest)}
            for r in await tx.all("recent_starts", window):
                started_at = tx.columns.time_in(r["started_at"])
                assert started_at is not None
                starts.append((r["queue"], r["key"], started_at))
    return Limits(specs, running, starts, now)


async def has_claimable(
    tx: Tx, queues: tuple[str, ...], workflows: tuple[str, ...], now: datetime
) -> bool:
    if not workflows or not queues:
        return False
    params = {"now": now, "queues": list(queues), "workflows": list(workflows)}
    row = await tx.one("has_claimable", params)
    return bool(row and row["found"])


async def next_wake_at(
    tx: Tx, queues: tuple[str, ...], workflows: tuple[str, ...], now: datetime
) -> datetime | None:
    if not workflows or not queues:
        return None
    params = {"now": now, "queues": list(queues), "workflows": list(workflows)}
    row = await tx.one("next_wake_at", params)
    return tx.columns.time_in(row["wake_at"]) if row is not None else None
