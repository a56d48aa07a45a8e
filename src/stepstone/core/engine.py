"""One execution of a claimed run: the plumbing its steps, waits, children and values share.

The workflow function is re-run from the top; the :class:`~stepstone.core.replay.Journal` answers
every call that was recorded, and only new calls execute. What a workflow asks for is handled by
one collaborator each — :class:`~stepstone.core.steps.Steps`, :class:`~stepstone.core.waits.Waits`,
:class:`~stepstone.core.children.Children`, :class:`~stepstone.core.values.Values` — over the
:class:`Execution` here, which keeps what they share: the journal, writes fenced by the lease, the
sticky unwind (cancel, pause, deadline, lost lease), background writes and the bridge from a sync
workflow's thread to the event loop. Waiting calls record what they wait for and raise
:class:`~stepstone.errors.Suspend`, which unwinds user code; the executor then suspends the run so
that no worker is held while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from stepstone.core.children import Children
from stepstone.core.clock import Clock
from stepstone.core.definitions import Registry, Workflow
from stepstone.core.frozen import frozen
from stepstone.core.model import Claim, Control, StepRecord, Wait
from stepstone.core.port import Store
from stepstone.core.replay import Journal
from stepstone.core.steps import Steps
from stepstone.core.values import Values
from stepstone.core.waits import Waits
from stepstone.errors import (
    BudgetExhausted,
    CancelRequested,
    CheckFrontier,
    CheckpointFailed,
    DeadlinePassed,
    HandBack,
    LeaseLost,
    MemoryConflict,
    PauseRequested,
    StoreError,
    Suspend,
    Unwind,
)

if TYPE_CHECKING:
    from stepstone.core.ledger import MeteredCall
    from stepstone.core.llm import Models
    from stepstone.core.memory import MemoryWrite
    from stepstone.core.observe import Observer
    from stepstone.core.settings import Settings

__all__ = ["Execution", "Runtime"]

T = TypeVar("T")

# When several unwinds happen at once (e.g. siblings in ctx.parallel), the strongest one wins.
_SEVERITY: dict[type[BaseException], int] = {
    LeaseLost: 7,
    CancelRequested: 6,
    DeadlinePassed: 5,
    PauseRequested: 4,
    BudgetExhausted: 4,
    CheckpointFailed: 3,
    HandBack: 2,
    CheckFrontier: 1,
    Suspend: 0,
}


def _severity(exc: BaseException) -> int:
    return _SEVERITY.get(type(exc), -1)


class ThreadPool(Protocol):
    """Where sync step bodies and sync workflow functions run (``runtime.threads``)."""

    def run(self, loop: asyncio.AbstractEventLoop, call: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``call()`` on a thread; the future (of ``loop``) gets its result or exception.
        Cancelling the future before the call starts means it never does."""
        ...

    def shutdown(self, wait: bool = True) -> None:
        """Start no more calls; with ``wait``, until the running ones have finished."""
        ...


@frozen
class Runtime:
    """What the worker (or in-process client) lends each execution."""

    store: Store
    registry: Registry
    clock: Clock
    settings: Settings
    step_pool: ThreadPool
    workflow_pool: ThreadPool
    child_started: Callable[[str, str], None] | None = None
    """Told ``(parent_run_id, child_run_id)`` once a child run is created, so an in-process
    driver can execute it at once (a worker finds it by claiming)."""
    models: Models | None = None
    """The model providers ``ctx.llm`` calls (None: ctx.llm raises, saying how to give some)."""
    observer: Observer | None = None
    """Told about executions and steps (spans, metrics); None: nothing is observed."""


class Execution:
    """One execution of one claimed run. Not reused: a resumed run gets a new Execution."""

    def __init__(
        self,
        rt: Runtime,
        claim: Claim,
        wf: Workflow[Any, Any],
        records: list[StepRecord],
        *,
        check_only: bool = False,
    ) -> None:
        self.rt = rt
        self.claim = claim
        self.run = claim.run
        self.wf = wf
        self.journal = Journal(claim.run.run_id, records)
        self.check_only = check_only
        # `stepstone replay --from-seq N`: ordinary steps from seq N on run again and are
        # compared with their records (stepstone.core.rerun); reexecuted counts them
        self.reexecute_from: int | None = None
        self.reexecuted = 0
        self.loop = asyncio.get_running_loop()
        self.parked: list[Wait] = []  # what the run waits for when it suspends
        self.unwind: BaseException | None = None
        self.background: list[asyncio.Future[Any]] = []
        self.task: asyncio.Task[Any] | None = None
        self.steps = Steps(self)
        self.waits = Waits(self)
        self.children = Children(self)
        self.values = Values(self, claim.run.state_json)

    def now(self) -> datetime:
        return self.rt.clock.now()

    # --- unwinding ---------------------------------------------------------------------------

    def raise_if_unwinding(self) -> None:
        """Any call after a cancel, pause, deadline or lost lease re-raises it (it is sticky)."""
        if self.unwind is not None:
            raise self.unwind

    def set_unwind(self, exc: BaseException) -> BaseException:
        if self.unwind is None or _severity(exc) > _severity(self.unwind):
            self.unwind = exc
        return self.unwind

    def on_control(self, control: Control | None, reason: str | None = None) -> None:
        """Apply a cancel/pause requested while running (seen at a write or a heartbeat)."""
        if control == "cancel":
            self.set_unwind(CancelRequested(reason))
        elif control == "pause":
            self.set_unwind(PauseRequested("paused"))

    def lose_lease(self) -> None:
        """Called by the heartbeat: another worker owns the run now. Stop at once."""
        self.set_unwind(LeaseLost(self.run.run_id, self.claim.lease_token))
        self._stop_task()

    def deadline_hit(self) -> None:
        """The run's deadline passed while its code was running: stop it now, wherever it is."""
        self.set_unwind(DeadlinePassed(self.run.run_id))
        self._stop_task()

    def _stop_task(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def check_deadline(self) -> None:
        deadline = self.run.deadline_at
        if deadline is not None and self.now() >= deadline:
            raise self.set_unwind(DeadlinePassed(self.run.run_id))

    def store_failed(self, error: StoreError) -> BaseException:
        """A write the run needs failed in the store: unwind (sticky), never an ordinary
        exception in workflow code; the executor hands the run back or fails it."""
        return self.set_unwind(CheckpointFailed(error))

    def suspend(self, wait: Wait) -> Suspend:
        """Register what the run waits for; the caller raises the result to unwind."""
        self.parked.append(wait)
        return Suspend(wait.kind)

    def frontier(self, seq: int) -> None:
        """In check mode nothing may execute: reaching a new call ends the check here."""
        if self.check_only:
            raise CheckFrontier(seq)

    # --- writes ------------------------------------------------------------------------------

    async def persist(
        self,
        record: StepRecord,
        metered: MeteredCall | None = None,
        memory: MemoryWrite | None = None,
    ) -> None:
        """Record one journal entry (fenced by the lease) and honour any control request; a
        model call the step made (``metered``) goes to the cost ledger in the same write, and so
        does the memory document it wrote (``memory``: a conflict raises MemoryConflict and
        records nothing)."""
        await self.flush_background()
        state_json = self.values.take_state()
        ledger = None
        if metered is not None:
            from stepstone.core.ledger import LedgerEntry  # loaded by the first model call

            run = self.run
            ledger = LedgerEntry(
                run.run_id,
                record.seq,
                record.name,
                self.wf.name,
                run.queue,
                metered,
                self.now(),
                run.routing.concurrency_key,
            )
        try:
            control = await self.rt.store.record_step(
                self.claim,
                record,
                now=self.now(),
                state_json=state_json,
                ledger=ledger,
                memory=memory,
            )
        except StoreError as exc:
            raise self.store_failed(exc) from exc
        except MemoryConflict:
            if state_json is not None:
                self.values.state_changed()  # rolled back with the record: write it next time
            raise
        self.journal.remember(record)
        if control is not None:
            self.on_control(control)
            self.raise_if_unwinding()

    def record_later(self, record: StepRecord) -> None:
        """Journal ``record`` now and write it in the background (for calls that do not await)."""
        self.journal.remember(record)
        self.schedule(self._record_quietly(record))

    async def _record_quietly(self, record: StepRecord) -> None:
        state_json = self.values.take_state()
        control = await self.store_call(
            self.rt.store.record_step(self.claim, record, now=self.now(), state_json=state_json)
        )
        if control is not None:
            self.on_control(control)

    async def store_call(self, call: Awaitable[T]) -> T:
        """Await a store call the run needs; a store failure unwinds the run (see
        :meth:`store_failed`) instead of reaching workflow code as an ordinary exception."""
        try:
            return await call
        except StoreError as exc:
            raise self.store_failed(exc) from exc

    # --- background writes and the thread bridge -------------------------------------------

    async def flush_background(self) -> None:
        """Writes scheduled without an await (ctx.now(), emit) land before the next write."""
        while self.background:
            pending, self.background = self.background, []
            for fut in pending:
                await fut

    def schedule(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Start a write now without awaiting it (from the loop thread or a workflow thread)."""
        if _on_loop(self.loop):
            self.background.append(self.loop.create_task(coro))
        else:
            asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def block(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop from a sync workflow's thread and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def cancel_in_flight(self) -> None:
        """Stop step bodies still running (e.g. siblings of a suspended ``asyncio.gather``) and
        let background writes end."""
        await self.steps.cancel_running()
        for fut in self.background:
            if not fut.done():
                with contextlib.suppress(Exception, Unwind):
                    await fut
        self.background.clear()


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
