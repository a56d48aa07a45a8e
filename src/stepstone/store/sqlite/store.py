"""The SQLite store: the embedded default, implementing the Store port over one file.

Every operation is a store script (:mod:`stepstone.store.scripts`), the same as PostgreSQL's;
this class only says how each one runs here: in a write transaction committed with ``FULL``
(acknowledged to a caller) or ``NORMAL`` (a checkpoint), or as reads. See
:mod:`stepstone.store.sqlite.database` for how writes are committed (group commit) and
:mod:`stepstone.store.sqlite.tx` for how a script runs inside one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from stepstone.core.ledger import (
    Budget,
    BudgetScope,
    BudgetSpec,
    BudgetUse,
    CostLine,
    CostQuery,
    LedgerEntry,
)
from stepstone.core.memory import MemoryDoc, MemoryWrite
from stepstone.core.model import (
    Claim,
    Control,
    EventRecord,
    InboxItem,
    Launch,
    LeaseStatus,
    NamedLease,
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
from stepstone.core.port import ClaimFilter, ClaimOutcome, NewEvent, PayloadCheck
from stepstone.core.schedules import FiredTick, FireTemplate, ScheduleInfo, ScheduleSpec
from stepstone.store import scripts
from stepstone.store.scripts.tx import Tx
from stepstone.store.sqlite.database import Database
from stepstone.store.sqlite.tx import SQLiteReads, SQLiteTx, drive

__all__ = ["SQLiteStore"]

T = TypeVar("T")
Script = Callable[..., Coroutine[Any, Any, T]]


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
        self._reads = SQLiteReads(self._db.read)
        self.path = self._db.path
        self.url = self._db.url

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    async def _write(self, script: Script[T], *args: Any, full: bool = False) -> T:
        """Run ``script(tx, *args)`` in a write transaction; ``full``: the caller is told the
        write happened, so it commits with synchronous=FULL (else NORMAL: a checkpoint)."""

        def op(conn: sqlite3.Connection) -> T:
            tx: Tx = SQLiteTx(conn)
            return drive(script(tx, *args))

        return await self._db.write(op, full=full)

    def _read(self, script: Script[T], *args: Any) -> T:
        """Run the read-only ``script(tx, *args)`` now, outside any write transaction."""
        reads: Tx = self._reads
        return drive(script(reads, *args))

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
        # A run started for a worker is acknowledged to the caller: FULL. A run created already
        # claimed by the caller's own process is a checkpoint like its steps.
        full = claim_for is None
        return await self._write(scripts.runs.create_run, run, now, claim_for, lease_s, full=full)

    async def get_run(self, run_id: str) -> Run | None:
        return self._read(scripts.runs.get_run, run_id)

    async def list_runs(self, query: RunQuery) -> list[Run]:
        return self._read(scripts.runs.list_runs, query)

    async def claim_runs(
        self, worker: WorkerInfo, flt: ClaimFilter, *, limit: int, lease_s: float, now: datetime
    ) -> list[Claim]:
        if limit <= 0 or not flt.workflows or not flt.queues:
            return []
        if not await self.has_claimable(flt, now=now):
            return []  # a read: several idle workers must not queue for the write lock
        q, w = flt.queues, flt.workflows
        return await self._write(scripts.claims.claim_many, worker, q, w, limit, lease_s, now)

    async def claim_run(
        self, run_id: str, worker: WorkerInfo, *, lease_s: float, now: datetime
    ) -> Claim | None:
        return await self._write(scripts.claims.claim_one, run_id, worker, lease_s, now)

    async def has_claimable(self, flt: ClaimFilter, *, now: datetime) -> bool:
        return self._read(scripts.claims.has_claimable, flt.queues, flt.workflows, now)

    async def next_wake_at(self, flt: ClaimFilter, *, now: datetime) -> datetime | None:
        return self._read(scripts.claims.next_wake_at, flt.queues, flt.workflows, now)

    async def close_claim(
        self, claim: Claim, outcome: ClaimOutcome, *, now: datetime, state_json: str | None = None
    ) -> RunState:
        return await self._write(scripts.outcomes.close_claim, claim, outcome, now, state_json)

    async def request_control(
        self, run_id: str, action: Control | None, *, reason: str | None, now: datetime
    ) -> Run:
        script = scripts.control.request_control
        return await self._write(script, run_id, action, reason, now, full=True)

    async def retry_run(self, run_id: str, *, now: datetime) -> Run:
        return await self._write(scripts.runs.retry_run, run_id, now, full=True)

    async def fork_run(
        self, run_id: str, *, from_seq: int, patch: dict[int, str], new_run_id: str, now: datetime
    ) -> Run:
        args = (run_id, from_seq, patch, new_run_id, now)
        return await self._write(scripts.runs.fork_run, *args, full=True)

    # --- leases ------------------------------------------------------------------------------

    async def renew_leases(
        self,
        worker_id: str,
        run_ids: Sequence[str],
        *,
        lease_s: float,
        now: datetime,
        load: int = 0,
    ) -> list[LeaseStatus]:
        args = (worker_id, run_ids, lease_s, now, load)
        return await self._write(scripts.workers.renew_leases, *args)

    # --- steps -------------------------------------------------------------------------------

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        return self._read(scripts.steps.load_steps, run_id)

    async def record_step(
        self,
        claim: Claim,
        record: StepRecord,
        *,
        now: datetime,
        state_json: str | None = None,
        ledger: LedgerEntry | None = None,
        memory: MemoryWrite | None = None,
    ) -> Control | None:
        args = (claim, record, state_json, ledger, memory)
        return await self._write(scripts.steps.record_step, *args)

    async def start_child(
        self, claim: Claim, record: StepRecord, child: NewRun, *, now: datetime
    ) -> Run:
        return await self._write(scripts.steps.start_child, claim, record, child, now)

    # --- signals -----------------------------------------------------------------------------

    async def send_signal(
        self,
        run_id: str,
        name: str,
        payload_json: str,
        *,
        now: datetime,
        problem: str | None = None,
        rejected_by: int | None = None,
    ) -> SignalRecord:
        args = (run_id, name, payload_json, now, problem, rejected_by)
        return await self._write(scripts.signals.send_signal, *args, full=True)

    async def resume_with_signal(
        self, run_id: str, name: str, payload_json: str, *, now: datetime
    ) -> SignalRecord:
        args = (run_id, name, payload_json, now)
        return await self._write(scripts.signals.resume_with_signal, *args, full=True)

    async def take_signal(
        self,
        claim: Claim,
        seq: int,
        name: str,
        *,
        until: datetime | None,
        now: datetime,
        check: PayloadCheck | None = None,
    ) -> str | None:
        args = (claim, seq, name, until, now, check)
        return await self._write(scripts.signals.take_signal, *args)

    async def list_signals(self, run_id: str) -> list[SignalRecord]:
        return self._read(scripts.signals.list_signals, run_id)

    # --- events ------------------------------------------------------------------------------

    async def append_events(
        self, claim: Claim, events: Sequence[NewEvent], *, now: datetime
    ) -> None:
        await self._write(scripts.steps.append_events, claim, events, now)

    async def read_events(
        self, run_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        return self._read(scripts.steps.read_events, run_id, after_id, limit)

    # --- workers -----------------------------------------------------------------------------

    async def register_worker(self, worker: WorkerInfo, *, now: datetime) -> None:
        await self._write(scripts.workers.register_worker, worker, now)

    async def unregister_worker(self, worker_id: str) -> None:
        await self._write(scripts.workers.unregister_worker, worker_id)

    async def list_workers(self) -> list[WorkerInfo]:
        return self._read(scripts.workers.list_workers)

    async def release_worker_runs(self, worker_ids: Sequence[str], *, now: datetime) -> int:
        return await self._write(scripts.workers.release_worker_runs, worker_ids, now)

    # --- named leases ------------------------------------------------------------------------

    async def acquire_lease(
        self, name: str, holder: str, *, ttl_s: float, now: datetime, replacing: str | None = None
    ) -> NamedLease | None:
        args = (name, holder, ttl_s, now, replacing)
        return await self._write(scripts.leases.acquire_lease, *args, full=True)

    async def renew_lease(self, name: str, holder: str, *, ttl_s: float, now: datetime) -> bool:
        return await self._write(scripts.leases.renew_lease, name, holder, ttl_s, now)

    async def release_lease(self, name: str, holder: str) -> bool:
        return await self._write(scripts.leases.release_lease, name, holder, full=True)

    async def get_lease(self, name: str) -> NamedLease | None:
        return self._read(scripts.leases.get_lease, name)

    # --- queues and pools --------------------------------------------------------------------

    async def declare_queues(self, queues: Sequence[QueueSpec], *, now: datetime) -> None:
        await self._write(scripts.workers.declare_queues, queues, now, full=True)

    async def list_queues(self) -> list[QueueSpec]:
        return self._read(scripts.workers.list_queues)

    async def declare_pools(self, pools: Sequence[PoolSpec], *, now: datetime) -> None:
        await self._write(scripts.workers.declare_pools, pools, now, full=True)

    async def list_pools(self) -> list[PoolSpec]:
        return self._read(scripts.workers.list_pools)

    async def queue_stats(self, *, now: datetime, window_s: float = 60.0) -> list[QueueStats]:
        return self._read(scripts.workers.queue_stats, now, window_s)

    async def queue_throughput(
        self, *, now: datetime, window_s: float = 3600.0, buckets: int = 60
    ) -> dict[str, dict[str, list[int]]]:
        return self._read(scripts.workers.queue_throughput, now, window_s, buckets)

    # --- cost ledger --------------------------------------------------------------------------

    async def cost(self, query: CostQuery) -> list[CostLine]:
        return self._read(scripts.ledger.cost, query)

    async def set_budget(
        self, scope: BudgetScope, name: str, budget: Budget | None, *, now: datetime
    ) -> None:
        script = scripts.ledger.set_budget
        await self._write(script, scope, name, budget, now, full=True)

    async def list_budgets(self) -> list[BudgetSpec]:
        return self._read(scripts.ledger.list_budgets)

    async def budget_use(
        self, run_id: str, workflow: str, queue: str, *, now: datetime, key: str | None = None
    ) -> list[BudgetUse]:
        args = (run_id, workflow, queue, now, key)
        return self._read(scripts.ledger.budget_use, *args)

    # --- schedules ---------------------------------------------------------------------------

    async def save_schedule(
        self, spec: ScheduleSpec, *, now: datetime, replace: bool = False
    ) -> ScheduleInfo:
        return await self._write(scripts.schedules.save_schedule, spec, now, replace, full=True)

    async def get_schedule(self, name: str) -> ScheduleInfo | None:
        return self._read(scripts.schedules.get_schedule, name)

    async def list_schedules(self) -> list[ScheduleInfo]:
        return self._read(scripts.schedules.list_schedules)

    async def pause_schedule(self, name: str, paused: bool, *, now: datetime) -> ScheduleInfo:
        return await self._write(scripts.schedules.pause_schedule, name, paused, now, full=True)

    async def delete_schedule(self, name: str) -> None:
        await self._write(scripts.schedules.delete_schedule, name, full=True)

    async def next_schedule_due(
        self, workflows: Sequence[str], *, now: datetime
    ) -> datetime | None:
        return self._read(scripts.schedules.next_schedule_due, workflows, now)

    async def fire_schedules(
        self, templates: Mapping[str, FireTemplate], *, now: datetime, limit: int = 100
    ) -> list[FiredTick]:
        if not templates:
            return []
        due = self._read(scripts.schedules.next_schedule_due, sorted(templates), now)
        if due is None or due > now:
            return []  # a read: the firers that come second must not queue for the write lock
        script = scripts.schedules.fire_schedules
        return await self._write(script, templates, now, limit, full=True)

    async def start_ticks(
        self, name: str, ticks: Sequence[datetime], template: FireTemplate, *, now: datetime
    ) -> list[FiredTick]:
        args = (name, ticks, template, now)
        return await self._write(scripts.schedules.start_ticks, *args, full=True)

    async def import_schedules(self, schedules: Sequence[ScheduleInfo]) -> int:
        return await self._write(scripts.schedules.import_schedules, schedules, full=True)

    # --- inbox -------------------------------------------------------------------------------

    async def record_launch(self, launch: Launch, *, now: datetime) -> None:
        await self._write(scripts.inbox.record_launch, launch, now, full=True)

    async def list_inbox(self, *, include_read: bool = False, limit: int = 1000) -> list[InboxItem]:
        return self._read(scripts.inbox.list_inbox, include_read, limit)

    async def server_now(self) -> datetime:
        return self._read(scripts.inbox.server_now)

    async def count_unread(self) -> int:
        return self._read(scripts.inbox.count_unread)

    async def dismiss_inbox(self, run_id: str | None, *, now: datetime) -> int:
        return await self._write(scripts.inbox.dismiss, run_id, now, full=True)

    # --- memory ------------------------------------------------------------------------------

    async def get_memory(self, scope: str, owner: str, key: str) -> MemoryDoc | None:
        return self._read(scripts.memory.get_memory, scope, owner, key)

    async def put_memory(
        self, scope: str, owner: str, key: str, value_json: str, *, now: datetime
    ) -> int:
        args = (scope, owner, key, value_json, now)
        return await self._write(scripts.memory.put_memory, *args, full=True)

    async def delete_memory(self, scope: str, owner: str, key: str) -> bool:
        return await self._write(scripts.memory.delete_memory, scope, owner, key, full=True)

    async def import_memory(self, docs: Sequence[MemoryDoc]) -> int:
        return await self._write(scripts.memory.import_memory, docs, full=True)

    async def list_memory(
        self, *, scope: str | None = None, owner: str | None = None, limit: int = 1000
    ) -> list[MemoryDoc]:
        return self._read(scripts.memory.list_memory, scope, owner, limit)

    # --- housekeeping ------------------------------------------------------------------------

    async def purge_runs(self, *, finished_before: datetime, states: Sequence[RunState]) -> int:
        kinds = scripts.housekeeping.purgeable_states(states)
        purged = 0
        while True:  # in batches, so other writers are never held up for long
            batch = await self._write(scripts.housekeeping.purge_batch, finished_before, kinds)
            purged += batch
            if batch < scripts.housekeeping.PURGE_BATCH:
                return purged

    async def delete_run(self, run_id: str) -> None:
        await self._write(scripts.housekeeping.remove_run, run_id, full=True)

    async def export_runs(self, *, after_run_id: str | None, limit: int) -> list[RunExport]:
        return self._read(scripts.housekeeping.export_runs, after_run_id, limit)

    async def import_runs(self, runs: Sequence[RunExport]) -> int:
        return await self._write(scripts.housekeeping.import_runs, runs, full=True)
