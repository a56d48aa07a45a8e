"""The client: start, run, signal, cancel, pause, retry, fork and inspect runs.

``AsyncClient`` is the one implementation; ``Client`` exposes the same methods blocking, by running
them on a private event loop thread. Apps, the CLI and the dashboard all go through these methods.
"""

from __future__ import annotations

import asyncio
import builtins
import json
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from stepstone.core import codec
from stepstone.core.clock import Clock, SystemClock
from stepstone.core.definitions import Registry, Workflow, as_registry
from stepstone.core.engine import encode_input
from stepstone.core.executor import CheckResult, check_run, decode_input
from stepstone.core.ids import new_run_id
from stepstone.core.jsonschema import first_problem, schema_for
from stepstone.core.model import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    Claim,
    EventRecord,
    NewRun,
    Run,
    RunQuery,
    RunState,
    StepKind,
    StepRecord,
)
from stepstone.core.port import Store
from stepstone.core.portal import Portal
from stepstone.core.runner import Runner
from stepstone.core.settings import Settings
from stepstone.core.views import RunDescription, TimelineEntry, describe_wait
from stepstone.errors import (
    DecodeError,
    InvalidArgument,
    RunFailed,
    RunNotFound,
    SignalPayloadError,
    WaitTimeout,
)
from stepstone.store import open_store

__all__ = ["AsyncClient", "AsyncRunHandle", "Client", "RunHandle"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

StoreLike = Store | str | Path | None
WorkflowsLike = Registry | ModuleType | Iterable[Workflow[Any, Any]] | Workflow[Any, Any] | None


def _check_run_id(run_id: str | None) -> str:
    if run_id is None:
        return new_run_id()
    if not isinstance(run_id, str) or not run_id.strip() or len(run_id) > 200:
        raise InvalidArgument(
            f"run_id must be a non-empty string of at most 200 characters, got {run_id!r}"
        )
    return run_id


def _raise_for(run: Run) -> None:
    """A finished-but-not-completed run becomes a RunFailed carrying its recorded error."""
    error = run.error
    raise RunFailed(
        run.run_id,
        run.state.value,
        error.type if error else run.state.value,
        error.message if error else "",
        error.traceback if error else None,
    )


class AsyncRunHandle(Generic[R]):
    """A started run: ``await handle.result()``, ``await handle.status()``."""

    __slots__ = ("_client", "run_id")

    def __init__(self, client: AsyncClient, run_id: str) -> None:
        self._client, self.run_id = client, run_id

    async def result(self, timeout_s: float | None = None) -> R:
        """Wait for the run to finish and return its result (raises RunFailed if it did not)."""
        value: R = await self._client.result(self.run_id, timeout_s=timeout_s)
        return value

    async def status(self) -> RunState:
        return (await self._client.get(self.run_id)).state

    def __repr__(self) -> str:
        return f"<run {self.run_id}>"


class AsyncClient:
    """Start and manage durable runs (async). See :class:`Client` for the blocking twin.

    >>> client = AsyncClient("sqlite:///app.db", workflows=[checkout])
    >>> receipt = await client.run(checkout, order)            # executes here, durably
    >>> handle = await client.start(checkout, order)           # a worker executes it
    >>> await client.signal(handle.run_id, "approval", {"ok": True})
    """

    def __init__(
        self,
        store: StoreLike = None,
        *,
        workflows: WorkflowsLike = None,
        settings: Settings | None = None,
        clock: Clock | None = None,
        concurrency: int = 32,
    ) -> None:
        self.store: Store = store if isinstance(store, Store) else open_store(store)
        self._owns_store = not isinstance(store, Store)
        self.registry = as_registry(workflows)
        self.settings = settings or Settings()
        self.clock = clock or SystemClock()
        self._concurrency = concurrency
        self._runner: Runner | None = None
        self._runner_lock: asyncio.Lock | None = None

    async def __aenter__(self) -> AsyncClient:
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
                        kind="client",
                        queues=(),
                        concurrency=self._concurrency,
                        settings=self.settings,
                        clock=self.clock,
                    )
                    await runner.start()
                    self._runner = runner
        return self._runner

    # --- starting and running ------------------------------------------------------------------

    def _new_run(
        self,
        wf: Workflow[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        run_id: str | None,
        queue: str | None,
        priority: int,
        start_at: datetime | None,
        deadline_s: float | None,
    ) -> NewRun:
        wf.bind_input(args, kwargs)
        if queue is not None and (not isinstance(queue, str) or not queue):
            raise InvalidArgument(f"queue must be a non-empty string, got {queue!r}")
        if not isinstance(priority, int):
            raise InvalidArgument(f"priority must be an int, got {priority!r}")
        deadline = deadline_s if deadline_s is not None else wf.deadline_s
        if deadline is not None and deadline <= 0:
            raise InvalidArgument(f"deadline_s must be > 0, got {deadline}")
        now = self.clock.now()
        input_json = encode_input(args, kwargs, f"workflow {wf.name!r} input")
        try:  # decode it the way a worker will, so a wrong type fails here and stores nothing
            decode_input(wf, input_json)
        except DecodeError as exc:
            raise InvalidArgument(str(exc)) from None
        return NewRun(
            run_id=_check_run_id(run_id),
            workflow=wf.name,
            version=wf.version,
            input_json=input_json,
            queue=queue or wf.queue or "default",
            priority=priority,
            start_at=start_at,
            deadline_at=now + timedelta(seconds=deadline) if deadline is not None else None,
        )

    async def start(
        self,
        wf: Workflow[..., R] | str,
        /,
        *args: Any,
        run_id: str | None = None,
        queue: str | None = None,
        delay_s: float | None = None,
        start_at: datetime | None = None,
        priority: int = 0,
        deadline_s: float | None = None,
        **kwargs: Any,
    ) -> AsyncRunHandle[R]:
        """Enqueue a run for a worker; returns at once with a handle.

        ``run_id`` is an idempotency key: starting an id that exists returns the existing run.
        ``delay_s``/``start_at`` delay the start; ``priority`` orders claims (higher first).
        """
        workflow = self.registry.resolve(wf)
        if delay_s is not None and delay_s < 0:
            raise InvalidArgument(f"delay_s must be >= 0, got {delay_s}")
        if start_at is not None and (not isinstance(start_at, datetime) or start_at.tzinfo is None):
            raise InvalidArgument("start_at must be an aware datetime")
        if delay_s is not None:
            start_at = self.clock.now() + timedelta(seconds=delay_s)
        new = self._new_run(
            workflow,
            args,
            kwargs,
            run_id=run_id,
            queue=queue,
            priority=priority,
            start_at=start_at,
            deadline_s=deadline_s,
        )
        run, created, _ = await self.store.create_run(new, now=self.clock.now())
        if not created and run.workflow != workflow.name:
            raise InvalidArgument(
                f"run id {run.run_id!r} already belongs to workflow {run.workflow!r}, "
                f"not {workflow.name!r}"
            )
        return AsyncRunHandle(self, run.run_id)

    async def run(
        self,
        wf: Workflow[..., R] | str,
        /,
        *args: Any,
        run_id: str | None = None,
        queue: str | None = None,
        deadline_s: float | None = None,
        **kwargs: Any,
    ) -> R:
        """Execute a run durably in this process and return its result.

        Sleeps and signal waits are waited through in-process (another process may take the run
        over meanwhile; the result is the same). If ``run_id`` exists the run is resumed, or its
        recorded result returned. A run that ends failed or cancelled raises :class:`RunFailed`.
        """
        workflow = self.registry.resolve(wf)
        runner = await self._get_runner()
        claim: Claim | None = None
        existing = await self.store.get_run(run_id) if run_id is not None else None
        if existing is not None:
            if existing.workflow != workflow.name:
                raise InvalidArgument(
                    f"run id {existing.run_id!r} belongs to workflow {existing.workflow!r}, "
                    f"not {workflow.name!r}"
                )
            target = existing.run_id
        else:
            new = self._new_run(
                workflow,
                args,
                kwargs,
                run_id=run_id,
                queue=queue,
                priority=0,
                start_at=None,
                deadline_s=deadline_s,
            )
            _, _, claim = await self.store.create_run(
                new, now=self.clock.now(), claim_for=runner.worker, lease_s=self.settings.lease_s
            )
            target = new.run_id
        await self._drive(runner, target, claim)
        result: R = await self.result(target)
        return result

    async def _drive(self, runner: Runner, run_id: str, claim: Claim | None) -> None:
        """Execute ``run_id`` here until it finishes, claiming it (and the children it waits for)
        whenever it is claimable; otherwise wait for a change or its next timer."""
        while True:
            if claim is not None:
                state = await runner.execute(claim)
                if state in TERMINAL_STATES or state is RunState.BLOCKED:
                    return
            run = await self.store.get_run(run_id)
            if run is None:
                raise RunNotFound(run_id)
            if run.is_finished or run.state is RunState.BLOCKED:
                return
            children = [w.name for w in run.waits if w.kind == "child" and w.name]
            if run.state is RunState.WAITING and children:
                await asyncio.gather(*(self._drive(runner, c, None) for c in children))
            claim = await self.store.claim_run(
                run_id, runner.worker, lease_s=self.settings.lease_s, now=self.clock.now()
            )
            if claim is not None:
                continue
            run = await self.store.get_run(run_id)
            if run is None or run.is_finished:
                return
            timeout = self.settings.poll_s
            if run.wake_at is not None:
                timeout = min(timeout, max((run.wake_at - self.clock.now()).total_seconds(), 0.0))
            if run.state is RunState.RUNNING and run.lease_expires_at is not None:
                timeout = min(
                    timeout, max((run.lease_expires_at - self.clock.now()).total_seconds(), 0.0)
                )
            if timeout > 0:
                await self.store.wait_for_change(timeout)

    async def result(self, run_id: str, *, timeout_s: float | None = None) -> Any:
        """Wait for ``run_id`` to finish; return its result decoded by the workflow's return type
        (when this client knows the workflow), or raise :class:`RunFailed`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s if timeout_s is not None else None
        while True:
            run = await self.get(run_id)
            if run.is_finished or run.state is RunState.BLOCKED:
                break
            remaining = self.settings.poll_s
            if deadline is not None:
                remaining = min(remaining, deadline - loop.time())
                if remaining <= 0:
                    raise WaitTimeout(f"result of run {run_id}", timeout_s, run_id=run_id)
            await self.store.wait_for_change(remaining)
        if run.state is not RunState.COMPLETED:
            _raise_for(run)
        wf = self.registry.workflows.get(run.workflow)
        rtype = wf.return_type if wf is not None else codec._NO_HINT
        return codec.decode(run.output_json, rtype, f"run {run_id} result")

    def handle(self, run_id: str) -> AsyncRunHandle[Any]:
        """A handle on an existing run."""
        return AsyncRunHandle(self, run_id)

    # --- talking to runs ---------------------------------------------------------------------

    async def signal(self, run_id: str, name: str, payload: Any = None) -> None:
        """Send signal ``name`` to a run. It is buffered until the run waits for it.

        The payload is checked against the schema the run's wait declared (or the workflow's
        ``signals=`` type, when this client knows the workflow); a mismatch raises
        :class:`SignalPayloadError` and the run is not touched.
        """
        if not isinstance(name, str) or not name:
            raise InvalidArgument("signal name must be a non-empty string")
        payload_json = codec.encode(payload, f"signal {name!r} payload")
        run = await self.get(run_id)
        raw = json.loads(payload_json)
        for wait in run.waits:
            if wait.kind == "signal" and wait.name == name and wait.schema_json:
                problem = first_problem(raw, json.loads(wait.schema_json))
                if problem:
                    raise SignalPayloadError(run_id, name, problem)
        wf = self.registry.workflows.get(run.workflow)
        tp = wf.signals.get(name) if wf is not None else None
        if tp is not None:
            problem = first_problem(raw, schema_for(tp))
            if problem:
                raise SignalPayloadError(run_id, name, problem)
            try:
                codec.decode_value(raw, tp, f"signal {name!r}")
            except DecodeError as exc:
                raise SignalPayloadError(run_id, name, f"{exc.path}: {exc.problem}") from None
        await self.store.send_signal(run_id, name, payload_json, now=self.clock.now())

    async def cancel(self, run_id: str, reason: str | None = None) -> Run:
        """Cancel a run: at once if it is not running, else at its next step boundary. Its
        unfinished children are cancelled too. A cancelled run never continues."""
        return await self.store.request_control(
            run_id, "cancel", reason=reason, now=self.clock.now()
        )

    async def pause(self, run_id: str) -> Run:
        """Pause a run (at its next step boundary if running); it is not claimed until unpaused."""
        return await self.store.request_control(run_id, "pause", reason=None, now=self.clock.now())

    async def unpause(self, run_id: str) -> Run:
        return await self.store.request_control(run_id, None, reason=None, now=self.clock.now())

    async def retry(self, run_id: str) -> Run:
        """Resume a failed (or blocked) run keeping its completed steps; the failed step reruns."""
        return await self.store.retry_run(run_id, now=self.clock.now())

    async def fork(
        self,
        run_id: str,
        from_seq: int,
        *,
        patch: dict[int, Any] | None = None,
        new_run_id: str | None = None,
    ) -> Run:
        """A new run that reuses ``run_id``'s recorded steps before ``from_seq`` (``patch`` replaces
        the outputs of some of them: ``{seq: value}``) and executes the rest anew."""
        if not isinstance(from_seq, int) or from_seq < 0:
            raise InvalidArgument(f"from_seq must be an int >= 0, got {from_seq!r}")
        encoded = {
            int(seq): codec.encode(value, f"fork patch for step #{seq}")
            for seq, value in (patch or {}).items()
        }
        return await self.store.fork_run(
            run_id,
            from_seq=from_seq,
            patch=encoded,
            new_run_id=_check_run_id(new_run_id),
            now=self.clock.now(),
        )

    # --- inspecting ----------------------------------------------------------------------------

    async def get(self, run_id: str) -> Run:
        run = await self.store.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run

    async def status(self, run_id: str) -> RunState:
        return (await self.get(run_id)).state

    async def list(
        self,
        *,
        state: RunState | str | Iterable[RunState | str] | None = None,
        workflow: str | None = None,
        queue: str | None = None,
        parent_run_id: str | None = None,
        limit: int = 50,
        before_run_id: str | None = None,
    ) -> list[Run]:
        """Runs, newest first, filtered by state(s), workflow, queue or parent."""
        states: tuple[RunState, ...] = ()
        if state is not None:
            items = [state] if isinstance(state, str | RunState) else list(state)
            try:
                states = tuple(RunState(s) for s in items)
            except ValueError:
                valid = ", ".join(s.value for s in RunState)
                raise InvalidArgument(f"unknown state in {items!r}; valid: {valid}") from None
        query = RunQuery(
            states=states,
            workflow=workflow,
            queue=queue,
            parent_run_id=parent_run_id,
            limit=limit,
            before_run_id=before_run_id,
        )
        return await self.store.list_runs(query)

    async def describe(self, run_id: str) -> RunDescription:
        """The run with its steps (timings, attempts, errors), signals, children and waits."""
        run = await self.get(run_id)
        steps = await self.store.load_steps(run_id)
        signals = await self.store.list_signals(run_id)
        children = await self.store.list_runs(RunQuery(parent_run_id=run_id, limit=1000))
        state = json.loads(run.state_json) if run.state_json else {}
        return RunDescription(run, tuple(steps), tuple(signals), tuple(reversed(children)), state)

    async def timeline(self, run_id: str) -> builtins.list[TimelineEntry]:
        """Everything that happened to the run, in time order."""
        desc = await self.describe(run_id)
        run = desc.run
        entries = [TimelineEntry(run.created_at, "created", f"workflow {run.workflow}")]
        if run.finished_at is not None:
            error = f"{run.error.type}: {run.error.message}" if run.error else ""
            entries.append(TimelineEntry(run.finished_at, run.state.value, error))
        events = await self.store.read_events(run_id, limit=100_000)
        for event in events:
            data = json.loads(event.data_json) if event.data_json else None
            detail = (
                _event_detail(event.kind, data) if event.source == "system" else json.dumps(data)
            )
            kind = event.kind if event.source == "system" else f"event:{event.kind}"
            entries.append(TimelineEntry(event.created_at, kind, detail))
        for step in desc.steps:
            entries.extend(_step_entries(step, run.created_at))
        for sig in desc.signals:
            entries.append(TimelineEntry(sig.created_at, "signal", f"{sig.name!r} received"))
        entries.sort(key=lambda e: (e.at, e.seq if e.seq is not None else -1))
        return entries

    async def events(
        self, run_id: str, *, follow: bool = False, after_id: int = 0, include_system: bool = False
    ) -> AsyncIterator[EventRecord]:
        """The run's progress events (``ctx.emit``); ``follow=True`` keeps yielding new ones until
        the run finishes."""
        await self.get(run_id)
        while True:
            batch = await self.store.read_events(run_id, after_id=after_id)
            for event in batch:
                after_id = event.event_id
                if include_system or event.source == "user":
                    yield event
            if batch:
                continue
            if not follow:
                return
            run = await self.get(run_id)
            if run.is_finished:
                final = await self.store.read_events(run_id, after_id=after_id)
                if not final:
                    return
                continue
            await self.store.wait_for_change(self.settings.poll_s)

    async def check(self, *, unblock: bool = False) -> builtins.list[CheckResult]:
        """Replay every unfinished run of this client's workflows against the code now loaded,
        executing nothing; report which runs it can continue. ``unblock`` makes blocked runs that
        now replay cleanly pending again. Run it before a deploy."""
        runner = await self._get_runner()
        results = []
        active = tuple(s for s in ACTIVE_STATES)
        for wf in self.registry:
            runs = await self.store.list_runs(
                RunQuery(states=active, workflow=wf.name, limit=1_000_000)
            )
            for run in runs:
                result = await check_run(runner.runtime, Claim(run, "check", run.lease_token), wf)
                results.append(result)
                if unblock and result.ok and run.state is RunState.BLOCKED:
                    await self.store.retry_run(run.run_id, now=self.clock.now())
        return results


def _step_entries(step: StepRecord, fallback: datetime) -> builtins.list[TimelineEntry]:
    """A step is one entry when it finished (with its duration); a wait is also one when it
    began, so the time spent waiting shows."""
    label = step.name if step.kind is StepKind.STEP else f"{step.kind.value} {step.name!r}"
    started = step.started_at or step.finished_at or fallback
    entries = []
    waits = step.kind in (StepKind.SLEEP, StepKind.SIGNAL, StepKind.CHILD)
    if waits or step.finished_at is None:
        entries.append(TimelineEntry(started, "step", f"{label} began", step.seq))
    if step.finished_at is not None:
        duration = (step.finished_at - step.started_at).total_seconds() if step.started_at else None
        detail = f"{label} {step.status.value}"
        if step.attempts > 1:
            detail += f" after {step.attempts} attempts"
        if step.error is not None:
            detail += f": {step.error.type}: {step.error.message}"
        entries.append(TimelineEntry(step.finished_at, "step", detail, step.seq, duration))
    return entries


def _event_detail(kind: str, data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    if kind in ("claimed", "recovered") and "worker" in data:
        return f"by {data['worker']}"
    if "waits" in data:
        from stepstone.core.model import Wait

        waits = [
            Wait(
                w["kind"],
                0,
                w.get("name"),
                datetime.fromisoformat(w["until"]) if w.get("until") else None,
            )
            for w in data["waits"]
        ]
        return "waiting for " + ", ".join(describe_wait(w) for w in waits) if waits else ""
    return ", ".join(f"{k}={v}" for k, v in data.items())


# --- the blocking client ----------------------------------------------------------------------


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
    ) -> None:
        self._portal = Portal()
        self._async = AsyncClient(
            store, workflows=workflows, settings=settings, clock=clock, concurrency=concurrency
        )

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
        self._portal.call(self._async.close)
        self._portal.close()

    def run(
        self,
        wf: Workflow[..., R] | str,
        /,
        *args: Any,
        run_id: str | None = None,
        queue: str | None = None,
        deadline_s: float | None = None,
        **kwargs: Any,
    ) -> R:
        """Execute a run durably in this process and return its result (see AsyncClient.run)."""
        result: R = self._portal.call(
            self._async.run, wf, *args, run_id=run_id, queue=queue, deadline_s=deadline_s, **kwargs
        )
        return result

    def start(
        self,
        wf: Workflow[..., R] | str,
        /,
        *args: Any,
        run_id: str | None = None,
        queue: str | None = None,
        delay_s: float | None = None,
        start_at: datetime | None = None,
        priority: int = 0,
        deadline_s: float | None = None,
        **kwargs: Any,
    ) -> RunHandle[R]:
        """Enqueue a run for a worker; returns at once with a handle (see AsyncClient.start)."""
        handle = self._portal.call(
            self._async.start,
            wf,
            *args,
            run_id=run_id,
            queue=queue,
            delay_s=delay_s,
            start_at=start_at,
            priority=priority,
            deadline_s=deadline_s,
            **kwargs,
        )
        return RunHandle(self, handle.run_id)

    def handle(self, run_id: str) -> RunHandle[Any]:
        return RunHandle(self, run_id)

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

    result = _blocking(AsyncClient.result)
    signal = _blocking(AsyncClient.signal)
    cancel = _blocking(AsyncClient.cancel)
    pause = _blocking(AsyncClient.pause)
    unpause = _blocking(AsyncClient.unpause)
    retry = _blocking(AsyncClient.retry)
    fork = _blocking(AsyncClient.fork)
    get = _blocking(AsyncClient.get)
    status = _blocking(AsyncClient.status)
    list = _blocking(AsyncClient.list)
    describe = _blocking(AsyncClient.describe)
    timeline = _blocking(AsyncClient.timeline)
    check = _blocking(AsyncClient.check)
