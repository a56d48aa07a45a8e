"""The SQLite store: the embedded default, implementing the Store port over one file.

See :mod:`stepstone.store.sqlite.connection` for how writes are committed (group commit, NORMAL
for checkpoints and FULL for acknowledged writes) and :mod:`stepstone.store.sqlite.txn` for what
runs inside each write transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

from stepstone.core.model import (
    TERMINAL_STATES,
    Claim,
    Control,
    EventRecord,
    LeaseStatus,
    NewRun,
    PoolSpec,
    QueueSpec,
    QueueStats,
    Run,
    RunExport,
    RunQuery,
    RunState,
    SignalRecord,
    StepRecord,
    WorkerInfo,
)
from stepstone.core.port import ClaimFilter, ClaimOutcome, LeaseLost, NewEvent
from stepstone.errors import InvalidArgument, RunNotFound, RunStateError
from stepstone.store.records import exports
from stepstone.store.rules import fork_of, signal_awaited, signal_taken
from stepstone.store.sqlite import rows, txn
from stepstone.store.sqlite.connection import Database
from stepstone.store.sqlite.sql import Q

__all__ = ["SQLiteStore"]

_PURGE_BATCH = 500


class SQLiteStore:
    """A stepstone store in one SQLite file.

    >>> store = SQLiteStore("/var/lib/app/stepstone.db")
    >>> await store.migrate()
    """

    def __init__(
        self,
        path: str | Path,
        *,
        durability: Literal["normal", "full"] = "normal",
        auto_migrate: bool = False,
        busy_timeout_s: float = 10.0,
        poll_s: float = 0.01,
    ) -> None:
        self._db = Database(
            path,
            durability=durability,
            auto_migrate=auto_migrate,
            busy_timeout_s=busy_timeout_s,
            poll_s=poll_s,
        )
        self.path = self._db.path
        self.url = self._db.url

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # --- lifecycle ---------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        return await self._db.migrate()

    async def schema_status(self) -> tuple[int, int]:
        return await self._db.schema_status()

    async def close(self) -> None:
        await self._db.close()

    async def change_token(self) -> object:
        return self._db.change_token()

    async def wait_for_change(self, timeout_s: float, *, since: object = None) -> None:
        await self._db.wait_for_change(timeout_s, since)

    # --- runs --------------------------------------------------------------------------------

    async def create_run(
        self, run: NewRun, *, now: datetime, claim_for: WorkerInfo | None = None, lease_s: float = 0
    ) -> tuple[Run, bool, Claim | None]:
        def op(conn: sqlite3.Connection) -> tuple[Run, bool, Claim | None]:
            created, run_id = txn.insert_run(conn, run, now, claim_for, lease_s)
            stored = rows.run_from_row(conn.execute(Q.get_run, {"run_id": run_id}).fetchone())
            claim = None
            if created and claim_for is not None:
                claim = Claim(stored, claim_for.worker_id, stored.lease_token, fresh=True)
            return stored, created, claim

        # A run started for a worker is acknowledged to the caller: FULL. A run created already
        # claimed by the caller's own process is a checkpoint like its steps.
        return await self._db.write(op, full=claim_for is None)

    async def get_run(self, run_id: str) -> Run | None:
        row = self._db.read_one(Q.get_run, {"run_id": run_id})
        return rows.run_from_row(row) if row is not None else None

    async def list_runs(self, query: RunQuery) -> list[Run]:
        if query.limit < 1:
            raise InvalidArgument(f"limit must be >= 1, got {query.limit}")
        params = {
            "states": json.dumps([s.value for s in query.states]) if query.states else None,
            "workflow": query.workflow,
            "queue": query.queue,
            "parent_run_id": query.parent_run_id,
            "before": query.before_run_id,
            "limit": query.limit,
        }
        return [rows.run_from_row(r) for r in self._db.read(Q.list_runs, params)]

    async def claim_runs(
        self, worker: WorkerInfo, flt: ClaimFilter, *, limit: int, lease_s: float, now: datetime
    ) -> list[Claim]:
        if limit <= 0 or not flt.workflows or not flt.queues:
            return []
        if not await self.has_claimable(flt, now=now):
            return []  # a read: several idle workers must not queue for the write lock

        def op(conn: sqlite3.Connection) -> list[Claim]:
            return txn.claim_many(conn, worker, flt.queues, flt.workflows, limit, lease_s, now)

        return await self._db.write(op)

    async def claim_run(
        self, run_id: str, worker: WorkerInfo, *, lease_s: float, now: datetime
    ) -> Claim | None:
        def op(conn: sqlite3.Connection) -> Claim | None:
            row = conn.execute(Q.get_run, {"run_id": run_id}).fetchone()
            if row is None:
                return None
            first = row["started_at"] is None
            return txn.claim_one(conn, run_id, row["state"], worker, lease_s, now, first)

        return await self._db.write(op)

    async def has_claimable(self, flt: ClaimFilter, *, now: datetime) -> bool:
        if not flt.workflows or not flt.queues:
            return False
        params = {
            "now": now.timestamp(),
            "queues": json.dumps(flt.queues),
            "workflows": json.dumps(flt.workflows),
        }
        row = self._db.read_one(Q.has_claimable, params)
        return bool(row and row[0])

    async def next_wake_at(self, flt: ClaimFilter, *, now: datetime) -> datetime | None:
        if not flt.workflows or not flt.queues:
            return None
        params = {
            "now": now.timestamp(),
            "queues": json.dumps(flt.queues),
            "workflows": json.dumps(flt.workflows),
        }
        row = self._db.read_one(Q.next_wake_at, params)
        return rows.dt(row[0]) if row is not None else None

    async def close_claim(
        self, claim: Claim, outcome: ClaimOutcome, *, now: datetime, state_json: str | None = None
    ) -> RunState:
        def op(conn: sqlite3.Connection) -> RunState:
            return txn.close_claim(conn, claim, outcome, now, state_json)

        return await self._db.write(op)

    async def request_control(
        self, run_id: str, action: Control | None, *, reason: str | None, now: datetime
    ) -> Run:
        def op(conn: sqlite3.Connection) -> Run:
            row = conn.execute(Q.get_run, {"run_id": run_id}).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            txn.apply_control(conn, rows.run_from_row(row), action, reason, now)
            return rows.run_from_row(conn.execute(Q.get_run, {"run_id": run_id}).fetchone())

        return await self._db.write(op, full=True)

    async def retry_run(self, run_id: str, *, now: datetime) -> Run:
        def op(conn: sqlite3.Connection) -> Run:
            row = conn.execute(Q.get_run, {"run_id": run_id}).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            run = rows.run_from_row(row)
            if run.state not in (RunState.FAILED, RunState.BLOCKED):
                raise RunStateError(run_id, run.state.value, "retry", "failed or blocked")
            seqs = list(run.error.step_seqs) if run.error else []
            conn.execute(Q.delete_failed_steps, {"run_id": run_id, "seqs": json.dumps(seqs)})
            conn.execute(
                Q.reset_for_retry,
                {"run_id": run_id, "expected": run.state.value, "now": now.timestamp()},
            )
            txn.event(conn, run_id, "retried", {"from": run.state.value}, now)
            return rows.run_from_row(conn.execute(Q.get_run, {"run_id": run_id}).fetchone())

        return await self._db.write(op, full=True)

    async def fork_run(
        self, run_id: str, *, from_seq: int, patch: dict[int, str], new_run_id: str, now: datetime
    ) -> Run:
        def op(conn: sqlite3.Connection) -> Run:
            row = conn.execute(Q.get_run, {"run_id": run_id}).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            source = rows.run_from_row(row)
            new = fork_of(source, from_seq=from_seq, patch=patch, new_run_id=new_run_id)
            created, _ = txn.insert_run(conn, new, now, None, 0, state_json=source.state_json)
            if not created:
                raise InvalidArgument(f"fork: a run with id {new_run_id!r} already exists")
            conn.execute(
                Q.copy_steps, {"run_id": run_id, "new_run_id": new_run_id, "from_seq": from_seq}
            )
            for seq, output in sorted(patch.items()):
                changed = conn.execute(
                    Q.patch_step, {"run_id": new_run_id, "seq": seq, "output": output}
                )
                if changed.rowcount != 1:
                    raise InvalidArgument(
                        f"fork: run {run_id} has no recorded step #{seq} to patch"
                    )
            txn.event(conn, new_run_id, "forked", {"from": run_id, "from_seq": from_seq}, now)
            return rows.run_from_row(conn.execute(Q.get_run, {"run_id": new_run_id}).fetchone())

        return await self._db.write(op, full=True)

    # --- leases ------------------------------------------------------------------------------

    async def renew_leases(
        self, worker_id: str, *, lease_s: float, now: datetime, load: int = 0
    ) -> list[LeaseStatus]:
        def op(conn: sqlite3.Connection) -> list[LeaseStatus]:
            found = conn.execute(
                Q.renew_leases, {"owner": worker_id, "expires_at": now.timestamp() + lease_s}
            ).fetchall()
            conn.execute(
                Q.touch_worker, {"worker_id": worker_id, "now": now.timestamp(), "load": load}
            )
            return [LeaseStatus(r["run_id"], r["lease_token"], r["control"]) for r in found]

        return await self._db.write(op)

    # --- steps -------------------------------------------------------------------------------

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        return [rows.step_from_row(r) for r in self._db.read(Q.load_steps, {"run_id": run_id})]

    async def record_step(
        self, claim: Claim, record: StepRecord, *, now: datetime, state_json: str | None = None
    ) -> Control | None:
        params = rows.step_params(claim.run_id, claim.lease_token, record)

        def op(conn: sqlite3.Connection) -> Control | None:
            row = conn.execute(Q.record_step, params).fetchone()
            if row is None:
                raise LeaseLost(claim.run_id, claim.lease_token)
            if state_json is not None:
                conn.execute(
                    Q.save_state,
                    {"run_id": claim.run_id, "token": claim.lease_token, "state_data": state_json},
                )
            control: Control | None = row[0]
            return control

        return await self._db.write(op)

    async def start_child(
        self, claim: Claim, record: StepRecord, child: NewRun, *, now: datetime
    ) -> Run:
        def op(conn: sqlite3.Connection) -> Run:
            txn.fence(conn, claim)
            txn.insert_run(conn, child, now, None, 0)
            conn.execute(Q.record_step, rows.step_params(claim.run_id, claim.lease_token, record))
            return rows.run_from_row(conn.execute(Q.get_run, {"run_id": child.run_id}).fetchone())

        return await self._db.write(op)

    # --- signals -----------------------------------------------------------------------------

    async def send_signal(
        self, run_id: str, name: str, payload_json: str, *, now: datetime
    ) -> SignalRecord:
        def op(conn: sqlite3.Connection) -> SignalRecord:
            row = conn.execute(Q.get_run, {"run_id": run_id}).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            if row["state"] in TERMINAL_STATES:
                raise RunStateError(
                    run_id, row["state"], f"send signal {name!r} to", "an unfinished run"
                )
            signal_id = conn.execute(
                Q.insert_signal,
                {"run_id": run_id, "name": name, "payload": payload_json, "now": now.timestamp()},
            ).fetchone()[0]
            conn.execute(
                Q.wake_for_signal, {"run_id": run_id, "name": name, "now": now.timestamp()}
            )
            return SignalRecord(signal_id, run_id, name, payload_json, now)

        return await self._db.write(op, full=True)

    async def take_signal(
        self, claim: Claim, seq: int, name: str, *, until: datetime | None, now: datetime
    ) -> str | None:
        def op(conn: sqlite3.Connection) -> str | None:
            txn.fence(conn, claim)
            found = conn.execute(Q.next_signal, {"run_id": claim.run_id, "name": name}).fetchone()
            if found is not None:
                conn.execute(
                    Q.consume_signal,
                    {"seq": seq, "now": now.timestamp(), "signal_id": found["signal_id"]},
                )
                payload: str = found["payload"]
                record = signal_taken(seq, name, payload, now)
                conn.execute(
                    Q.record_step, rows.step_params(claim.run_id, claim.lease_token, record)
                )
                return payload
            waiting = signal_awaited(seq, name, until, now)
            conn.execute(
                Q.record_step_if_absent, rows.step_params(claim.run_id, claim.lease_token, waiting)
            )
            return None

        return await self._db.write(op)

    async def list_signals(self, run_id: str) -> list[SignalRecord]:
        return [rows.signal_from_row(r) for r in self._db.read(Q.list_signals, {"run_id": run_id})]

    # --- events ------------------------------------------------------------------------------

    async def append_events(
        self, claim: Claim, events: Sequence[NewEvent], *, now: datetime
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            txn.fence(conn, claim)
            for e in events:
                conn.execute(
                    Q.insert_event,
                    {
                        "run_id": claim.run_id,
                        "idx": e.idx,
                        "kind": e.kind,
                        "data": e.data_json,
                        "source": "user",
                        "now": now.timestamp(),
                    },
                )

        await self._db.write(op)

    async def read_events(
        self, run_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        params = {"run_id": run_id, "after_id": after_id, "limit": limit}
        return [rows.event_from_row(r) for r in self._db.read(Q.read_events, params)]

    # --- workers -----------------------------------------------------------------------------

    async def register_worker(self, worker: WorkerInfo, *, now: datetime) -> None:
        params = rows.COLUMNS.worker_params(worker, now)
        await self._db.write(lambda conn: conn.execute(Q.upsert_worker, params))

    async def unregister_worker(self, worker_id: str) -> None:
        await self._db.write(lambda conn: conn.execute(Q.delete_worker, {"worker_id": worker_id}))

    async def list_workers(self) -> list[WorkerInfo]:
        return [rows.worker_from_row(r) for r in self._db.read(Q.list_workers)]

    async def release_worker_runs(self, worker_ids: Sequence[str], *, now: datetime) -> int:
        def op(conn: sqlite3.Connection) -> int:
            released = 0
            for worker_id in worker_ids:
                params = {"worker_id": worker_id, "now": now.timestamp()}
                released += conn.execute(Q.release_worker_runs, params).rowcount
                conn.execute(Q.unassign_worker_runs, params)
                conn.execute(Q.delete_worker, {"worker_id": worker_id})
            return released

        return await self._db.write(op)

    # --- queues and pools --------------------------------------------------------------------

    async def declare_queues(self, queues: Sequence[QueueSpec], *, now: datetime) -> None:
        def op(conn: sqlite3.Connection) -> None:
            for q in queues:
                conn.execute(
                    Q.upsert_queue,
                    {
                        "name": q.name,
                        "concurrency": q.concurrency,
                        "per_key_concurrency": q.per_key_concurrency,
                        "rate_limit": q.rate_limit,
                        "rate_period_s": q.rate_period_s,
                        "rate_limit_per_key": int(q.rate_limit_per_key),
                        "now": now.timestamp(),
                    },
                )

        await self._db.write(op, full=True)

    async def list_queues(self) -> list[QueueSpec]:
        return [rows.COLUMNS.queue(r) for r in self._db.read(Q.list_queues)]

    async def declare_pools(self, pools: Sequence[PoolSpec], *, now: datetime) -> None:
        def op(conn: sqlite3.Connection) -> None:
            for p in pools:
                conn.execute(
                    Q.upsert_pool,
                    {
                        "name": p.name,
                        "strategy": p.strategy,
                        "threshold": p.threshold,
                        "now": now.timestamp(),
                    },
                )

        await self._db.write(op, full=True)

    async def list_pools(self) -> list[PoolSpec]:
        return [rows.COLUMNS.pool(r) for r in self._db.read(Q.list_pools)]

    async def queue_stats(self, *, now: datetime, window_s: float = 60.0) -> list[QueueStats]:
        params = {"now": now.timestamp(), "since": now.timestamp() - window_s}
        return rows.COLUMNS.queue_stats(self._db.read(Q.queue_stats, params), now, window_s)

    # --- housekeeping ------------------------------------------------------------------------

    async def purge_runs(self, *, finished_before: datetime, states: Sequence[RunState]) -> int:
        kinds = [RunState(s).value for s in states]
        if not kinds or any(RunState(k) not in TERMINAL_STATES for k in kinds):
            raise InvalidArgument(f"purge: states must be finished states, got {kinds}")
        purged = 0
        while True:  # in batches, so other writers are never held up for long

            def op(conn: sqlite3.Connection) -> int:
                found = conn.execute(
                    Q.purgeable_runs,
                    {
                        "before": finished_before.timestamp(),
                        "states": json.dumps(kinds),
                        "limit": _PURGE_BATCH,
                    },
                ).fetchall()
                ids = json.dumps([r["run_id"] for r in found])
                for statement in (Q.delete_steps, Q.delete_signals, Q.delete_events, Q.delete_runs):
                    conn.execute(statement, {"run_ids": ids})
                return len(found)

            batch = await self._db.write(op)
            purged += batch
            if batch < _PURGE_BATCH:
                return purged

    async def export_runs(self, *, after_run_id: str | None, limit: int) -> list[RunExport]:
        runs = [
            rows.run_from_row(r)
            for r in self._db.read(Q.export_runs, {"after": after_run_id, "limit": limit})
        ]
        params = {"run_ids": json.dumps([r.run_id for r in runs])}
        return exports(
            runs,
            [(r["run_id"], rows.step_from_row(r)) for r in self._db.read(Q.export_steps, params)],
            [
                (r["run_id"], rows.signal_from_row(r))
                for r in self._db.read(Q.export_signals, params)
            ],
            [(r["run_id"], rows.event_from_row(r)) for r in self._db.read(Q.export_events, params)],
        )

    async def import_runs(self, runs: Sequence[RunExport]) -> int:
        def op(conn: sqlite3.Connection) -> int:
            added = 0
            for export in runs:
                if conn.execute(Q.import_run, rows.run_params(export.run)).rowcount != 1:
                    continue  # already there: copying again is a no-op
                added += 1
                run_id = export.run.run_id
                for step in export.steps:
                    conn.execute(Q.record_step_if_absent, rows.step_params(run_id, 0, step))
                for s in export.signals:
                    conn.execute(
                        Q.import_signal,
                        {
                            "run_id": run_id,
                            "name": s.name,
                            "payload": s.payload_json,
                            "created_at": s.created_at.timestamp(),
                            "consumed_seq": s.consumed_seq,
                            "consumed_at": rows.ts(s.consumed_at),
                        },
                    )
                for e in export.events:
                    conn.execute(
                        Q.import_event,
                        {
                            "run_id": run_id,
                            "idx": e.idx,
                            "kind": e.kind,
                            "data": e.data_json,
                            "source": e.source,
                            "created_at": e.created_at.timestamp(),
                        },
                    )
            return added

        return await self._db.write(op, full=True)
