"""Model calls as durable steps, offline: a research step, a tool call, a structured summary.

    python examples/llm_scripted.py

Every ``ctx.llm`` call is a recorded step: a resumed run gets the recorded reply without calling
the model again, and each call's tokens and cost go to the ledger in the same transaction
(``stepstone cost RUN``). The replies come from ``llm_replies.yaml`` through the offline
``scripted`` provider, so this runs anywhere; point the same workflow at a real model with
``STEPSTONE_LLM_PROVIDER=openai STEPSTONE_OPENAI_BASE_URL=http://127.0.0.1:11434/v1`` (any
OpenAI-compatible server) or ``ANTHROPIC_API_KEY`` and ``stepstone worker --app ...``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from stepstone import Client, WorkflowContext, step, workflow
from stepstone.models import Models, Price, ScriptedProvider

SUMMARY = {
    "type": "object",
    "required": ["title", "score"],
    "properties": {"title": {"type": "string"}, "score": {"type": "number"}},
}


@step
async def search(query: str) -> list[str]:
    """Search the web for a query."""
    return [f"{query}: every step is checkpointed", f"{query}: resume after a crash"]


@workflow
async def research(ctx: WorkflowContext, topic: str) -> dict[str, Any]:
    plan = await ctx.llm(f"Research {topic}", tools=[search], tier="fast", name="plan")
    notes: list[str] = []
    for call in plan.tool_calls:  # the model asked for tools: each is an ordinary step
        notes += await search(**call.arguments)
    summary = await ctx.llm(
        "Summarise these notes:\n" + "\n".join(notes), output=SUMMARY, tier="best", name="summary"
    )
    return {
        "summary": summary.output,
        "turns": summary.turns,
        "usd": plan.cost_usd + summary.cost_usd,
    }


def main() -> None:
    provider = ScriptedProvider.from_file(Path(__file__).with_name("llm_replies.yaml"))
    models = Models(
        [provider],
        tiers={"fast": "small", "best": "large"},
        prices={"small": Price(0.25, 1.25), "large": Price(3.0, 15.0, cache_read_per_mtok=0.3)},
    )
    with (
        tempfile.TemporaryDirectory() as folder,
        Client(f"sqlite:///{folder}/llm.db", models=models) as client,
    ):
        result = client.run(research, "durable workflows", run_id="research-1")
        print("summary:", result["summary"], f"(after {result['turns']} model turns)")
        for line in client.cost("research-1", by="model"):
            print(
                f"{line.key}: {line.calls} calls, {line.input_tokens} tokens in, "
                f"{line.output_tokens} out, {line.cache_read_tokens} cached, "
                f"${line.cost_usd:.6f}"
            )
        # run it again: the recorded result comes back, no model is called
        before = provider.calls
        assert client.run(research, "durable workflows", run_id="research-1") == result
        print("no model called the second time:", provider.calls == before)


if __name__ == "__main__":
    main()
