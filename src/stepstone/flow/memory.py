"""A flow run in memory: the compiled walker over a context that keeps no journal.

``run_workflow(flow, input)`` without a store promises nothing durable (there is nothing to
resume), so it needs no store: the same compiled flow function (the walker of
:mod:`stepstone.flow.compile`) runs over :class:`MemoryContext`, which gives each task the same
treatment as the engine's steps — task context, Pydantic in and out, retries with back-off,
timeouts, concurrent fork branches, delays — without writing anything. Plain ``def`` tasks are
called inline (no thread hop) unless they run beside others in a fork or under a timeout.

A signal wait cannot be answered here (nobody holds the run's id): with a timeout it times out,
without one it is refused at once (use ``run_durable_workflow``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, cast

from stepstone.core.ids import new_run_id
from stepstone.core.retry import RetryPolicy
from stepstone.errors import FlowError, RunFailed, StepTimeout, WaitTimeout

if TYPE_CHECKING:
    from stepstone.core.context import WorkflowContext
    from stepstone.flow.compile import FlowWorkflow

__all__ = ["MemoryContext", "run_in_memory"]


class _Call:
    """A task call not started yet: awaited alone it runs inline; in ``parallel`` beside others
    a plain ``def`` body runs on a thread so the branches overlap."""

    __slots__ = ("fn", "name", "retry", "threaded", "timeout_s", "value")

    def __init__(
        self,
        name: str,
        fn: Callable[[Any], Any],
        value: Any,
        retry: RetryPolicy | None,
        timeout_s: float | None,
        threaded: bool,
    ) -> None:
        self.name, self.fn, self.value = name, fn, value
        self.retry, self.timeout_s, self.threaded = retry, timeout_s, threaded

    def __await__(self) -> Generator[Any, None, Any]:
        return self.run(threaded=self.threaded).__await__()

    async def run(self, *, threaded: bool) -> Any:
        attempt = 1
        while True:
            try:
                return await self._attempt(threaded)
            except Exception as exc:
                policy = self.retry
                if policy is None or not policy.should_retry(exc, attempt):
                    raise
                await asyncio.sleep(policy.delay_s(attempt))
                attempt += 1

    async def _attempt(self, threaded: bool) -> Any:
        fn = self.fn
        is_async = _is_async(fn)
        if self.timeout_s is None:
            if is_async:
                return await fn(self.value)
            if not threaded:
                return fn(self.value)
        call = functools.partial(contextvars.copy_context().run, fn, self.value)
        try:
            async with asyncio.timeout(self.timeout_s):
                if is_async:
                    return await fn(self.value)
                return await asyncio.get_running_loop().run_in_executor(None, call)
        except TimeoutError:
            if self.timeout_s is None:
                raise
            raise StepTimeout(self.name, self.timeout_s) from None


def _is_async(fn: Callable[..., Any]) -> bool:
    target = fn.func if isinstance(fn, functools.partial) else fn
    return _coroutine_function(target)


@functools.lru_cache(maxsize=256)
def _coroutine_function(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn)


class MemoryContext:
    """The part of :class:`~stepstone.WorkflowContext` a compiled flow uses, journal-free."""

    __slots__ = ("parent_run_id", "run_id", "threaded", "wf")

    def __init__(
        self,
        wf: FlowWorkflow,
        run_id: str,
        parent_run_id: str | None = None,
        *,
        threaded: bool = False,
    ) -> None:
        self.wf, self.run_id, self.parent_run_id = wf, run_id, parent_run_id
        self.threaded = threaded  # a fork branch: its plain def tasks run on threads

    def step(
        self,
        name: str,
        fn: Callable[[Any], Any],
        value: Any,
        *,
        retry: RetryPolicy | None = None,
        timeout_s: float | None = None,
    ) -> _Call:
        return _Call(name, fn, value, retry, timeout_s, self.threaded)

    async def parallel(self, *calls: Awaitable[Any]) -> list[Any]:
        runs = [c.run(threaded=True) if isinstance(c, _Call) else c for c in calls]
        return list(await asyncio.gather(*runs))

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait_for_signal(self, name: str, *, timeout_s: float | None = None) -> Any:
        if timeout_s is None:
            raise FlowError(
                f"signal {name!r}",
                "a flow run in memory cannot receive signals: run it with "
                "run_durable_workflow (and send_signal) instead",
            )
        await asyncio.sleep(timeout_s)
        raise WaitTimeout(f"signal {name!r}", timeout_s)

    async def child(self, wf: FlowWorkflow, value: Any, *, flow_branch: str) -> Any:
        parent = self.parent_run_id or self.run_id
        branch = MemoryContext(wf, new_run_id(), parent_run_id=parent, threaded=True)
        return await wf.fn(branch, value, flow_branch=flow_branch)


def run_in_memory(wf: FlowWorkflow, input: Any) -> Any:
    """Run ``wf`` to its end in memory; a failure raises :class:`RunFailed` as a durable run's
    would (the task's error type and message), so callers see one behaviour."""
    run_id = new_run_id()
    ctx = cast("WorkflowContext", MemoryContext(wf, run_id))
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # called from async code: its loop is busy, run on a thread of our own
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(run_in_memory, wf, input).result()
    try:
        return asyncio.run(wf.fn(ctx, input))
    except (Exception, asyncio.CancelledError) as exc:
        raise RunFailed(run_id, "failed", type(exc).__name__, str(exc)) from exc
