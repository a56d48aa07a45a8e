"""A workflow for the ctx.llm crash test, and its worker (``python -m tests.apps.llm_app URL``).

The worker's models come from the environment as the CLI reads them
(``STEPSTONE_OPENAI_BASE_URL``: the test's local HTTP server). ``CRASH_HOLD=1`` makes the
step after the model call hold, so the test can SIGKILL the worker once the call is recorded.
"""

from __future__ import annotations

import asyncio
import os

from stepstone import Budget, WorkflowContext, step, workflow
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
