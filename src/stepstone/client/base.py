"""What every client part shares: the store, the registry, the in-process runner, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from stepstone.client.views import SignalWait
from stepstone.core.clock import Clock, SystemClock
from stepstone.core.definitions import Registry, Workflow, as_registry
from stepstone.core.ids import new_run_id
from stepstone.core.model import Run, RunState
from stepstone.core.port import Store
from stepstone.core.settings import Settings
from stepstone.errors import InvalidArgument, RunFailed, RunNotFound
from stepstone.runtime.runner import Runner, RunnerOptions
from stepstone.store import open_store_for_use
from stepstone.telemetry import as_observer

if TYPE_CHECKING:
    from stepstone.core.llm import Models
    from stepstone.core.observe import Observer

__all__ = ["ClientBase", "StoreLike", "WorkflowsLike", "check_run_id", "raise_for", "states_of"]

StoreLike = Store | str | Path | None
WorkflowsLike = Registry | ModuleType | Iterable[Workflow[Any, Any]] | Workflow[Any, Any] | None


def check_run_id(run_id: str | None) -> str:
    if run_id is None:
        return new_run_id()
    if not isinstance(run_id, str) or not run_id.strip() or len(run_id) > 200:
        raise InvalidArgument(
            f"run_id must be a non-empty string of at most 200 characters, got {run_id!r}"
        )
    return run_id


def raise_for(run: Run, *, hint: str = "") -> None:
    """A finished-but-not-completed run (or one paused by a budget) becomes a RunFailed
    carrying its recorded error; ``hint`` is added to the message (how to go on)."""
    error = run.error
    message = error.message if error else ""
    raise RunFailed(
        run.run_id,
        run.state.value,
        error.type if error else run.state.value,
        f"{message}; {hint}" if hint else message,
        error.traceback if error else None,
    )


def paused_by_budget(run: Run) -> bool:
    """The run paused itself before a model call that would pass a budget: someone must
    raise the budget and unpause it (a stop for callers that hand waiting runs over)."""
    return (
        run.state is RunState.PAUSED
        and run.error is not None
        and run.error.type == "BudgetExhausted"
    )


def states_of(state: RunState | str | Iterable[RunState | str] | None) -> tuple[RunState, ...]:
    if state is None:
        return ()
    items = [state] if isinstance(state, str | RunState) else list(state)
    try:
        return tuple(RunState(s) for s in items)
    except ValueError:
        valid = ", ".join(s.value for s in RunState)
        raise InvalidArgument(f"unknown state in {items!r}; valid: {valid}") from None


class ClientBase:
    """The store, registry, settings and clock of a client, and its in-process runner."""

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
        self.store, self._owns_store = open_store_for_use(store, auto_migrate=auto_migrate)
        self.registry = as_registry(workflows)
        self.models = models
        self.observer = as_observer(tracing)
        self.settings = settings or Settings()
        self.clock = clock or SystemClock()
        self._concurrency = concurrency
        self._runner: Runner | None = None
        self._runner_lock: asyncio.Lock | None = None

    async def __aenter__(self) -> ClientBase:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the in-process runner (if any) and close the store if this client opened it."""
        if self._runner is not None:
            await self._runner.stop()
            self._runner = None
        if self._owns_store:
            await self.store.close()

    async def _get_runner(self) -> Runner:
        if self._runner is None:
            if self._runner_lock is None:
                self._runner_lock = asyncio.Lock()
            async with self._runner_lock:
                if self._runner is None:
                    runner = Runner(
                        self.store,
                        self.registry,
                        RunnerOptions(kind="client", queues=(), concurrency=self._concurrency),
                        settings=self.settings,
                        clock=self.clock,
                        models=self.models,
                        observer=self.observer,
                    )
                    await runner.start()
                    self._runner = runner
        return self._runner

    async def get(self, run_id: str) -> Run:
        run = await self.store.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run

    async def signal_waits(self, run: Run | str) -> list[SignalWait]:
        """The signal waits holding ``run`` up: its own, when it waits for a signal, else those
        of the child runs it waits for (recursively), in wait order. Empty when it is not
        waiting on any signal (running, sleeping on a timer, finished...)."""
        found: list[SignalWait] = []
        seen: set[str] = set()

        async def visit(current: Run, depth: int) -> None:
            if current.run_id in seen or current.state is not RunState.WAITING:
                return
            seen.add(current.run_id)
            for w in current.waits:
                if w.seq < 0:
                    continue
                if w.kind == "signal" and w.name:
                    found.append(SignalWait(current.run_id, w, depth))
                elif w.kind == "child" and w.name:
                    child = await self.store.get_run(w.name)
                    if child is not None:
                        await visit(child, depth + 1)

        await visit(run if isinstance(run, Run) else await self.get(run), 0)
        return found
