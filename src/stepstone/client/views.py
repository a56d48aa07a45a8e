"""Read models for operators: a run described with its steps and waits, and its timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stepstone.core.frozen import frozen
from stepstone.core.model import (
    Run,
    SignalRecord,
    StepKind,
    StepRecord,
    StepStatus,
    Wait,
    describe_wait,
)
from stepstone.core.records import FailureRecord

__all__ = ["RunDescription", "SignalWait", "TimelineEntry", "describe_wait"]


@frozen
class RunDescription:
    """Everything about one run: its row, journal, signals, children and what it waits for;
    ``failures``: the errors its rows no longer show (failed attempts of steps, and its own
    failures before a ``retry``), oldest first."""

    run: Run
    steps: tuple[StepRecord, ...]
    signals: tuple[SignalRecord, ...]
    children: tuple[Run, ...]
    state: dict[str, Any]
    failures: tuple[FailureRecord, ...] = ()

    @property
    def waiting_for(self) -> tuple[str, ...]:
        return tuple(describe_wait(w) for w in self.run.waits if w.seq >= 0)

    @property
    def pending_signals(self) -> tuple[SignalRecord, ...]:
        return tuple(s for s in self.signals if s.consumed_seq is None and not s.rejected)

    @property
    def rejected_signals(self) -> tuple[SignalRecord, ...]:
        """Signals whose payload failed their wait's schema: never delivered (``problem``)."""
        return tuple(s for s in self.signals if s.rejected)

    @property
    def failed_steps(self) -> tuple[StepRecord, ...]:
        return tuple(s for s in self.steps if s.status in (StepStatus.FAILED, StepStatus.RETRYING))

    @property
    def executed_steps(self) -> tuple[StepRecord, ...]:
        return tuple(s for s in self.steps if s.kind is StepKind.STEP)


@frozen
class TimelineEntry:
    """One moment in a run's life, in time order."""

    at: datetime
    kind: str
    detail: str
    seq: int | None = None
    duration_s: float | None = None


@frozen
class SignalWait:
    """A signal wait that holds a run up: ``wait`` (kind ``signal``) of run ``run_id``, which
    is the run asked about or a child run it waits for (``depth`` levels down)."""

    run_id: str
    wait: Wait
    depth: int = 0

    @property
    def event(self) -> str:
        """The signal name that resumes it."""
        return self.wait.name or ""
