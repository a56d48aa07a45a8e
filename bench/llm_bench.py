"""Overhead of ``ctx.llm`` against the offline scripted provider, beyond the step's own write.

    .venv/bin/python bench/llm_bench.py [--n 2000] [--reps 5]

One workflow makes ``n`` sequential ``ctx.llm`` calls (the scripted provider answers at once);
another makes ``n`` sequential plain steps returning the same text. Both run in-process on a
fresh SQLite file with the default durability. The difference per call is what a model call
costs beyond an ordinary recorded step: building the request, routing, pricing, encoding the
``LLMResult`` and writing its ledger row in the step's transaction. Medians of ``reps`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from stepstone import Client, WorkflowContext, step, workflow
from stepstone.models import Models, Price, ScriptedProvider, ScriptedReply
from stepstone.models.scripted import Usage

TEXT = "a reply of about the size a short model answer has, " * 4


@step
async def answer(i: int) -> str:
    return TEXT


@workflow
async def steps(ctx: WorkflowContext, n: int) -> int:
    for i in range(n):
        await answer(i)
    return n


@workflow
async def calls(ctx: WorkflowContext, n: int) -> int:
    for i in range(n):
        await ctx.llm(f"question {i}", tier="fast")
    return n


def per_call_us(wf: object, n: int, models: Models, folder: Path, name: str) -> float:
    with Client(f"sqlite:///{folder / name}.db", models=models) as client:
        client.run(steps, 10, run_id=f"warm-{name}")
        started = time.perf_counter()
        client.run(wf, n, run_id=name)  # type: ignore[arg-type]
        return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    reply = ScriptedReply(text=TEXT, usage=Usage(120, 40), repeat=True)
    models = Models(
        [ScriptedProvider([reply])], tiers={"fast": "small"}, prices={"small": Price(1.0, 2.0)}
    )
    plain, llm = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for rep in range(args.reps):
            plain.append(per_call_us(steps, args.n, models, folder, f"steps{rep}"))
            llm.append(per_call_us(calls, args.n, models, folder, f"llm{rep}"))
    p, q = statistics.median(plain), statistics.median(llm)
    print(f"plain step:         {p:8.1f} us per step   (median of {args.reps} x {args.n})")
    print(f"ctx.llm (scripted): {q:8.1f} us per call")
    print(f"overhead:           {q - p:8.1f} us per call (target: at most 150)")


if __name__ == "__main__":
    main()
