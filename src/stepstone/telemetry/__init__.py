"""Tracing and metrics for runs and steps with OpenTelemetry (the ``stepstone[otel]`` extra).

``Worker(..., tracing=True)`` and ``Client(..., tracing=True)`` use OpenTelemetry's global
providers; give an :class:`OpenTelemetry` to use others. Nothing here imports OpenTelemetry
until tracing is asked for, so it costs nothing when off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stepstone.errors import InvalidArgument

if TYPE_CHECKING:
    from stepstone.core.observe import Observer
    from stepstone.telemetry.otel import OpenTelemetry

__all__ = ["OpenTelemetry", "as_observer"]


def as_observer(tracing: bool | Observer | None) -> Observer | None:
    """The observer ``tracing=`` asks for: None when off, an :class:`OpenTelemetry` over the
    global providers for ``True``, or the observer given."""
    if tracing is None or tracing is False:
        return None
    if tracing is True:
        return _otel_class()()
    return tracing


def _otel_class() -> type[OpenTelemetry]:
    try:
        from stepstone.telemetry.otel import OpenTelemetry
    except ImportError as exc:
        if not (exc.name or "").startswith("opentelemetry"):
            raise
        raise InvalidArgument(
            f"tracing needs OpenTelemetry ({exc.name} is missing): pip install 'stepstone[otel]'"
        ) from None
    return OpenTelemetry


def __getattr__(name: str) -> Any:
    if name == "OpenTelemetry":
        return _otel_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
