"""The PostgreSQL store: many workers on many hosts sharing one database.

Everything lives in the schema ``stepstone``; every statement is a named block of
``queries.sql``, prepared on first use with a generic plan.

Every operation is a store script (:mod:`stepstone.store.scripts`), the same as SQLite's; this
class only says how each one runs here (see :class:`~stepstone.store.postgres.writer.Op`): in
autocommit when it is one statement, whether it may raise after writing (a savepoint in a
batch), whether it wakes waiters.

- **Claims**: candidates are locked ``FOR UPDATE SKIP LOCKED`` over narrow partial indexes (due
  runs by priority then due time; expired leases), so concurrent claimers never wait for each
  other and never get the same run. With no queue limits involved the whole claim is one
  statement (one round trip); see :mod:`stepstone.store.scripts.claims` for limited queues.
- **Fencing**: a worker's journal writes hold its run row ``FOR SHARE`` until they commit and
  check the lease token in the same statement, so a takeover waits for them and a zombie's
  write, which sees a stale token, changes nothing (:class:`LeaseLost`). Whatever wakes a run
  (a signal, a child's end) locks it first, so it serialises with the run suspending.
- **Wake-ups**: statements that make work claimable (a new run, a signal, a parent woken, an
  operator's cancel/pause/unpause, runs released) or end a claim (finished, suspended, paused,
  handed back) call ``pg_notify('stepstone', '')``, so the notification is sent when the change
  commits. Each store keeps one listening connection per event loop (reconnected with back-off
  when lost); :meth:`change_token` and :meth:`wait_for_change` count what it hears, so a wait
  returns within a millisecond or so of a commit in any process. Polling with the caller's
  timeout is only the fallback while the listener is down.
- **Group commit**: see :mod:`.writer`. With nothing else ready on the loop, a journal write is
  one statement in autocommit: one round trip.
- **Durability**: sessions force ``synchronous_commit=on``, so a recorded step is flushed to the
  server's WAL before the workflow moves past it. ``durability="normal"`` (the default) is that;
  ``"full"`` asks for ``remote_apply``, which also waits for synchronous standbys (if the server
  has any) to apply the commit. Neither ever turns durability off.
- **Resilience**: a lost connection or a restarting server is retried with back-off for up to
  ``retry_s`` (the pool reconnects in the background), then raises StoreUnavailable. Every write
  may run again safely, even when its first attempt committed and only the answer was lost:
  upserts (steps, runs by id, workers, user events by index) are idempotent, and the others
  recognise their earlier attempt's commit by the caller's ``now`` stamped on the row: a claim
  hands over again the runs this worker took at that ``now`` (instead of leaving them leased to
  a worker that does not know it holds them); closing a claim finds the run already closed
  under its token at that ``now`` (instead of LeaseLost); a consumed signal is returned again
  (instead of taking the next one); a control request, retry, fork or signal finds its own
  change. So nothing recorded is lost and no recorded step runs again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

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
from stepstone.core.port import Cancelled, ClaimFilter, ClaimOutcome, NewEvent, PayloadCheck
from stepstone.core.schedules import FiredTick, FireTemplate, ScheduleInfo, ScheduleSpec
from stepstone.store import scripts
from stepstone.store.postgres.database import StoreBase

__all__ = ["PostgresStore"]


class PostgresStore(StoreBase):
    """A stepstone store in a PostgreSQL database (see the module docstring for the guarantees).

    >>> store = PostgresStore("postgresql://app@db.internal/app")
    >>> await store.migrate()

    Nothing connects until first use. ``pool_size`` bounds the connections per event loop (plus
    one listening connection); ``retry_s`` is how long an operation keeps retrying while the
    database is unreachable before it raises :class:`~stepstone.errors.StoreUnavailable`.
    """

    # --- runs ----------------------------------------------------------------------------------

    async def create_run(
        self, run: NewRun, *, now: datetime, claim_for: WorkerInfo | None = None, lease_s: float = 0
    ) -> tuple[Run, bool, Claim | None]:
        # a pool assignment holds the pool's row until the run is stored: a transaction
        pooled, nobody = run.routing.pool is not None, claim_for is None
        args = (run, now, claim_for, lease_s)
        return await self._write(
            scripts.runs.create_run, *args, tx=pooled, safe=False, notify=nobody
        )

    async def get_run(self, run_id: str) -> Run | None:
        return await self._read(scripts.runs.get_run, run_id)

    async def list_runs(self, query: RunQuery) -> list[Run]:
        return await self._read(scripts.runs.list_runs, query)

    async def claim_runs(
        self, worker: WorkerInfo, flt: ClaimFilter, *, limit: int, lease_s: float, now: datetime
    ) -> list[Claim]:
        if limit <= 0 or not flt.workflows or not flt.queues:
            return []
        # one statement in autocommit unless a queue has limits (then its own transaction)
        args = (worker, flt.queues, flt.workflows, limit, lease_s, now)
        return await self._write(scripts.claims.claim_many, *args, tx=False, safe=False)

    async def claim_run(
        self, run_id: str, worker: WorkerInfo, *, lease_s: float, now: datetime
    ) -> Claim | None:
        args = (run_id, worker, lease_s, now)
        return await self._write(scripts.claims.claim_one, *args, tx=False, safe=False)

    async def has_claimable(self, flt: ClaimFilter, *, now: datetime) -> bool:
        return await self._read(scripts.claims.has_claimable, flt.queues, flt.workflows, now)

    async def next_wake_at(self, flt: ClaimFilter, *, now: datetime) -> datetime | None:
        return await self._read(scripts.claims.next_wake_at, flt.queues, flt.workflows, now)

    async def close_claim(
        self, claim: Claim, outcome: ClaimOutcome, *, now: datetime, state_json: str | None = None
    ) -> RunState:
        args = (claim, outcome, now, state_json)
        cancelled = isinstance(outcome, Cancelled)  # may raise after writing (the cascade)
        return await self._write(scripts.outcomes.close_claim, *args, safe=cancelled, notify=True)

    async def request_control(
        self, run_id: str, action: Control | None, *, reason: str | None, now: datetime
    ) -> Run:
        args = (run_id, action, reason, now)
        return await self._write(scripts.control.request_control, *args, notify=True)

    async def retry_run(self, run_id: str, *, now: datetime) -> Run:
        return await self._write(scripts.runs.retry_run, run_id, now, notify=True)

    async def fork_run(
        self, run_id: str, *, from_seq: int, patch: dict[int, str], new_run_id: str, now: datetime
    ) -> Run:
        args = (run_id, from_seq, patch, new_run_id, now)
        return await self._write(scripts.runs.fork_run, *args, notify=True)

    # --- leases --------------------------------------------------------------------------------

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
        return await self._write(scripts.workers.renew_leases, *args, tx=False, safe=False)

    # --- steps ---------------------------------------------------------------------------------

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        return await self._read(scripts.steps.load_steps, run_id)

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
        # one statement in autocommit unless ctx.state changed too, a model call is priced or
        # memory is written
        together = state_json is not None or ledger is not None or memory is not None
        args = (claim, record, state_json, ledger, memory)
        # a memory write may raise MemoryConflict after the step's upsert: a savepoint in a batch
        safe = memory is not None
        return await self._write(scripts.steps.record_step, *args, tx=together, safe=safe)

    async def start_child(
        self, claim: Claim, record: StepRecord, child: NewRun, *, now: datetime
    ) -> Run:
        args = (claim, record, child, now)
        return await self._write(scripts.steps.start_child, *args, safe=False, notify=True)

    # --- signals -------------------------------------------------------------------------------

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
        return await self._write(scripts.signals.send_signal, *args, safe=False, notify=True)

    async def resume_with_signal(
        self, run_id: str, name: str, payload_json: str, *, now: datetime
    ) -> SignalRecord:
        args = (run_id, name, payload_json, now)
        return await self._write(scripts.signals.resume_with_signal, *args, safe=False, notify=True)

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
        return await self._write(scripts.signals.take_signal, *args, safe=False)

    async def list_signals(self, run_id: str) -> list[SignalRecord]:
        return await self._read(scripts.signals.list_signals, run_id)

    # --- events --------------------------------------------------------------------------------

    async def append_events(
        self, claim: Claim, events: Sequence[NewEvent], *, now: datetime
    ) -> None:
        args = (claim, events, now)
        await self._write(scripts.steps.append_events, *args, safe=False, notify=True)

    async def read_events(
        self, run_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        return await self._read(scripts.steps.read_events, run_id, after_id, limit)

    # --- workers -------------------------------------------------------------------------------

    async def register_worker(self, worker: WorkerInfo, *, now: datetime) -> None:
        await self._write(scripts.workers.register_worker, worker, now, tx=False, safe=False)

    async def unregister_worker(self, worker_id: str) -> None:
        await self._write(scripts.workers.unregister_worker, worker_id, tx=False, safe=False)

    async def list_workers(self) -> list[WorkerInfo]:
        return await self._read(scripts.workers.list_workers)

    async def release_worker_runs(self, worker_ids: Sequence[str], *, now: datetime) -> int:
        script = scripts.workers.release_worker_runs
        return await self._write(script, worker_ids, now, tx=False, safe=False, notify=True)

    # --- named leases ------------------------------------------------------------------------

    async def acquire_lease(
        self, name: str, holder: str, *, ttl_s: float, now: datetime, replacing: str | None = None
    ) -> NamedLease | None:
        args = (name, holder, ttl_s, now, replacing)
        return await self._write(scripts.leases.acquire_lease, *args, safe=False)

    async def renew_lease(self, name: str, holder: str, *, ttl_s: float, now: datetime) -> bool:
        args = (name, holder, ttl_s, now)
        return await self._write(scripts.leases.renew_lease, *args, tx=False, safe=False)

    async def release_lease(self, name: str, holder: str) -> bool:
        script = scripts.leases.release_lease
        return await self._write(script, name, holder, tx=False, safe=False)

    async def get_lease(self, name: str) -> NamedLease | None:
        return await self._read(scripts.leases.get_lease, name)

    # --- queues and pools ----------------------------------------------------------------------

    async def declare_queues(self, queues: Sequence[QueueSpec], *, now: datetime) -> None:
        await self._write(scripts.workers.declare_queues, queues, now, safe=False)

    async def list_queues(self) -> list[QueueSpec]:
        return await self._read(scripts.workers.list_queues)

    async def declare_pools(self, pools: Sequence[PoolSpec], *, now: datetime) -> None:
        await self._write(scripts.workers.declare_pools, pools, now, safe=False)

    async def list_pools(self) -> list[PoolSpec]:
        return await self._read(scripts.workers.list_pools)

    async def queue_stats(self, *, now: datetime, window_s: float = 60.0) -> list[QueueStats]:
        return await self._read(scripts.workers.queue_stats, now, window_s)

    async def queue_throughput(
        self, *, now: datetime, window_s: float = 3600.0, buckets: int = 60
    ) -> dict[str, dict[str, list[int]]]:
        return await self._read(scripts.workers.queue_throughput, now, window_s, buckets)

    # --- cost ledger --------------------------------------------------------------------------

    async def cost(self, query: CostQuery) -> list[CostLine]:
        return await self._read(scripts.ledger.cost, query)

    async def set_budget(
        self, scope: BudgetScope, name: str, budget: Budget | None, *, now: datetime
    ) -> None:
        script = scripts.ledger.set_budget
        await self._write(script, scope, name, budget, now, safe=False)

    async def list_budgets(self) -> list[BudgetSpec]:
        return await self._read(scripts.ledger.list_budgets)

    async def budget_use(
        self, run_id: str, workflow: str, queue: str, *, now: datetime, key: str | None = None
    ) -> list[BudgetUse]:
        args = (run_id, workflow, queue, now, key)
        return await self._read(scripts.ledger.budget_use, *args)

    # --- schedules -----------------------------------------------------------------------------

    async def save_schedule(
        self, spec: ScheduleSpec, *, now: datetime, replace: bool = False
    ) -> ScheduleInfo:
        return await self._write(scripts.schedules.save_schedule, spec, now, replace, notify=True)

    async def get_schedule(self, name: str) -> ScheduleInfo | None:
        return await self._read(scripts.schedules.get_schedule, name)

    async def list_schedules(self) -> list[ScheduleInfo]:
        return await self._read(scripts.schedules.list_schedules)

    async def pause_schedule(self, name: str, paused: bool, *, now: datetime) -> ScheduleInfo:
        script = scripts.schedules.pause_schedule
        return await self._write(script, name, paused, now, notify=True)

    async def delete_schedule(self, name: str) -> None:
        await self._write(scripts.schedules.delete_schedule, name)

    async def next_schedule_due(
        self, workflows: Sequence[str], *, now: datetime
    ) -> datetime | None:
        return await self._read(scripts.schedules.next_schedule_due, workflows, now)

    async def fire_schedules(
        self, templates: Mapping[str, FireTemplate], *, now: datetime, limit: int = 100
    ) -> list[FiredTick]:
        if not templates:
            return []
        script = scripts.schedules.fire_schedules
        return await self._write(script, templates, now, limit, notify=True)

    async def start_ticks(
        self, name: str, ticks: Sequence[datetime], template: FireTemplate, *, now: datetime
    ) -> list[FiredTick]:
        args = (name, ticks, template, now)
        return await self._write(scripts.schedules.start_ticks, *args, notify=True)

    async def import_schedules(self, schedules: Sequence[ScheduleInfo]) -> int:
        return await self._write(scripts.schedules.import_schedules, schedules)

    # --- inbox -------------------------------------------------------------------------------

    async def record_launch(self, launch: Launch, *, now: datetime) -> None:
        await self._write(scripts.inbox.record_launch, launch, now, tx=False, safe=False)

    async def list_inbox(self, *, include_read: bool = False, limit: int = 1000) -> list[InboxItem]:
        return await self._read(scripts.inbox.list_inbox, include_read, limit)

    async def server_now(self) -> datetime:
        return await self._read(scripts.inbox.server_now)

    async def count_unread(self) -> int:
        return await self._read(scripts.inbox.count_unread)

    async def dismiss_inbox(self, run_id: str | None, *, now: datetime) -> int:
        return await self._write(scripts.inbox.dismiss, run_id, now, tx=False, safe=False)

    # --- memory ------------------------------------------------------------------------------

    async def get_memory(self, scope: str, owner: str, key: str) -> MemoryDoc | None:
        return await self._read(scripts.memory.get_memory, scope, owner, key)

    async def put_memory(
        self, scope: str, owner: str, key: str, value_json: str, *, now: datetime
    ) -> int:
        args = (scope, owner, key, value_json, now)
        return await self._write(scripts.memory.put_memory, *args, tx=False, safe=False)

    async def delete_memory(self, scope: str, owner: str, key: str) -> bool:
        args = (scope, owner, key)
        return await self._write(scripts.memory.delete_memory, *args, tx=False, safe=False)

    async def import_memory(self, docs: Sequence[MemoryDoc]) -> int:
        return await self._write(scripts.memory.import_memory, docs)

    async def list_memory(
        self, *, scope: str | None = None, owner: str | None = None, limit: int = 1000
    ) -> list[MemoryDoc]:
        return await self._read(scripts.memory.list_memory, scope, owner, limit)

    # --- housekeeping --------------------------------------------------------------------------

    async def purge_runs(self, *, finished_before: datetime, states: Sequence[RunState]) -> int:
        kinds = scripts.housekeeping.purgeable_states(states)
        purged = 0
        while True:  # in batches, so other writers are never held up for long
            script = scripts.housekeeping.purge_batch
            batch = await self._write(script, finished_before, kinds, safe=False)
            purged += batch
            if batch < scripts.housekeeping.PURGE_BATCH:
                return purged

    async def delete_run(self, run_id: str) -> None:
        await self._write(scripts.housekeeping.remove_run, run_id, safe=False)

    async def export_runs(self, *, after_run_id: str | None, limit: int) -> list[RunExport]:
        return await self._read(scripts.housekeeping.export_runs, after_run_id, limit)

    async def import_runs(self, runs: Sequence[RunExport]) -> int:
        return await self._write(scripts.housekeeping.import_runs, runs, safe=False, notify=True)
