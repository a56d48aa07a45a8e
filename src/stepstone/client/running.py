"""Starting runs for workers, and running them here: start, run, result, handles."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Generic, ParamSpec, TypeVar, overload

from stepstone.client.base import ClientBase, check_run_id, paused_by_budget, raise_for
from stepstone.client.options import check_run_options, split_options
from stepstone.core import codec
from stepstone.core.bounds import check_duration, check_int
from stepstone.core.children import encode_input
from stepstone.core.definitions import Workflow
from stepstone.core.executor import decode_input
from stepstone.core.model import (
    NO_ROUTING,
    TERMINAL_STATES,
    Claim,
    NewRun,
    Routing,
    RunState,
)
from stepstone.core.routing import Queue, StartOptions, routing_for
from stepstone.errors import DecodeError, DuplicateRun, InvalidArgument, RunNotFound, WaitTimeout
from stepstone.runtime.runner import Runner

__all__ = ["AsyncRunHandle", "AsyncStarter", "Running"]

P = ParamSpec("P")
R = TypeVar("R")


class AsyncRunHandle(Generic[R]):
    """A started run: ``await handle.result()``, ``await handle.status()``."""

    __slots__ = ("_client", "run_id")

    def __init__(self, client: Running, run_id: str) -> None:
        self._client, self.run_id = client, run_id

    async def result(self, timeout_s: float | None = None) -> R:
        """Wait for the run to finish and return its result (raises RunFailed if it did not)."""
        value: R = await self._client.result(self.run_id, timeout_s=timeout_s)
        return value

    async def status(self) -> RunState:
        return (await self._client.get(self.run_id)).state

    def __repr__(self) -> str:
        return f"<run {self.run_id}>"


_RECHECK_S = 0.01
"""The shortest wait of the in-process driver between two claim attempts of one run."""


class AsyncStarter:
    """Starts or runs workflows with fixed :class:`StartOptions`; arguments stay typed."""

    __slots__ = ("_client", "options")

    def __init__(self, client: Running, options: StartOptions) -> None:
        self._client, self.options = client, options

    async def start(
        self, wf: Workflow[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> AsyncRunHandle[R]:
        """Enqueue ``wf(*args, **kwargs)`` with these options (see :meth:`Running.start`)."""
        workflow = self._client.registry.resolve(wf)
        return await self._client._start(workflow, args, dict(kwargs), self.options)

    async def run(self, wf: Workflow[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Execute ``wf(*args, **kwargs)`` here with these options (see :meth:`Running.run`)."""
        workflow = self._client.registry.resolve(wf)
        result: R = await self._client._run(workflow, args, dict(kwargs), self.options)
        return result


class Running(ClientBase):
    """Starting runs and waiting for their results."""

    def _new_run(
        self,
        wf: Workflow[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        run_id: str | None,
        queue: str | Queue | None,
        priority: int | None,
        start_at: datetime | None,
        deadline_s: float | None,
        routing: Routing = NO_ROUTING,
    ) -> NewRun:
        wf.bind_input(args, kwargs)
        if isinstance(queue, Queue):
            queue = queue.name
        if queue is not None and (not isinstance(queue, str) or not queue):
            raise InvalidArgument(f"queue must be a non-empty string, got {queue!r}")
        if priority is None:
            priority = wf.defaults.priority
        check_int("priority", priority)
        deadline = deadline_s if deadline_s is not None else wf.deadline_s
        if deadline is not None:
            deadline = check_duration("deadline_s", deadline, positive=True)
        now = self.clock.now()
        input_json = encode_input(args, kwargs, f"workflow {wf.name!r} input")
        try:  # decode it the way a worker will, so a wrong type fails here and stores nothing
            decode_input(wf, input_json)
        except DecodeError as exc:
            raise InvalidArgument(str(exc)) from None
        return NewRun(
            run_id=check_run_id(run_id),
            workflow=wf.name,
            version=wf.version,
            input_json=input_json,
            queue=queue or wf.queue or "default",
            priority=priority,
            start_at=start_at,
            deadline_at=now + timedelta(seconds=deadline) if deadline is not None else None,
            routing=routing,
            trace_context=self.observer.trace_context() if self.observer is not None else None,
        )

    @overload
    async def start(
        self, wf: Workflow[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> AsyncRunHandle[R]: ...

    @overload
    async def start(self, wf: str, /, *args: Any, **kwargs: Any) -> AsyncRunHandle[Any]: ...

    async def start(
        self, wf: Workflow[Any, Any] | str, /, *args: Any, **kwargs: Any
    ) -> AsyncRunHandle[Any]:
        """Enqueue a run of ``wf(*args, **kwargs)`` for a worker; returns at once with a handle.

        The arguments are type-checked against the workflow (``ParamSpec``); start options are
        passed separately: ``client.with_options(StartOptions(queue="payments")).start(wf, x)``.
        For convenience the options may also be given here as keywords — ``run_id``, ``queue``,
        ``delay_s``, ``start_at``, ``priority``, ``deadline_s``, ``dedup_key``, ``on_conflict``,
        ``concurrency_key``, ``labels``, ``worker_id``, ``pool`` or a whole ``options=`` — as
        long as the workflow has no parameter of that name (see :class:`StartOptions` for what
        each means; a type checker does not check them in this form).
        """
        workflow = self.registry.resolve(wf)
        opts, kwargs = split_options(workflow, kwargs)
        return await self._start(workflow, args, kwargs, opts)

    def with_options(self, options: StartOptions) -> AsyncStarter:
        """Start or run workflows with these options; the workflow arguments stay typed.

        >>> await client.with_options(StartOptions(queue="payments", priority=5)).start(pay, o)
        """
        return AsyncStarter(self, options)

    async def _start(
        self,
        workflow: Workflow[..., R],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        opts: StartOptions,
    ) -> AsyncRunHandle[R]:
        if opts.on_conflict not in ("return", "raise"):
            raise InvalidArgument(
                f"on_conflict must be 'return' or 'raise', got {opts.on_conflict!r}"
            )
        d = workflow.defaults
        routing = routing_for(
            args,
            kwargs,
            dedup_key=opts.dedup_key if opts.dedup_key is not None else d.dedup_key,
            concurrency_key=(
                opts.concurrency_key if opts.concurrency_key is not None else d.concurrency_key
            ),
            labels=opts.labels if opts.labels is not None else d.labels,
            target_worker=opts.worker_id,
            pool=opts.pool if opts.pool is not None else d.pool,
        )
        start_at = opts.start_at
        if opts.delay_s is not None:
            check_duration("delay_s", opts.delay_s)
        if start_at is not None and (not isinstance(start_at, datetime) or start_at.tzinfo is None):
            raise InvalidArgument("start_at must be an aware datetime")
        if opts.delay_s is not None:
            start_at = self.clock.now() + timedelta(seconds=opts.delay_s)
        new = self._new_run(
            workflow,
            args,
            kwargs,
            run_id=opts.run_id,
            queue=opts.queue,
            priority=opts.priority,
            start_at=start_at,
            deadline_s=opts.deadline_s,
            routing=routing,
        )
        run, created, _ = await self.store.create_run(new, now=self.clock.now())
        if not created and run.workflow != workflow.name:
            raise InvalidArgument(
                f"run id {run.run_id!r} already belongs to workflow {run.workflow!r}, "
                f"not {workflow.name!r}"
            )
        if not created and opts.on_conflict == "raise":
            by_key = routing.dedup_key if run.run_id != new.run_id else None
            raise DuplicateRun(run.run_id, by_key)
        return AsyncRunHandle(self, run.run_id)

    @overload
    async def run(self, wf: Workflow[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...

    @overload
    async def run(self, wf: str, /, *args: Any, **kwargs: Any) -> Any: ...

    async def run(self, wf: Workflow[Any, Any] | str, /, *args: Any, **kwargs: Any) -> Any:
        """Execute a run durably in this process and return its result.

        Sleeps and signal waits are waited through in-process (another process may take the run
        over meanwhile; the result is the same). If ``run_id`` exists the run is resumed, or its
        recorded result returned. A run that ends failed or cancelled raises :class:`RunFailed`.
        Of the start options, ``run_id``, ``queue`` and ``deadline_s`` apply (given through
        :meth:`with_options` or, unchecked by type checkers, as keywords).
        """
        workflow = self.registry.resolve(wf)
        opts, kwargs = split_options(workflow, kwargs)
        return await self._run(workflow, args, kwargs, opts)

    async def _run(
        self,
        workflow: Workflow[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        opts: StartOptions,
    ) -> Any:
        runner = await self._get_runner()
        target, claim = await self._create_or_find(runner, workflow, args, kwargs, opts)
        await self._drive(runner, target, claim)
        return await self.result(target)

    async def _create_or_find(
        self,
        runner: Runner,
        workflow: Workflow[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        opts: StartOptions,
    ) -> tuple[str, Claim | None]:
        """The run ``run`` executes: the existing ``opts.run_id`` (of this workflow), else a
        new run created already claimed by ``runner``."""
        check_run_options(opts)
        run_id = opts.run_id
        existing = await self.store.get_run(run_id) if run_id is not None else None
        if existing is not None:
            if existing.workflow != workflow.name:
                raise InvalidArgument(
                    f"run id {existing.run_id!r} belongs to workflow {existing.workflow!r}, "
                    f"not {workflow.name!r}"
                )
            return existing.run_id, None
        new = self._new_run(
            workflow,
            args,
            kwargs,
            run_id=run_id,
            queue=opts.queue,
            priority=None,
            start_at=None,
            deadline_s=opts.deadline_s,
        )
        _, _, claim = await self.store.create_run(
            new, now=self.clock.now(), claim_for=runner.worker, lease_s=self.settings.lease_s
        )
        return new.run_id, claim

    async def _drive(
        self, runner: Runner, run_id: str, claim: Claim | None, *, until_wait: bool = False
    ) -> None:
        """Execute ``run_id`` here until it finishes, claiming it whenever it is claimable;
        otherwise wait for a change or its next timer. Child runs it starts are executed here
        too, as soon as they are started (so ``start_child`` overlaps the parent's next steps,
        as it does under workers); children still running when it finishes are handed back.
        ``until_wait``: also stop when it waits for a signal, itself or through a child run it
        waits for (timers are still waited through)."""
        return await self._drive_until(runner, run_id, claim, asyncio.Event(), until_wait)

    async def _drive_until(
        self,
        runner: Runner,
        run_id: str,
        claim: Claim | None,
        stop: asyncio.Event,
        until_wait: bool = False,
    ) -> None:
        """:meth:`_drive`, ending at the next idle moment once ``stop`` is set (the parent that
        adopted this run is done)."""
        children: dict[str, asyncio.Task[None]] = {}
        children_stop = asyncio.Event()

        def adopt(child_id: str) -> None:
            if child_id not in children:
                children[child_id] = asyncio.create_task(
                    self._drive_until(runner, child_id, None, children_stop, until_wait)
                )

        unwatch = runner.watch_children(run_id, adopt)
        try:
            await self._drive_one(runner, run_id, claim, adopt, children, stop, until_wait)
        finally:
            unwatch()
            await self._release_children(runner, children, children_stop)

    async def _drive_one(
        self,
        runner: Runner,
        run_id: str,
        claim: Claim | None,
        adopt: Callable[[str], None],
        children: dict[str, asyncio.Task[None]],
        stop: asyncio.Event,
        until_wait: bool = False,
    ) -> None:
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
            if until_wait and (paused_by_budget(run) or await self.signal_waits(run)):
                return
            waited = [w.name for w in run.waits if w.kind == "child" and w.name]
            if run.state is RunState.WAITING and waited:
                for child_id in waited:
                    adopt(child_id)
                await asyncio.gather(*(children[c] for c in waited))
                if until_wait and await self.signal_waits(run_id):
                    return
            if stop.is_set():
                return
            claim = await self.store.claim_run(
                run_id, runner.worker, lease_s=self.settings.lease_s, now=self.clock.now()
            )
            if claim is not None:
                continue
            # The token is taken after the failed claim, whose own (empty) commit would
            # otherwise end the wait below at once, round and round without yielding the loop;
            # a wake-up between the claim and the token shows in the read that follows it.
            token = await self.store.change_token()
            run = await self.store.get_run(run_id)
            if run is None or run.is_finished:
                return
            now = self.clock.now()
            timeout = self.settings.poll_s
            if run.wake_at is not None:
                timeout = min(timeout, (run.wake_at - now).total_seconds())
            if run.state is RunState.RUNNING and run.lease_expires_at is not None:
                timeout = min(timeout, (run.lease_expires_at - now).total_seconds())
            # due but not claimed (taken meanwhile, or held back by a queue limit): look again
            # soon, but never in a tight loop
            changed = asyncio.ensure_future(
                self.store.wait_for_change(max(timeout, _RECHECK_S), since=token)
            )
            stopped = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait([changed, stopped], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (changed, stopped):
                    waiter.cancel()
                await asyncio.gather(changed, stopped, return_exceptions=True)
            if stop.is_set():
                return

    async def _release_children(
        self,
        runner: Runner,
        children: dict[str, asyncio.Task[None]],
        stop: asyncio.Event,
    ) -> None:
        """The parent is done: its children's drives end at their next idle moment; a child
        executing here (or about to) stops at its next step boundary and is handed back (a
        worker, or a later ``run``, continues it). Nothing is cancelled mid-write."""
        pending = [t for t in children.values() if not t.done()]
        if not pending:
            return
        stop.set()
        for child_id, task in children.items():
            if not task.done():
                runner.hand_back(child_id)
        _, late = await asyncio.wait(pending, timeout=self.settings.grace_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for child_id in children:
            runner.forget_hand_back(child_id)

    async def result(self, run_id: str, *, timeout_s: float | None = None) -> Any:
        """Wait for ``run_id`` to finish; return its result decoded by the workflow's return type
        (when this client knows the workflow), or raise :class:`RunFailed`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s if timeout_s is not None else None
        while True:
            token = await self.store.change_token()
            run = await self.get(run_id)
            if run.is_finished or run.state is RunState.BLOCKED:
                break
            remaining = self.settings.poll_s
            if deadline is not None:
                remaining = min(remaining, deadline - loop.time())
                if remaining <= 0:
                    raise WaitTimeout(f"result of run {run_id}", timeout_s, run_id=run_id)
            await self.store.wait_for_change(remaining, since=token)
        if run.state is not RunState.COMPLETED:
            raise_for(run)
        wf = self.registry.workflows.get(run.workflow)
        rtype = wf.return_type if wf is not None else codec._NO_HINT
        return codec.decode(run.output_json, rtype, f"run {run_id} result")

    def handle(self, run_id: str) -> AsyncRunHandle[Any]:
        """A handle on an existing run."""
        return AsyncRunHandle(self, run_id)
