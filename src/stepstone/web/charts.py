"""The run page's step timeline: where each step's bar starts and how long it is, as percents of
the run's span (the template draws them as SVG rects, so no inline style is needed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from stepstone.core.model import Run, StepKind, StepRecord

__all__ = ["StepBar", "step_bars"]

_MIN_WIDTH = 0.4  # percent: an instant step still shows


@dataclass(frozen=True, slots=True)
class StepBar:
    """One step on the timeline: ``x`` and ``width`` in percent of the run's span; ``open``: it
    has not finished (its bar runs to now)."""

    seq: int
    label: str
    status: str
    x: float
    width: float
    duration_s: float | None
    open: bool


def step_bars(run: Run, steps: Sequence[StepRecord], now: datetime) -> list[StepBar]:
    """Bars for the steps that have a start time, laid out between the first step's start and the
    run's end (or ``now`` while it goes on)."""
    timed = [s for s in steps if s.started_at is not None]
    if not timed:
        return []
    start = min(s.started_at for s in timed if s.started_at is not None)
    ends = [s.finished_at or now for s in timed]
    end = max([run.finished_at or now, *ends])
    span = max((end - start).total_seconds(), 1e-6)
    bars = []
    for step, stop in zip(timed, ends, strict=True):
        assert step.started_at is not None
        offset = (step.started_at - start).total_seconds() / span * 100
        width = max((stop - step.started_at).total_seconds() / span * 100, _MIN_WIDTH)
        label = step.name if step.kind is StepKind.STEP else f"{step.kind.value} {step.name}"
        duration = (
            (step.finished_at - step.started_at).total_seconds() if step.finished_at else None
        )
        bars.append(
            StepBar(
                seq=step.seq,
                label=label,
                status=step.status.value,
                x=round(min(offset, 100 - _MIN_WIDTH), 3),
                width=round(min(width, 100 - min(offset, 100 - _MIN_WIDTH)), 3),
                duration_s=duration,
                open=step.finished_at is None,
            )
        )
    return bars
