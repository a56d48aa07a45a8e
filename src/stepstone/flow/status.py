"""``WorkflowStatus``: a run of a flow as sayiir's runners report it."""

from __future__ import annotations

import json
import re
from typing import Any

from stepstone.core.frozen import frozen
from stepstone.core.model import Run, RunState

__all__ = ["WorkflowStatus", "by_reason", "status_of"]

_BY = re.compile(r"^(?P<reason>.*) \(by (?P<by>[^()]*)\)$", re.DOTALL)


def by_reason(reason: str | None, by: str | None) -> str | None:
    """One stored reason that keeps who asked (stepstone records a reason, sayiir also a name)."""
    if by is None:
        return reason
    return f"{reason or 'no reason given'} (by {by})"


def _split(reason: str | None) -> tuple[str | None, str | None]:
    match = _BY.match(reason) if reason else None
    if match is None:
        return reason, None
    return match["reason"], match["by"]


@frozen
class WorkflowStatus:
    """Where a flow's run is: ``status`` is one of ``"completed"``, ``"failed"``,
    ``"cancelled"``, ``"in_progress"``, ``"paused"``, ``"waiting"`` (a delay: see ``wake_at``),
    ``"awaiting_signal"`` (see ``signal_name``) or ``"blocked"`` (the code now deployed cannot
    continue it: see ``stepstone check``).

    >>> status = run_durable_workflow(wf, "order-123", 42, store="sqlite:///app.db")
    >>> status.is_completed(), status.output
    """

    instance_id: str
    status: str
    output: Any = None
    error: str | None = None
    reason: str | None = None
    cancelled_by: str | None = None
    paused_by: str | None = None
    wake_at: str | None = None
    signal_name: str | None = None
    state: RunState | None = None

    def is_completed(self) -> bool:
        """The run finished with an output."""
        return self.status == "completed"

    def is_failed(self) -> bool:
        """The run failed (``error`` says why)."""
        return self.status == "failed"

    def is_cancelled(self) -> bool:
        """The run was cancelled (``reason``, ``cancelled_by``)."""
        return self.status == "cancelled"

    def is_paused(self) -> bool:
        """The run is paused until unpaused."""
        return self.status == "paused"

    def is_in_progress(self) -> bool:
        """The run has not finished: running, waiting, sleeping or paused."""
        return self.status in ("in_progress", "waiting", "awaiting_signal", "paused")

    def is_waiting(self) -> bool:
        """The run is parked on a delay until ``wake_at``."""
        return self.status == "waiting"

    def is_awaiting_signal(self) -> bool:
        """The run is parked until the signal ``signal_name`` arrives."""
        return self.status == "awaiting_signal"

    def is_blocked(self) -> bool:
        """The run was started by other code, which the code now loaded cannot continue."""
        return self.status == "blocked"


def status_of(run: Run) -> WorkflowStatus:
    """The status of ``run``."""
    state = run.state
    error = f"{run.error.type}: {run.error.message}" if run.error is not None else None
    base: dict[str, Any] = {"instance_id": run.run_id, "state": state, "error": error}
    if state is RunState.COMPLETED:
        output = json.loads(run.output_json) if run.output_json is not None else None
        return WorkflowStatus(status="completed", output=output, **base)
    if state is RunState.FAILED:
        return WorkflowStatus(status="failed", **base)
    if state is RunState.CANCELLED:
        reason, by = _split(run.control_reason or (run.error.message if run.error else None))
        return WorkflowStatus(status="cancelled", reason=reason, cancelled_by=by, **base)
    if state is RunState.PAUSED:
        return WorkflowStatus(status="paused", **base)
    if state is RunState.BLOCKED:
        return WorkflowStatus(status="blocked", **base)
    signals = [w for w in run.waits if w.kind == "signal"]
    if state is RunState.WAITING and signals:
        until = signals[0].until.isoformat() if signals[0].until else None
        return WorkflowStatus(
            status="awaiting_signal", signal_name=signals[0].name, wake_at=until, **base
        )
    if state is RunState.SLEEPING:
        wake = run.wake_at.isoformat() if run.wake_at is not None else None
        return WorkflowStatus(status="waiting", wake_at=wake, **base)
    return WorkflowStatus(status="in_progress", **base)
