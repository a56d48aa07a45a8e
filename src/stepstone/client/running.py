"""Starting runs for workers, and running them here: start, run, result, handles."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from stepstone.client.base import ClientBase, check_run_id, raise_for
from stepstone.core import codec
from stepstone.core.definitions import Workflow
from stepstone.core.engine import encode_input
from stepstone.core.executor import decode_input
from stepstone.core.model import NO_ROUTING, TERMINAL_STATES, Claim, NewRun, Routing, RunState
from stepstone.core.routing import KeyFunction, Pool, Queue, StartOptions, routing_for
from stepstone.errors import DecodeError, DuplicateRun, InvalidArgument, RunNotFound, WaitTimeout
from stepstone.runtime.runner import Runner

__all__ = ["AsyncRunHandle", "Running"]

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
        if not isinstance(priority, int) or isinstance(priority, bool):
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
            run_id=check_run_id(run_id),
            workflow=wf.name,
            version=wf.version,
            input_json=input_json,
            queue=queue or wf.queue or "default",
            priority=priority,
            start_at=start_at,
            deadline_at=now + timedelta(seconds=deadline) if deadline is not None else None,
            routing=routing,
        )

    async def start(
        self,
        wf: Workflow[..., R] | str,
        /,
        *args: Any,
        options: StartOptions | None = None,
        run_id: str | None = None,
        queue: str | Queue | None = None,
        delay_s: float | None = None,
        start_at: datetime | None = None,
        priority: int | None = None,
        deadline_s: float | None = None,
        dedup_key: str | KeyFunction | None = None,
        on_conflict: Literal["return", "raise"] = "return",
        concurrency_key: str | KeyFunction | None = None,
        labels: Mapping[str, str] | None = None,
        worker_id: str | None = None,
        pool: str | Pool | None = None,
        **kwargs: Any,
    ) -> AsyncRunHandle[R]:
        """Enqueue a run for a worker; returns at once with a handle.

        The start options (see :class:`~stepstone.StartOptions`, which may be passed whole as
        ``options``; a keyword given here wins over it): ``run_id`` is an idempotency key:
        starting an id that exists returns the existing run. ``dedup_key`` allows one unfinished
        run per key: a second start returns the existing run, or raises :class:`DuplicateRun`
        with ``on_conflict="raise"`` (which applies to an existing ``run_id`` too).
        ``delay_s``/``start_at`` delay the start; ``priority`` orders claims (higher first);
        ``concurrency_key`` is what the queue's per-key limits count; ``labels`` must all be
        offered by the worker; ``worker_id`` pins the run to one worker; ``pool`` sends it to a
        worker pool. Unset options take the workflow's defaults.
        """
        given = {
            "run_id": run_id,
            "queue": queue,
            "delay_s": delay_s,
            "start_at": start_at,
            "priority": priority,
            "deadline_s": deadline_s,
            "dedup_key": dedup_key,
            "concurrency_key": concurrency_key,
            "labels": labels,
            "worker_id": worker_id,
            "pool": pool,
        }
        opts = options or StartOptions()
        overrides: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        if on_conflict != "return":
            overrides["on_conflict"] = on_conflict
        if overrides:
            opts = replace(opts, **overrides)
        return await self._start(self.registry.resolve(wf), args, kwargs, opts)

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
        if opts.delay_s is not None and opts.delay_s < 0:
            raise InvalidArgument(f"delay_s must be >= 0, got {opts.delay_s}")
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
                priority=None,
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
            # The token is taken after the failed claim, whose own (empty) commit would
            # otherwise end the wait below at once, round and round without yielding the loop;
            # a wake-up between the claim and the token shows in the read that follows it.
            token = await self.store.change_token()
            run = await self.store.get_run(run_id)
            if run is None or run.is_finished:
                return
            if run.state is RunState.PENDING:
                continue
            timeout = self.settings.poll_s
            if run.wake_at is not None:
                timeout = min(timeout, max((run.wake_at - self.clock.now()).total_seconds(), 0.0))
            if run.state is RunState.RUNNING and run.lease_expires_at is not None:
                timeout = min(
                    timeout, max((run.lease_expires_at - self.clock.now()).total_seconds(), 0.0)
                )
            if timeout > 0:
                await self.store.wait_for_change(timeout, since=token)

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
