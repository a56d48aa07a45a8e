"""Driving runs here up to their next outside wait: run_until_wait, advance, resume, next_stop.

These are for callers that hand a waiting run over instead of waiting through it (an agent, a
command line): a run "stops" when it finishes, is blocked, or waits for a signal — itself or
through a child run it waits for. Timers and sleeps are waited through.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from stepstone.client.base import paused_by_budget
from stepstone.client.operating import payload_problem_for
from stepstone.client.options import split_options
from stepstone.client.running import Running
from stepstone.core import codec
from stepstone.core.definitions import Workflow
from stepstone.core.model import Run, RunState
from stepstone.errors import InvalidArgument, SignalPayloadError, WaitTimeout

__all__ = ["Resuming"]


class Resuming(Running):
    """Executing runs here until they finish or wait for the outside world."""

    async def run_until_wait(
        self, wf: Workflow[Any, Any] | str, /, *args: Any, **kwargs: Any
    ) -> Run:
        """Execute a run here like :meth:`run`, but return as soon as it stops: finished
        (completed, failed or cancelled: no exception is raised, the state says it), blocked,
        paused by a budget, or waiting for a signal, itself or through a child run it waits
        for. Returns the run;
        :meth:`signal_waits` says what it waits for, :meth:`resume` answers it. Sleeps and
        timers are waited through. Child runs still executing here when it stops are handed
        back at their next step boundary (a worker or a later call continues them), never
        cancelled mid-write. Start options as for :meth:`run` (``run_id`` of an existing run
        continues it).

        >>> run = await client.run_until_wait(approve, "doc-1")
        >>> if run.state is RunState.WAITING:
        ...     run = await client.resume(run.run_id, "approval", {"approved": True})
        """
        workflow = self.registry.resolve(wf)
        opts, kwargs = split_options(workflow, kwargs)
        runner = await self._get_runner()
        run_id, claim = await self._create_or_find(runner, workflow, args, kwargs, opts)
        await self._drive(runner, run_id, claim, until_wait=True)
        return await self.get(run_id)

    async def advance(self, run_id: str) -> Run:
        """Continue an existing run here until it stops (see :meth:`run_until_wait`) and
        return it; a run that has already stopped is returned as it is."""
        run = await self.get(run_id)
        if run.is_finished or run.state is RunState.BLOCKED or await self.signal_waits(run):
            return run
        if paused_by_budget(run):
            return run
        await self._drive(await self._get_runner(), run_id, None, until_wait=True)
        return await self.get(run_id)

    async def resume(self, run_id: str, event: str, payload: Any = None) -> Run:
        """Answer the signal wait holding ``run_id`` up with ``event`` and ``payload``, exactly
        once, then continue the run here until it stops again (see :meth:`advance`).

        The wait may be the run's own or that of a child run it waits for (the signal goes to
        that child). The payload is checked first against the wait's schema and the
        workflow's declared signal type: a mismatch raises :class:`SignalPayloadError` and
        stores nothing. Of concurrent resumes of one wait exactly one delivers; the others
        raise :class:`AlreadyResumed`. A run waiting for another event raises RunStateError
        naming it; a finished one, RunStateError.
        """
        if not isinstance(event, str) or not event:
            raise InvalidArgument("event name must be a non-empty string")
        payload_json = codec.encode(payload, f"event {event!r} payload")
        target = await self._resume_target(await self.get(run_id), event)
        waits = [w for w in target.waits if w.kind == "signal" and w.name == event and w.seq >= 0]
        wf = self.registry.workflows.get(target.workflow)
        problem = payload_problem_for(json.loads(payload_json), event, waits, wf)
        if problem is not None:
            raise SignalPayloadError(target.run_id, event, problem)
        await self.store.resume_with_signal(
            target.run_id, event, payload_json, now=self.clock.now()
        )
        return await self.advance(run_id)

    async def _resume_target(self, run: Run, event: str) -> Run:
        """The run in ``run``'s tree that waits for ``event`` now; else the one whose state
        explains why none does (the store's refusal names it: resumed already, finished,
        waiting for something else)."""
        for held in await self.signal_waits(run):
            if held.event == event:
                return run if held.run_id == run.run_id else await self.get(held.run_id)
        current = run
        while current.state is RunState.WAITING:
            own = [w for w in current.waits if w.kind == "signal" and w.seq >= 0]
            kids = [w.name for w in current.waits if w.kind == "child" and w.name and w.seq >= 0]
            if own or not kids:
                break
            current = await self.get(kids[0])
        return current

    async def next_stop(self, run_id: str, *, timeout_s: float | None = None) -> Run:
        """Wait, without executing anything here, until the run stops (see
        :meth:`run_until_wait`) and return it; :class:`WaitTimeout` after ``timeout_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s if timeout_s is not None else None
        while True:
            token = await self.store.change_token()
            run = await self.get(run_id)
            if run.is_finished or run.state is RunState.BLOCKED or paused_by_budget(run):
                return run
            if await self.signal_waits(run):
                return run
            remaining = self.settings.poll_s
            if deadline is not None:
                remaining = min(remaining, deadline - loop.time())
                if remaining <= 0:
                    raise WaitTimeout(f"next stop of run {run_id}", timeout_s, run_id=run_id)
            await self.store.wait_for_change(remaining, since=token)
