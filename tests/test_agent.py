"""ctx.agent: the durable tool-use loop (turns and tools as steps, errors to the model, deltas)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from stepstone import (
    AgentResult,
    AgentTurn,
    AsyncClient,
    RetryPolicy,
    RunFailed,
    SyncWorkflowContext,
    Tool,
    WorkflowContext,
    step,
    workflow,
)
from stepstone.core.agentloop import INJECT_SIGNAL
from stepstone.core.llm import Models, Price, ToolCall, Usage
from stepstone.core.model import StepKind, StepStatus
from stepstone.core.port import Store
from stepstone.models import OpenAICompatibleProvider, ScriptedProvider, ScriptedReply
from tests.llm_server import Answer, chat_reply, llm_server, messages_reply

CALLS: list[str] = []


class Query(BaseModel):
    text: str
    limit: int = 2


class Report(BaseModel):
    title: str
    sources: int


def search(query: Query) -> list[str]:
    """Search the web."""
    CALLS.append(f"search:{query.text}")
    return [f"{query.text} {i}" for i in range(query.limit)]


FLAKY: dict[str, int] = {}


async def fetch(url: str) -> str:
    """Fetch a page."""
    FLAKY[url] = FLAKY.get(url, 0) + 1
    if url.startswith("bad"):
        raise ConnectionError(f"cannot reach {url}")
    if url.startswith("flaky") and FLAKY[url] < 2:
        raise ConnectionError("try again")
    return f"page {url}"


@step
def add(a: int, b: int) -> int:
    return a + b


def call(name: str, i: int, **arguments: Any) -> ToolCall:
    return ToolCall(f"c{i}", name, arguments)


TOOLS = [search, Tool(fetch, retry=RetryPolicy(max_attempts=2, initial_delay_s=0.0)), add]


@workflow
async def researcher(ctx: WorkflowContext, topic: str) -> dict[str, Any]:
    found = await ctx.agent(
        f"Research {topic}", system="You research.", tools=TOOLS, output=Report, max_turns=6
    )
    assert isinstance(found, AgentResult)
    return {
        "title": found.output.title,
        "turns": found.turns,
        "stop": found.stop_reason,
        "runs": [[r.name, r.result, r.error] for r in found.tool_runs],
        "tokens": found.usage.input_tokens + found.usage.output_tokens,
        "usd": found.cost_usd,
    }


def script() -> ScriptedProvider:
    return ScriptedProvider(
        [
            ScriptedReply(
                text="looking",
                tool_calls=(
                    call("search", 1, query={"text": "durable"}),
                    call("fetch", 2, url="flaky.example"),
                ),
                usage=Usage(10, 5),
            ),
            ScriptedReply(
                tool_calls=(
                    call("fetch", 3, url="bad.example"),
                    call("nope", 4),
                    call("add", 5, a=1, b="x"),
                    call("add", 7, a=1, b=2, c=3),
                    call("add", 6, a=1, b=2),
                ),
                usage=Usage(20, 5),
            ),
            ScriptedReply(text='{"title": "Durable", "sources": 3}', usage=Usage(30, 5)),
        ]
    )


@pytest.fixture
def models() -> Models:
    return Models([script()], default_model="m", prices={"m": Price(1.0, 2.0)})


async def test_an_agent_runs_tools_as_steps_and_errors_go_back_to_the_model(
    store: Store, models: Models
) -> None:
    CALLS.clear()
    FLAKY.clear()
    provider = models.providers["scripted"]
    assert isinstance(provider, ScriptedProvider)
    async with AsyncClient(store, models=models) as client:
        out = await client.run(researcher, "durable", run_id="ag-1")
        assert out["title"] == "Durable" and out["turns"] == 3 and out["stop"] == "done"
        assert out["runs"] == [
            ["search", ["durable 0", "durable 1"], None],
            ["fetch", "page flaky.example", None],
            ["fetch", None, "error: ConnectionError: cannot reach bad.example"],
            ["nope", None, "error: unknown tool 'nope' (tools: add, fetch, search)"],
            ["add", None, "error: bad arguments for 'add': $.b: expected integer, got string"],
            ["add", None, "error: bad arguments for 'add': unknown argument 'c'"],
            ["add", 3, None],
        ]
        assert out["tokens"] == 75 and out["usd"] == pytest.approx((60 + 30) / 1e6)
        assert provider.calls == 3
        # the model saw the tools in the request, and the errors as error tool results
        assert [t.name for t in provider.requests[0].tools] == ["search", "fetch", "add"]
        assert provider.requests[0].tools[0].parameters["properties"]["query"]["type"] == "object"
        last = provider.requests[2].messages
        errors = [m for m in last if m.get("is_error")]
        assert [m["tool_call_id"] for m in errors] == ["c3", "c4", "c5", "c7"]
        assert last[0] == {"role": "user", "content": "Research durable"}
        # each turn and each tool call that ran is its own step; polls for notes are signals
        steps = [(s.name, s.status) for s in await store.load_steps("ag-1")]
        named = [(n, st) for n, st in steps if n != INJECT_SIGNAL]
        assert named == [
            ("agent", StepStatus.COMPLETED),
            ("search", StepStatus.COMPLETED),
            ("fetch", StepStatus.COMPLETED),
            ("agent", StepStatus.COMPLETED),
            ("fetch", StepStatus.FAILED),
            ("add", StepStatus.COMPLETED),
            ("agent", StepStatus.COMPLETED),
        ]
        # a turn records only its reply (a delta), never the conversation so far
        records = await store.load_steps("ag-1")
        turns = [r for r in records if r.name == "agent"]
        assert all("Research durable" not in (r.output_json or "") for r in turns)
        assert "looking" in (turns[0].output_json or "")
        assert "flaky.example" not in (turns[2].output_json or "")
        # a replay rebuilds the history from the journal: no model call, no tool call
        calls_before, tool_calls = provider.calls, list(CALLS)
        assert await client.run(researcher, "durable", run_id="ag-1") == out
        assert provider.calls == calls_before and tool_calls == CALLS


@workflow
async def bounded(ctx: WorkflowContext) -> list[Any]:
    def two_adds(turn: AgentTurn) -> bool:
        return turn.turn == 2

    stopped = await ctx.agent(
        [{"role": "user", "content": "add"}], tools=[add], stop_when=two_adds, name="a"
    )
    capped = await ctx.agent("add again", tools=[add], max_turns=1, name="b")
    return [stopped.stop_reason, stopped.turns, capped.stop_reason, capped.output]


async def test_stop_when_and_max_turns_end_the_loop(store: Store) -> None:
    adds = ScriptedReply(tool_calls=(call("add", 1, a=1, b=1),), repeat=True)
    models = Models([ScriptedProvider([adds])], default_model="m")
    async with AsyncClient(store, models=models) as client:
        assert await client.run(bounded, run_id="ag-2") == ["stop_when", 2, "max_turns", None]


@workflow
def sync_agent(ctx: SyncWorkflowContext) -> str:
    return ctx.agent("hi", tools=[add]).text


async def test_a_sync_workflow_runs_the_loop_too(store: Store) -> None:
    replies = [ScriptedReply(tool_calls=(call("add", 1, a=2, b=3),)), ScriptedReply(text="5")]
    models = Models([ScriptedProvider(replies)], default_model="m")
    async with AsyncClient(store, models=models) as client:
        assert await client.run(sync_agent, run_id="ag-3") == "5"
        [result] = [s for s in await store.load_steps("ag-3") if s.name == "add"]
        assert json.loads(result.output_json or "") == 5


@workflow
async def injected(ctx: WorkflowContext) -> list[Any]:
    first = await ctx.llm("warm up", name="warm")
    found = await ctx.agent("go", tools=[add], max_turns=3)
    return [first.text, found.text, [m["content"] for m in found.messages if m["role"] == "user"]]


async def test_an_injected_note_joins_the_next_turn_and_replays_the_same(store: Store) -> None:
    replies = [
        ScriptedReply(match="warm up", text="warm"),
        ScriptedReply(tool_calls=(call("add", 1, a=2, b=3),)),
        ScriptedReply(text="noted"),
    ]
    provider = ScriptedProvider(replies)
    models = Models([provider], default_model="m")
    async with AsyncClient(store, models=models) as client:
        # the note is sent before the loop starts: it is taken at the first turn boundary
        await client.start(injected, run_id="ag-4")
        await client.inject("ag-4", "prefer primary sources")
        await client.inject("ag-4", "be brief")
        out = await client.run(injected, run_id="ag-4")
        notes = ["go", "[operator note] prefer primary sources", "[operator note] be brief"]
        assert out == ["warm", "noted", notes]
        assert provider.requests[1].messages[-1]["content"] == "[operator note] be brief"
        signals = [s for s in await store.load_steps("ag-4") if s.kind is StepKind.SIGNAL]
        assert len(signals) == 4  # two notes taken, then one empty poll per turn (two turns)
        assert await client.run(injected, run_id="ag-4") == out


@workflow
async def misused(ctx: WorkflowContext, how: str) -> str:
    if how == "turns":
        await ctx.agent("hi", max_turns=0)
    elif how == "twice":
        await ctx.agent("hi", tools=[add, Tool(add)])
    else:
        await ctx.agent([])
    return "unreachable"


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("turns", "ctx.agent: max_turns must be a positive int, got 0"),
        ("twice", "ctx.agent tools\\[1\\]: a second tool named 'add'"),
        ("empty", "ctx.agent: messages= needs a string or a non-empty list"),
    ],
)
async def test_bad_arguments_fail_the_call_naming_them(
    store: Store, how: str, message: str
) -> None:
    models = Models([ScriptedProvider([])], default_model="m")
    async with AsyncClient(store, models=models) as client:
        with pytest.raises(RunFailed, match=message):
            await client.run(misused, how, run_id=f"bad-{how}")
        assert await store.load_steps(f"bad-{how}") == []


def _example() -> Any:
    path = Path(__file__).resolve().parent.parent / "examples" / "agent_research.py"
    spec = importlib.util.spec_from_file_location("agent_research_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_agent_runs_against_an_openai_compatible_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = _example()

    def calls(*named: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"id": f"t{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
            for i, (n, a) in enumerate(named)
        ]

    summary = {"title": "Loops", "points": ["a", "b", "c"], "sources": 2}
    with llm_server() as server:
        server.queue(
            Answer(body=chat_reply(None, tool_calls=calls(("search", {"query": "loops"})))),
            Answer(body=chat_reply("", tool_calls=calls(("fetch", {"url": "u"}), ("nope", {})))),
            Answer(body=chat_reply(json.dumps(summary), prompt_tokens=40, completion_tokens=9)),
        )
        models = Models(
            [OpenAICompatibleProvider(f"{server.url}/v1")], tiers={"balanced": "local-model"}
        )
        example.run_example(models, f"sqlite:///{tmp_path / 'agent.db'}")
        assert server.calls == 3
        out = capsys.readouterr().out
        assert "completed: published 'Loops' (3 points)" in out
        assert "3 model calls, 62 tokens in" in out
        first, _, last = (r["body"] for r in server.requests)
        # the tools in the provider's own format, their schemas from the annotations
        assert first["tools"][0] == {
            "type": "function",
            "function": {
                "name": "search",
                "description": "Search the web; returns result URLs.",
                "parameters": {
                    "type": "object",
                    "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                    "required": ["query"],
                },
            },
        }
        assert first["model"] == "local-model"
        tool_results = [m for m in last["messages"] if m["role"] == "tool"]
        assert [m["tool_call_id"] for m in tool_results] == ["t0", "t0", "t1"]
        assert tool_results[2]["content"].startswith("error: unknown tool 'nope'")
        assert "is_error" not in tool_results[2]
        assert last["messages"][2]["tool_calls"][0]["function"]["name"] == "search"


@workflow
async def anthropic_agent(ctx: WorkflowContext) -> str:
    return (await ctx.agent("sum it", tools=[add])).text


async def test_an_agent_speaks_anthropic_tool_blocks(store: Store) -> None:
    pytest.importorskip("anthropic")
    from stepstone.models.anthropic import AnthropicProvider

    final = {**messages_reply("done"), "content": [{"type": "text", "text": "done"}]}
    with llm_server() as server:
        server.queue(Answer(body=messages_reply("looking")), Answer(body=final))
        provider = AnthropicProvider(api_key="sk-test", base_url=server.url)
        async with AsyncClient(store, models=Models([provider], default_model="c")) as client:
            assert await client.run(anthropic_agent, run_id="an-1") == "done"
        sent = server.requests[1]["body"]
        [tool] = sent["tools"]
        assert tool["name"] == "add" and tool["input_schema"]["required"] == ["a", "b"]
        assert sent["messages"][-1] == {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "tu_1",
                    "content": "error: unknown tool 'search' (tools: add)",
                    "is_error": True,
                }
            ],
        }


meeting_point: dict[str, asyncio.Event] = {}
arrivals: list[str] = []


async def meet(who: str) -> str:
    """A tool that returns only once both of a turn's calls have started: one after another,
    the first would wait for the second forever (here: 1 s, then an error)."""
    both_started = meeting_point["event"]
    arrivals.append(who)
    if len(arrivals) == 2:
        both_started.set()
    await asyncio.wait_for(both_started.wait(), 1)
    return f"{who} met"


@workflow
async def meeting(ctx: WorkflowContext, parallel: bool) -> list[Any]:
    found = await ctx.agent("meet", tools=[meet], parallel_tools=parallel, max_turns=2)
    return [[r.id, r.result, r.error] for r in found.tool_runs]


@pytest.mark.parametrize("parallel", [True, False])
async def test_a_turns_tool_calls_run_at_once_in_the_journals_order(
    store: Store, parallel: bool
) -> None:
    meeting_point["event"] = asyncio.Event()  # of this test's loop
    arrivals.clear()
    turn = ScriptedReply(tool_calls=(call("meet", 1, who="ann"), call("meet", 2, who="bo")))
    models = Models([ScriptedProvider([turn, ScriptedReply(text="done")])], default_model="m")
    async with AsyncClient(store, models=models) as client:
        runs = await client.run(meeting, parallel, run_id=f"meet-{parallel}")
        steps = [s.name for s in await store.load_steps(f"meet-{parallel}") if s.name == "meet"]
    assert len(steps) == 2  # the two tool steps, numbered in the model's order
    if parallel:
        assert runs == [["c1", "ann met", None], ["c2", "bo met", None]]
    else:
        assert runs[0][2] == "error: TimeoutError: " and runs[1] == ["c2", "bo met", None]
