"""The values that cross the store port: runs, steps, signals, events, workers and leases.

Every value here is a frozen, slotted dataclass. JSON payloads travel as ``str`` (already encoded
by the codec) so that adapters never need to know about user types.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from stepstone.core.ledger import LedgerEntry

from stepstone.core.frozen import frozen

__all__ = [
    "describe_wait",
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "Claim",
    "Labels",
    "PoolSpec",
    "QueueSpec",
    "QueueStats",
    "RunExport",
    "Routing",
    "Strategy",
    "Control",
    "ErrorInfo",
    "EventRecord",
    "LeaseStatus",
    "NamedLease",
    "NewRun",
    "Run",
    "RunQuery",
    "RunState",
    "SignalRecord",
    "StepKind",
    "StepRecord",
    "StepStatus",
    "Audience",
    "InboxItem",
    "InboxOutcome",
    "Launch",
    "RiskLevel",
    "Wait",
    "WaitInfo",
    "WorkerInfo",
]


class RunState(StrEnum):
    """Where a run is in its life. Every transition is guarded by the expected current state."""

    PENDING = "pending"
    RUNNING = "running"
    SLEEPING = "sleeping"
    WAITING = "waiting"
    PAUSED = "paused"
    BLOCKED = "blocked"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset({RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED})
ACTIVE_STATES = frozenset(set(RunState) - TERMINAL_STATES)


class StepKind(StrEnum):
    """What a journal entry records. Only ``step`` entries run user code."""

    STEP = "step"
    SLEEP = "sleep"
    SIGNAL = "signal"
    CHILD = "child"
    START_CHILD = "start_child"
    NOW = "now"
    RANDOM = "random"
    UUID = "uuid"
    PROMPT = "prompt"  # ctx.prompt: the filled text, so a replay sees what the first run saw
    ARTIFACT = "artifact"  # ctx.artifact: the file written, so a replay does not rewrite it


class StepStatus(StrEnum):
    """The status of a journal entry."""

    COMPLETED = "completed"
    FAILED = "failed"
    STARTED = "started"  # at-most-once start mark
    WAITING = "waiting"  # a sleep, signal wait or child wait that is not over yet
    RETRYING = "retrying"  # a failed attempt with more to come


Control = Literal["cancel", "pause"]


@frozen
class ErrorInfo:
    """A failure as stored: enough to show it, rebuild it on replay and retry past it."""

    type: str
    message: str
    traceback: str | None = None
    module: str | None = None
    args_json: str | None = None
    step_seqs: tuple[int, ...] = ()


Audience = Literal["user", "agent", "system"]
RiskLevel = Literal["low", "medium", "high"]


@frozen
class WaitInfo:
    """What a signal wait tells whoever must answer it: the step waiting, a prompt, a short
    summary, who should answer (``audience``) and how risky the continuation is. Stored with
    the wait and shown by ``stepstone run``'s waiting envelope, ``show`` and the client."""

    step: str | None = None
    prompt: str | None = None
    summary: str | None = None
    audience: Audience | None = None
    risk_level: RiskLevel | None = None
    ask: str | None = None
    """The kind of a ``ctx.ask`` gate (approval, text, choice, form); None for a plain wait."""

    def to_json(self) -> dict[str, str]:
        """The fields that are set, as JSON."""
        return {
            k: v
            for k, v in (
                ("step", self.step),
                ("prompt", self.prompt),
                ("summary", self.summary),
                ("audience", self.audience),
                ("risk_level", self.risk_level),
                ("ask", self.ask),
            )
            if v is not None
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> WaitInfo | None:
        if not data:
            return None
        return cls(
            data.get("step"),
            data.get("prompt"),
            data.get("summary"),
            data.get("audience"),
            data.get("risk_level"),
            data.get("ask"),
        )


@frozen
class Wait:
    """One thing a suspended run waits for. ``until`` is the timer or the wait's timeout;
    ``schema_json`` the JSON Schema a signal's payload must match; ``info`` what a signal wait
    tells the one who answers it."""

    kind: Literal["timer", "signal", "child", "retry"]
    seq: int
    name: str | None = None
    until: datetime | None = None
    schema_json: str | None = None
    info: WaitInfo | None = None


Labels = tuple[tuple[str, str], ...]
"""Worker labels or a run's required labels: sorted ``(key, value)`` pairs."""

Strategy = Literal["direct", "round_robin", "least_loaded", "threshold"]


@frozen
class Routing:
    """Where a run may be claimed and how it shares its queue.

    ``dedup_key``: at most one unfinished run per key. ``concurrency_key``: the key counted by the
    queue's ``per_key_concurrency`` (and per-key rate limit). ``labels``: a worker must offer all
    of them. ``target_worker``: only that worker may claim it. ``pool``: only workers of that pool
    may claim it; the pool's strategy may assign it to one of them.
    """

    dedup_key: str | None = None
    concurrency_key: str | None = None
    labels: Labels = ()
    target_worker: str | None = None
    pool: str | None = None


NO_ROUTING = Routing()


@frozen
class QueueSpec:
    """A queue's limits, stored so that every worker enforces the same ones.

    ``concurrency``: runs of the queue executing at once, across all workers.
    ``per_key_concurrency``: the same per ``concurrency_key``. ``rate_limit``: at most
    ``rate_limit`` starts per ``rate_period_s`` (per key when ``rate_limit_per_key``).
    """

    name: str
    concurrency: int | None = None
    per_key_concurrency: int | None = None
    rate_limit: int | None = None
    rate_period_s: float | None = None
    rate_limit_per_key: bool = False


@frozen
class PoolSpec:
    """How runs that name a pool are assigned to its workers.

    ``direct``: not assigned; the pool's workers claim them like a queue. ``round_robin``: each
    new run goes to the next live worker. ``least_loaded``: to the worker with the lowest load
    ratio. ``threshold``: like ``least_loaded`` but skipping workers at or above ``threshold``
    (left to any pool worker when all are).
    """

    name: str
    strategy: Strategy = "direct"
    threshold: float = 0.8


@frozen
class QueueStats:
    """What a queue holds now, and how fast it drains."""

    queue: str
    pending: int
    running: int
    waiting: int
    sleeping: int
    paused: int
    completed_recently: int
    failed_recently: int
    window_s: float
    oldest_pending_age_s: float | None

    @property
    def throughput_per_s(self) -> float:
        return self.completed_recently / self.window_s if self.window_s else 0.0


@frozen
class NewRun:
    """A run to create. ``input_json`` is ``{"args": [...], "kwargs": {...}}``."""

    run_id: str
    workflow: str
    version: str
    input_json: str
    queue: str = "default"
    priority: int = 0
    start_at: datetime | None = None
    deadline_at: datetime | None = None
    parent_run_id: str | None = None
    parent_seq: int | None = None
    forked_from: str | None = None
    retry_of: str | None = None
    routing: Routing = NO_ROUTING
    trace_context: str | None = None
    """The W3C trace context (JSON) active where the run was started: its executions continue
    that trace (``stepstone[otel]``)."""


def describe_wait(wait: Wait) -> str:
    """One line saying what a run waits for."""
    until = f" until {wait.until.isoformat(timespec='seconds')}" if wait.until else ""
    if wait.kind == "signal":
        step = wait.info.step if wait.info is not None else None
        at = f" at step {step!r}" if step and step != wait.name else ""
        return f"signal {wait.name!r}{at}{until}"
    if wait.kind == "child":
        return f"child run {wait.name}"
    if wait.kind == "retry":
        return f"retry of step #{wait.seq}{until}"
    if wait.seq < 0:
        return f"deadline{until}"
    return f"timer{until}"


@frozen
class Run:
    """A run as stored."""

    run_id: str
    workflow: str
    version: str
    state: RunState
    input_json: str
    queue: str
    priority: int
    created_at: datetime
    updated_at: datetime
    output_json: str | None = None
    error: ErrorInfo | None = None
    control: Control | None = None
    control_reason: str | None = None
    waits: tuple[Wait, ...] = ()
    wake_at: datetime | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    lease_token: int = 0
    recoveries: int = 0
    parent_run_id: str | None = None
    parent_seq: int | None = None
    deadline_at: datetime | None = None
    state_json: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    forked_from: str | None = None
    retry_of: str | None = None
    routing: Routing = NO_ROUTING
    assigned_worker: str | None = None
    trace_context: str | None = None

    @property
    def is_finished(self) -> bool:
        return self.state in TERMINAL_STATES


@frozen
class Claim:
    """A run held by a worker under a lease; every write the worker makes carries the token."""

    run: Run
    worker_id: str
    lease_token: int
    recovered: bool = False
    fresh: bool = False  # never started before: no journal to load

    @property
    def run_id(self) -> str:
        return self.run.run_id


@frozen
class LeaseStatus:
    """One lease as seen by a heartbeat: still held, and any control requested meanwhile."""

    run_id: str
    lease_token: int
    control: Control | None


@frozen
class NamedLease:
    """A lease on a name rather than on a run (a lock in the store): ``holder`` has it until
    ``expires_at`` and keeps it by renewing it; of all the processes asking for one name at once
    exactly one gets it (the skills daemon: one per host and skills path)."""

    name: str
    holder: str
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    def held_at(self, now: datetime) -> bool:
        """Whether it has not expired at ``now`` (its holder may still have died: see
        :func:`stepstone.runtime.exclusive.holder_alive`)."""
        return now < self.expires_at


@frozen
class StepRecord:
    """One journal entry: the outcome of the call at ``(run_id, seq)``."""

    seq: int
    name: str
    kind: StepKind
    status: StepStatus
    output_json: str | None = None
    error: ErrorInfo | None = None
    attempts: int = 1
    started_at: datetime | None = None
    finished_at: datetime | None = None


@frozen
class SignalRecord:
    """A signal sent to a run; ``consumed_seq`` is the wait that took it.

    A ``problem`` means the signal was rejected (its payload failed the wait's schema or the
    workflow's declared type): it is never a wait's outcome, and ``consumed_seq`` is then the
    wait that rejected it (None when the sender was refused before any wait saw it).
    """

    signal_id: int
    run_id: str
    name: str
    payload_json: str
    created_at: datetime
    consumed_seq: int | None = None
    consumed_at: datetime | None = None
    problem: str | None = None

    @property
    def rejected(self) -> bool:
        return self.problem is not None


@frozen
class EventRecord:
    """A progress event emitted by a run (``source="user"``) or a lifecycle entry (``"system"``)."""

    event_id: int
    run_id: str
    kind: str
    data_json: str | None
    created_at: datetime
    source: Literal["user", "system"] = "user"
    idx: int | None = None


@frozen
class WorkerInfo:
    """A worker (or an in-process client) that can hold leases."""

    worker_id: str
    host: str
    pid: int
    queues: tuple[str, ...] = ("default",)
    concurrency: int = 0
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    process_start: str | None = None
    version: str | None = None
    labels: Labels = ()
    pool: str | None = None
    load: int = 0
    lease_s: float = 30.0

    def alive_at(self, now: datetime) -> bool:
        """Whether its heartbeat is recent enough to count it as alive (within its lease)."""
        if self.heartbeat_at is None:
            return False
        return (now - self.heartbeat_at).total_seconds() <= self.lease_s


@frozen
class RunQuery:
    """A filter for listing runs, newest first; ``labels``: runs that carry every one of these
    ``(key, value)`` pairs (among others)."""

    states: tuple[RunState, ...] = ()
    workflow: str | None = None
    queue: str | None = None
    parent_run_id: str | None = None
    limit: int = 50
    before_run_id: str | None = None
    labels: Labels = ()


@frozen
class RunExport:
    """Everything stored about one run, to copy it between stores (its model calls' ledger
    rows, its launch mark and its inbox items included)."""

    run: Run
    steps: tuple[StepRecord, ...]
    signals: tuple[SignalRecord, ...]
    events: tuple[EventRecord, ...]
    ledger: tuple[LedgerEntry, ...] = ()
    launch: Launch | None = None
    inbox: tuple[InboxItem, ...] = ()


InboxOutcome = Literal["done", "failed", "cancelled", "waiting", "paused"]


@frozen
class Launch:
    """A run started by ``stepstone launch``: its outcomes go to the inbox.

    ``budget_usd``: the budget it was launched with (``launch`` also stores it as the run's
    budget). ``via``: for a child of a launched run, the launched run it comes from (only its
    waits and budget pauses reach the inbox). ``launched_at``: when (set by the store)."""

    run_id: str
    skill: str
    budget_usd: float | None = None
    via: str | None = None
    launched_at: datetime | None = None


@frozen
class InboxItem:
    """One outcome of a launched run, recorded in the same transaction as the state change:
    ``done``, ``failed``, ``cancelled`` or ``waiting`` (for a signal: a human's answer).
    ``summary`` is what the run said with ``ctx.notify`` since its previous item, else what the
    outcome says (the result, the error, the reason, what the wait asks); ``read_at`` is set by
    ``dismiss``."""

    item_id: int
    run_id: str
    skill: str
    outcome: InboxOutcome
    level: str
    summary: str
    created_at: datetime
    read_at: datetime | None = None
    mark: int = 0
    """The lease token of the change (with run and outcome, the item's key)."""
    notified: bool = False
    """The summary came from a ``ctx.notify``."""

    @property
    def unread(self) -> bool:
        return self.read_at is None
