"""Claims: which runs a worker takes, within its routing and the queues' stored limits.

A claim is one transaction: the candidates are locked ``FOR UPDATE SKIP LOCKED`` (concurrent
claimers take disjoint runs and never wait for each other), then taken by one statement that
checks each again at its newest version. When a candidate's queue has limits, the limited queues'
rows are locked first, so claims of a limited queue count its running runs and recent starts one
after the other and never overshoot together; the decision itself is ``stepstone.store.admission``.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from stepstone.core.model import Claim, WorkerInfo
from stepstone.store.admission import Candidate, Limits
from stepstone.store.postgres.link import Conn
from stepstone.store.postgres.rows import COLUMNS, dump_labels, later, run_from
from stepstone.store.postgres.transactions import Q, all_rows

__all__ = ["claim_from", "claim_many", "claim_one"]


def claim_from(row: dict[str, Any], worker_id: str) -> Claim:
    """A claim from a ``claim_run`` row. ``fresh``: never started before and not a fork, so it
    has no journal to load."""
    prior = row["prior_state"]
    recovered = prior == "running" or (prior == "lost" and row["recoveries"] > 0)
    run = run_from(row)
    fresh = bool(row["first_start"]) and run.forked_from is None
    return Claim(run, worker_id, row["lease_token"], recovered=recovered, fresh=fresh)


async def _take(
    conn: Conn,
    run_ids: list[str],
    worker: WorkerInfo,
    lease_s: float,
    now: datetime,
    attempt: int,
) -> dict[str, Claim]:
    params = {
        "run_ids": run_ids,
        "owner": worker.worker_id,
        "expires_at": later(now, lease_s),
        "now": now,
        "retry": attempt > 0,
        "event": json.dumps({"worker": worker.worker_id}),
    }
    rows = await all_rows(conn, Q.claim_run, params)
    return {row["run_id"]: claim_from(row, worker.worker_id) for row in rows}


async def claim_one(
    conn: Conn, run_id: str, worker: WorkerInfo, lease_s: float, now: datetime, attempt: int
) -> Claim | None:
    """Claim this run if it is claimable now (routing does not apply: it runs in-process)."""
    return (await _take(conn, [run_id], worker, lease_s, now, attempt)).get(run_id)


async def claim_many(
    conn: Conn,
    worker: WorkerInfo,
    queues: tuple[str, ...],
    workflows: tuple[str, ...],
    limit: int,
    lease_s: float,
    now: datetime,
    attempt: int,
) -> list[Claim]:
    """Claim up to ``limit`` runs for ``worker`` within its routing and the queues' limits.

    Runs alone in autocommit: when no candidate's queue is limited, the one statement that finds
    the candidates takes them too. Otherwise a transaction locks the limited queues, counts, and
    takes what the limits admit.
    """
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
        "retry": attempt > 0,
        "take": True,
        "expires_at": later(now, lease_s),
        "event": json.dumps({"worker": worker.worker_id}),
    }
    found = await all_rows(conn, Q.find_claimable, params)
    if not any(r["limited"] for r in found):
        return [claim_from(r, worker.worker_id) for r in found if r["run_id"] is not None]
    async with conn.transaction():
        limits = await _limits(conn, queues, now)
        closed = limits.closed_queues()
        full = limits.full_keys()
        params["due_queues"] = [q for q in queues if q not in closed]
        params["full_queues"] = [q for q, _ in full]
        params["full_keys"] = [k for _, k in full]
        params["limit"] = limit * 4  # overfetch: limits may turn down the first candidates
        params["take"] = False
        candidates = [
            # a run this worker took in a lost attempt already holds its slot, like a recovery
            Candidate(
                r["candidate"],
                "running" if r["candidate_state"] == "lost" else r["candidate_state"],
                r["candidate_queue"],
                r["candidate_key"],
                r["candidate_first_start"] and r["candidate_state"] != "lost",
            )
            for r in await all_rows(conn, Q.find_claimable, params)
        ]
        admitted = limits.admit(candidates, limit)
        if not admitted:
            return []
        taken = await _take(conn, [c.run_id for c in admitted], worker, lease_s, now, attempt)
        claims = []
        for candidate in admitted:
            claim = taken.get(candidate.run_id)
            if claim is None:
                continue
            claims.append(claim)
            if candidate.first_start and limits.counts_start(candidate.queue):
                start = {"queue": candidate.queue, "key": candidate.concurrency_key, "now": now}
                await conn.execute(Q.record_start, start)
        for queue, spec in limits.specs.items():
            if spec.rate_limit is not None and spec.rate_period_s is not None:
                before = now - timedelta(seconds=spec.rate_period_s)
                await conn.execute(Q.prune_starts, {"queue": queue, "before": before})
        return claims


async def _limits(conn: Conn, queues: tuple[str, ...], now: datetime) -> Limits:
    """Lock the limited queues among ``queues`` (until the claim commits) and count what they
    run and recently started."""
    specs = {
        r["name"]: COLUMNS.queue(r)
        for r in await all_rows(conn, Q.get_queues, {"names": list(queues)})
    }
    running: Counter[tuple[str, str | None]] = Counter()
    starts: list[tuple[str, str | None, datetime]] = []
    if specs:
        limited = sorted(specs)
        for r in await all_rows(conn, Q.running_counts, {"queues": limited}):
            running[(r["queue"], r["concurrency_key"])] = r["n"]
        longest = max((s.rate_period_s or 0.0 for s in specs.values()), default=0.0)
        if longest:
            window = {"queues": limited, "since": now - timedelta(seconds=longest)}
            starts = [
                (r["queue"], r["key"], r["started_at"])
                for r in await all_rows(conn, Q.recent_starts, window)
            ]
    return Limits(specs, running, starts, now)
