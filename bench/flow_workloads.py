"""The flows ``bench/flow_bench.py`` times, written once for both builders (stepstone.flow and
sayiir share the builder's API), and the timing helpers. Imported from both virtualenvs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

TASKS = 100


def noop(x: object) -> object:
    return x


def sleep_1s(x: object) -> object:
    time.sleep(1.0)
    return x


def count(outs: object) -> int:
    return len(outs)  # type: ignore[arg-type]


def seq100(flow_class: Any) -> Any:
    """100 ``.then(noop)`` tasks."""
    flow = flow_class("seq100")
    for i in range(TASKS):
        flow = flow.then(noop, name=f"s{i}")
    return flow.build()


def fork2(flow_class: Any, chain: int) -> Any:
    """A fork of two branches that each sleep 1 s (then ``chain - 1`` no-ops), and a join."""
    fork = flow_class(f"fork2x1s_{chain}").fork()
    for b in ("a", "b"):
        fork = fork.branch(sleep_1s, *[noop] * (chain - 1), name=b)
    return fork.join(count, name="join").build()


def timed(fn: Callable[[int], object], reps: int) -> list[float]:
    """Seconds per call of ``fn(i)``, after one warm-up call."""
    samples = []
    for i in range(reps + 1):
        started = time.perf_counter()
        fn(i)
        if i:
            samples.append(time.perf_counter() - started)
    return samples


def per_task_us(samples: list[float]) -> float:
    """Median microseconds per task of a ``seq100`` run."""
    return statistics.median(samples) * 1e6 / TASKS


def durable(run: Callable[..., Any], wf: Any, backend: Any, label: str) -> Callable[[int], object]:
    """One ``run_durable_workflow`` call per ``i``, each a new instance id, checked completed."""

    def once(i: int) -> object:
        status = run(wf, f"{label}-{i}-{time.time_ns()}", 1, backend=backend)
        assert status.is_completed(), status
        return status

    return once


def fork_timings(run: Callable[..., Any], flow_class: Any, reps: int) -> dict[str, float]:
    """Seconds for ``run(fork, 1)`` with one-task and two-task branches."""
    out = {}
    for chain in (1, 2):
        forked = fork2(flow_class, chain)
        samples = timed(lambda i, f=forked: run(f, 1), max(1, reps // 2))
        out[f"fork2x1s, {chain}-task branches (s)"] = statistics.median(samples)
    return out
