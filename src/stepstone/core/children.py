"""Child runs: start a workflow as a child of this run, and wait for it to end.

A child's run id is derived from the parent's and the call's seq, so a replay finds the same
child instead of starting another. Waiting for a child suspends the parent until the child ends;
the child's outcome is then recorded in the parent's journal.
"""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from stepstone.core import codec
from stepstone.core.definitions import Workflow
from stepstone.core.ids import child_run_id
from stepstone.core.model import ErrorInfo, NewRun, StepKind, StepRecord, StepStatus, Wait
from stepstone.core.records import ChildOutcome, ChildRef
from stepstone.errors import InvalidArgument, RunFailed

if TYPE_CHECKING:
    from stepstone.core.engine import Execution

__all__ = ["Children", "encode_input"]


def encode_input(args: tuple[Any, ...], kwargs: dict[str, Any], where: str) -> str:
    """The stored form of a run's input."""
    return codec.encode({"args": list(args), "kwargs": kwargs}, where)


def _check_workflow(wf: object) -> None:
    """A ``ctx.child``/``start_child`` call is given a workflow."""
    if not isinstance(wf, Workflow):
        raise InvalidArgument(f"ctx.child needs a @workflow, got {wf!r}")


class Children:
    """The child runs one execution starts and waits for."""

    __slots__ = ("_exe",)

    def __init__(self, exe: Execution) -> None:
        self._exe = exe

    def call(
        self,
        wf: Workflow[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        start_only: bool,
        existing_run_id: str | None = None,
    ) -> Coroutine[Any, Any, Any]:
        """A ``ctx.child``/``start_child`` (or a handle's ``result()``): its journal position is
        taken now; the coroutine starts the child and returns its id or waits for its result."""
        exe = self._exe
        exe.raise_if_unwinding()
        _check_workflow(wf)
        seq = exe.journal.allocate()
        return self.child(
            seq, wf, args, kwargs, start_only=start_only, existing_run_id=existing_run_id
        )

    async def child(
        self,
        seq: int,
        wf: Workflow[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        start_only: bool,
        existing_run_id: str | None = None,
        queue: str | None = None,
    ) -> Any:
        """Start (or find) a child run; return its id (``start_only``) or wait for its result."""
        exe = self._exe
        exe.raise_if_unwinding()
        kind = StepKind.START_CHILD if start_only else StepKind.CHILD
        record = exe.journal.lookup(seq, kind, wf.name)
        exe.rt.registry.add(wf)
        if record is not None:
            child_id = ChildRef.decode(record.output_json).run_id
            if start_only:
                return child_id
            if record.status is StepStatus.COMPLETED:
                return self._result(ChildOutcome.decode(record.output_json), wf, seq)
            exe.frontier(seq)
        else:
            exe.frontier(seq)
            child_id = existing_run_id or child_run_id(exe.run.run_id, seq)
            status = StepStatus.COMPLETED if start_only else StepStatus.WAITING
            entry = StepRecord(
                seq,
                wf.name,
                kind,
                status,
                output_json=ChildRef(child_id).encode(),
                started_at=exe.now(),
            )
            await exe.flush_background()
            if existing_run_id is None:
                wf.bind_input(args, kwargs)
                child = NewRun(
                    run_id=child_id,
                    workflow=wf.name,
                    version=wf.version,
                    input_json=encode_input(args, kwargs, f"child {wf.name!r} input"),
                    queue=queue or wf.queue or exe.run.queue,
                    priority=exe.run.priority,
                    deadline_at=_deadline(exe.now(), wf.deadline_s),
                    parent_run_id=exe.run.run_id,
                    parent_seq=seq,
                    trace_context=_trace_context(exe),
                )
                await exe.store_call(
                    exe.rt.store.start_child(exe.claim, entry, child, now=exe.now())
                )
                exe.journal.remember(entry)
                if exe.rt.child_started is not None:
                    exe.rt.child_started(exe.run.run_id, child_id)
            else:
                await exe.persist(entry)
            if start_only:
                return child_id
        return await self._wait(seq, wf, child_id)

    async def _wait(self, seq: int, wf: Workflow[Any, Any], child_id: str) -> Any:
        exe = self._exe
        child = await exe.store_call(exe.rt.store.get_run(child_id))
        if child is None:
            raise InvalidArgument(f"run {exe.run.run_id} step #{seq}: child run {child_id} is gone")
        if not child.is_finished:
            raise exe.suspend(Wait("child", seq, name=child_id))
        outcome = ChildOutcome(child_id, child.state.value, child.output_json, child.error)
        await exe.persist(
            StepRecord(
                seq, wf.name, StepKind.CHILD, StepStatus.COMPLETED, output_json=outcome.encode()
            )
        )
        return self._result(outcome, wf, seq)

    def _result(self, outcome: ChildOutcome, wf: Workflow[Any, Any], seq: int) -> Any:
        if outcome.state == "completed":
            where = f"run {self._exe.run.run_id} child #{seq}"
            return codec.decode(outcome.output_json or "null", wf.return_type, where)
        error = outcome.error or ErrorInfo("Error", "")
        raise RunFailed(outcome.run_id, outcome.state, error.type, error.message)


def _deadline(now: datetime, deadline_s: float | None) -> datetime | None:
    return now + timedelta(seconds=deadline_s) if deadline_s is not None else None


def _trace_context(exe: Execution) -> str | None:
    """The trace a child run joins: the one its parent's step is traced in, else the parent's."""
    observer = exe.rt.observer
    return exe.run.trace_context if observer is None else observer.trace_context()
