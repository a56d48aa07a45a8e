"""Executes claimed runs under leases: heartbeats, control delivery, dead-worker release.

Both the :class:`~stepstone.Worker` and the in-process ``Client.run`` execute runs through one
``Runner``. It registers its identity (host, pid, process start) so that another process on the
same host can release its runs at once when it dies, renews the leases of every run it executes,
and tells each execution when its lease was lost or a cancel/pause arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from stepstone.core.clock import Clock, SystemClock
from stepstone.core.definitions import Registry, Workflow
from stepstone.core.engine import Execution, Runtime
from stepstone.core.executor import ExecutionHooks, execute
from stepstone.core.identity import HOST, process_alive, process_start, worker_id_for
from stepstone.core.model import Claim, Labels, RunState, WorkerInfo
from stepstone.core.port import Store
from stepstone.core.scope import Credentials, credentials_scope
from stepstone.core.settings import Settings
from stepstone.core.threads import DaemonThreadPool
from stepstone.errors import HandBack

__all__ = ["Runner"]

log = logging.getLogger("stepstone.runner")


@dataclass
class _Active:
    exe: Execution | None = None


class Runner(ExecutionHooks):
    """Runs claims for one worker identity. Start it, execute claims, stop it."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        *,
        kind: str = "worker",
        queues: tuple[str, ...] = ("default",),
        concurrency: int = 32,
        settings: Settings | None = None,
        clock: Clock | None = None,
        worker_id: str | None = None,
        version: str | None = None,
        labels: Labels = (),
        pool: str | None = None,
        credentials: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings or Settings()
        self.clock = clock or SystemClock()
        self.credentials = Credentials(credentials)
        pid = os.getpid()
        self.worker = WorkerInfo(
            worker_id=worker_id or worker_id_for(kind),
            host=HOST,
            pid=pid,
            queues=queues,
            concurrency=concurrency,
            process_start=process_start(pid),
            version=version,
            labels=labels,
            pool=pool,
            lease_s=self.settings.lease_s,
        )
        self.runtime = Runtime(
            store=store,
            registry=registry,
            clock=self.clock,
            settings=self.settings,
            step_pool=DaemonThreadPool(max(concurrency, 4), "stepstone-step"),
            workflow_pool=DaemonThreadPool(max(concurrency, 4), "stepstone-workflow"),
        )
        self.active: dict[str, _Active] = {}
        self.heartbeats = 0
        self.heartbeat_done = asyncio.Event()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._started = False
        self._handing_back = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self.worker = replace(self.worker, started_at=self.clock.now())
        await self.store.register_worker(self.worker, now=self.clock.now())
        self._started = True
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
        if self._started:
            with contextlib.suppress(Exception):
                await self.store.unregister_worker(self.worker.worker_id)
            self._started = False
        self.runtime.step_pool.shutdown(wait=False)
        self.runtime.workflow_pool.shutdown(wait=False)

    # --- execution ---------------------------------------------------------------------------

    async def execute(self, claim: Claim, wf: Workflow[Any, Any] | None = None) -> RunState | None:
        """Execute one claim to its next stop; returns the run's state after (None: lease lost)."""
        wf = wf or self.registry.get(claim.run.workflow)
        self.active[claim.run_id] = _Active()
        token = credentials_scope.set(self.credentials)  # inherited by the run's steps
        try:
            state = await execute(self.runtime, claim, wf, self)
        finally:
            credentials_scope.reset(token)
            self.active.pop(claim.run_id, None)
        if state is None:
            log.warning(
                "lease on run %s (token %d) lost: abandoned it without writing",
                claim.run_id,
                claim.lease_token,
            )
        return state

    def started(self, exe: Execution) -> None:
        entry = self.active.get(exe.run.run_id)
        if entry is not None:
            entry.exe = exe
        if self._handing_back:
            exe.set_unwind(HandBack("worker shutting down"))

    def hand_back_all(self, *, now_cancel: bool) -> None:
        """Ask every execution to stop at its next step boundary and hand its run back; with
        ``now_cancel`` also cancel what is still running (the grace period is over)."""
        self._handing_back = True
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
                log.warning("heartbeat of %s failed: %s", self.worker.worker_id, exc)

    async def heartbeat(self) -> None:
        """Renew leases; tell executions whose lease is gone, deliver cancel/pause requests."""
        now = self.clock.now()
        held = await self.store.renew_leases(
            self.worker.worker_id, lease_s=self.settings.lease_s, now=now, load=len(self.active)
        )
        by_run = {status.run_id: status for status in held}
        for run_id, entry in list(self.active.items()):
            exe = entry.exe
            if exe is None:
                continue
            status = by_run.get(run_id)
            if status is None or status.lease_token != exe.claim.lease_token:
                exe.lose_lease()
            elif status.control is not None:
                exe.on_control(status.control, exe.run.control_reason)
        self.heartbeats += 1
        await self.release_dead_local_workers()
        self.heartbeat_done.set()
        self.heartbeat_done = asyncio.Event()

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
