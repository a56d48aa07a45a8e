"""``--otel``: trace and measure what a CLI process executes with OpenTelemetry.

When the process already has OpenTelemetry providers (``opentelemetry-instrument stepstone
worker ...``) they are used as they are. Otherwise the SDK's are installed, exporting where
the standard variables say: ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` (``otlp``, the
default, needs ``opentelemetry-exporter-otlp``; ``console``; ``none``), the exporters' own
``OTEL_EXPORTER_OTLP_*``, and ``OTEL_SERVICE_NAME`` (default ``stepstone``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stepstone.core.observe import Observer
from stepstone.errors import UsageError

__all__ = ["OTEL_VARIABLES", "otel_observer"]

OTEL_VARIABLES = "OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER, OTEL_SERVICE_NAME"


def otel_observer(env: Mapping[str, str]) -> tuple[Observer, Callable[[], None]]:
    """The observer for ``--otel`` and what flushes its exporters when the command ends."""
    try:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from stepstone.telemetry.otel import OpenTelemetry
    except ImportError as exc:
        raise UsageError(
            f"--otel needs the otel extra ({exc.name} is missing): pip install 'stepstone[otel]'"
        ) from None
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return OpenTelemetry(), lambda: None  # the process configured its own
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or "stepstone"})
    tracer_provider = TracerProvider(resource=resource)
    spans = _exporter(env, "OTEL_TRACES_EXPORTER", "trace")
    if spans is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(spans))
    points = _exporter(env, "OTEL_METRICS_EXPORTER", "metric")
    readers = [PeriodicExportingMetricReader(points)] if points is not None else []
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    # global, so that spans the workflows' own code opens nest under the steps and go along
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)

    def flush() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return OpenTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider), flush


def _exporter(env: Mapping[str, str], variable: str, signal: str) -> Any:
    """The span (``trace``) or metric exporter ``variable`` names; None for ``none``."""
    name = (env.get(variable) or "otlp").strip().lower()
    if name == "none":
        return None
    if name == "console":
        if signal == "trace":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            return ConsoleSpanExporter()
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    if name != "otlp":
        raise UsageError(f"{variable}={name!r}: stepstone --otel knows otlp, console and none")
    try:
        if signal == "trace":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter()
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()
    except ImportError:
        raise UsageError(
            f"{variable}=otlp (the default) needs the OTLP exporter: pip install "
            "opentelemetry-exporter-otlp-proto-http (or set it to console or none)"
        ) from None
