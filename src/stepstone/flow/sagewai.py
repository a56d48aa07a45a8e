"""sagewai's chain as a Flow: ``DurableWorkflow`` with ``@wf.step``, ``ApprovalGate``,
``PostgresStore``."""

from __future__ import annotations

import asyncio
import inspect
import shutil
import tempfile
import weakref
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from stepstone.client.aio import AsyncClient
from stepstone.core.port import Store
from stepstone.errors import InvalidArgument, RunNotFound
from stepstone.flow.builder import Flow
from stepstone.flow.compile import FlowWorkflow, SignalRequest, signal_given
from stepstone.flow.graph import make_task
from stepstone.flow.runners import drive
from stepstone.flow.status import WorkflowStatus, status_of
from stepstone.flow.tasks import RetryPolicy, get_task_context, task
from stepstone.store import open_store

__all__ = ["ApprovalGate", "DurableWorkflow", "PostgresStore"]

F = TypeVar("F", bound=Callable[..., Any])


class PostgresStore:
    """sagewai's store spelling: ``PostgresStore(database_url=...)``, ``await initialize()``
    (creates or migrates the schema). Pass it as ``DurableWorkflow(store=...)``."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.store = open_store(database_url)

    async def initialize(self) -> None:
        """Create or migrate the schema."""
        await self.store.migrate()

    async def close(self) -> None:
        """Close the connections."""
        await self.store.close()


def _spread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The first step is called with the run's keyword arguments: by name when they fit its
    parameters, else in order (``run(input_data="x")`` reaches ``step1(input)``)."""
    sig = inspect.signature(fn)

    def arguments(kwargs: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        try:
            sig.bind(**kwargs)
        except TypeError:
            return tuple(kwargs.values()), {}
        return (), dict(kwargs)

    if inspect.iscoroutinefunction(fn):

        async def first_async(kwargs: Mapping[str, Any]) -> Any:
            args, named = arguments(kwargs)
            return await fn(*args, **named)

        return first_async

    def first(kwargs: Mapping[str, Any]) -> Any:
        args, named = arguments(kwargs)
        return fn(*args, **named)

    return first


class DurableWorkflow:
    """A chain of steps, each checkpointed; each step's output is the next one's input.

    >>> wf = DurableWorkflow(name="article-pipeline", store="postgresql://...")
    >>> @wf.step("research")
    ... async def research(topic: str) -> str: ...
    >>> @wf.step("draft", retries=3)
    ... async def draft(research_output: str) -> str: ...
    >>> result = await wf.run(topic="quantum computing")

    It compiles to a Flow (``wf.workflow`` is the built workflow, to serve with a worker).
    ``store`` is a :class:`stepstone.Store`, a URL, a :class:`PostgresStore`, or None for a
    temporary store that lives as long as this object.
    """

    def __init__(self, name: str, store: Store | PostgresStore | str | Path | None = None) -> None:
        self.name = name
        self._steps: list[tuple[str, Callable[..., Any]]] = []
        self._built: FlowWorkflow | None = None
        self._given = store
        self._store: Store | None = None
        self._client: AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def step(
        self, name: str, retries: int = 0, *, timeout_s: float | None = None
    ) -> Callable[[F], F]:
        """Register the next step; ``retries`` more attempts after a failure (1 s, doubling)."""

        def decorate(fn: F) -> F:
            if any(existing == name for existing, _ in self._steps):
                raise InvalidArgument(f"workflow {self.name!r} already has a step {name!r}")
            task(name, retries=RetryPolicy(max_retries=retries), timeout=timeout_s)(fn)
            self._steps.append((name, fn))
            self._built = None
            return fn

        return decorate

    @property
    def workflow(self) -> FlowWorkflow:
        """The built workflow (``Worker(store, workflows=[wf.workflow])``)."""
        if self._built is None:
            if not self._steps:
                raise InvalidArgument(f"workflow {self.name!r} has no steps")
            flow = Flow(self.name)
            for i, (name, fn) in enumerate(self._steps):
                node = make_task(fn, name)
                if i == 0:
                    first = _spread(fn)
                    node = replace(node, fn=first, input_model=None)
                flow = flow._add(node)
            self._built = flow.build()
        return self._built

    def _open(self) -> AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is loop:
            return self._client
        given = self._given
        if isinstance(given, PostgresStore):
            self._store = given.store
        elif isinstance(given, Store):
            self._store = given
        elif given is not None:
            self._store = open_store(given, auto_migrate=True)
        elif self._store is None:
            folder = tempfile.mkdtemp(prefix="stepstone-flow-")
            weakref.finalize(self, shutil.rmtree, folder, True)
            self._store = open_store(str(Path(folder) / "flow.db"), auto_migrate=True)
        self._client, self._loop = AsyncClient(self._store), loop
        return self._client

    async def run(self, *, run_id: str | None = None, **kwargs: Any) -> Any:
        """Run the chain in this process and return the last step's output. The first step gets
        ``kwargs``; ``run_id`` names the run (default: generated)."""
        return await self._open().run(self.workflow, dict(kwargs), run_id=run_id)

    async def start(self, *, run_id: str | None = None, **kwargs: Any) -> str:
        """Enqueue a run for a worker; returns its run id."""
        handle = await self._open().start(self.workflow, dict(kwargs), run_id=run_id)
        return handle.run_id

    async def resume(self, run_id: str) -> Any:
        """Go on with a run from its last checkpoint (here); returns its output."""
        client = self._open()
        if await client.store.get_run(run_id) is None:
            raise RunNotFound(run_id)
        return await client.run(self.workflow, run_id=run_id)

    async def signal(self, run_id: str, name: str, value: Any = None) -> None:
        """Send a signal to a run (``ApprovalGate.wait`` receives it); as in sagewai, one sent
        before the run reaches its gate is kept until it does (``buffer=True``)."""
        await self._open().signal(run_id, name, value, buffer=True)

    async def status(self, run_id: str) -> WorkflowStatus:
        """Where a run is."""
        return status_of(await self._open().get(run_id))

    async def advance(self, run_id: str) -> WorkflowStatus:
        """Execute a run here until it ends or parks on a signal or a delay."""
        return await drive(self._open(), self.workflow, run_id, ())

    async def close(self) -> None:
        """Close the client (and the store, when this object opened it)."""
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._store is not None and not isinstance(self._given, Store | PostgresStore):
            await self._store.close()
            self._store = None


class ApprovalGate:
    """Inside a step, wait for a signal (a human's approval) without holding a worker.

    >>> @wf.step("approve")
    ... async def approve(draft: str) -> str:
    ...     return await ApprovalGate(timeout_seconds=3600).wait(wf, "approval_signal")

    The first time the step reaches the gate, the run records the wait and parks; when the
    signal arrives the step runs again and ``wait`` returns the payload (code before the gate
    runs twice: keep it idempotent). After ``timeout_seconds`` ``wait`` raises
    :class:`stepstone.WaitTimeout` inside the step.
    """

    def __init__(self, timeout_seconds: float | None = None) -> None:
        if timeout_seconds is not None and timeout_seconds < 0:
            raise InvalidArgument(f"timeout_seconds must be >= 0, got {timeout_seconds}")
        self.timeout_seconds = timeout_seconds

    async def wait(self, wf: DurableWorkflow | None, signal_name: str) -> Any:
        """The payload of signal ``signal_name`` sent to this run."""
        del wf  # the run is the one executing this step
        got, payload = signal_given(signal_name)
        if got:
            return payload
        if get_task_context() is None:
            raise InvalidArgument("ApprovalGate.wait works inside a step of a running workflow")
        raise SignalRequest(signal_name, self.timeout_seconds)
