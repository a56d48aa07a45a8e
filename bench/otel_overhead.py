"""What tracing costs per step (issue 12: OpenTelemetry "off by default, no cost when absent").

    .venv/bin/python bench/otel_overhead.py [--steps 500] [--rounds 7]

A workflow of ``--steps`` trivial steps runs in-process (``AsyncClient.run``) on a fresh SQLite
file, rounds alternating between three clients: no tracing; tracing through the SDK with no
exporter (spans made and dropped); tracing with a batch processor into an exporter that drops
what it is given. Reported: median µs per step of each (2 noisy cores: compare within a run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from stepstone import AsyncClient, WorkflowContext, step, workflow
from stepstone.telemetry import OpenTelemetry


@step
async def nothing(i: int) -> int:
    return i


@workflow
async def many(ctx: WorkflowContext, n: int) -> int:
    for i in range(n):
        await nothing(i)
    return n


class _Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def _round(url: str, tracing: Any, steps: int) -> float:
    async with AsyncClient(url, workflows=[many], tracing=tracing) as client:
        await client.run(many, 5)  # warm up
        t0 = time.perf_counter()
        await client.run(many, steps)
        return (time.perf_counter() - t0) / steps * 1e6


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    exported = TracerProvider()
    exported.add_span_processor(BatchSpanProcessor(_Drop()))
    variants: dict[str, Any] = {
        "off": False,
        "sdk_no_exporter": OpenTelemetry(tracer_provider=TracerProvider()),
        "sdk_batch_exporter": OpenTelemetry(tracer_provider=exported),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, tracing in variants.items():
                url = f"sqlite:///{tmp}/{name}-{r}.db"
                samples[name].append(await _round(url, tracing, args.steps))
    exported.shutdown()
    print(
        json.dumps(
            {name: round(statistics.median(us), 1) for name, us in samples.items()}
            | {"unit": "us per step (median)", "steps": args.steps, "rounds": args.rounds},
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
