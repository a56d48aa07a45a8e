"""OpenTelemetry (stepstone[otel]): spans per attempt and step, the trace carried by runs, metrics.

A real worker executes real runs in a real store; the SDK's in-memory exporter and reader hold
what was traced and measured.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from stepstone import AsyncClient, RetryPolicy, Settings, Worker, WorkflowContext, step, workflow
from stepstone.core.port import Store
from tests.test_worker import Serving

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

from stepstone.telemetry import OpenTelemetry

flaky_calls: dict[str, int] = {}


@step(retry=RetryPolicy(max_attempts=3, initial_delay_s=0.01, jitter=False))
def flaky(key: str) -> str:
    flaky_calls[key] = flaky_calls.get(key, 0) + 1
    if flaky_calls[key] < 3:
        raise ConnectionError(f"attempt {flaky_calls[key]} refused")
    return key


@step
def double(x: int) -> int:
    return 2 * x


@step
def broken() -> None:
    raise ValueError("the ledger does not balance")


@workflow
async def traced_child(ctx: WorkflowContext, x: int) -> int:
    return await double(x)


@workflow
async def traced_parent(ctx: WorkflowContext, key: str) -> int:
    await flaky(key)
    return await ctx.child(traced_child, 21)


@workflow
async def traced_failure(ctx: WorkflowContext) -> None:
    await broken()


@workflow
async def never_served(ctx: WorkflowContext) -> None:
    pass


APP = [traced_parent, traced_child, traced_failure]


class Traced:
    """An SDK tracer and meter provider whose spans and metrics stay in memory."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.metrics = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metrics])
        self.otel = OpenTelemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name.startswith(prefix)]

    def points(self, metric: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        assert data is not None
        return [
            point
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == metric
            for point in m.data.data_points
        ]


@pytest.fixture
def traced() -> Iterator[Traced]:
    flaky_calls.clear()
    t = Traced()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


@pytest.fixture
async def aclient(store: Store, traced: Traced) -> AsyncIterator[AsyncClient]:
    c = AsyncClient(store, workflows=[*APP, never_served], tracing=traced.otel)
    yield c
    await c.close()


def _worker(store: Store, traced: Traced, **kwargs: Any) -> Worker:
    return Worker(
        store, workflows=APP, tracing=traced.otel, settings=Settings(poll_s=0.05), **kwargs
    )


def _attr(span: ReadableSpan, key: str) -> Any:
    assert span.attributes is not None
    return span.attributes.get(key)


async def test_a_run_started_in_a_span_and_its_child_join_that_trace(
    store: Store, aclient: AsyncClient, traced: Traced
) -> None:
    tracer = traced.tracer_provider.get_tracer("the-app")
    with tracer.start_as_current_span("POST /orders") as request:
        handle = await aclient.start(traced_parent, "k1")
    async with Serving(_worker(store, traced)):
        assert await handle.result(timeout_s=20) == 42
    trace_id = request.get_span_context().trace_id

    runs = traced.named("run traced_parent")
    # the parent ran twice: up to the wait for its child, then to the end (replayed, no steps)
    assert [_attr(s, "stepstone.state") for s in runs] == ["waiting", "completed"]
    assert {_attr(s, "stepstone.run_id") for s in runs} == {handle.run_id}
    for run_span in runs:
        assert run_span.context is not None and run_span.parent is not None
        assert run_span.context.trace_id == trace_id
        assert run_span.parent.span_id == request.get_span_context().span_id

    (flaky_span,) = traced.named("step flaky")
    assert flaky_span.parent is not None and runs[0].context is not None
    assert flaky_span.parent.span_id == runs[0].context.span_id
    retries = [e for e in flaky_span.events if e.name == "retry"]
    assert [e.attributes and e.attributes["stepstone.attempt"] for e in retries] == [1, 2]
    assert retries[0].attributes and retries[0].attributes["exception.type"] == "ConnectionError"
    assert _attr(flaky_span, "stepstone.attempts") == 3
    assert flaky_span.status.status_code is StatusCode.UNSET

    (child,) = traced.named("run traced_child")
    (double_span,) = traced.named("step double")
    assert child.context is not None and child.parent is not None
    assert child.context.trace_id == trace_id
    assert child.parent.span_id == runs[0].context.span_id  # started by the parent's attempt
    assert double_span.parent is not None and double_span.parent.span_id == child.context.span_id


async def test_a_failing_step_and_its_run_end_with_status_error(
    store: Store, aclient: AsyncClient, traced: Traced
) -> None:
    handle = await aclient.start(traced_failure)
    async with Serving(_worker(store, traced)):
        with pytest.raises(Exception, match="does not balance"):
            await handle.result(timeout_s=20)
    (run_span,) = traced.named("run traced_failure")
    (step_span,) = traced.named("step broken")
    assert run_span.parent is None  # started outside any trace: a trace of its own
    for span in (run_span, step_span):
        assert span.status.status_code is StatusCode.ERROR
        assert "ValueError: the ledger does not balance" in (span.status.description or "")
        (exc,) = [e for e in span.events if e.name == "exception"]
        assert exc.attributes and exc.attributes["exception.type"] == "ValueError"


async def test_claims_step_latency_and_queue_depth_are_measured(
    store: Store, aclient: AsyncClient, traced: Traced
) -> None:
    for _ in range(2):  # pending in the worker's queue, but of a workflow it does not serve
        await aclient.start(never_served)
    handles = [await aclient.start(traced_child, i) for i in range(3)]
    worker = _worker(store, traced, worker_id="w-metrics")
    worker.settings = Settings(poll_s=0.05, lease_s=0.6)
    worker.runner.settings = worker.settings
    async with Serving(worker):
        assert [await h.result(timeout_s=20) for h in handles] == [0, 2, 4]
        beat = worker.runner.heartbeat_done
        await asyncio.wait_for(beat.wait(), 10)

    claims = traced.points("stepstone.claims")
    assert sum(p.value for p in claims) == 3
    assert {p.attributes["stepstone.workflow"] for p in claims} == {"traced_child"}
    (latency,) = traced.points("stepstone.step.duration")
    assert latency.count == 3 and latency.sum > 0
    assert latency.attributes["stepstone.outcome"] == "completed"
    (depth,) = traced.points("stepstone.queue.depth")
    assert depth.attributes == {"stepstone.queue": "default"} and depth.value == 2


def test_tracing_true_without_the_extra_says_what_to_install(monkeypatch: Any) -> None:
    import sys

    from stepstone.errors import InvalidArgument
    from stepstone.telemetry import as_observer

    monkeypatch.delitem(sys.modules, "stepstone.telemetry.otel", raising=False)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    with pytest.raises(InvalidArgument, match=r"pip install 'stepstone\[otel\]'"):
        as_observer(True)


async def test_db_copy_carries_the_trace_context(
    store: Store, aclient: AsyncClient, traced: Traced, tmp_path: Any
) -> None:
    from stepstone.core.clock import SystemClock
    from stepstone.store import open_store
    from stepstone.store.copy import copy_store

    with traced.tracer_provider.get_tracer("the-app").start_as_current_span("cron"):
        handle = await aclient.start(traced_child, 1)
    carried = (await aclient.get(handle.run_id)).trace_context
    assert carried is not None and "traceparent" in carried
    target = open_store(f"sqlite:///{tmp_path}/copy.db")
    await target.migrate()
    try:
        await copy_store(store, target, now=SystemClock().now())
        copied = await target.get_run(handle.run_id)
        assert copied is not None and copied.trace_context == carried
    finally:
        await target.close()


def test_the_sync_client_reads_the_callers_trace(sqlite_url: str, traced: Traced) -> None:
    from stepstone import Client

    with (
        Client(sqlite_url, workflows=APP, tracing=traced.otel) as client,
        traced.tracer_provider.get_tracer("the-app").start_as_current_span("job") as job,
    ):
        handle = client.start(traced_child, 1)
        carried = client.get(handle.run_id).trace_context
    assert carried is not None
    assert f"{job.get_span_context().trace_id:032x}" in carried


def test_worker_otel_flag_exports_the_spans_of_what_it_runs(tmp_path: Any) -> None:
    from tests.test_cli import APP, Cli

    (tmp_path / "app.py").write_text(APP)
    cli = Cli(tmp_path)
    cli.env.update(OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none")
    cli("migrate")
    run_id = cli("start", "pipeline", "--app", "app", "--arg", "n=4").stdout.strip()
    with cli.worker("--otel") as proc:
        cli.wait_state(run_id, "completed")
    assert proc.stdout is not None
    exported = proc.stdout.read()
    assert '"name": "run pipeline"' in exported and '"name": "step double"' in exported
    assert run_id in exported


def test_worker_otel_flag_refuses_an_unknown_exporter(tmp_path: Any) -> None:
    from tests.test_cli import APP, Cli

    (tmp_path / "app.py").write_text(APP)
    cli = Cli(tmp_path)
    cli.env.update(OTEL_TRACES_EXPORTER="zipkin-ish")
    error = cli.json("worker", "--app", "app", "--otel", code=2)["error"]
    assert "OTEL_TRACES_EXPORTER='zipkin-ish'" in error["message"]


async def test_a_webhook_with_a_traceparent_starts_a_run_in_that_trace(
    sqlite_url: str, traced: Traced
) -> None:
    import json
    import time

    import httpx

    from stepstone.web import WebhookBinding, sign
    from tests.webserver import serving

    secret = "a-secret-of-the-test-sender"
    hook = WebhookBinding("orders", "traced_child", "stepstone", secret)
    body = json.dumps(3).encode()
    from opentelemetry import propagate

    with traced.tracer_provider.get_tracer("sender").start_as_current_span("deliver") as sender:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # the sender's traceparent header
    with serving(sqlite_url, workflows=APP, hooks=[hook], tracing=traced.otel) as base:
        headers = {
            **sign(secret, body, timestamp=int(time.time())),
            "X-Stepstone-Delivery": "d-1",
            **carrier,
        }
        async with httpx.AsyncClient(base_url=base) as http:
            r = await http.post("/hooks/orders", content=body, headers=headers)
    assert r.status_code == 202, r.text
    async with AsyncClient(sqlite_url, workflows=APP) as client:
        carried = (await client.get(r.json()["run_id"])).trace_context
    assert carried is not None
    assert f"{sender.get_span_context().trace_id:032x}" in carried
