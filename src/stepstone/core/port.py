"""The store port: the one typed, semantic interface between the engine and a database.

Methods are grouped by noun so the protocol reads like a table of contents. Core dataclasses go in
and come out; no rows, cursors or SQL cross it. Every time-dependent method takes ``now`` (the
engine's clock decides what time it is, never the database). Every write a worker makes carries
its :class:`Claim`; a write whose ``lease_token`` is stale changes nothing and raises
:class:`LeaseLost`, so a zombie worker can never overwrite the work of the one that took over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from stepstone.core.frozen import frozen
from stepstone.core.model import (
    Claim,
    Control,
    ErrorInfo,
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
    Wait,
    WorkerInfo,
)

if TYPE_CHECKING:
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
    from stepstone.core.schedules import FiredTick, FireTemplate, ScheduleInfo, ScheduleSpec

__all__ = [
    "Blocked",
    "Cancelled",
    "ClaimFilter",
    "ClaimOutcome",
    "Completed",
    "Failed",
    "NewEvent",
    "PayloadCheck",
    "Paused",
    "Released",
    "Store",
    "Suspended",
]

PayloadCheck = Callable[[str], str | None]
"""A signal payload (JSON text) -> the first problem with it, or None when the wait accepts it."""


# --- how a claim ends ------------------------------------------------------------------------


@frozen
class Completed:
    output_json: str


@frozen
class Failed:
    error: ErrorInfo


@frozen
class Cancelled:
    """``reason`` None: the reason given when the cancel was requested."""

    reason: str | None


@frozen
class Paused:
    """``reason``: why the run paused itself (a budget), None when an operator paused it."""

    reason: str | None = None


@frozen
class Blocked:
    reason: str


@frozen
class Suspended:
    """The run waits; it becomes claimable at the earliest ``until`` or when a wait is satisfied."""

    waits: tuple[Wait, ...]


@frozen
class Released:
    """The worker hands the run back unfinished; not counted as a recovery. ``reason``: why, when
    it is not a graceful shutdown (the store refused a checkpoint). The run is claimable again
    after ``delay_s`` (a back-off while the store is in trouble)."""

    reason: str | None = None
    delay_s: float = 0.0


ClaimOutcome = Completed | Failed | Cancelled | Paused | Blocked | Suspended | Released


@frozen
class ClaimFilter:
    """Which runs a worker may claim: its queues and the workflows it can execute."""

    queues: tuple[str, ...]
    workflows: tuple[str, ...]


@frozen
class NewEvent:
    """An event to append. User events carry ``idx`` (their order in the run) so replays dedupe."""

    kind: str
    data_json: str | None
    idx: int | None = None


@runtime_checkable
class Store(Protocol):
    """Durable storage for runs, their journals, signals, events and workers."""

    url: str

    # --- lifecycle -----------------------------------------------------------------------
    async def migrate(self) -> list[str]:
        """Apply pending migrations; returns the names applied (empty when up to date)."""
        ...

    async def schema_status(self) -> tuple[int, int]:
        """(applied version, latest version this code knows)."""
        ...

    async def close(self) -> None: ...

    async def change_token(self) -> object:
        """An opaque mark of what has been committed so far (local writes, other processes'
        commits, notifications received). Take it *before* reading the state you are about to
        wait on, and pass it to :meth:`wait_for_change`, so no change in between is missed."""
        ...

    async def wait_for_change(self, timeout_s: float, *, since: object = None) -> None:
        """Return when something was committed after ``since`` (a :meth:`change_token`;
        default: from now), or after ``timeout_s``. Spurious returns are allowed."""
        ...

    async def server_now(self) -> datetime:
        """The database's own clock (PostgreSQL: the server's; SQLite: this machine's), to tell
        how far this process's clock is off (``stepstone doctor``)."""
        ...

    # --- runs ----------------------------------------------------------------------------
    async def create_run(
        self, run: NewRun, *, now: datetime, claim_for: WorkerInfo | None = None, lease_s: float = 0
    ) -> tuple[Run, bool, Claim | None]:
        """Create ``run`` unless its id exists, or an unfinished run has its ``dedup_key``.
        Returns (the run as stored — the existing one when not created, created?, claim).
        With ``claim_for`` a newly created run is created already claimed by that worker. A run
        that names a pool whose strategy assigns is assigned to a live worker of the pool."""
        ...

    async def get_run(self, run_id: str) -> Run | None: ...

    async def list_runs(self, query: RunQuery) -> list[Run]: ...

    async def claim_runs(
        self, worker: WorkerInfo, flt: ClaimFilter, *, limit: int, lease_s: float, now: datetime
    ) -> list[Claim]:
        """Claim up to ``limit`` claimable runs: pending or due, sleeping/waiting runs past their
        ``wake_at``, and running runs whose lease expired (counted as a recovery).

        Routing: a run's required labels must all be offered by ``worker``; a run with a target
        worker or an assigned worker goes only to that worker; a run naming a pool only to the
        pool's workers. Flow control, from the stored queue specs: a queue's ``concurrency`` and
        ``per_key_concurrency`` count executing (running) runs across all workers; ``rate_limit``
        counts first starts in the last ``rate_period_s``. A recovery (expired lease) takes no
        new slot, so it is never held back by a limit."""
        ...

    async def claim_run(
        self, run_id: str, worker: WorkerInfo, *, lease_s: float, now: datetime
    ) -> Claim | None:
        """Claim this one run if it is claimable now (used to execute a run in-process)."""
        ...

    async def has_claimable(self, flt: ClaimFilter, *, now: datetime) -> bool:
        """A cheap read: is there anything ``claim_runs`` would take now?"""
        ...

    async def next_wake_at(self, flt: ClaimFilter, *, now: datetime) -> datetime | None:
        """The earliest future time a sleeping/waiting/delayed run of these queues becomes due."""
        ...

    async def close_claim(
        self, claim: Claim, outcome: ClaimOutcome, *, now: datetime, state_json: str | None = None
    ) -> RunState:
        """End this execution of the run; returns the state the run is in afterwards. A
        ``Suspended`` run whose wait is already satisfied goes straight back to ``pending``."""
        ...

    async def request_control(
        self, run_id: str, action: Control | None, *, reason: str | None, now: datetime
    ) -> Run:
        """Cancel or pause a run (``None`` = unpause). Running runs get the request at their next
        step boundary; others change state at once. Cancelling cascades to active children."""
        ...

    async def retry_run(self, run_id: str, *, now: datetime) -> Run:
        """Make a failed or blocked run pending again, keeping its completed steps."""
        ...

    async def fork_run(
        self,
        run_id: str,
        *,
        from_seq: int,
        patch: dict[int, str],
        new_run_id: str,
        now: datetime,
    ) -> Run:
        """A new pending run of the same workflow and input that reuses the completed steps
        before ``from_seq`` (with ``patch`` replacing outputs by seq)."""
        ...

    # --- leases --------------------------------------------------------------------------
    async def renew_leases(
        self,
        worker_id: str,
        run_ids: Sequence[str],
        *,
        lease_s: float,
        now: datetime,
        load: int = 0,
    ) -> list[LeaseStatus]:
        """Extend the leases this worker holds on ``run_ids`` (the runs it is still executing)
        and record its heartbeat and load; returns those leases still held (with any control
        requested). A lease of this worker on a run not named is left to expire, so a run whose
        execution ended without closing its claim is taken over instead of held forever."""
        ...

    # --- steps ---------------------------------------------------------------------------
    async def load_steps(self, run_id: str) -> list[StepRecord]: ...

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
        """Upsert one journal entry (fenced), with the model call it priced (``ledger``) and
        the memory document it wrote (``memory``, compare-and-set on its expected version:
        MemoryConflict, and nothing written, when another write landed first) in the same
        transaction. Returns the control requested for the run, if any."""
        ...

    async def start_child(
        self, claim: Claim, record: StepRecord, child: NewRun, *, now: datetime
    ) -> Run:
        """Create the child run (idempotent) and record the parent's journal entry, atomically."""
        ...

    # --- signals -------------------------------------------------------------------------
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
        """Buffer a signal for the run and wake it if it waits for this name.

        With a ``problem`` the signal is stored already rejected (by wait ``rejected_by``, if
        one refused it) and wakes nothing: a record of what the sender was refused."""
        ...

    async def resume_with_signal(
        self, run_id: str, name: str, payload_json: str, *, now: datetime
    ) -> SignalRecord:
        """Deliver signal ``name`` exactly once to a run that waits for it now: in one
        transaction the run is woken (only if it is waiting, for ``name``) and the signal
        stored. Otherwise nothing is written: RunNotFound, RunStateError (finished, or waiting
        for another event, which it names) or AlreadyResumed (pending or running: another
        resume got there first)."""
        ...

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
        """Consume the oldest unconsumed ``name`` signal into journal entry ``seq`` and return
        its payload; or, if there is none, record ``seq`` as waiting (until ``until``; as timed out
        when ``until`` is not after ``now``) and return None. A signal whose payload ``check``
        finds a problem with is marked rejected by ``seq`` (with that problem) and the next one
        is tried."""
        ...

    async def list_signals(self, run_id: str) -> list[SignalRecord]: ...

    # --- events --------------------------------------------------------------------------
    async def append_events(
        self, claim: Claim, events: Sequence[NewEvent], *, now: datetime
    ) -> None: ...

    async def read_events(
        self, run_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[EventRecord]: ...

    # --- workers -------------------------------------------------------------------------
    async def register_worker(self, worker: WorkerInfo, *, now: datetime) -> None: ...

    async def unregister_worker(self, worker_id: str) -> None: ...

    async def list_workers(self) -> list[WorkerInfo]: ...

    async def release_worker_runs(self, worker_ids: Sequence[str], *, now: datetime) -> int:
        """Make the runs leased by these (dead) workers claimable at once, return the runs
        assigned or targeted to them to their pool, and forget the workers."""
        ...

    # --- named leases (a lock in the store) ----------------------------------------------
    async def acquire_lease(
        self, name: str, holder: str, *, ttl_s: float, now: datetime, replacing: str | None = None
    ) -> NamedLease | None:
        """Take the lease on ``name`` for ``holder`` until ``now + ttl_s``, in one statement:
        when nobody holds it, when it expired, when ``holder`` has it already (renewed), or when
        its holder is ``replacing`` (one the caller found dead). Of any number of callers at
        once exactly one gets it. Returns the lease as it stands: ``holder`` is the caller's
        only when it got it (None: the other holder released it meanwhile)."""
        ...

    async def renew_lease(self, name: str, holder: str, *, ttl_s: float, now: datetime) -> bool:
        """Extend ``holder``'s lease to ``now + ttl_s``; False when it no longer holds it (it
        expired and another took it, or it was released)."""
        ...

    async def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease up (only ``holder``'s); whether it held it."""
        ...

    async def get_lease(self, name: str) -> NamedLease | None:
        """The lease on ``name`` (expired or not), or None."""
        ...

    # --- queues and pools ----------------------------------------------------------------
    async def declare_queues(self, queues: Sequence[QueueSpec], *, now: datetime) -> None:
        """Store (replace) the limits of these queues."""
        ...

    async def list_queues(self) -> list[QueueSpec]: ...

    async def declare_pools(self, pools: Sequence[PoolSpec], *, now: datetime) -> None:
        """Store (replace) the assignment strategy of these pools."""
        ...

    async def list_pools(self) -> list[PoolSpec]: ...

    async def queue_stats(self, *, now: datetime, window_s: float = 60.0) -> list[QueueStats]:
        """Per queue: unfinished runs by state, runs finished in the last ``window_s``, and the
        age of the oldest due pending run."""
        ...

    async def queue_throughput(
        self, *, now: datetime, window_s: float = 3600.0, buckets: int = 60
    ) -> dict[str, dict[str, list[int]]]:
        """Per queue, runs finished (``completed`` and ``failed``) in each of ``buckets`` equal
        slices of the last ``window_s``, oldest first: throughput over time."""
        ...

    # --- cost ledger ---------------------------------------------------------------------
    async def cost(self, query: CostQuery) -> list[CostLine]:
        """Ledger rows matching ``query`` added up per group (one line per model, workflow or
        UTC day; a single total line when ``query.by`` is None), costliest first."""
        ...

    async def set_budget(
        self, scope: BudgetScope, name: str, budget: Budget | None, *, now: datetime
    ) -> None:
        """Store (replace) the budget of a run, workflow or queue; None removes it."""
        ...

    async def list_budgets(self) -> list[BudgetSpec]: ...

    async def budget_use(
        self, run_id: str, workflow: str, queue: str, *, now: datetime, key: str | None = None
    ) -> list[BudgetUse]:
        """The stored budgets a model call of this run counts against (its run's, its
        workflow's, its queue's, its concurrency ``key``'s), each with what the ledger holds
        against it now."""
        ...

    # --- schedules -----------------------------------------------------------------------
    async def save_schedule(
        self, spec: ScheduleSpec, *, now: datetime, replace: bool = False
    ) -> ScheduleInfo:
        """Store a schedule; it first fires at its first tick after ``now``. A name already
        stored with another definition is InvalidArgument unless ``replace`` (then it fires from
        ``now`` on); with the same definition it is left as it is."""
        ...

    async def get_schedule(self, name: str) -> ScheduleInfo | None: ...

    async def list_schedules(self) -> list[ScheduleInfo]: ...

    async def pause_schedule(self, name: str, paused: bool, *, now: datetime) -> ScheduleInfo:
        """Pause (no tick fires) or resume (from the first tick after ``now``) a schedule."""
        ...

    async def delete_schedule(self, name: str) -> None:
        """Forget a schedule (ScheduleNotFound if there is none); its runs stay."""
        ...

    async def next_schedule_due(
        self, workflows: Sequence[str], *, now: datetime
    ) -> datetime | None:
        """A cheap read: when a schedule of these workflows is next due (None: none is)."""
        ...

    async def fire_schedules(
        self, templates: Mapping[str, FireTemplate], *, now: datetime, limit: int = 100
    ) -> list[FiredTick]:
        """Start the due ticks of the schedules of the workflows in ``templates`` (by their
        overlap and catchup policies) and move each schedule's next fire time, atomically: each
        tick starts one run however many processes fire at once."""
        ...

    async def start_ticks(
        self, name: str, ticks: Sequence[datetime], template: FireTemplate, *, now: datetime
    ) -> list[FiredTick]:
        """Start the runs of these ticks of schedule ``name`` now (trigger, backfill), whatever
        its overlap policy; a tick whose run exists starts nothing new."""
        ...

    async def import_schedules(self, schedules: Sequence[ScheduleInfo]) -> int:
        """Store copied schedules as they are (names already present are skipped)."""
        ...

    # --- inbox ---------------------------------------------------------------------------
    async def record_launch(self, launch: Launch, *, now: datetime) -> None:
        """Mark a run as launched (before it is created): each of its outcomes (done, failed,
        cancelled, waiting for a signal) then gets one inbox item, written in the transaction
        that makes the change. Idempotent."""
        ...

    async def list_inbox(self, *, include_read: bool = False, limit: int = 1000) -> list[InboxItem]:
        """Unread items oldest first; with ``include_read`` then the read ones, newest first."""
        ...

    async def count_unread(self) -> int:
        """How many inbox items are unread (a cheap read: the session hook's)."""
        ...

    async def dismiss_inbox(self, run_id: str | None, *, now: datetime) -> int:
        """Mark the unread items of ``run_id`` (None: every one) read; how many."""
        ...

    # --- memory ------------------------------------------------------------------------
    async def get_memory(self, scope: str, owner: str, key: str) -> MemoryDoc | None:
        """One memory document, or None."""
        ...

    async def put_memory(
        self, scope: str, owner: str, key: str, value_json: str, *, now: datetime
    ) -> int:
        """Write a document from outside any run (last writer wins); its new version."""
        ...

    async def delete_memory(self, scope: str, owner: str, key: str) -> bool:
        """Delete a document; whether there was one."""
        ...

    async def list_memory(
        self, *, scope: str | None = None, owner: str | None = None, limit: int = 1000
    ) -> list[MemoryDoc]:
        """Documents by scope, owner and key (filters optional)."""
        ...

    async def import_memory(self, docs: Sequence[MemoryDoc]) -> int:
        """Store copied documents as they are (those already present are kept); how many
        were added."""
        ...

    # --- housekeeping --------------------------------------------------------------------
    async def purge_runs(self, *, finished_before: datetime, states: Sequence[RunState]) -> int:
        """Delete finished runs (of these terminal states) that finished before the given time,
        with their steps, signals, events, launch marks and inbox items; returns how many
        runs."""
        ...

    async def delete_run(self, run_id: str) -> None:
        """Delete one finished run with its steps, signals, events, launch mark and inbox
        items, in one transaction; a run not finished raises RunStateError (naming its state)
        and is left as it is."""
        ...

    async def export_runs(self, *, after_run_id: str | None, limit: int) -> list[RunExport]:
        """Runs in run_id order after ``after_run_id``, each with everything stored about it."""
        ...

    async def import_runs(self, runs: Sequence[RunExport]) -> int:
        """Store exported runs as they are (runs already present are skipped); returns how many
        were added."""
        ...
