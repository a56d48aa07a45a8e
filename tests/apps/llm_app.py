"""Workflows for the ctx.llm and ctx.agent crash tests, and their worker
(``python -m tests.apps.llm_app URL``).

The worker's models come from the environment as the CLI reads them
(``STEPSTONE_OPENAI_BASE_URL``: the test's local HTTP server). ``CRASH_HOLD=1`` makes the
step after the model call hold, so the test can SIGKILL the worker once the call is recorded.
"""

from __future__ import annotations

import asyncio
import os

from stepstone import Budget, WorkflowContext, current_step, step, workflow
from tests.apps.crash_app import _append


@step
async def publish(path: str, text: str) -> str:
    _append(path, f"start publish {os.getpid()}")
    if os.environ.get("CRASH_HOLD") == "1":
        await asyncio.sleep(60)
    return f"published: {text}"


@workflow
async def researcher(ctx: WorkflowContext, path: str) -> str:
    found = await ctx.llm("research stepstone", name="research", max_tokens=50)
    return await publish(path, found.text)


@workflow(budget=Budget(usd=0.025))
async def budgeted(ctx: WorkflowContext) -> list[str]:
    return [(await ctx.llm(f"part {i}", max_tokens=10)).text for i in range(2)]


def lookup(topic: str) -> str:
    """Look a topic up (writes ``tool SEQ PID`` to $AGENT_SIDE; with CRASH_AT=N, the Nth call
    in this file holds, so the test can SIGKILL the worker there)."""
    side = os.environ["AGENT_SIDE"]
    info = current_step()
    assert info is not None
    _append(side, f"tool {info.seq} {os.getpid()}")
    with open(side) as f:
        if len(f.readlines()) == int(os.environ.get("CRASH_AT", "0")):
            import time

            time.sleep(60)
    return f"found {topic}"


def cite(source: str) -> str:
    """Cite a source."""
    return f"[{source}]"


@workflow
async def looping(ctx: WorkflowContext) -> list[object]:
    done = await ctx.agent("research", tools=[lookup, cite], max_turns=20, max_tokens=50)
    return [done.turns, done.stop_reason, len(done.tool_runs), done.usage.input_tokens]


def main() -> None:
    import logging
    import sys

    from stepstone import Settings, Worker
    from stepstone.models import load_models
    from tests.apps import llm_app

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(message)s")
    settings = Settings(lease_s=30.0, poll_s=0.05)
    models = load_models(os.environ)
    Worker(sys.argv[1], workflows=llm_app, settings=settings, models=models).run()


if __name__ == "__main__":
    main()
