"""Workers, their leases and the queues and pools they serve: registering, heartbeats and lease
renewal, releasing a dead worker's runs, declared queue limits and pool strategies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from stepstone.core.model import LeaseStatus, PoolSpec, QueueSpec, QueueStats, WorkerInfo
from stepstone.store.scripts.tx import Tx

__all__ = [
    "declare_pools",
    "declare_queues",
    "list_pools",
    "list_queues",
    "list_workers",
    "queue_stats",
    "queue_throughput",
    "register_worker",
    "release_worker_runs",
    "renew_leases",
    "unregister_worker",
]


async def register_worker(tx: Tx, worker: WorkerInfo, now: datetime) -> None:
    await tx.run("upsert_worker", tx.columns.worker_params(worker, now))


async def unregister_worker(tx: Tx, worker_id: str) -> None:
    await tx.run("delete_worker", {"worker_id": worker_id})


async def list_workers(tx: Tx) -> list[WorkerInfo]:
    return [tx.columns.worker(r) for r in await tx.all("list_workers", {})]


async def renew_leases(
    tx: Tx, worker_id: str, run_ids: Sequence[str], lease_s: float, now: datetime, load: int
) -> list[LeaseStatus]:
    """Extend the leases ``worker_id`` holds on ``run_ids`` and record its heartbeat and load."""
    held: list[LeaseStatus] = []
    if run_ids:
        params = {
            "owner": worker_id,
            "run_ids": list(run_ids),
            "expires_at": now + timedelta(seconds=lease_s),
        }
        rows = await tx.all("renew_leases", params)
        held = [LeaseStatus(r["run_id"], r["lease_token"], r["control"]) for r in rows]
    await tx.run("touch_worker", {"worker_id": worker_id, "now": now, "load": load})
    return held


async def release_worker_runs(tx: Tx, worker_ids: Sequence[str], now: datetime) -> int:
    """Make dead workers' runs claimable now (pinned or assigned ones go back to their pool or
    queue) and forget the workers; how many leases were released."""
    released = 0
    for worker_id in worker_ids:
        params = {"worker_id": worker_id, "now": now}
        released += await tx.run("release_worker_runs", params)
        await tx.run("unassign_worker_runs", params)
        await tx.run("delete_worker", {"worker_id": worker_id})
    return released


async def declare_queues(tx: Tx, queues: Sequence[QueueSpec], now: datetime) -> None:
    for q in queues:
        params = {
            "name": q.name,
            "concurrency": q.concurrency,
            "per_key_concurrency": q.per_key_concurrency,
            "rate_limit": q.rate_limit,
            "rate_period_s": q.rate_period_s,
            "rate_limit_per_key": q.rate_limit_per_key,
            "now": now,
        }
        await tx.run("upsert_queue", params)


async def list_queues(tx: Tx) -> list[QueueSpec]:
    return [tx.columns.queue(r) for r in await tx.all("list_queues", {})]


async def declare_pools(tx: Tx, pools: Sequence[PoolSpec], now: datetime) -> None:
    for p in pools:
        params = {"name": p.name, "strategy": p.strategy, "threshold": p.threshold, "now": now}
        await tx.run("upsert_pool", params)


async def list_pools(tx: Tx) -> list[PoolSpec]:
    return [tx.columns.pool(r) for r in await tx.all("list_pools", {})]


async def queue_throughput(
    tx: Tx, now: datetime, window_s: float, buckets: int
) -> dict[str, dict[str, list[int]]]:
    """Per queue, runs finished (``completed`` and ``failed`` apart) in each of ``buckets``
    equal slices of the last ``window_s``, oldest first."""
    width = window_s / buckets
    since = now - timedelta(seconds=window_s)
    params = {"since": tx.columns.time_out(since), "width": width}
    out: dict[str, dict[str, list[int]]] = {}
    for r in await tx.all("queue_throughput", params):
        bucket = int(r["bucket"])
        if 0 <= bucket < buckets:  # a run finished after `now` (clock skew) is left out
            series = out.setdefault(
                r["queue"], {"completed": [0] * buckets, "failed": [0] * buckets}
            )
            series[r["state"]][bucket] += int(r["n"])
    return out


async def queue_stats(tx: Tx, now: datetime, window_s: float) -> list[QueueStats]:
    params = {"now": now, "since": now - timedelta(seconds=window_s)}
    return tx.columns.queue_stats(await tx.all("queue_stats", params), now, window_s)
