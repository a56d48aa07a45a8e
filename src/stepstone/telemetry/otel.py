"""OpenTelemetry spans and metrics for runs and steps: the :class:`~stepstone.core.observe.Observer`
shipped with ``stepstone[otel]``.

Spans: ``run {workflow}`` per execution of a claimed run (an attempt), a child of the trace the
run carries (the W3C trace context current where it was started); ``step {name}`` per step
executed in it, with a ``retry`` event per failed attempt that is retried; a run or step that
fails ends with status ERROR and an ``exception`` event. Metrics: ``stepstone.claims`` (runs
claimed), ``stepstone.step.duration`` (seconds from a step's first attempt here to its outcome)
and ``stepstone.queue.depth`` (runs pending per queue, as a worker last read it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from stepstone.core.model import Claim, ErrorInfo, Run

__all__ = ["OpenTelemetry"]

_SCOPE = "stepstone"


class OpenTelemetry:
    """Traces runs and steps and records their metrics with OpenTelemetry.

    >>> Worker(url, workflows=app, tracing=OpenTelemetry(tracer_provider=provider)).run()

    ``tracer_provider``, ``meter_provider``, ``propagator``: OpenTelemetry's global ones when
    not given (set by your app or ``opentelemetry-instrument``). The propagator writes the
    trace context a started run carries (W3C ``traceparent``/``tracestate`` by default).
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        propagator: TextMapPropagator | None = None,
    ) -> None:
        version = metadata.version("stepstone")
        self._tracer = trace.get_tracer(_SCOPE, version, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, version, meter_provider=meter_provider)
        self._propagator = propagator
        self._claims = meter.create_counter(
            "stepstone.claims", unit="{run}", description="Runs claimed by workers"
        )
        self._step_duration = meter.create_histogram(
            "stepstone.step.duration",
            unit="s",
            description="Time from a step's first attempt in an execution to its outcome",
        )
        self._depths: Mapping[str, int] = {}
        meter.create_observable_gauge(
            "stepstone.queue.depth",
            callbacks=[self._observe_depths],
            unit="{run}",
            description="Runs pending per queue, as a worker last read them",
        )

    # --- the trace context runs carry ---------------------------------------------------------

    def trace_context(self) -> str | None:
        """The current trace context as JSON (``{"traceparent": ...}``); None outside a trace."""
        carrier: dict[str, str] = {}
        (self._propagator or propagate.get_global_textmap()).inject(carrier)
        return json.dumps(carrier, sort_keys=True, separators=(",", ":")) if carrier else None

    @contextmanager
    def joined(self, carrier: Mapping[str, str]) -> Iterator[None]:
        """The trace context in ``carrier`` (W3C ``traceparent``/``tracestate`` by default)
        current in the block."""
        token = otel_context.attach(self._extract(carrier))
        try:
            yield
        finally:
            otel_context.detach(token)

    def _extract(self, carrier: Mapping[str, str]) -> otel_context.Context:
        return (self._propagator or propagate.get_global_textmap()).extract(carrier)

    def _parent(self, run: Run) -> otel_context.Context | None:
        if not run.trace_context:
            return None
        try:
            carrier = json.loads(run.trace_context)
        except ValueError:
            return None  # not written by a propagator: the run starts a trace of its own
        if not isinstance(carrier, dict):
            return None
        return self._extract(carrier)

    # --- spans --------------------------------------------------------------------------------

    @contextmanager
    def attempt(self, claim: Claim) -> Iterator[_Attempt]:
        """A ``run {workflow}`` span, current while the claim executes."""
        run = claim.run
        span = self._tracer.start_span(
            f"run {run.workflow}",
            context=self._parent(run),
            kind=SpanKind.CONSUMER,
            attributes={
                "stepstone.run_id": run.run_id,
                "stepstone.workflow": run.workflow,
                "stepstone.queue": run.queue,
                "stepstone.attempt": claim.lease_token,
                "stepstone.recovered": claim.recovered,
                "stepstone.worker_id": claim.worker_id,
            },
        )
        with _current(span):
            try:
                yield _Attempt(span)
            except Exception as exc:  # a defect, or a close the store refused
                _record_error(span, exc)
                raise

    @contextmanager
    def step(self, run: Run, seq: int, name: str) -> Iterator[_Step]:
        """A ``step {name}`` span under the current one (the run's attempt), current while the
        step's attempts run (spans opened inside the step body nest under it)."""
        attributes: dict[str, Any] = {"stepstone.workflow": run.workflow, "stepstone.step": name}
        span = self._tracer.start_span(
            f"step {name}",
            attributes={**attributes, "stepstone.run_id": run.run_id, "stepstone.seq": seq},
        )
        seen = _Step(span, self._step_duration, attributes)
        with _current(span):
            try:
                yield seen
            except BaseException as exc:
                if not seen.ended:  # unwound (suspended until a later retry, cancelled, ...)
                    span.set_attribute("stepstone.unwound", type(exc).__name__)
                raise

    # --- metrics ------------------------------------------------------------------------------

    def claimed(self, claims: Sequence[Claim]) -> None:
        for claim in claims:
            run = claim.run
            self._claims.add(1, {"stepstone.queue": run.queue, "stepstone.workflow": run.workflow})

    def queue_depths(self, pending: Mapping[str, int]) -> None:
        self._depths = dict(pending)

    def _observe_depths(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"stepstone.queue": q}) for q, n in self._depths.items()]


@contextmanager
def _current(span: Span) -> Iterator[None]:
    """``span`` current in this task until the block ends, then ended."""
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield
    finally:
        otel_context.detach(token)
        span.end()


def _record_error(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__qualname__}: {exc}"))


class _Attempt:
    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span = span

    def ended(self, state: str | None, error: ErrorInfo | None) -> None:
        span = self._span
        if state is None:
            span.set_attribute("stepstone.lease_lost", True)
            return
        span.set_attribute("stepstone.state", state)
        if state == "failed":
            message = f"{error.type}: {error.message}" if error is not None else "failed"
            if error is not None:
                event = {"exception.type": error.type, "exception.message": error.message}
                if error.traceback:
                    event["exception.stacktrace"] = error.traceback
                span.add_event("exception", event)
            span.set_status(Status(StatusCode.ERROR, message))


class _Step:
    __slots__ = ("_attributes", "_duration", "_span", "_started", "ended")

    def __init__(self, span: Span, duration: Any, attributes: dict[str, Any]) -> None:
        self._span, self._duration, self._attributes = span, duration, attributes
        self._started = time.perf_counter()
        self.ended = False

    def retrying(self, attempt: int, error: BaseException, delay_s: float) -> None:
        self._span.add_event(
            "retry",
            {
                "stepstone.attempt": attempt,
                "stepstone.retry_in_s": delay_s,
                "exception.type": type(error).__qualname__,
                "exception.message": str(error),
            },
        )

    def failed(self, attempt: int, error: BaseException) -> None:
        _record_error(self._span, error)
        self._end(attempt, "failed")

    def completed(self, attempt: int) -> None:
        self._end(attempt, "completed")

    def _end(self, attempt: int, outcome: str) -> None:
        self.ended = True
        self._span.set_attribute("stepstone.attempts", attempt)
        took_s = time.perf_counter() - self._started
        self._duration.record(took_s, {**self._attributes, "stepstone.outcome": outcome})
