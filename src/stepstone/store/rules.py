"""The run state rules every store applies the same way; adapters only do the writes.

- :func:`control_transition`: what an operator's cancel, pause or unpause does to a run in its
  current state (a request its worker sees at the next step boundary, or a new state at once).
- :func:`parked_state`: where a run that suspends goes (back to pending when a wait is already
  satisfied; else waiting or sleeping, due at its earliest timer).
- :func:`fork_of`: the new run a fork creates, with its arguments checked.
- :func:`signal_taken`, :func:`signal_awaited`: the journal record of a signal wait, when a
  signal was there to take and when the run must wait for one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from stepstone.core.frozen import frozen
from stepstone.core.model import (
    TERMINAL_STATES,
    Control,
    NewRun,
    Run,
    RunState,
    StepKind,
    StepRecord,
    StepStatus,
    Wait,
)
from stepstone.core.records import SignalOutcome, SignalWait
from stepstone.errors import InvalidArgument, RunStateError

__all__ = [
    "Transition",
    "control_transition",
    "fork_of",
    "parked_state",
    "signal_awaited",
    "signal_taken",
]


@frozen
class Transition:
    """What an operator's action writes.

    ``request``: set the run's control (``control``, ``reason``; ``None`` clears it) for the
    worker holding it. Otherwise move the run to ``state`` (``error_json``, ``finished``,
    ``wake_now``). Then record ``event``, wake the parent and cancel the children as told.
    """

    request: bool
    control: Control | None = None
    reason: str | None = None
    state: RunState | None = None
    error_json: str | None = None
    finished: bool = False
    wake_now: bool = False
    event: str = ""
    event_data: dict[str, Any] | None = None
    wake_parent: bool = False
    cascade: bool = False


def control_transition(run: Run, action: Control | None, reason: str | None) -> Transition:
    """Cancel, pause or unpause (``None``) ``run`` as read; RunStateError when not allowed."""
    state = run.state
    if action == "cancel":
        if state in TERMINAL_STATES:
            raise RunStateError(run.run_id, state.value, "cancel", "an unfinished run")
        text = reason or "cancelled"
        if state is RunState.RUNNING:
            return Transition(
                True, "cancel", text, event="cancel_requested", event_data={"reason": text}
            )
        error = json.dumps({"type": "Cancelled", "message": text})
        return Transition(
            False,
            state=RunState.CANCELLED,
            error_json=error,
            finished=True,
            reason=text,
            wake_parent=run.parent_run_id is not None,
            cascade=True,
        )
    if action == "pause":
        if state is RunState.RUNNING:
            return Transition(True, "pause", reason, event="pause_requested")
        if state in (RunState.PENDING, RunState.SLEEPING, RunState.WAITING):
            return Transition(False, state=RunState.PAUSED, event="paused")
        if state is RunState.PAUSED:
            return Transition(False, event="")  # already paused: nothing to write
        raise RunStateError(
            run.run_id, state.value, "pause", "pending, running, sleeping or waiting"
        )
    if state is RunState.PAUSED:
        return Transition(False, state=RunState.PENDING, wake_now=True, event="unpaused")
    if state is RunState.RUNNING and run.control == "pause":
        return Transition(True, None, None, event="unpaused")
    raise RunStateError(run.run_id, state.value, "unpause", "paused")


def parked_state(
    waits: tuple[Wait, ...], satisfied: bool, now: datetime
) -> tuple[RunState, datetime | None]:
    """Where a suspending run goes and when it is due: pending now if a wait is already
    ``satisfied`` (a signal or a child's end arrived meanwhile), if it waits for nothing, or if a
    timer is already due; else waiting (signals, children) or sleeping (timers only), due at
    the earliest timer or timeout (never, for waits without one)."""
    untils = [w.until for w in waits if w.until is not None]
    wake = min(untils) if untils else None
    if satisfied or not waits or (wake is not None and wake <= now):
        return RunState.PENDING, now
    waiting = any(w.kind in ("signal", "child") for w in waits)
    return (RunState.WAITING if waiting else RunState.SLEEPING), wake


def fork_of(source: Run, *, from_seq: int, patch: dict[int, str], new_run_id: str) -> NewRun:
    """The run a fork of ``source`` creates (same workflow, version, input); checks that every
    patched step comes before ``from_seq`` (that it was recorded is for the store to check)."""
    if from_seq < 0:
        raise InvalidArgument(f"fork: from_seq must be >= 0, got {from_seq}")
    for seq in sorted(patch):
        if seq >= from_seq:
            raise InvalidArgument(f"fork: patched step #{seq} is not before from_seq {from_seq}")
    return NewRun(
        run_id=new_run_id,
        workflow=source.workflow,
        version=source.version,
        input_json=source.input_json,
        queue=source.queue,
        priority=source.priority,
        forked_from=source.run_id,
    )


def signal_taken(seq: int, name: str, payload_json: str, now: datetime) -> StepRecord:
    """The completed step of a wait that took a signal: its output is the payload."""
    return StepRecord(
        seq,
        name,
        StepKind.SIGNAL,
        StepStatus.COMPLETED,
        output_json=SignalOutcome(payload_json).encode(),
        started_at=now,
        finished_at=now,
    )


def signal_timed_out(seq: int, name: str, now: datetime) -> StepRecord:
    """The completed step of a wait whose time was up with no signal (a poll: ``timeout_s=0``)."""
    return StepRecord(
        seq,
        name,
        StepKind.SIGNAL,
        StepStatus.COMPLETED,
        output_json=SignalOutcome(timed_out=True).encode(),
        started_at=now,
        finished_at=now,
    )


def signal_awaited(seq: int, name: str, until: datetime | None, now: datetime) -> StepRecord:
    """The waiting step of a wait that found no signal (``until``: when it times out)."""
    return StepRecord(
        seq,
        name,
        StepKind.SIGNAL,
        StepStatus.WAITING,
        output_json=SignalWait(until).encode(),
        started_at=now,
    )
