"""The public API as a type checker sees it: start/run arguments are checked against the
workflow (ParamSpec), options pass separately; and what the options do at run time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stepstone import AsyncClient, InvalidArgument, StartOptions, WorkflowContext, workflow
from stepstone.core.port import Store
from tests.conftest import ROOT

SNIPPET = Path(__file__).parent / "typing" / "typed_start.py"
RELATIVE = SNIPPET.relative_to(ROOT)


@pytest.mark.slow
def test_mypy_checks_workflow_arguments_of_start_and_run() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(RELATIVE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    lines = SNIPPET.read_text().splitlines()
    expected = {i + 1 for i, line in enumerate(lines) if line.rstrip().endswith("# E")}
    reported = {
        int(line.split(":")[1])
        for line in done.stdout.splitlines()
        if ": error:" in line and line.startswith(str(RELATIVE))
    }
    assert reported == expected, done.stdout


@workflow
async def route(ctx: WorkflowContext, queue: str, n: int = 0) -> str:
    return f"{queue}:{n}"


async def test_a_workflow_parameter_named_like_an_option_is_the_workflows(store: Store) -> None:
    async with AsyncClient(store, workflows=[route]) as client:
        handle = await client.start(route, queue="payload-queue", priority=4)
        run = await client.get(handle.run_id)
        assert (run.queue, run.priority) == ("default", 4)
        assert await client.run(route, queue="x", n=2) == "x:2"
        typed = client.with_options(StartOptions(queue="fast"))
        started = await typed.start(route, "arg-queue", 1)
        assert (await client.get(started.run_id)).queue == "fast"


async def test_run_refuses_options_that_only_a_worker_start_uses(store: Store) -> None:
    async with AsyncClient(store, workflows=[route]) as client:
        with pytest.raises(InvalidArgument, match="only run_id, queue and deadline_s"):
            await client.with_options(StartOptions(priority=3)).run(route, "q")
        assert await client.with_options(StartOptions(run_id="r9")).run(route, "q", 1) == "q:1"
        assert (await client.get("r9")).state.value == "completed"
