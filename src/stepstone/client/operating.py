"""Steering runs: signals, cancel, pause, retry, fork, purge, and declaring queues and pools."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from stepstone.client.base import ClientBase, check_run_id, states_of
from stepstone.core import codec
from stepstone.core.bounds import check_int
from stepstone.core.definitions import Workflow
from stepstone.core.ids import new_run_id
from stepstone.core.jsonschema import first_problem
from stepstone.core.model import TERMINAL_STATES, NewRun, Run, RunState, Wait
from stepstone.core.routing import Pool, Queue
from stepstone.core.waits import payload_problem
from stepstone.errors import InvalidArgument, RunStateError, SignalPayloadError, UnknownSignal

__all__ = ["Operating", "payload_problem_for"]


class Operating(ClientBase):
    """Changing runs that exist, and the limits they run under."""

    async def inject(self, run_id: str, note: str) -> None:
        """Steer a run's ``ctx.agent`` loop: ``note`` joins its conversation (as a user message)
        at the next model turn, recorded in the journal so a replay sees it at the same turn.
        Kept until a loop takes it (a run with no loop never does)."""
        from stepstone.core.agentloop import INJECT_SIGNAL

        if not isinstance(note, str) or not note.strip():
            raise InvalidArgument("inject: the note must be a non-empty string")
        await self.signal(run_id, INJECT_SIGNAL, note, buffer=True)

    async def signal(
        self, run_id: str, name: str, payload: Any = None, *, buffer: bool = False
    ) -> None:
        """Send signal ``name`` to a run; the run takes it when it waits for ``name``.

        The name must be one the run waits for now or one its workflow declares (``signals=``;
        checked when this client knows the workflow), else :class:`UnknownSignal` (with a "did
        you mean") and nothing is stored. ``buffer=True`` says an early send of another name is
        intended: it is kept until the run waits for it.

        The payload is checked against the schema the run's wait declared and the workflow's
        ``signals=`` type: a mismatch raises :class:`SignalPayloadError`, the signal is recorded
        as rejected (``timeline`` shows why) and the run is not touched. A buffered payload this
        client could not check is checked by the wait that meets it, which rejects a bad one the
        same way and goes on waiting.

        >>> await client.signal(run_id, "approval", {"approved": True})
        >>> await client.signal(run_id, "approval", {"approved": True}, buffer=True)  # early
        """
        if not isinstance(name, str) or not name:
            raise InvalidArgument("signal name must be a non-empty string")
        payload_json = codec.encode(payload, f"signal {name!r} payload")
        run = await self.get(run_id)
        now = self.clock.now()
        if run.is_finished:  # the store refuses it, naming the state
            await self.store.send_signal(run_id, name, payload_json, now=now)
            return
        waits = [w for w in run.waits if w.kind == "signal" and w.name == name and w.seq >= 0]
        wf = self.registry.workflows.get(run.workflow)
        if not waits and not buffer and (wf is None or name not in wf.signals):
            raise _unknown(run, name, wf)
        problem = payload_problem_for(json.loads(payload_json), name, waits, wf)
        if problem is not None:
            rejected_by = waits[0].seq if waits else None
            await self.store.send_signal(
                run_id, name, payload_json, now=now, problem=problem, rejected_by=rejected_by
            )
            raise SignalPayloadError(run_id, name, problem)
        await self.store.send_signal(run_id, name, payload_json, now=now)

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

    async def retry(self, run_id: str, *, fresh: bool = False) -> Run:
        """Resume a failed (or blocked) run keeping its completed steps; the failed step reruns.

        ``fresh=True`` instead starts a new run of the same workflow with the same input and
        routing (by the code now loaded, when this client knows the workflow), linked to the old
        one by ``retry_of``; the failed run stays as it is.
        """
        if not fresh:
            return await self.store.retry_run(run_id, now=self.clock.now())
        old = await self.get(run_id)
        if old.state not in (RunState.FAILED, RunState.CANCELLED, RunState.BLOCKED):
            raise RunStateError(
                run_id, old.state.value, "retry fresh", "failed, cancelled or blocked"
            )
        known = self.registry.workflows.get(old.workflow)
        new = NewRun(
            run_id=new_run_id(),
            workflow=old.workflow,
            version=known.version if known is not None else old.version,
            input_json=old.input_json,
            queue=old.queue,
            priority=old.priority,
            retry_of=run_id,
            routing=old.routing,
        )
        run, _, _ = await self.store.create_run(new, now=self.clock.now())
        return run

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
        check_int("from_seq", from_seq, lo=0)
        await self.get(run_id)  # RunNotFound before anything else
        recorded = await self.store.load_steps(run_id)
        last = max((r.seq for r in recorded), default=-1)
        if from_seq > last + 1:
            has = f"its steps are #0 to #{last}" if last >= 0 else "it has no recorded steps"
            raise InvalidArgument(
                f"fork of run {run_id}: from_seq {from_seq} is past its recorded steps ({has}; "
                f"from_seq may be at most {last + 1})"
            )
        encoded = {
            int(seq): codec.encode(value, f"fork patch for step #{seq}")
            for seq, value in (patch or {}).items()
        }
        return await self.store.fork_run(
            run_id,
            from_seq=from_seq,
            patch=encoded,
            new_run_id=check_run_id(new_run_id),
            now=self.clock.now(),
        )

    async def delete(self, run_id: str) -> None:
        """Delete one finished run (completed, failed or cancelled) with its steps, signals and
        events; a run not finished raises RunStateError naming its state, and stays."""
        await self.store.delete_run(run_id)

    async def purge(
        self,
        *,
        older_than_s: float,
        state: RunState | str | Iterable[RunState | str] | None = None,
    ) -> int:
        """Delete finished runs (completed, failed, cancelled; or those of ``state``) that
        finished more than ``older_than_s`` ago, with their steps, signals and events."""
        if not isinstance(older_than_s, int | float) or older_than_s < 0:
            raise InvalidArgument(f"older_than_s must be >= 0, got {older_than_s!r}")
        states = states_of(state) or tuple(TERMINAL_STATES)
        before = self.clock.now() - timedelta(seconds=older_than_s)
        return await self.store.purge_runs(finished_before=before, states=states)

    async def declare(self, *items: Queue | Pool) -> None:
        """Store queue limits and pool strategies (workers also declare their own at start)."""
        queues = [i.spec for i in items if isinstance(i, Queue)]
        pools = [i.spec for i in items if isinstance(i, Pool)]
        if len(queues) + len(pools) != len(items):
            raise InvalidArgument("declare() takes Queue and Pool objects")
        if queues:
            await self.store.declare_queues(queues, now=self.clock.now())
        if pools:
            await self.store.declare_pools(pools, now=self.clock.now())


def payload_problem_for(
    raw: Any, name: str, waits: list[Wait], wf: Workflow[Any, Any] | None
) -> str | None:
    """The first problem the run's waits for ``name`` (their stored schema) or the workflow's
    declared ``signals=`` type find with the payload ``raw``."""
    for wait in waits:
        problem = first_problem(raw, json.loads(wait.schema_json)) if wait.schema_json else None
        if problem:
            return problem
    tp = wf.signals.get(name) if wf is not None else None
    return payload_problem(raw, tp, name) if tp is not None else None


def _unknown(run: Run, name: str, wf: Workflow[Any, Any] | None) -> UnknownSignal:
    waiting = {w.name for w in run.waits if w.kind == "signal" and w.name and w.seq >= 0}
    known = tuple(sorted(waiting | set(wf.signals if wf is not None else ())))
    import difflib  # only to word an error

    guess = difflib.get_close_matches(name, known, n=1)
    return UnknownSignal(
        run.run_id,
        name,
        run.workflow,
        known,
        suggestion=guess[0] if guess else None,
        workflow_known=wf is not None,
    )
