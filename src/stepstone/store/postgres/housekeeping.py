"""Workers, queues and pools, statistics, purging and copying runs: the store's housekeeping."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from stepstone.core.model import (
    TERMINAL_STATES,
    PoolSpec,
    QueueSpec,
    QueueStats,
    RunExport,
    RunState,
    WorkerInfo,
)
from stepstone.errors import InvalidArgument
from stepstone.store.postgres import transactions as tx
from stepstone.store.postgres.base import StoreBase
from stepstone.store.postgres.link import Conn
from stepstone.store.postgres.rows import (
    COLUMNS,
    event_from,
    run_columns,
    run_from,
    signal_from,
    step_from,
    step_params,
    worker_from,
    worker_params,
)
from stepstone.store.records import exports

__all__ = ["Housekeeping"]

Q = tx.Q
_PURGE_BATCH = 500


class Housekeeping(StoreBase):
    """The port's workers, queues and pools, and housekeeping sections."""

    # --- workers -------------------------------------------------------------------------------

    async def register_worker(self, worker: WorkerInfo, *, now: datetime) -> None:
        params = worker_params(worker, now)

        async def body(conn: Conn, attempt: int) -> None:
            await conn.execute(Q.upsert_worker, params)

        await self._write(body, tx=False, safe=False)

    async def unregister_worker(self, worker_id: str) -> None:
        async def body(conn: Conn, attempt: int) -> None:
            await conn.execute(Q.delete_worker, {"worker_id": worker_id})

        await self._write(body, tx=False, safe=False)

    async def list_workers(self) -> list[WorkerInfo]:
        return [worker_from(r) for r in await self._rows(Q.list_workers, {})]

    async def release_worker_runs(self, worker_ids: Sequence[str], *, now: datetime) -> int:
        async def body(conn: Conn, attempt: int) -> int:
            released = 0
            for worker_id in worker_ids:
                params = {"worker_id": worker_id, "now": now}
                released += await tx.write(conn, Q.release_worker_runs, params)
                await conn.execute(Q.unassign_worker_runs, params)
                await conn.execute(Q.delete_worker, {"worker_id": worker_id})
            return released

        return await self._write(body, tx=False, safe=False, notify=True)

    # --- queues and pools ----------------------------------------------------------------------

    async def declare_queues(self, queues: Sequence[QueueSpec], *, now: datetime) -> None:
        async def body(conn: Conn, attempt: int) -> None:
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
                await conn.execute(Q.upsert_queue, params)

        await self._write(body, safe=False)

    async def list_queues(self) -> list[QueueSpec]:
        return [COLUMNS.queue(r) for r in await self._rows(Q.list_queues, {})]

    async def declare_pools(self, pools: Sequence[PoolSpec], *, now: datetime) -> None:
        async def body(conn: Conn, attempt: int) -> None:
            for p in pools:
                params = {"name": p.name, "strategy": p.strategy, "threshold": p.threshold}
                await conn.execute(Q.upsert_pool, {**params, "now": now})

        await self._write(body, safe=False)

    async def list_pools(self) -> list[PoolSpec]:
        return [COLUMNS.pool(r) for r in await self._rows(Q.list_pools, {})]

    async def queue_stats(self, *, now: datetime, window_s: float = 60.0) -> list[QueueStats]:
        params = {"now": now, "since": now - timedelta(seconds=window_s)}
        return COLUMNS.queue_stats(await self._rows(Q.queue_stats, params), now, window_s)

    # --- housekeeping --------------------------------------------------------------------------

    async def purge_runs(self, *, finished_before: datetime, states: Sequence[RunState]) -> int:
        kinds = [RunState(s).value for s in states]
        if not kinds or any(RunState(k) not in TERMINAL_STATES for k in kinds):
            raise InvalidArgument(f"purge: states must be finished states, got {kinds}")

        async def body(conn: Conn, attempt: int) -> int:
            params = {"before": finished_before, "states": kinds, "limit": _PURGE_BATCH}
            ids = [r["run_id"] for r in await tx.all_rows(conn, Q.purgeable_runs, params)]
            for statement in (Q.delete_steps, Q.delete_signals, Q.delete_events, Q.delete_runs):
                await conn.execute(statement, {"run_ids": ids})
            return len(ids)

        purged = 0
        while True:  # in batches, so other writers are never held up for long
            batch = await self._write(body, safe=False)
            purged += batch
            if batch < _PURGE_BATCH:
                return purged

    async def export_runs(self, *, after_run_id: str | None, limit: int) -> list[RunExport]:
        params = {"after": after_run_id, "limit": limit}
        runs = [run_from(r) for r in await self._rows(Q.export_runs, params)]
        ids = {"run_ids": [r.run_id for r in runs]}
        return exports(
            runs,
            [(r["run_id"], step_from(r)) for r in await self._rows(Q.export_steps, ids)],
            [(r["run_id"], signal_from(r)) for r in await self._rows(Q.export_signals, ids)],
            [(r["run_id"], event_from(r)) for r in await self._rows(Q.export_events, ids)],
        )

    async def import_runs(self, runs: Sequence[RunExport]) -> int:
        async def body(conn: Conn, attempt: int) -> int:
            added = 0
            for export in runs:
                if await tx.write(conn, Q.import_run, run_columns(export.run)) != 1:
                    continue  # already there (or copied by an earlier attempt): a no-op
                added += 1
                run_id = export.run.run_id
                for step in export.steps:
                    await conn.execute(Q.record_step_if_absent, step_params(run_id, 0, step))
                for s in export.signals:
                    params = {
                        "run_id": run_id,
                        "name": s.name,
                        "payload": s.payload_json,
                        "created_at": s.created_at,
                        "consumed_seq": s.consumed_seq,
                        "consumed_at": s.consumed_at,
                    }
                    await conn.execute(Q.import_signal, params)
                for e in export.events:
                    params = {
                        "run_id": run_id,
                        "idx": e.idx,
                        "kind": e.kind,
                        "data": e.data_json,
                        "source": e.source,
                        "created_at": e.created_at,
                    }
                    await conn.execute(Q.import_event, params)
            return added

        return await self._write(body, safe=False, notify=True)
