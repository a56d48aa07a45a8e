"""The worker: claims runs from its queues up to its free slots and executes them concurrently.

It never waits on a sleeping or waiting run: those are suspended in the store and claimed again
(by any worker) when due. Idle, it waits for a store change (a local write, another process's
commit, a notification), the next timer, or ``poll_s``, whichever comes first. On SIGINT/SIGTERM it
stops claiming, lets running steps finish within ``grace_s``, and hands the rest back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from stepstone.core.clock import Clock, SystemClock
from stepstone.core.definitions import Registry, Workflow, as_registry
from stepstone.core.model import Claim
from stepstone.core.port import ClaimFilter, Store
from stepstone.core.routing import Pool, Queue, labels_of
from stepstone.core.schedules import Schedule
from stepstone.core.settings import Settings
from stepstone.errors import InvalidArgument, StoreError
from stepstone.runtime.logs import QuietLog
from stepstone.runtime.runner import Runner, RunnerOptions
from stepstone.runtime.schedules import ScheduleFirer
from stepstone.store import open_store_for_use
from stepstone.telemetry import as_observer

if TYPE_CHECKING:
    from stepstone.core.llm import Models
    from stepstone.core.observe import Observer

__all__ = ["Worker"]

log = logging.getLogger("stepstone.worker")


class Worker:
    """Executes runs of the given workflows from one or more queues.

    >>> Worker("sqlite:///app.db", workflows=[checkout], concurrency=64).run()
    >>> Worker(url, workflows=app, queue=[Queue("gpu", concurrency=4), "default"],
    ...        labels={"gpu": "a100"}, pool=Pool("render", "least_loaded"),
    ...        credentials={"OPENAI_API_KEY": key}).run()

    ``workflows`` may be a list, a module (every workflow it defines) or a :class:`Registry`.
    ``queue``: the queues it claims from; :class:`Queue` objects also store their limits at
    start, so every worker enforces them. ``labels``: what it offers to runs that require
    labels. ``pool``: the worker pool it belongs to (a :class:`Pool` also stores its strategy).
    ``credentials``: readable inside steps through :func:`stepstone.worker_credentials`, never
    stored or logged. ``schedules``: :class:`Schedule` objects to store at start, besides those
    of the registry or module (``@workflow(schedule=...)``, module-level ``Schedule``); every
    worker fires the due schedules of the workflows it serves, each tick exactly once.
    ``models``: the model providers ``ctx.llm`` calls (:func:`stepstone.models.load_models`
    builds them from ``~/.stepstone/config.toml``). ``tracing``: ``True`` traces runs and steps
    and counts claims with OpenTelemetry's global providers (``stepstone[otel]``), or give an
    :class:`~stepstone.telemetry.OpenTelemetry` (or any ``Observer``); off by default.
    ``exclusive``: the name of a lease in the store this worker holds while it serves, so that
    of all the workers started with one name one serves at a time: another raises
    :class:`~stepstone.errors.LeaseHeld` at start (unless the holder died: it takes over at
    once); the lease is renewed with each heartbeat and released at stop, and a worker that
    loses it (stalled past ``lease_s`` while another took over) stops. ``stepstone daemon``
    runs the skills worker this way.
    """

    def __init__(
        self,
        store: Store | str | Path | None = None,
        workflows: Registry
        | ModuleType
        | Iterable[Workflow[Any, Any]]
        | Workflow[Any, Any]
        | None = None,
        *,
        queue: str | Queue | Iterable[str | Queue] = "default",
        concurrency: int = 32,
        labels: Mapping[str, object] | None = None,
        pool: str | Pool | None = None,
        credentials: Mapping[str, Any] | None = None,
        schedules: Iterable[Schedule] = (),
        settings: Settings | None = None,
        clock: Clock | None = None,
        worker_id: str | None = None,
        auto_migrate: bool | None = None,
        models: Models | None = None,
        tracing: bool | Observer = False,
        exclusive: str | None = None,
    ) -> None:
        self.store, self._owns_store = open_store_for_use(store, auto_migrate=auto_migrate)
        self.registry = as_registry(workflows)
        for schedule in schedules:
            self.registry.add_schedule(schedule)
        if not len(self.registry):
            raise InvalidArgument(
                "Worker needs at least one workflow (workflows=[...] or a module)"
            )
        self.registry.schedules()  # each names a workflow served here: refused now, not later
        items = (queue,) if isinstance(queue, str | Queue) else tuple(queue)
        if not items or not all(isinstance(q, Queue) or (isinstance(q, str) and q) for q in items):
            raise InvalidArgument(f"queue must be a non-empty name or names, got {queue!r}")
        queues = tuple(q.name if isinstance(q, Queue) else q for q in items)
        self.declared_queues = [q.spec for q in items if isinstance(q, Queue)]
        self.declared_pool = pool.spec if isinstance(pool, Pool) else None
        pool_name = pool.name if isinstance(pool, Pool) else pool
        if pool_name is not None and (not isinstance(pool_name, str) or not pool_name):
            raise InvalidArgument(f"pool must be a non-empty name or a Pool, got {pool!r}")
        if concurrency < 1:
            raise InvalidArgument(f"concurrency must be >= 1, got {concurrency}")
        self.queues = queues
        self.concurrency = concurrency
        self.settings = settings or Settings()
        self.clock = clock or SystemClock()
        self.runner = Runner(
            self.store,
            self.registry,
            RunnerOptions(
                kind="worker",
                queues=queues,
                concurrency=concurrency,
                worker_id=worker_id,
                version=self.registry.version,
                labels=labels_of(labels, "worker labels"),
                pool=pool_name,
                exclusive=exclusive,
            ),
            settings=self.settings,
            clock=self.clock,
            credentials=credentials,
            models=models,
            observer=as_observer(tracing),
        )
        self.filter = ClaimFilter(queues=queues, workflows=self.registry.names())
        self.firer = ScheduleFirer(
            self.store, self.registry, self.clock, self.settings.schedule_check_s
        )
        self.runner.on_exclusive_lost = self.stop
        self.tasks: set[asyncio.Task[Any]] = set()
        self.executed = 0
        self.ready = threading.Event()
        self._quiet = QuietLog(log)
        self._stopping: asyncio.Event | None = None
        self._wakeup: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def worker_id(self) -> str:
        return self.runner.worker.worker_id

    # --- lifecycle ---------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM (or :meth:`stop`), then shut down gracefully."""
        asyncio.run(self._run_with_signals())

    async def _run_with_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        await self.serve()

    def stop(self) -> None:
        """Ask the worker to stop (thread-safe): no new claims, running steps get ``grace_s``."""
        loop, stopping = self._loop, self._stopping
        if loop is None or stopping is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            stopping.set()
        else:
            with contextlib.suppress(RuntimeError):  # its loop closed: it has stopped already
                loop.call_soon_threadsafe(stopping.set)

    async def serve(self) -> None:
        """Claim and execute runs until stopped."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        if self.declared_queues:
            await self.store.declare_queues(self.declared_queues, now=self.clock.now())
        if self.declared_pool is not None:
            await self.store.declare_pools([self.declared_pool], now=self.clock.now())
        try:
            await self.runner.start()
        except BaseException:
            if self._owns_store:  # LeaseHeld (exclusive): nothing was served
                await self.store.close()
            raise
        await self.firer.declare()
        log.info(
            "worker %s serving queues %s, workflows %s",
            self.worker_id,
            self.queues,
            self.filter.workflows,
        )
        self.ready.set()
        try:
            await self._claim_loop()
        finally:
            await self._shutdown()

    async def _claim_loop(self) -> None:
        assert self._stopping is not None
        backoff = 0.0
        while not self._stopping.is_set():
            # Marks taken before looking: a change or a freed slot after them ends the idle wait.
            assert self._wakeup is not None
            self._wakeup.clear()
            token: object = None
            free = self.concurrency - len(self.tasks)
            claimed = 0
            try:
                token = await self.store.change_token()
                await self._fire_schedules()
                if free > 0:
                    claimed = await self._claim(free)
                if backoff:
                    self._quiet.recovered(
                        "claim", "worker %s: claiming works again", self.worker_id
                    )
                backoff = 0.0
            except StoreError as exc:
                backoff = min(max(backoff * 2, 0.05), 5.0)
                self._quiet.warning(
                    "claim", "worker %s: claiming failed (%s); backing off", self.worker_id, exc
                )
                # a real pause: only a stop ends it early (a store change or a finished run
                # would end an idle wait at once, and the loop would spin on the failure)
                await self._pause(backoff)
                continue
            if claimed:
                await asyncio.sleep(0)  # let the new runs start before the next round trip
                if claimed == free and len(self.tasks) < self.concurrency:
                    continue
            timeout = await self._idle_timeout() if free > claimed else self.settings.poll_s
            scheduled = self.firer.wake_in(self.clock.now())
            if scheduled is not None:
                timeout = min(timeout, scheduled)
            await self._idle(timeout, token)

    async def _fire_schedules(self) -> None:
        """Fire the due schedules; a defect in one (not the store's trouble, which backs the
        whole loop off) is logged and never stops the worker executing runs."""
        try:
            await self.firer.fire_due()
        except StoreError:
            raise
        except Exception as exc:
            self._quiet.warning(
                "schedules", "worker %s: firing schedules failed: %r", self.worker_id, exc
            )

    async def _claim(self, free: int) -> int:
        now = self.clock.now()
        claims = await self.store.claim_runs(
            self.runner.worker, self.filter, limit=free, lease_s=self.settings.lease_s, now=now
        )
        observer = self.runner.runtime.observer
        if observer is not None and claims:
            observer.claimed(claims)
        for claim in claims:
            task = asyncio.create_task(self._execute(claim), name=f"run-{claim.run_id}")
            self.tasks.add(task)
            task.add_done_callback(self._task_done)
        return len(claims)

    async def _execute(self, claim: Claim) -> None:
        try:
            await self.runner.execute(claim, retry_close=True)
        except Exception:  # the claim could not be closed: its lease, no longer renewed, expires
            log.exception(
                "run %s could not be closed; another attempt takes it over once its lease expires",
                claim.run_id,
            )
        finally:
            self.executed += 1

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if self._wakeup is not None:
            self._wakeup.set()

    async def _idle_timeout(self) -> float:
        timeout = self.settings.poll_s
        try:
            due = await self.store.next_wake_at(self.filter, now=self.clock.now())
        except StoreError:
            return timeout
        if due is not None:
            timeout = min(timeout, max((due - self.clock.now()).total_seconds(), 0.0))
        return timeout

    async def _idle(self, timeout: float, token: object) -> None:
        """Wait for a change in the store after ``token``, a finished run (free slot), stop, or
        the timeout."""
        assert self._stopping is not None
        assert self._wakeup is not None
        if timeout <= 0:
            await asyncio.sleep(0)
            return
        waiters: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self._stopping.wait()),
            asyncio.ensure_future(self._wakeup.wait()),
        ]
        if len(self.tasks) < self.concurrency:
            waiters.append(asyncio.ensure_future(self.store.wait_for_change(timeout, since=token)))
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` unless the worker is asked to stop meanwhile."""
        assert self._stopping is not None
        stopped = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait([stopped], timeout=seconds)
        finally:
            stopped.cancel()

    async def _shutdown(self) -> None:
        """Stop claiming; let steps finish within the grace period; hand back what remains."""
        if self.tasks:
            log.info("worker %s stopping: %d run(s) in progress", self.worker_id, len(self.tasks))
            self.runner.hand_back_all(now_cancel=False)
            _, pending = await asyncio.wait(set(self.tasks), timeout=self.settings.grace_s)
            if pending:
                self.runner.hand_back_all(now_cancel=True)
                await asyncio.wait(pending, timeout=max(self.settings.grace_s, 1.0))
        await self.runner.stop()
        if self._owns_store:
            await self.store.close()
        log.info("worker %s stopped", self.worker_id)
