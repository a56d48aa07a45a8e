"""Executes claimed runs under leases: heartbeats, control delivery, dead-worker release.

Both the :class:`~stepstone.Worker` and the in-process ``Client.run`` execute runs through one
``Runner``. It registers its identity (host, pid, process start) so that another process on the
same host can release its runs at once when it dies, renews the leases of the runs it is executing
(only those), and tells each execution when its lease was lost or a cancel/pause arrived.

Whatever goes wrong inside stepstone ends the claim: a defect fails the run naming it, and a store
that refuses writes (down, full) gets the run handed back with a back-off that grows per
consecutive failure. A worker's runner tries a refused close again until the store takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from stepstone.core.clock import Clock, SystemClock
from stepstone.core.definitions import Registry, Workflow
from stepstone.core.engine import Execution, Runtime
from stepstone.core.executor import ExecutionHooks
from stepstone.core.frozen import frozen
from stepstone.core.model import Claim, Labels, RunState, WorkerInfo, describe_wait
from stepstone.core.port import Released, Store
from stepstone.core.scope import Credentials, credentials_scope
from stepstone.core.settings import Settings
from stepstone.errors import CheckpointFailed, HandBack
from stepstone.runtime.endings import StoreBackOff, close_retrying, run_safely
from stepstone.runtime.exclusive import ExclusiveLease
from stepstone.runtime.identity import HOST, process_alive, process_start, worker_id_for
from stepstone.runtime.logs import QuietLog, install_run_context
from stepstone.runtime.threads import DaemonThreadPool

if TYPE_CHECKING:
    from stepstone.core.llm import Models
    from stepstone.core.observe import Observer

__all__ = ["Runner", "RunnerOptions"]

log = logging.getLogger("stepstone.runner")


class _Active:
    """The execution a slot is running, if any."""

    __slots__ = ("exe",)

    def __init__(self, exe: Execution | None = None) -> None:
        self.exe = exe


@frozen
class RunnerOptions:
    """Who a runner is and what it serves: registered in the worker registry as given.

    ``kind`` prefixes a generated ``worker_id`` ("worker", "client"); ``queues`` and ``pool``
    are what it claims from; ``labels`` what it offers; ``concurrency`` its slots; ``version``
    the code version of its registry; ``exclusive`` the name of a store lease it holds while it
    runs (see :mod:`stepstone.runtime.exclusive`)."""

    kind: str = "worker"
    queues: tuple[str, ...] = ("default",)
    concurrency: int = 32
    worker_id: str | None = None
    version: str | None = None
    labels: Labels = ()
    pool: str | None = None
    exclusive: str | None = None


class Runner(ExecutionHooks):
    """Runs claims for one worker identity. Start it, execute claims, stop it."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        options: RunnerOptions | None = None,
        *,
        settings: Settings | None = None,
        clock: Clock | None = None,
        credentials: Mapping[str, Any] | None = None,
        models: Models | None = None,
        observer: Observer | None = None,
    ) -> None:
        opts = options or RunnerOptions()
        self.kind = opts.kind
        self.store = store
        self.registry = registry
        self.settings = settings or Settings()
        self.clock = clock or SystemClock()
        self.credentials = Credentials(credentials)
        pid = os.getpid()
        self.worker = WorkerInfo(
            worker_id=opts.worker_id or worker_id_for(opts.kind),
            host=HOST,
            pid=pid,
            queues=opts.queues,
            concurrency=opts.concurrency,
            process_start=process_start(pid),
            version=opts.version,
            labels=opts.labels,
            pool=opts.pool,
            lease_s=self.settings.lease_s,
        )
        self.runtime = Runtime(
            store=store,
            registry=registry,
            clock=self.clock,
            settings=self.settings,
            step_pool=DaemonThreadPool(max(opts.concurrency, 4), "stepstone-step"),
            workflow_pool=DaemonThreadPool(max(opts.concurrency, 4), "stepstone-workflow"),
            child_started=self._child_started,
            models=models,
            observer=observer,
        )
        self._child_watchers: dict[str, Callable[[str], None]] = {}
        self.active: dict[str, _Active] = {}
        self._back_off = StoreBackOff()
        self._closing_stopped = asyncio.Event()
        self.heartbeats = 0
        self.heartbeat_done = asyncio.Event()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._started = False
        self._holds_exclusive = False
        self._handing_back = False
        self._hand_back_runs: set[str] = set()
        self._quiet = QuietLog(log)
        self.exclusive: ExclusiveLease | None = None
        if opts.exclusive is not None:
            lease_s = self.settings.lease_s
            holder = self.worker.worker_id
            self.exclusive = ExclusiveLease(store, opts.exclusive, holder, lease_s, self.clock)
        # called when a heartbeat finds the exclusive lease taken over (the worker stops)
        self.on_exclusive_lost: Callable[[], None] = lambda: None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        install_run_context()
        self.worker = replace(self.worker, started_at=self.clock.now())
        await self.store.register_worker(self.worker, now=self.clock.now())
        self._started = True
        if self.exclusive is not None:
            try:
                await self.exclusive.take()  # registered first: a live holder is in the registry
            except BaseException:
                await self.stop()
                raise
            self._holds_exclusive = True
        await self.release_dead_local_workers()
        self._heartbeat_task = asyncio.create_task(
            self._heartbeat_loop(), name="stepstone-heartbeat"
        )

    async def stop(self) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
            self._heartbeat_task = None
        if self._holds_exclusive and self.exclusive is not None:
            self._holds_exclusive = False
            with contextlib.suppress(Exception):  # else it expires: the next holder waits for it
                await self.exclusive.release()
        if self._started:
            with contextlib.suppress(Exception):
                await self.store.unregister_worker(self.worker.worker_id)
            self._started = False
        self.runtime.step_pool.shutdown(wait=False)
        self.runtime.workflow_pool.shutdown(wait=False)

    # --- execution ---------------------------------------------------------------------------

    async def execute(
        self, claim: Claim, wf: Workflow[Any, Any] | None = None, *, retry_close: bool = False
    ) -> RunState | None:
        """Execute one claim to its next stop; returns the run's state after (None: lease lost).

        An exception inside stepstone fails the run naming it; a store error hands the run back.
        With ``retry_close`` (a worker) a close that the store refuses because it is unavailable
        is tried again with a back-off until it is written, the lease is gone, or the runner
        stops; otherwise the store's error is raised (the run's lease, no longer renewed,
        expires and another attempt takes it over)."""
        wf = wf or self.registry.get(claim.run.workflow)
        extra = {"run_id": claim.run_id, "workflow": wf.name}
        claimed_level = logging.DEBUG if self.kind == "client" else logging.INFO
        if log.isEnabledFor(claimed_level):
            again = f", recovery {claim.run.recoveries}" if claim.run.recoveries else ""
            log.log(
                claimed_level, "run %s (%s) claimed%s", claim.run_id, wf.name, again, extra=extra
            )
        observer = self.runtime.observer
        if observer is None:
            return await self._execute(claim, wf, retry_close, extra)
        with observer.attempt(claim) as seen:
            state = await self._execute(claim, wf, retry_close, extra)
            error = None
            if state is RunState.FAILED:
                with contextlib.suppress(Exception):  # a span never fails the run
                    run = await self.store.get_run(claim.run_id)
                    error = run.error if run is not None else None
            seen.ended(state.value if state is not None else None, error)
        return state

    async def _execute(
        self, claim: Claim, wf: Workflow[Any, Any], retry_close: bool, extra: dict[str, Any]
    ) -> RunState | None:
        began = self.clock.now()
        self.active[claim.run_id] = _Active()
        token = credentials_scope.set(self.credentials)  # inherited by the run's steps
        try:
            ending = await run_safely(self.runtime, claim, wf, self, self._back_off, extra)
        finally:
            credentials_scope.reset(token)
            self.active.pop(claim.run_id, None)  # from here on its lease is not renewed
        state = None
        if ending is not None:
            state = await close_retrying(
                self.runtime,
                claim,
                ending,
                retry=retry_close,
                stopped=self._closing_stopped,
                quiet=self._quiet,
            )
        if ending is None or state is None:
            log.warning(
                "lease on run %s (token %d) lost: abandoned it without writing",
                claim.run_id,
                claim.lease_token,
                extra=extra,
            )
        elif isinstance(ending.outcome, Released) and ending.outcome.reason is not None:
            self._quiet.warning(
                "released",  # one line per period while the store is in trouble
                "run %s (%s) handed back (%s); claimable again in %.1fs",
                claim.run_id,
                wf.name,
                ending.outcome.reason,
                ending.outcome.delay_s,
            )
        else:
            await self._log_outcome(claim.run_id, wf.name, state, began, extra)
        return state

    def store_back_off_s(self, run_id: str) -> float:
        return self._back_off.next_s(run_id)

    def finished(self, exe: Execution) -> None:
        if not isinstance(exe.unwind, CheckpointFailed):  # the store took its writes
            self._back_off.reset(exe.run.run_id)

    async def _log_outcome(
        self, run_id: str, workflow: str, state: RunState, began: datetime, extra: dict[str, Any]
    ) -> None:
        """One line per execution: completed (with its duration), failed (with the error),
        waiting (for what), handed back, paused, cancelled or blocked."""
        warn = state in (RunState.FAILED, RunState.BLOCKED)
        # a worker's log is where its outcomes are read; an in-process client's caller gets
        # the outcome itself (a result or RunFailed), so its runner says it at debug level
        level = logging.WARNING if warn else logging.INFO
        if self.kind == "client":
            level = logging.DEBUG
        if not log.isEnabledFor(level):
            return
        took_ms = (self.clock.now() - began).total_seconds() * 1000
        detail = f"{state.value} after {took_ms:.0f} ms"
        if state in (RunState.FAILED, RunState.BLOCKED, RunState.WAITING, RunState.SLEEPING):
            with contextlib.suppress(Exception):  # a log line never fails the run
                run = await self.store.get_run(run_id)
                if run is not None and run.error is not None and warn:
                    detail += f": {run.error.type}: {run.error.message}"
                elif run is not None:
                    waits = [describe_wait(w) for w in run.waits if w.seq >= 0]
                    detail += f", waiting for {', '.join(waits)}" if waits else ""
        log.log(
            level,
            "run %s (%s) %s",
            run_id,
            workflow,
            detail,
            extra=extra,
        )

    def started(self, exe: Execution) -> None:
        entry = self.active.get(exe.run.run_id)
        if entry is not None:
            entry.exe = exe
        if self._handing_back:
            exe.set_unwind(HandBack("worker shutting down"))
        elif exe.run.run_id in self._hand_back_runs:
            self._hand_back_runs.discard(exe.run.run_id)
            exe.set_unwind(HandBack("handed back"))

    def watch_children(self, run_id: str, on_child: Callable[[str], None]) -> Callable[[], None]:
        """Call ``on_child(child_run_id)`` whenever an execution here starts a child of
        ``run_id``; returns the function that stops watching."""
        self._child_watchers[run_id] = on_child

        def unwatch() -> None:
            self._child_watchers.pop(run_id, None)

        return unwatch

    def _child_started(self, parent_run_id: str, child_run_id: str) -> None:
        on_child = self._child_watchers.get(parent_run_id)
        if on_child is not None:
            on_child(child_run_id)

    def hand_back(self, run_id: str) -> None:
        """Ask the execution of ``run_id`` here to stop at its next step boundary and hand the
        run back unfinished (not counted as a recovery); an execution about to start here (its
        claim in flight) hands it back at its first step boundary."""
        entry = self.active.get(run_id)
        if entry is not None and entry.exe is not None:
            entry.exe.set_unwind(HandBack("handed back"))
        else:
            self._hand_back_runs.add(run_id)

    def forget_hand_back(self, run_id: str) -> None:
        """No execution of ``run_id`` will start here after all: drop its pending hand-back."""
        self._hand_back_runs.discard(run_id)

    def hand_back_all(self, *, now_cancel: bool) -> None:
        """Ask every execution to stop at its next step boundary and hand its run back; with
        ``now_cancel`` also cancel what is still running (the grace period is over)."""
        self._handing_back = True
        if now_cancel:
            self._closing_stopped.set()  # closes the store still refuses are given up
        for entry in list(self.active.values()):
            exe = entry.exe
            if exe is None:
                continue
            exe.set_unwind(HandBack("worker shutting down"))
            if now_cancel and exe.task is not None and not exe.task.done():
                exe.task.cancel()

    # --- leases ------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        interval = self.settings.heartbeat_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self.heartbeat()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store may be briefly unavailable; keep beating
                self._quiet.warning(
                    "heartbeat", "heartbeat of %s failed: %s", self.worker.worker_id, exc
                )
            else:
                self._quiet.recovered(
                    "heartbeat", "heartbeats of %s work again", self.worker.worker_id
                )

    async def heartbeat(self) -> None:
        """Renew the leases of the runs executing here (only those: a run whose execution ended
        without closing its claim is left to expire and be taken over); tell executions whose
        lease is gone, deliver cancel/pause requests."""
        now = self.clock.now()
        live = dict(self.active)
        held = await self.store.renew_leases(
            self.worker.worker_id,
            list(live),
            lease_s=self.settings.lease_s,
            now=now,
            load=len(live),
        )
        by_run = {status.run_id: status for status in held}
        # only the executions renewed above: one that started meanwhile was not asked about
        for run_id, entry in live.items():
            exe = entry.exe
            if exe is None or self.active.get(run_id) is not entry:
                continue
            status = by_run.get(run_id)
            if status is None or status.lease_token != exe.claim.lease_token:
                exe.lose_lease()
            elif status.control is not None:
                exe.on_control(status.control, exe.run.control_reason)
        if self.exclusive is not None and not await self.exclusive.renew():
            log.warning(
                "worker %s lost the lease %r (another worker took it over): stopping",
                self.worker.worker_id,
                self.exclusive.name,
            )
            self.on_exclusive_lost()
        self.heartbeats += 1
        if self.runtime.observer is not None and self.worker.queues:
            await self._observe_queues(now)
        await self.release_dead_local_workers()
        self.heartbeat_done.set()
        self.heartbeat_done = asyncio.Event()

    async def _observe_queues(self, now: datetime) -> None:
        """Tell the observer how many runs wait in this runner's queues (its gauge's value)."""
        assert self.runtime.observer is not None
        stats = await self.store.queue_stats(now=now)
        served = set(self.worker.queues)
        pending = {q.queue: q.pending for q in stats if q.queue in served}
        self.runtime.observer.queue_depths({q: pending.get(q, 0) for q in served})

    async def release_dead_local_workers(self) -> int:
        """Release the runs of dead workers: at once for a process on this host that is gone;
        for other hosts, once a worker's heartbeat is older than its lease (its leases have
        expired by then too, but its pinned and assigned runs would otherwise wait for it)."""
        workers = await self.store.list_workers()
        now = self.clock.now()
        dead = [
            w.worker_id
            for w in workers
            if w.worker_id != self.worker.worker_id
            and (
                not process_alive(w.pid, w.process_start)
                if w.host == HOST
                else not w.alive_at(now - timedelta(seconds=w.lease_s))
            )
        ]
        if not dead:
            return 0
        released = await self.store.release_worker_runs(dead, now=self.clock.now())
        if released:
            log.info("released %d run(s) of dead worker(s) %s", released, ", ".join(dead))
        return released
