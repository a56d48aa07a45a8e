"""A durable research agent: tool calls -> structured summary -> approval gate -> publish.

    python examples/agent_research.py

``ctx.agent`` runs the tool-use loop: each model turn is a recorded ``ctx.llm`` step and each
tool call an ordinary step with the tool's own retry policy, so a crash resumes at the last
turn without calling the model again. A tool that fails (``fetch`` here, once, then retried)
or that does not exist (the model asks for ``translate``) goes back to the model as an error
result. The summary is checked against ``Summary``; an editor approves it at the ``publish``
gate (here from the same process; in real life ``stepstone approve RUN --gate publish``).
Replies come from ``agent_replies.yaml`` through the offline ``scripted`` provider; the same
workflow runs against any OpenAI-compatible server or Anthropic (see README "Agents").
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import BaseModel

from stepstone import Client, RetryPolicy, Tool, WorkflowContext, step, workflow
from stepstone.models import Models, Price, ScriptedProvider

ATTEMPTS: dict[str, int] = {}


class Summary(BaseModel):
    title: str
    points: list[str]
    sources: int


@step
def search(query: str, limit: int = 2) -> list[str]:
    """Search the web; returns result URLs."""
    slug = query.replace(" ", "-")
    return [f"https://example.org/{slug}/{i}" for i in range(limit)]


def fetch(url: str) -> str:
    """Fetch a page's text."""
    ATTEMPTS[url] = ATTEMPTS.get(url, 0) + 1
    if ATTEMPTS[url] == 1:
        raise ConnectionError(f"{url}: connection reset")  # retried by the tool's policy
    return "A journal records each step; a replay returns recorded results."


@step
def publish(summary: Summary) -> str:
    return f"published {summary.title!r} ({len(summary.points)} points)"


@workflow
async def research(ctx: WorkflowContext, topic: str) -> str:
    found = await ctx.agent(
        f"Research {topic!r} and summarise what you find.",
        system="You are a careful researcher. Use the tools, then answer.",
        tools=[search, Tool(fetch, retry=RetryPolicy(max_attempts=3, initial_delay_s=0.01))],
        tier="balanced",
        max_turns=8,
        output=Summary,
    )
    summary: Summary = found.output
    ok = await ctx.ask(f"Publish {summary.title!r}?", gate="publish", approvers=["editor"])
    if not ok.approved:
        return f"not published: {ok.comment}"
    return await publish(summary)


def run_example(models: Models, db: str) -> None:
    """Run the agent until its gate, approve, and print what happened."""
    with Client(db, workflows=[research], models=models) as client:
        run = client.run_until_wait(research, "durable agent loops", run_id="research-1")
        steps = client.describe(run.run_id).steps
        print("steps:", ", ".join(s.name for s in steps if s.kind.value == "step"))
        print("waiting at gate:", run.waits[0].name)
        run = client.resume(run.run_id, "publish", {"answer": True, "by": "editor"})
        print(run.state.value + ":", client.result(run.run_id))
        [line] = client.cost(run.run_id)
        print(f"{line.calls} model calls, {line.input_tokens} tokens in, ${line.cost_usd:.6f}")


def main() -> None:
    provider = ScriptedProvider.from_file(Path(__file__).with_name("agent_replies.yaml"))
    models = Models([provider], tiers={"balanced": "mid"}, prices={"mid": Price(1.0, 5.0)})
    with tempfile.TemporaryDirectory() as folder:
        run_example(models, f"sqlite:///{folder}/agent.db")


if __name__ == "__main__":
    main()
