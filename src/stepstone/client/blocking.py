"""The blocking client: every AsyncClient method, run to completion on a private loop thread.

Nothing is implemented twice: each method here forwards to the AsyncClient method of the same
name (same signature, same docstring) through a :class:`~stepstone.client.portal.Portal`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar

from stepstone.client.aio import AsyncClient
from stepstone.client.base import StoreLike, WorkflowsLike
from stepstone.client.portal import Portal
from stepstone.client.running import AsyncRunHandle
from stepstone.core.clock import Clock
from stepstone.core.definitions import Registry, Workflow
from stepstone.core.model import EventRecord, RunState
from stepstone.core.port import Store
from stepstone.core.routing import StartOptions
from stepstone.core.settings import Settings

if TYPE_CHECKING:
    from stepstone.core.llm import Models
    from stepstone.core.observe import Observer

__all__ = ["Client", "RunHandle", "Starter"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def _blocking(
    method: Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Client, P], T]:
    """Expose an AsyncClient method on Client: same signature, blocking."""

    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._portal.call(method, self._async, *args, **kwargs)

    call.__name__ = method.__name__
    call.__qualname__ = f"Client.{method.__name__}"
    call.__doc__ = method.__doc__
    return call


def _blocking_start(
    method: Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, AsyncRunHandle[R]]],
) -> Callable[Concatenate[Client, P], RunHandle[R]]:
    """Like :func:`_blocking`, for ``start``: the handle it returns is a blocking one."""

    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> RunHandle[R]:
        handle = self._portal.call(method, self._async, *args, **kwargs)
        return RunHandle(self, handle.run_id)

    call.__name__ = method.__name__
    call.__qualname__ = f"Client.{method.__name__}"
    call.__doc__ = method.__doc__
    return call


def _close(portal: Portal, client: AsyncClient) -> None:
    try:
        portal.call(client.close)
    finally:
        portal.close()


class RunHandle(Generic[R]):
    """A started run: ``handle.result(timeout_s)``, ``handle.status()``."""

    __slots__ = ("_client", "run_id")

    def __init__(self, client: Client, run_id: str) -> None:
        self._client, self.run_id = client, run_id

    def result(self, timeout_s: float | None = None) -> R:
        """Wait for the run to finish and return its result (raises RunFailed if it did not)."""
        value: R = self._client.result(self.run_id, timeout_s=timeout_s)
        return value

    def status(self) -> RunState:
        return self._client.status(self.run_id)

    def __repr__(self) -> str:
        return f"<run {self.run_id}>"


class Starter:
    """Starts or runs workflows with fixed :class:`StartOptions`; arguments stay typed."""

    __slots__ = ("_client", "options")

    def __init__(self, client: Client, options: StartOptions) -> None:
        self._client, self.options = client, options

    def start(self, wf: Workflow[P, R], /, *args: P.args, **kwargs: P.kwargs) -> RunHandle[R]:
        """Enqueue ``wf(*args, **kwargs)`` with these options (see :meth:`Client.start`)."""
        starter = self._client._async.with_options(self.options)
        handle: AsyncRunHandle[R] = self._client._portal.call(starter.start, wf, *args, **kwargs)
        return RunHandle(self._client, handle.run_id)

    def run(self, wf: Workflow[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Execute ``wf(*args, **kwargs)`` here with these options (see :meth:`Client.run`)."""
        starter = self._client._async.with_options(self.options)
        result: R = self._client._portal.call(starter.run, wf, *args, **kwargs)
        return result


class Client:
    """Start and manage durable runs from ordinary (sync) code.

    >>> client = Client("sqlite:///app.db")
    >>> receipt = client.run(checkout, order)
    >>> handle = client.start(checkout, order, queue="payments")
    >>> handle.result(timeout_s=60)

    Every method is the :class:`AsyncClient` method of the same name, run to completion.
    """

    def __init__(
        self,
        store: StoreLike = None,
        *,
        workflows: WorkflowsLike = None,
        settings: Settings | None = None,
        clock: Clock | None = None,
        concurrency: int = 32,
        auto_migrate: bool | None = None,
        models: Models | None = None,
        tracing: bool | Observer = False,
    ) -> None:
        self._portal = Portal()
        self._async = AsyncClient(
            store,
            workflows=workflows,
            settings=settings,
            clock=clock,
            concurrency=concurrency,
            auto_migrate=auto_migrate,
            models=models,
            tracing=tracing,
        )
        # A client never closed is closed at interpreter exit, while its loop still runs: the
        # store's pool and listener end cleanly instead of being destroyed pending.
        self._closer = weakref.finalize(self, _close, self._portal, self._async)

    @property
    def store(self) -> Store:
        return self._async.store

    @property
    def registry(self) -> Registry:
        return self._async.registry

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store (if this client opened it) and stop the client's loop thread."""
        self._closer()

    def handle(self, run_id: str) -> RunHandle[Any]:
        return RunHandle(self, run_id)

    def with_options(self, options: StartOptions) -> Starter:
        """Start or run workflows with these options; the workflow arguments stay typed.

        >>> client.with_options(StartOptions(queue="payments", priority=5)).start(pay, order)
        """
        return Starter(self, options)

    def events(
        self, run_id: str, *, follow: bool = False, after_id: int = 0, include_system: bool = False
    ) -> Iterator[EventRecord]:
        """The run's progress events; ``follow=True`` yields new ones until the run finishes."""
        agen = self._async.events(
            run_id, follow=follow, after_id=after_id, include_system=include_system
        )

        async def next_event() -> EventRecord:
            return await agen.__anext__()

        while True:
            try:
                yield self._portal.call(next_event)
            except StopAsyncIteration:
                return

    run = _blocking(AsyncClient.run)
    run_until_wait = _blocking(AsyncClient.run_until_wait)
    advance = _blocking(AsyncClient.advance)
    resume = _blocking(AsyncClient.resume)
    next_stop = _blocking(AsyncClient.next_stop)
    signal_waits = _blocking(AsyncClient.signal_waits)
    delete = _blocking(AsyncClient.delete)
    start = _blocking_start(AsyncClient.start)
    result = _blocking(AsyncClient.result)
    signal = _blocking(AsyncClient.signal)
    inject = _blocking(AsyncClient.inject)
    cancel = _blocking(AsyncClient.cancel)
    pause = _blocking(AsyncClient.pause)
    unpause = _blocking(AsyncClient.unpause)
    retry = _blocking(AsyncClient.retry)
    fork = _blocking(AsyncClient.fork)
    purge = _blocking(AsyncClient.purge)
    declare = _blocking(AsyncClient.declare)
    get = _blocking(AsyncClient.get)
    status = _blocking(AsyncClient.status)
    list = _blocking(AsyncClient.list)
    dead_letters = _blocking(AsyncClient.dead_letters)
    describe = _blocking(AsyncClient.describe)
    timeline = _blocking(AsyncClient.timeline)
    queue_stats = _blocking(AsyncClient.queue_stats)
    queue_throughput = _blocking(AsyncClient.queue_throughput)
    queues = _blocking(AsyncClient.queues)
    pools = _blocking(AsyncClient.pools)
    workers = _blocking(AsyncClient.workers)
    lease = _blocking(AsyncClient.lease)
    cost = _blocking(AsyncClient.cost)
    set_budget = _blocking(AsyncClient.set_budget)
    budgets = _blocking(AsyncClient.budgets)
    budget_use = _blocking(AsyncClient.budget_use)
    check = _blocking(AsyncClient.check)
    replay = _blocking(AsyncClient.replay)
    add_schedule = _blocking(AsyncClient.add_schedule)
    schedules = _blocking(AsyncClient.schedules)
    get_schedule = _blocking(AsyncClient.get_schedule)
    pause_schedule = _blocking(AsyncClient.pause_schedule)
    resume_schedule = _blocking(AsyncClient.resume_schedule)
    delete_schedule = _blocking(AsyncClient.delete_schedule)
    trigger_schedule = _blocking(AsyncClient.trigger_schedule)
    backfill_schedule = _blocking(AsyncClient.backfill_schedule)

    record_launch = _blocking(AsyncClient.record_launch)
    inbox = _blocking(AsyncClient.inbox)
    dismiss = _blocking(AsyncClient.dismiss)
    count_unread = _blocking(AsyncClient.count_unread)
    memory_get = _blocking(AsyncClient.memory_get)
    memory_set = _blocking(AsyncClient.memory_set)
    memory_delete = _blocking(AsyncClient.memory_delete)
    memory_list = _blocking(AsyncClient.memory_list)
