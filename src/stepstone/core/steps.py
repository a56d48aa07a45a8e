"""Step calls: replay a recorded outcome, or run the body with attempts, retries and timeouts.

A step's journal position is taken when it is called (:meth:`Steps.lazy`); awaiting the
:class:`StepCall` replays its recorded result or failure, or runs it: an ``at_most_once`` step
writes a "started" mark first, each attempt runs under the step's timeout and the run's deadline,
a failure is retried by its :class:`~stepstone.core.retry.RetryPolicy` (in place when the delay
is short, else the run suspends until the next attempt is due), and the outcome is recorded.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from stepstone.core import codec
from stepstone.core.definitions import Step, StepOptions
from stepstone.core.failures import error_info, mark_steps, rebuild_error
from stepstone.core.frozen import frozen
from stepstone.core.ids import idempotency_key
from stepstone.core.memory import MemoryWrite, Written, conflict_again, conflict_pause
from stepstone.core.model import StepKind, StepRecord, StepStatus, Wait
from stepstone.core.observe import StepObservation
from stepstone.core.records import Until
from stepstone.core.retry import NO_RETRY, RetryPolicy
from stepstone.core.scope import StepInfo, active_caller, step_scope
from stepstone.errors import (
    DeadlinePassed,
    EncodeError,
    InvalidArgument,
    MemoryConflict,
    OutcomeUnknown,
    StepTimeout,
    Unwind,
)

if TYPE_CHECKING:
    from stepstone.core.engine import Execution
    from stepstone.core.ledger import MeteredCall

__all__ = ["MODEL_CALL", "Metered", "StepCall", "StepSpec", "Steps", "resolve_step"]

MODEL_CALL = "__stepstone_model_call__"
"""Set on a step body whose recorded result is the cassette (a ``ctx.llm`` call, a
``ctx.memory`` read or write): ``stepstone replay --from-seq`` never calls it again."""

log = logging.getLogger("stepstone.steps")

T = TypeVar("T")


@frozen
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


@frozen
class Metered:
    """What a step body returns when it made a priced model call: the value to record, and the
    call for the cost ledger (written in the same transaction as the step's record). A body that
    fails after such a call sets ``__stepstone_metered__`` on its exception instead."""

    value: Any
    call: MeteredCall


def resolve_step(
    name_or_fn: str | Callable[..., Any] | Awaitable[Any],
    args: tuple[Any, ...],
    retry: RetryPolicy | None,
    timeout_s: float | None,
    at_most_once: bool | None,
) -> tuple[str, Callable[..., Any] | Awaitable[Any], tuple[Any, ...], StepOptions, Any]:
    """Normalise ``ctx.step(name, fn, *args)`` and ``ctx.step(fn, *args)``."""
    if isinstance(name_or_fn, str):
        if not args:
            raise InvalidArgument(f"ctx.step({name_or_fn!r}, ...) needs a callable or awaitable")
        name, fn, args = name_or_fn, args[0], args[1:]
        if not name:
            raise InvalidArgument("ctx.step: the step name must not be empty")
    else:
        fn = name_or_fn
        if isinstance(fn, Step):
            name = fn.name
        else:
            name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    base = fn.options if isinstance(fn, Step) else StepOptions()
    rtype = fn.return_type if isinstance(fn, Step) else codec._NO_HINT
    body: Callable[..., Any] | Awaitable[Any] = fn.fn if isinstance(fn, Step) else fn
    if not callable(body) and not hasattr(body, "__await__"):
        raise InvalidArgument(f"ctx.step {name!r}: expected a callable or awaitable, got {body!r}")
    if not callable(body) and args:
        raise InvalidArgument(f"ctx.step {name!r}: arguments given with an awaitable")
    options = StepOptions(
        retry=retry if retry is not None else base.retry,
        timeout_s=timeout_s if timeout_s is not None else base.timeout_s,
        at_most_once=at_most_once if at_most_once is not None else base.at_most_once,
    )
    return name, body, args, options, rtype


class StepCall(Awaitable[T]):
    """A step call whose journal position is already taken; awaiting it runs (or replays) it."""

    __slots__ = ("_steps", "spec")

    def __init__(self, steps: Steps, spec: StepSpec) -> None:
        self._steps, self.spec = steps, spec

    @property
    def seq(self) -> int:
        return self.spec.seq

    def __await__(self) -> Any:
        return self._steps.run(self.spec).__await__()

    def run(self) -> Coroutine[Any, Any, T]:
        return self._steps.run(self.spec)


class Steps:
    """The step calls of one execution (and the ``StepCaller`` a ``@step`` call is handed to)."""

    __slots__ = ("_exe", "_running")

    def __init__(self, exe: Execution) -> None:
        self._exe = exe
        self._running: set[asyncio.Task[Any]] = set()

    def call_step(self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A ``@step`` function was called inside this workflow (the StepCaller protocol)."""
        call = self.lazy(step.name, step.fn, args, kwargs, step.options, step.return_type)
        return self.deliver(call)

    def lazy(
        self,
        name: str,
        fn: Callable[..., Any] | Awaitable[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: StepOptions,
        rtype: Any,
    ) -> StepCall[Any]:
        """Take the next journal position for a step call that runs when awaited."""
        exe = self._exe
        exe.raise_if_unwinding()
        return StepCall(
            self, StepSpec(exe.journal.allocate(), name, fn, args, kwargs, options, rtype)
        )

    def deliver(self, call: StepCall[Any]) -> Any:
        """What a step call returns: the call to await (async workflow), or its result (sync)."""
        exe = self._exe
        if exe.wf.is_async:
            return call
        return exe.block(call.run())

    async def run(self, spec: StepSpec) -> Any:
        exe = self._exe
        exe.raise_if_unwinding()
        record = exe.journal.lookup(spec.seq, StepKind.STEP, spec.name)
        attempt = 1
        if record is not None:
            _close_unused(spec.fn)
            if record.status is StepStatus.COMPLETED:
                if exe.reexecute_from is not None and spec.seq >= exe.reexecute_from:
                    await self._run_again(spec, record.output_json)
                return codec.decode(record.output_json, spec.rtype, f"{spec.where} result")
            if record.status is StepStatus.FAILED:
                assert record.error is not None
                exc = rebuild_error(record.error, exe.rt.registry)
                mark_steps(exc, (spec.seq,))
                raise exc
            exe.frontier(spec.seq)
            if record.status is StepStatus.STARTED and spec.options.at_most_once:
                exc = OutcomeUnknown(exe.run.run_id, spec.seq, spec.name)
                mark_steps(exc, (spec.seq,))
                failed = spec.record(
                    StepStatus.FAILED,
                    error=error_info(exc),
                    attempts=record.attempts,
                    started_at=record.started_at,
                    finished_at=exe.now(),
                )
                await exe.persist(failed)
                raise exc
            if record.status is StepStatus.RETRYING:
                attempt = record.attempts + 1
                retry_at = Until.decode(record.output_json).at
                if retry_at is not None and exe.now() < retry_at:
                    await self._back_off(spec.seq, retry_at)
        else:
            exe.frontier(spec.seq)
        return await self._attempts(spec, attempt)

    async def _attempts(self, spec: StepSpec, attempt: int) -> Any:
        exe = self._exe
        if exe.rt.observer is None:
            return await self._attempts_seen(spec, attempt, _UNSEEN)
        with exe.rt.observer.step(exe.run, spec.seq, spec.name) as seen:
            return await self._attempts_seen(spec, attempt, seen)

    async def _attempts_seen(self, spec: StepSpec, attempt: int, seen: StepObservation) -> Any:
        exe = self._exe
        options = spec.options
        retry = options.retry if callable(spec.fn) else NO_RETRY  # an awaitable runs only once
        conflicts = 0
        while True:
            exe.check_deadline()
            started = exe.now()
            if options.at_most_once:
                await exe.persist(
                    spec.record(StepStatus.STARTED, attempts=attempt, started_at=started)
                )
            metered: MeteredCall | None = None
            write: MemoryWrite | None = None
            try:
                value = await self._attempt(spec, attempt)
                if isinstance(value, Metered):
                    value, metered = value.value, value.call
                elif isinstance(value, Written):
                    value, write = value.value, value.write
                output = codec.encode(value, f"{spec.where} result")
            except (Unwind, asyncio.CancelledError):
                raise
            except Exception as exc:
                if isinstance(exc, EncodeError) or not retry.should_retry(exc, attempt):
                    await exe.persist(
                        spec.record(
                            StepStatus.FAILED,
                            error=error_info(exc),
                            attempts=attempt,
                            started_at=started,
                            finished_at=exe.now(),
                        ),
                        metered or getattr(exc, "__stepstone_metered__", None),
                    )
                    mark_steps(exc, (spec.seq,))
                    seen.failed(attempt, exc)
                    raise
                delay_s = retry.delay_after(exc, attempt)
                retry_at = exe.now() + timedelta(seconds=delay_s)
                await exe.persist(
                    spec.record(
                        StepStatus.RETRYING,
                        output_json=Until(retry_at).encode(),
                        error=error_info(exc),
                        attempts=attempt,
                        started_at=started,
                        finished_at=exe.now(),
                    )
                )
                if log.isEnabledFor(logging.WARNING):
                    log.warning(
                        "run %s step #%d %r attempt %d failed (%s: %s); retrying in %.2fs",
                        exe.run.run_id,
                        spec.seq,
                        spec.name,
                        attempt,
                        type(exc).__qualname__,
                        exc,
                        (retry_at - exe.now()).total_seconds(),
                        extra={"run_id": exe.run.run_id, "seq": spec.seq, "step": spec.name},
                    )
                seen.retrying(attempt, exc, delay_s)
                await self._back_off(spec.seq, retry_at)
                attempt += 1
                continue
            completed = spec.record(
                StepStatus.COMPLETED,
                output_json=output,
                attempts=attempt,
                started_at=started,
                finished_at=exe.now(),
            )
            try:
                await exe.persist(completed, metered, write)
            except MemoryConflict as exc:  # nothing was recorded: the write did not land
                conflicts += 1
                if conflict_again(exc, write, conflicts):
                    # an update reads the newer version and computes again, after a jittered
                    # pause that grows with the contention (so many writers spread out)
                    await asyncio.sleep(conflict_pause(conflicts))
                    continue
                failed = spec.record(
                    StepStatus.FAILED,
                    error=error_info(exc),
                    attempts=attempt,
                    started_at=started,
                    finished_at=exe.now(),
                )
                await exe.persist(failed, metered)
                mark_steps(exc, (spec.seq,))
                seen.failed(attempt, exc)
                raise
            seen.completed(attempt)
            # Return what a replay would return, so first runs and replays cannot diverge.
            if output == "null":
                return None
            return codec.decode(output, spec.rtype, f"{spec.where} result")

    async def _run_again(self, spec: StepSpec, recorded: str | None) -> None:
        """``stepstone replay --from-seq``: run a recorded step's body once more (a model call
        never: its recorded reply is the cassette) and compare the result, writing nothing."""
        if getattr(spec.fn, MODEL_CALL, False):
            return
        from stepstone.core.rerun import compare_output

        self._exe.reexecuted += 1
        try:
            value = await self._attempt(spec, 1)
        except Exception as exc:  # it completed when recorded: raising now is a divergence
            value = exc
        compare_output(spec.seq, spec.name, recorded, value)

    async def _back_off(self, seq: int, retry_at: datetime) -> None:
        """Wait before the next attempt: in place when short, else suspend and free the worker."""
        exe = self._exe
        delay = (retry_at - exe.now()).total_seconds()
        if delay > exe.rt.settings.retry_suspend_after_s:
            raise exe.suspend(Wait("retry", seq, until=retry_at))
        if delay > 0:
            await asyncio.sleep(delay)
        exe.raise_if_unwinding()

    async def _attempt(self, spec: StepSpec, attempt: int) -> Any:
        """One attempt: the step body under its timeout (and the run's deadline), with
        ``current_step()`` set and the workflow context cleared (steps inside a step are plain
        calls)."""
        exe = self._exe
        timeout = spec.options.timeout_s
        deadline = exe.run.deadline_at
        if deadline is not None:
            remaining = max((deadline - exe.now()).total_seconds(), 0.0)
            timeout = remaining if timeout is None else min(timeout, remaining)
        run_id = exe.run.run_id
        key = idempotency_key(run_id, spec.seq)
        info_token = step_scope.set(
            StepInfo(run_id, exe.wf.name, spec.seq, spec.name, attempt, key)
        )
        caller_token = active_caller.set(None)
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            if timeout is None:
                return await self._body(spec.fn, spec.args, spec.kwargs)
            async with asyncio.timeout(timeout):
                return await self._body(spec.fn, spec.args, spec.kwargs)
        except TimeoutError:
            if deadline is not None and exe.now() >= deadline:
                raise exe.set_unwind(DeadlinePassed(run_id)) from None
            if spec.options.timeout_s is None:
                raise
            raise StepTimeout(spec.name, spec.options.timeout_s) from None
        finally:
            if task is not None:
                self._running.discard(task)
            active_caller.reset(caller_token)
            step_scope.reset(info_token)

    async def _body(
        self, fn: Callable[..., Any] | Awaitable[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Run a step body: awaitables and coroutine functions here, sync ones on a thread."""
        if not callable(fn):
            return await fn
        if inspect.iscoroutinefunction(fn):
            return await fn(*args, **kwargs)
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, *args, **kwargs)
        exe = self._exe
        result = await exe.rt.step_pool.run(exe.loop, call)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def cancel_running(self) -> None:
        """Stop step bodies still running (e.g. siblings of a suspended ``asyncio.gather``)."""
        current = asyncio.current_task()
        pending = [t for t in self._running if t is not current and not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


class _Unseen:
    """The step observation when nothing observes (no tracer given)."""

    def retrying(self, attempt: int, error: BaseException, delay_s: float) -> None:
        pass

    def failed(self, attempt: int, error: BaseException) -> None:
        pass

    def completed(self, attempt: int) -> None:
        pass


_UNSEEN = _Unseen()


def _close_unused(fn: object) -> None:
    """A coroutine object handed to ``ctx.step`` but replayed is closed, not left un-awaited."""
    if inspect.iscoroutine(fn):
        fn.close()
