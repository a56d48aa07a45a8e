"""Running flows the sayiir way: ``run_workflow``, ``run_durable_workflow``, resume, cancel,
pause, signal and ``WorkflowClient`` — all through the stepstone client."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from stepstone.client.aio import AsyncClient
from stepstone.core.model import Run, RunState
from stepstone.core.port import Store
from stepstone.errors import DuplicateRun, InvalidArgument, RunFailed, RunNotFound, StillWaiting
from stepstone.flow.builder import Flow
from stepstone.flow.compile import FlowWorkflow
from stepstone.flow.memory import run_in_memory
from stepstone.flow.session import Backend, Session, StoreLike, using
from stepstone.flow.status import WorkflowStatus, by_reason, status_of

__all__ = [
    "WorkflowClient",
    "cancel_workflow",
    "drive",
    "pause_workflow",
    "resume_workflow",
    "run_durable_workflow",
    "run_workflow",
    "send_signal",
    "unpause_workflow",
]

ConflictPolicy = Literal["fail", "use_existing"]
_WATCH_S = 0.002  # how soon a durable run is first looked at to see whether it has parked
_WATCH_MAX_S = 0.05


def _built(flow: FlowWorkflow | Flow) -> FlowWorkflow:
    if isinstance(flow, Flow):
        return flow.build()
    if not isinstance(flow, FlowWorkflow):
        raise InvalidArgument(f"expected a Flow or a built flow, got {flow!r}")
    return flow


def _serve(client: AsyncClient, wf: FlowWorkflow) -> FlowWorkflow:
    """Make ``wf`` the flow of its name in this private client: a flow built again (the same
    graph or an edited one) replaces the one an earlier call on a kept backend registered,
    instead of being refused as another workflow of the same name. Runs of another shape are
    then caught by replay, as for any new code."""
    client.registry.workflows[wf.name] = wf
    return wf


def _parked(run: Run, now: datetime) -> bool:
    """Waiting for something from outside that is not due yet: a signal, a timer, an unpause
    (never a child: the driver runs children here)."""
    if run.state is RunState.PAUSED:
        return True
    if run.state is RunState.SLEEPING:
        return run.wake_at is None or run.wake_at > now
    if run.state is not RunState.WAITING:
        return False
    return all(w.kind != "child" and (w.until is None or w.until > now) for w in run.waits)


async def drive(
    client: AsyncClient,
    wf: FlowWorkflow,
    instance_id: str,
    args: tuple[Any, ...],
    *,
    until_parked: bool = True,
) -> WorkflowStatus:
    """Execute the run ``instance_id`` here (creating it with ``args`` if it is new) until it
    finishes or, with ``until_parked``, parks on a delay, a signal or a pause."""
    runner = asyncio.ensure_future(client.run(_serve(client, wf), *args, run_id=instance_id))
    watch_s = _WATCH_S
    try:
        while until_parked:
            done, _ = await asyncio.wait({runner}, timeout=watch_s)
            if done:
                break
            watch_s = min(watch_s * 2, _WATCH_MAX_S)  # a long run is looked at less often
            run = await client.store.get_run(instance_id)
            if run is not None and _parked(run, client.clock.now()):
                break
    finally:
        if not runner.done():
            runner.cancel()
        with contextlib.suppress(asyncio.CancelledError, RunFailed):
            await runner
    return status_of(await client.get(instance_id))


async def _start_durable(
    client: AsyncClient,
    wf: FlowWorkflow,
    instance_id: str,
    input: Any,
    conflict_policy: str | None,
) -> WorkflowStatus:
    policy = conflict_policy or "fail"
    if policy not in ("fail", "use_existing"):
        raise InvalidArgument(
            f"conflict_policy must be 'fail' or 'use_existing', got {policy!r} (stepstone "
            "never reuses a run id: cancel the old run and start one with a new id)"
        )
    existing = await client.store.get_run(instance_id)
    if existing is not None and policy == "fail":
        raise DuplicateRun(instance_id, None)
    return await drive(client, wf, instance_id, (input,))


def run_durable_workflow(
    workflow: FlowWorkflow | Flow,
    instance_id: str,
    input: Any = None,
    store: StoreLike = None,
    conflict_policy: ConflictPolicy | None = None,
    *,
    backend: StoreLike = None,
) -> WorkflowStatus:
    """Run a flow durably as run ``instance_id`` until it completes, fails, or parks on a delay
    or a signal (``status`` says which; ``resume_workflow`` goes on).

    ``store`` is a URL (``sqlite:///app.db``, ``postgresql://...``; migrated on first use), a
    :class:`stepstone.Store`, or a backend; with none, an in-memory store that is gone after the
    call. An existing ``instance_id`` raises :class:`DuplicateRun`, or with
    ``conflict_policy="use_existing"`` goes on with that run.
    """
    wf = _built(workflow)
    with using(store, backend) as session:
        return session.call(_start_durable, session.client, wf, instance_id, input, conflict_policy)


def run_workflow(
    workflow: FlowWorkflow | Flow,
    input: Any = None,
    *,
    instance_id: str | None = None,
    store: StoreLike = None,
    backend: StoreLike = None,
    conflict_policy: ConflictPolicy | None = None,
) -> Any:
    """Run a flow to its end and return its output (a failed run raises :class:`RunFailed`).

    Without ``instance_id`` and without a store nothing is written anywhere: the compiled flow
    runs in memory (:mod:`stepstone.flow.memory`: the same tasks, retries, timeouts, forks and
    delays, no journal; a signal wait can only time out). With ``store``/``backend`` it runs
    through the engine on that store. With ``instance_id`` it is :func:`run_durable_workflow`
    that must complete, else :class:`StillWaiting` says what it waits for.
    """
    wf = _built(workflow)
    if instance_id is not None:
        status = run_durable_workflow(
            wf,
            instance_id,
            input,
            store=store,
            backend=backend,
            conflict_policy=conflict_policy,
        )
        if status.is_failed() or status.is_cancelled() or status.is_blocked():
            raise RunFailed(instance_id, status.status, "WorkflowError", status.error or "")
        if not status.is_completed():
            raise StillWaiting(instance_id, status.status, status.signal_name or "a delay", None)
        return status.output
    if store is None and backend is None:
        return run_in_memory(wf, input)
    with using(store, backend) as session:
        return session.call(session.client.run, _serve(session.client, wf), input)


async def _resume(client: AsyncClient, wf: FlowWorkflow, instance_id: str) -> WorkflowStatus:
    if await client.store.get_run(instance_id) is None:
        raise RunNotFound(instance_id)
    return await drive(client, wf, instance_id, ())


def resume_workflow(
    workflow: FlowWorkflow | Flow,
    instance_id: str,
    store: StoreLike = None,
    *,
    backend: StoreLike = None,
) -> WorkflowStatus:
    """Go on with run ``instance_id`` from its last checkpoint, until it ends or parks again."""
    wf = _built(workflow)
    with using(store, backend) as session:
        return session.call(_resume, session.client, wf, instance_id)


async def _status(client: AsyncClient, instance_id: str) -> WorkflowStatus:
    return status_of(await client.get(instance_id))


def cancel_workflow(
    instance_id: str,
    store: StoreLike = None,
    reason: str | None = None,
    cancelled_by: str | None = None,
    *,
    backend: StoreLike = None,
) -> None:
    """Cancel run ``instance_id``: at once if parked, else at its next step boundary."""
    with using(store, backend) as session:
        session.call(session.client.cancel, instance_id, by_reason(reason, cancelled_by))


def pause_workflow(
    instance_id: str,
    store: StoreLike = None,
    reason: str | None = None,
    paused_by: str | None = None,
    *,
    backend: StoreLike = None,
) -> None:
    """Pause run ``instance_id`` (at its next step boundary if running) until unpaused.
    stepstone records no reason for a pause: ``reason`` and ``paused_by`` are accepted for
    sayiir's signature only."""
    del reason, paused_by
    with using(store, backend) as session:
        session.call(session.client.pause, instance_id)


def unpause_workflow(
    instance_id: str, store: StoreLike = None, *, backend: StoreLike = None
) -> None:
    """Let a paused run be picked up again (``resume_workflow`` or a worker goes on with it)."""
    with using(store, backend) as session:
        session.call(session.client.unpause, instance_id)


def send_signal(
    instance_id: str,
    signal_name: str,
    payload: Any,
    store: StoreLike = None,
    *,
    backend: StoreLike = None,
) -> None:
    """Send a signal to run ``instance_id``; it is buffered until the run waits for it (sayiir's
    contract: an early send is intended, so any name is taken; a payload the wait refuses is
    rejected there and the wait goes on)."""
    with using(store, backend) as session:
        session.call(session.client.signal, instance_id, signal_name, payload, buffer=True)


class WorkflowClient:
    """Submit and control runs of flows that workers execute (``stepstone worker --app``).

    >>> client = WorkflowClient("postgresql://...")
    >>> client.submit(wf, "order-1", {"id": 1})
    >>> client.status("order-1").status
    """

    def __init__(self, store: StoreLike, *, conflict_policy: ConflictPolicy | None = None) -> None:
        self._backend = store if isinstance(store, Backend) else None
        self._session = self._backend.session() if self._backend else Session(_store_of(store))
        self._policy = conflict_policy or "fail"

    def submit(
        self,
        workflow: FlowWorkflow | Flow,
        instance_id: str,
        input: Any = None,
    ) -> WorkflowStatus:
        """Start run ``instance_id`` for a worker; an existing id raises :class:`DuplicateRun`
        (or, with ``conflict_policy="use_existing"``, returns that run's status)."""
        wf = _built(workflow)
        on_conflict = "raise" if self._policy == "fail" else "return"
        client = self._session.client
        wf = _serve(client, wf)
        self._session.call(client.start, wf, input, run_id=instance_id, on_conflict=on_conflict)
        return self.status(instance_id)

    def status(self, instance_id: str) -> WorkflowStatus:
        """Where run ``instance_id`` is."""
        return self._session.call(_status, self._session.client, instance_id)

    def cancel(
        self, instance_id: str, *, reason: str | None = None, cancelled_by: str | None = None
    ) -> None:
        """Cancel the run (see :func:`cancel_workflow`)."""
        self._session.call(
            self._session.client.cancel, instance_id, by_reason(reason, cancelled_by)
        )

    def pause(
        self, instance_id: str, *, reason: str | None = None, paused_by: str | None = None
    ) -> None:
        """Pause the run (see :func:`pause_workflow`)."""
        del reason, paused_by
        self._session.call(self._session.client.pause, instance_id)

    def unpause(self, instance_id: str) -> None:
        """Unpause the run."""
        self._session.call(self._session.client.unpause, instance_id)

    def send_signal(self, instance_id: str, signal_name: str, payload: Any) -> None:
        """Send a signal to the run; buffered until it waits for it (see :func:`send_signal`)."""
        client = self._session.client
        self._session.call(client.signal, instance_id, signal_name, payload, buffer=True)

    def close(self) -> None:
        """Close the store this client opened."""
        if self._backend is None:
            self._session.close()

    def __enter__(self) -> WorkflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _store_of(store: StoreLike) -> Store | str | Path:
    if store is None or isinstance(store, Backend):
        raise InvalidArgument("WorkflowClient needs a store: a URL, a Store or a backend")
    return store
