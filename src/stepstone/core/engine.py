"""One execution of a claimed run: steps with retries and timeouts, waits, children, values.

The workflow function is re-run from the top; the :class:`~stepstone.core.replay.Journal` answers
every call that was recorded, and only new calls execute. Waiting calls record what they wait for
and raise :class:`Suspend`, which unwinds user code; the executor then suspends the run so that no
worker is held while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import json
import random
import traceback
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from stepstone.core import codec
from stepstone.core.clock import Clock
from stepstone.core.definitions import Registry, Step, StepOptions, Workflow
from stepstone.core.ids import child_run_id, idempotency_key
from stepstone.core.jsonschema import schema_for
from stepstone.core.model import (
    Claim,
    Control,
    ErrorInfo,
    NewRun,
    StepKind,
    StepRecord,
    StepStatus,
    Wait,
)
from stepstone.core.port import LeaseLost, NewEvent, Store
from stepstone.core.replay import Journal, rebuild_error
from stepstone.core.retry import NO_RETRY
from stepstone.core.scope import StepInfo, active_caller, step_scope
from stepstone.errors import (
    EncodeError,
    InvalidArgument,
    OutcomeUnknown,
    RunFailed,
    StepTimeout,
    Unwind,
    WaitTimeout,
)

if TYPE_CHECKING:
    from stepstone.core.settings import Settings

__all__ = [
    "CancelRequested",
    "CheckFrontier",
    "DeadlinePassed",
    "Execution",
    "HandBack",
    "PauseRequested",
    "Runtime",
    "StepCall",
    "StepSpec",
    "Suspend",
    "error_info",
]

T = TypeVar("T")


# --- unwinding signals -------------------------------------------------------------------------


class Suspend(Unwind):
    """The run must wait (timer, signal, child, retry back-off); unwinds to the executor."""


class CancelRequested(Unwind):
    """A cancel was requested; the run stops at this step boundary."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(reason or "cancelled")
        self.reason = reason


class PauseRequested(Unwind):
    """A pause was requested; the run stops at this step boundary until unpaused."""


class DeadlinePassed(Unwind):
    """The run's ``deadline_s`` passed; the run fails."""


class HandBack(Unwind):
    """The worker is shutting down: stop at this step boundary and hand the run back."""


class CheckFrontier(Unwind):
    """``stepstone check`` reached a call with no recorded outcome: the replay fits so far."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"reached seq {seq}")
        self.seq = seq


_SEVERITY: dict[type[BaseException], int] = {
    LeaseLost: 6,
    CancelRequested: 5,
    DeadlinePassed: 4,
    PauseRequested: 3,
    HandBack: 2,
    CheckFrontier: 1,
    Suspend: 0,
}


def _severity(exc: BaseException) -> int:
    return _SEVERITY.get(type(exc), -1)


# --- what an execution needs ---------------------------------------------------------------------


@dataclass(frozen=True)
class Runtime:
    """What the worker (or in-process client) lends each execution."""

    store: Store
    registry: Registry
    clock: Clock
    settings: Settings
    step_pool: Executor
    workflow_pool: Executor


def error_info(exc: BaseException, *, with_traceback: bool = True) -> ErrorInfo:
    """How a failure is stored: type, module, message, traceback, JSON args, causing steps."""
    try:
        args_json: str | None = json.dumps(list(exc.args))
    except (TypeError, ValueError):
        args_json = None
    tb = "".join(traceback.format_exception(exc)) if with_traceback else None
    return ErrorInfo(
        type=type(exc).__qualname__,
        message=str(exc),
        traceback=tb,
        module=type(exc).__module__,
        args_json=args_json,
        step_seqs=tuple(getattr(exc, "__stepstone_seqs__", ())),
    )


def _mark_steps(exc: BaseException, seqs: tuple[int, ...]) -> None:
    # exceptions with __slots__ cannot carry it: a retry then re-runs no failed step
    with contextlib.suppress(AttributeError):
        exc.__stepstone_seqs__ = seqs  # type: ignore[attr-defined]


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


# --- awaitable calls ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step call: its journal position, name, body, arguments and options."""

    seq: int
    name: str
    fn: Callable[..., Any] | Awaitable[Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: StepOptions
    rtype: Any

    @property
    def where(self) -> str:
        return f"step {self.name!r} #{self.seq}"

    def record(self, status: StepStatus, **fields: Any) -> StepRecord:
        return StepRecord(self.seq, self.name, StepKind.STEP, status, **fields)


class StepCall(Awaitable[T]):
    """A step call whose journal position is already taken; awaiting it runs (or replays) it."""

    __slots__ = ("_exe", "spec")

    def __init__(self, exe: Execution, spec: StepSpec) -> None:
        self._exe, self.spec = exe, spec

    @property
    def seq(self) -> int:
        return self.spec.seq

    def __await__(self) -> Any:
        return self._exe.run_step(self.spec).__await__()

    def run(self) -> Coroutine[Any, Any, T]:
        return self._exe.run_step(self.spec)


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
        self.loop = asyncio.get_running_loop()
        self.waits: list[Wait] = []
        self.unwind: BaseException | None = None
        self.state: dict[str, Any] = (
            json.loads(claim.run.state_json) if claim.run.state_json else {}
        )
        self.state_dirty = False
        self.emit_count = 0
        self.background: list[asyncio.Future[Any]] = []
        self.step_tasks: set[asyncio.Task[Any]] = set()
        self.task: asyncio.Task[Any] | None = None

    # --- shared plumbing -------------------------------------------------------------------

    def now(self) -> datetime:
        return self.rt.clock.now()

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
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def deadline_hit(self) -> None:
        """The run's deadline passed while its code was running: stop it now, wherever it is."""
        self.set_unwind(DeadlinePassed(self.run.run_id))
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def take_state(self) -> str | None:
        if not self.state_dirty:
            return None
        self.state_dirty = False
        return codec.encode(self.state, "ctx.state")

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

    async def persist(self, record: StepRecord) -> None:
        """Record one journal entry (fenced by the lease) and honour any control request."""
        await self.flush_background()
        control = await self.rt.store.record_step(
            self.claim, record, now=self.now(), state_json=self.take_state()
        )
        self.journal.remember(record)
        if control is not None:
            self.on_control(control)
            self.raise_if_unwinding()

    def suspend(self, wait: Wait) -> Suspend:
        self.waits.append(wait)
        return Suspend(wait.kind)

    def check_deadline(self) -> None:
        deadline = self.run.deadline_at
        if deadline is not None and self.now() >= deadline:
            raise self.set_unwind(DeadlinePassed(self.run.run_id))

    def frontier(self, seq: int) -> None:
        """In check mode nothing may execute: reaching a new call ends the check here."""
        if self.check_only:
            raise CheckFrontier(seq)

    # --- calls made by the context -----------------------------------------------------------

    def call_step(self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A ``@step`` function was called inside this workflow (the StepCaller protocol)."""
        return self.make_step_call(step.name, step.fn, args, kwargs, step.options, step.return_type)

    def make_step_call(
        self,
        name: str,
        fn: Callable[..., Any] | Awaitable[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: StepOptions,
        rtype: Any,
    ) -> Any:
        self.raise_if_unwinding()
        spec = StepSpec(self.journal.allocate(), name, fn, args, kwargs, options, rtype)
        call: StepCall[Any] = StepCall(self, spec)
        if self.wf.is_async:
            return call
        return self.block(call.run())

    def block(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop from a sync workflow's thread and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def run_step(self, spec: StepSpec) -> Any:
        self.raise_if_unwinding()
        record = self.journal.lookup(spec.seq, StepKind.STEP, spec.name)
        attempt = 1
        if record is not None:
            _close_unused(spec.fn)
            if record.status is StepStatus.COMPLETED:
                return codec.decode(record.output_json, spec.rtype, f"{spec.where} result")
            if record.status is StepStatus.FAILED:
                assert record.error is not None
                exc = rebuild_error(record.error)
                _mark_steps(exc, (spec.seq,))
                raise exc
            self.frontier(spec.seq)
            if record.status is StepStatus.STARTED and spec.options.at_most_once:
                exc = OutcomeUnknown(self.run.run_id, spec.seq, spec.name)
                _mark_steps(exc, (spec.seq,))
                failed = spec.record(
                    StepStatus.FAILED,
                    error=error_info(exc),
                    attempts=record.attempts,
                    started_at=record.started_at,
                    finished_at=self.now(),
                )
                await self.persist(failed)
                raise exc
            if record.status is StepStatus.RETRYING:
                attempt = record.attempts + 1
                retry_at = _until(record.output_json)
                if retry_at is not None and self.now() < retry_at:
                    await self.back_off(spec.seq, retry_at)
        else:
            self.frontier(spec.seq)
        return await self._attempts(spec, attempt)

    async def _attempts(self, spec: StepSpec, attempt: int) -> Any:
        options = spec.options
        retry = options.retry if callable(spec.fn) else NO_RETRY  # an awaitable runs only once
        while True:
            self.check_deadline()
            started = self.now()
            if options.at_most_once:
                await self.persist(
                    spec.record(StepStatus.STARTED, attempts=attempt, started_at=started)
                )
            try:
                value = await self._invoke(spec, attempt)
                output = codec.encode(value, f"{spec.where} result")
            except (Unwind, asyncio.CancelledError):
                raise
            except Exception as exc:
                if isinstance(exc, EncodeError) or not retry.should_retry(exc, attempt):
                    await self.persist(
                        spec.record(
                            StepStatus.FAILED,
                            error=error_info(exc),
                            attempts=attempt,
                            started_at=started,
                            finished_at=self.now(),
                        )
                    )
                    _mark_steps(exc, (spec.seq,))
                    raise
                retry_at = self.now() + timedelta(seconds=retry.delay_s(attempt))
                await self.persist(
                    spec.record(
                        StepStatus.RETRYING,
                        output_json=_dumps({"until": retry_at.isoformat()}),
                        error=error_info(exc),
                        attempts=attempt,
                        started_at=started,
                        finished_at=self.now(),
                    )
                )
                await self.back_off(spec.seq, retry_at)
                attempt += 1
                continue
            await self.persist(
                spec.record(
                    StepStatus.COMPLETED,
                    output_json=output,
                    attempts=attempt,
                    started_at=started,
                    finished_at=self.now(),
                )
            )
            # Return what a replay would return, so first runs and replays cannot diverge.
            if output == "null":
                return None
            return codec.decode(output, spec.rtype, f"{spec.where} result")

    async def back_off(self, seq: int, retry_at: datetime) -> None:
        """Wait before the next attempt: in place when short, else suspend and free the worker."""
        delay = (retry_at - self.now()).total_seconds()
        if delay > self.rt.settings.retry_suspend_after_s:
            raise self.suspend(Wait("retry", seq, until=retry_at))
        if delay > 0:
            await asyncio.sleep(delay)
        self.raise_if_unwinding()

    async def _invoke(self, spec: StepSpec, attempt: int) -> Any:
        """One attempt: the step body under its timeout (and the run's deadline), with
        ``current_step()`` set and the workflow context cleared (steps inside a step are plain
        calls)."""
        timeout = spec.options.timeout_s
        deadline = self.run.deadline_at
        if deadline is not None:
            remaining = max((deadline - self.now()).total_seconds(), 0.0)
            timeout = remaining if timeout is None else min(timeout, remaining)
        run_id = self.run.run_id
        key = idempotency_key(run_id, spec.seq)
        info_token = step_scope.set(
            StepInfo(run_id, self.wf.name, spec.seq, spec.name, attempt, key)
        )
        caller_token = active_caller.set(None)
        task = asyncio.current_task()
        if task is not None:
            self.step_tasks.add(task)
        try:
            if timeout is None:
                return await self._call(spec.fn, spec.args, spec.kwargs)
            async with asyncio.timeout(timeout):
                return await self._call(spec.fn, spec.args, spec.kwargs)
        except TimeoutError:
            if deadline is not None and self.now() >= deadline:
                raise self.set_unwind(DeadlinePassed(run_id)) from None
            if spec.options.timeout_s is None:
                raise
            raise StepTimeout(spec.name, spec.options.timeout_s) from None
        finally:
            if task is not None:
                self.step_tasks.discard(task)
            active_caller.reset(caller_token)
            step_scope.reset(info_token)

    async def _call(
        self, fn: Callable[..., Any] | Awaitable[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Run a step body: awaitables and coroutine functions here, sync ones on a thread."""
        if not callable(fn):
            return await fn
        if inspect.iscoroutinefunction(fn):
            return await fn(*args, **kwargs)
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, *args, **kwargs)
        result = await self.loop.run_in_executor(self.rt.step_pool, call)
        if inspect.isawaitable(result):
            result = await result
        return result

    # --- waits -------------------------------------------------------------------------------

    async def sleep_until(self, seq: int, until: datetime) -> None:
        self.raise_if_unwinding()
        record = self.journal.lookup(seq, StepKind.SLEEP, "sleep")
        if record is None:
            self.frontier(seq)
            done = until <= self.now()
            await self.persist(
                StepRecord(
                    seq,
                    "sleep",
                    StepKind.SLEEP,
                    StepStatus.COMPLETED if done else StepStatus.WAITING,
                    output_json=_dumps({"until": until.isoformat()}),
                    started_at=self.now(),
                )
            )
            if done:
                return
        else:
            recorded = _until(record.output_json)
            until = recorded if recorded is not None else until
            if record.status is StepStatus.COMPLETED:
                return
            if until <= self.now():
                if not self.check_only:  # mark it over, so describe() shows it done
                    await self.persist(
                        replace(record, status=StepStatus.COMPLETED, finished_at=self.now())
                    )
                return
            self.frontier(seq)
        raise self.suspend(Wait("timer", seq, until=until))

    async def wait_signal(self, seq: int, name: str, timeout_s: float | None, tp: Any) -> Any:
        self.raise_if_unwinding()
        record = self.journal.lookup(seq, StepKind.SIGNAL, name)
        if record is not None and record.status is StepStatus.COMPLETED:
            return _signal_result(record.output_json, name, timeout_s, tp, self.run.run_id, seq)
        self.frontier(seq)
        if record is None:
            until = self.now() + timedelta(seconds=timeout_s) if timeout_s is not None else None
        else:
            until = _until(record.output_json)
        await self.flush_background()
        payload = await self.rt.store.take_signal(
            self.claim, seq, name, until=until, now=self.now()
        )
        if payload is not None:
            output = f'{{"payload":{payload}}}'
            self.journal.remember(
                StepRecord(seq, name, StepKind.SIGNAL, StepStatus.COMPLETED, output_json=output)
            )
            return _signal_result(output, name, timeout_s, tp, self.run.run_id, seq)
        self.journal.remember(
            StepRecord(
                seq,
                name,
                StepKind.SIGNAL,
                StepStatus.WAITING,
                output_json=_dumps({"until": until.isoformat() if until else None}),
            )
        )
        if until is not None and self.now() >= until:
            timeout_output = '{"timeout":true}'
            await self.persist(
                StepRecord(
                    seq, name, StepKind.SIGNAL, StepStatus.COMPLETED, output_json=timeout_output
                )
            )
            return _signal_result(timeout_output, name, timeout_s, tp, self.run.run_id, seq)
        schema = None if tp is _ANY else codec.encode(schema_for(tp), "signal schema")
        raise self.suspend(Wait("signal", seq, name=name, until=until, schema_json=schema))

    async def child(
        self,
        seq: int,
        wf: Workflow[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        start_only: bool,
        existing_run_id: str | None = None,
        queue: str | None = None,
    ) -> Any:
        """Start (or find) a child run; return its id (``start_only``) or wait for its result."""
        self.raise_if_unwinding()
        kind = StepKind.START_CHILD if start_only else StepKind.CHILD
        record = self.journal.lookup(seq, kind, wf.name)
        self.rt.registry.add(wf)
        if record is not None:
            child_id = str(json.loads(record.output_json or "{}").get("run_id"))
            if start_only:
                return child_id
            if record.status is StepStatus.COMPLETED:
                return _child_result(record.output_json, wf, self.run.run_id, seq)
            self.frontier(seq)
        else:
            self.frontier(seq)
            child_id = existing_run_id or child_run_id(self.run.run_id, seq)
            status = StepStatus.COMPLETED if start_only else StepStatus.WAITING
            entry = StepRecord(
                seq,
                wf.name,
                kind,
                status,
                output_json=_dumps({"run_id": child_id}),
                started_at=self.now(),
            )
            await self.flush_background()
            if existing_run_id is None:
                wf.bind_input(args, kwargs)
                child = NewRun(
                    run_id=child_id,
                    workflow=wf.name,
                    version=wf.version,
                    input_json=encode_input(args, kwargs, f"child {wf.name!r} input"),
                    queue=queue or wf.queue or self.run.queue,
                    priority=self.run.priority,
                    deadline_at=_deadline(self.now(), wf.deadline_s),
                    parent_run_id=self.run.run_id,
                    parent_seq=seq,
                )
                await self.rt.store.start_child(self.claim, entry, child, now=self.now())
                self.journal.remember(entry)
            else:
                await self.persist(entry)
            if start_only:
                return child_id
        return await self.await_child(seq, wf, child_id)

    async def await_child(self, seq: int, wf: Workflow[Any, Any], child_id: str) -> Any:
        child = await self.rt.store.get_run(child_id)
        if child is None:
            raise InvalidArgument(
                f"run {self.run.run_id} step #{seq}: child run {child_id} is gone"
            )
        if not child.is_finished:
            raise self.suspend(Wait("child", seq, name=child_id))
        outcome: dict[str, Any] = {"run_id": child_id, "state": child.state.value}
        if child.output_json is not None:
            outcome["output"] = json.loads(child.output_json)
        if child.error is not None:
            outcome["error"] = {"type": child.error.type, "message": child.error.message}
        output = _dumps(outcome)
        await self.persist(
            StepRecord(seq, wf.name, StepKind.CHILD, StepStatus.COMPLETED, output_json=output)
        )
        return _child_result(output, wf, self.run.run_id, seq)

    # --- journaled values --------------------------------------------------------------------

    def journaled(self, kind: StepKind, make: Callable[[], Any], tp: Any) -> Any:
        """``ctx.now()``/``random()``/``uuid()``: replay the recorded value or record a new one."""
        self.raise_if_unwinding()
        seq = self.journal.allocate()
        name = kind.value
        record = self.journal.lookup(seq, kind, name)
        if record is not None:
            return codec.decode(record.output_json, tp, f"ctx.{name}() #{seq}")
        self.frontier(seq)
        value = make()
        entry = StepRecord(
            seq,
            name,
            kind,
            StepStatus.COMPLETED,
            output_json=codec.encode(value, name),
            started_at=self.now(),
        )
        self.journal.remember(entry)
        self.schedule(self._record_quietly(entry))
        return value

    async def _record_quietly(self, record: StepRecord) -> None:
        control = await self.rt.store.record_step(
            self.claim, record, now=self.now(), state_json=self.take_state()
        )
        if control is not None:
            self.on_control(control)

    def emit(self, kind: str, data: Any) -> None:
        self.raise_if_unwinding()
        if not isinstance(kind, str) or not kind:
            raise InvalidArgument("ctx.emit(kind, data): kind must be a non-empty string")
        data_json = codec.encode(data, f"ctx.emit({kind!r})")
        idx = self.emit_count
        self.emit_count += 1
        if self.journal.replaying or self.check_only:
            return  # emitted the first time this code ran
        event = NewEvent(kind, data_json, idx)
        self.schedule(self.rt.store.append_events(self.claim, [event], now=self.now()))

    def set_state(self, key: str, value: Any) -> None:
        self.raise_if_unwinding()
        codec.encode(value, f"ctx.state[{key!r}]")  # fail here, at the assignment, not later
        self.state[key] = value
        self.state_dirty = True

    def del_state(self, key: str) -> None:
        del self.state[key]
        self.state_dirty = True

    def new_random(self) -> float:
        value: float = self.journaled(StepKind.RANDOM, random.random, float)
        return value

    def new_uuid(self) -> uuid.UUID:
        return self.journaled(StepKind.UUID, uuid.uuid4, uuid.UUID)  # type: ignore[no-any-return]

    def current_time(self) -> datetime:
        return self.journaled(StepKind.NOW, self.now, datetime)  # type: ignore[no-any-return]

    async def cancel_in_flight(self) -> None:
        """Stop step bodies still running (e.g. siblings of a suspended ``asyncio.gather``)."""
        current = asyncio.current_task()
        pending = [t for t in self.step_tasks if t is not current and not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        for fut in self.background:
            if not fut.done():
                with contextlib.suppress(Exception, Unwind):
                    await fut
        self.background.clear()


_ANY: Any = codec._NO_HINT


def encode_input(args: tuple[Any, ...], kwargs: dict[str, Any], where: str) -> str:
    """The stored form of a run's input."""
    return codec.encode({"args": list(args), "kwargs": kwargs}, where)


def _deadline(now: datetime, deadline_s: float | None) -> datetime | None:
    return now + timedelta(seconds=deadline_s) if deadline_s is not None else None


def _until(output_json: str | None) -> datetime | None:
    if not output_json:
        return None
    value = json.loads(output_json).get("until")
    return datetime.fromisoformat(value) if value else None


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _close_unused(fn: object) -> None:
    """A coroutine object handed to ``ctx.step`` but replayed is closed, not left un-awaited."""
    if inspect.iscoroutine(fn):
        fn.close()


def _signal_result(
    output_json: str | None, name: str, timeout_s: float | None, tp: Any, run_id: str, seq: int
) -> Any:
    outcome = json.loads(output_json or "{}")
    if outcome.get("timeout"):
        raise WaitTimeout(f"signal {name!r}", timeout_s)
    return codec.decode_value(outcome.get("payload"), tp, f"run {run_id} signal {name!r} #{seq}")


def _child_result(output_json: str | None, wf: Workflow[Any, Any], run_id: str, seq: int) -> Any:
    outcome = json.loads(output_json or "{}")
    if outcome.get("state") == "completed":
        return codec.decode_value(
            outcome.get("output"), wf.return_type, f"run {run_id} child #{seq}"
        )
    error = outcome.get("error") or {}
    raise RunFailed(
        outcome.get("run_id", "?"),
        outcome.get("state", "failed"),
        error.get("type", "Error"),
        error.get("message", ""),
    )
