"""The observer seam: what the engine tells a tracer (spans, metrics) while runs execute.

The engine and runtime never import a telemetry SDK: they call an :class:`Observer` when one
is given (``Worker(..., tracing=True)``, ``Client(..., tracing=True)``) and nothing otherwise.
:class:`stepstone.telemetry.OpenTelemetry` is the one shipped (``stepstone[otel]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from stepstone.core.model import Claim, ErrorInfo, Run

__all__ = ["AttemptObservation", "Observer", "StepObservation"]


class StepObservation(Protocol):
    """One step executing (all its attempts in this execution): told how each one went."""

    def retrying(self, attempt: int, error: BaseException, delay_s: float) -> None:
        """Attempt ``attempt`` failed with ``error``; the next one starts in ``delay_s``."""
        ...

    def failed(self, attempt: int, error: BaseException) -> None:
        """Attempt ``attempt`` failed with ``error`` and the step gives up."""
        ...

    def completed(self, attempt: int) -> None:
        """Attempt ``attempt`` succeeded."""
        ...


class AttemptObservation(Protocol):
    """One execution of a claimed run (an attempt), told how it ended."""

    def ended(self, state: str | None, error: ErrorInfo | None) -> None:
        """The claim closed with the run in ``state`` (None: the lease was lost), failing with
        ``error`` when it failed."""
        ...


class Observer(Protocol):
    """Told about claims, executions and steps; keeps the trace context runs carry.

    ``attempt`` and ``step`` are entered around the work they describe, in the task that does
    it, so a tracer may make its span current there (the run's steps, and spans user code opens
    inside them, nest under it).
    """

    def trace_context(self) -> str | None:
        """The trace context active here, serialised for a new run (None: none active)."""
        ...

    def joined(self, carrier: Mapping[str, str]) -> AbstractContextManager[None]:
        """The trace context ``carrier`` holds (a request's ``traceparent`` header, say)
        current in the block: runs started there join that trace."""
        ...

    def attempt(self, claim: Claim) -> AbstractContextManager[AttemptObservation]:
        """An execution of ``claim``, continuing the trace its run carries."""
        ...

    def step(self, run: Run, seq: int, name: str) -> AbstractContextManager[StepObservation]:
        """Step ``name`` (journal position ``seq``) of ``run`` executing, inside its attempt."""
        ...

    def claimed(self, claims: Sequence[Claim]) -> None:
        """A worker claimed these runs."""
        ...

    def queue_depths(self, pending: Mapping[str, int]) -> None:
        """The runs pending per queue, as a worker last read them."""
        ...
