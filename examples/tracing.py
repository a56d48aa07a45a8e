"""Trace runs with OpenTelemetry: a run started inside a traced request joins its trace.

    pip install 'stepstone[otel]'
    python examples/tracing.py

A web handler (here: a span named ``POST /orders``) starts a run; a worker executes it. The
worker's spans -- one per execution of the run, one per step, retries as events -- and those of
the child run it starts land in the request's trace. The spans are kept in memory and printed
as a tree; in production you export them (``stepstone worker --otel`` with
``OTEL_EXPORTER_OTLP_ENDPOINT``, or your app's own providers).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stepstone import Client, RetryPolicy, Settings, Worker, WorkflowContext, step, workflow
from stepstone.telemetry import OpenTelemetry

calls = {"reserve": 0}


@step(retry=RetryPolicy(max_attempts=3, initial_delay_s=0.05, jitter=False))
def reserve(sku: str) -> str:
    calls["reserve"] += 1
    if calls["reserve"] == 1:
        raise ConnectionError("the warehouse API timed out")
    return f"reserved {sku}"


@step
def pack_box(sku: str) -> str:
    return f"box for {sku}"


@workflow
async def pack(ctx: WorkflowContext, sku: str) -> str:
    return await pack_box(sku)


@workflow
async def ship_order(ctx: WorkflowContext, sku: str) -> str:
    await reserve(sku)
    return await ctx.child(pack, sku)


def print_tree(spans: list[ReadableSpan]) -> None:
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        children.setdefault(span.parent.span_id if span.parent else None, []).append(span)

    def show(span: ReadableSpan, depth: int) -> None:
        state = (span.attributes or {}).get("stepstone.state")
        line = "  " * depth + span.name + (f" -> {state}" if state else "")
        for event in span.events:
            if event.name == "retry" and event.attributes:
                line += f" (retried after: {event.attributes['exception.message']})"
        print(line)
        assert span.context is not None
        for child in children.get(span.context.span_id, []):
            show(child, depth + 1)

    for root in children.get(None, []):
        show(root, 0)


def main() -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    otel = OpenTelemetry(tracer_provider=provider)  # or tracing=True: the global providers

    db = f"sqlite:///{Path(tempfile.mkdtemp()) / 'traced.db'}"
    app = [ship_order, pack]
    worker = Worker(
        db, workflows=app, tracing=otel, auto_migrate=True, settings=Settings(poll_s=0.1)
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    with Client(db, workflows=app, tracing=otel) as client:
        with provider.get_tracer("shop").start_as_current_span("POST /orders"):
            handle = client.start(ship_order, "espresso-beans")  # carries the request's trace
        print(f"{handle.run_id}: {handle.result(timeout_s=30)}")
    worker.stop()
    thread.join(timeout=15)

    spans = exported.get_finished_spans()
    print_tree(list(spans))
    traces = {s.context.trace_id for s in spans if s.context is not None}
    print(f"{len(spans)} spans, {len(traces)} trace")


if __name__ == "__main__":
    main()
