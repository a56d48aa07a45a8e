"""ctx.llm: model calls as recorded steps, structured output, retries, and the cost ledger."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from pydantic import BaseModel

from stepstone import AsyncClient, RetryPolicy, RunFailed, WorkflowContext, workflow
from stepstone.core.llm import LLMResult, Models, Price, ToolCall, Usage
from stepstone.core.model import RunState, StepStatus
from stepstone.core.port import Store
from stepstone.errors import InvalidArgument, MalformedOutput
from stepstone.models import ScriptedProvider, ScriptedReply
from tests.test_waits import wait_for_state


class Summary(BaseModel):
    title: str
    score: float


@workflow
async def summarise(ctx: WorkflowContext, text: str) -> dict[str, Any]:
    first = await ctx.llm(f"Summarise: {text}", output=Summary, name="summary")
    ok = await ctx.wait_for_signal("go")
    second = await ctx.llm("Say done", tier="fast")
    assert isinstance(first.output, Summary)
    return {"title": first.output.title, "second": second.text, "ok": ok, "cost": first.cost_usd}


def scripted(*replies: ScriptedReply) -> ScriptedProvider:
    return ScriptedProvider(list(replies))


PRICES = {"small": Price(input_per_mtok=1.0, output_per_mtok=2.0)}


@pytest.fixture
def provider() -> ScriptedProvider:
    return scripted(
        ScriptedReply(
            match="Summarise",
            text='Here you go:\n```json\n{"title": "Q3", "score": 0.9}\n```',
            usage=Usage(1000, 500),
        ),
        ScriptedReply(match="Say done", text="done", usage=Usage(10, 2, 3, 4)),
    )


@pytest.fixture
async def llm_client(store: Store, provider: ScriptedProvider) -> Any:
    models = Models([provider], tiers={"fast": "small"}, default_model="small", prices=PRICES)
    c = AsyncClient(store, models=models)
    yield c
    await c.close()


async def test_llm_reply_is_recorded_replayed_and_priced(
    llm_client: AsyncClient, provider: ScriptedProvider
) -> None:
    task = asyncio.create_task(llm_client.run(summarise, "the quarter", run_id="s1"))
    await wait_for_state(llm_client, "s1", RunState.WAITING)
    assert provider.calls == 1
    await llm_client.signal("s1", "go", True)
    result = await task
    # the resumed run replayed the first call from the journal: the provider saw it once
    assert provider.calls == 2
    assert result == {"title": "Q3", "second": "done", "ok": True, "cost": 0.002}
    assert [r.model for r in provider.requests] == ["small", "small"]
    steps = (await llm_client.describe("s1")).steps
    assert [s.name for s in steps] == ["summary", "go", "llm"]
    assert all(s.status is StepStatus.COMPLETED for s in steps)
    [total] = await llm_client.cost("s1")
    assert (total.calls, total.input_tokens, total.output_tokens) == (2, 1010, 502)
    assert (total.cache_read_tokens, total.cache_write_tokens) == (3, 4)
    # 1010 in, 502 out at 1 and 2 USD per Mtok, cache priced as input: 1010+1004+7 = 2021 µUSD
    assert total.cost_usd == pytest.approx(0.002021)
    by_model = await llm_client.cost(by="model")
    assert [(line.key, line.calls) for line in by_model] == [("scripted/small", 2)]
    by_workflow = await llm_client.cost(workflow="summarise", by="workflow")
    assert [line.key for line in by_workflow] == ["summarise"]
    assert await llm_client.cost(workflow="other") == []
    [day] = await llm_client.cost(by="day", since=3600)
    assert day.key is not None and len(day.key) == 10


@workflow
async def shaped(ctx: WorkflowContext) -> Any:
    schema = {
        "type": "object",
        "required": ["n"],
        "properties": {"n": {"type": "integer"}, "label": {"type": "string"}},
    }
    result = await ctx.llm("count", output=schema)
    return result.output


async def test_one_repair_turn_quotes_the_validation_error(store: Store) -> None:
    provider = scripted(
        ScriptedReply(text='{"n": "three"}'),
        ScriptedReply(text="STRUCTURED_OUTPUT_START\nN|3\nn|3\nlabel|007\nSTRUCTURED_OUTPUT_END"),
    )
    async with AsyncClient(store, models=Models([provider])) as client:
        assert await client.run(shaped, run_id="r1") == {"N": 3, "n": 3, "label": "007"}
    assert provider.calls == 2
    repair = provider.requests[1].messages[-1]["content"]
    assert "$.n" in repair and "integer" in repair


async def test_malformed_output_after_the_repair_names_the_path(store: Store) -> None:
    provider = scripted(ScriptedReply(text='{"n": "x"}'), ScriptedReply(text='{"n": 1.5}'))
    async with AsyncClient(store, models=Models([provider])) as client:
        with pytest.raises(RunFailed) as failed:
            await client.run(shaped, run_id="m1")
        assert failed.value.error_type == "MalformedOutput"
        assert "malformed output at $.n" in failed.value.message
        [line] = await client.cost("m1")  # the tokens spent are in the ledger all the same
        assert line.calls == 1 and line.input_tokens > 0
    assert provider.calls == 2, "MalformedOutput is not retried"


@workflow
async def patient(ctx: WorkflowContext) -> str:
    retry = RetryPolicy(max_attempts=3, initial_delay_s=0.0, jitter=False)
    return (await ctx.llm("hi", retry=retry)).text


async def test_rate_limit_is_retried_after_the_providers_retry_after(store: Store) -> None:
    provider = scripted(
        ScriptedReply(error={"kind": "rate_limited", "retry_after_s": 0.3}),
        ScriptedReply(text="hello"),
    )
    async with AsyncClient(store, models=Models([provider])) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await client.run(patient, run_id="p1") == "hello"
        assert loop.time() - started >= 0.3, "the retry waited for the provider's retry-after"
        [entry] = (await client.describe("p1")).steps
        assert entry.attempts == 2


async def test_auth_errors_are_never_retried(store: Store) -> None:
    provider = scripted(
        ScriptedReply(error={"kind": "auth", "message": "bad key"}), ScriptedReply(text="x")
    )
    async with AsyncClient(store, models=Models([provider])) as client:
        with pytest.raises(RunFailed) as failed:
            await client.run(patient, run_id="a1")
        assert failed.value.error_type == "ModelAuthError"
        assert "bad key" in failed.value.message
    assert provider.calls == 1


@workflow
async def no_models(ctx: WorkflowContext) -> str:
    return (await ctx.llm("hi")).text


async def test_without_models_the_step_fails_saying_how_to_give_them(store: Store) -> None:
    async with AsyncClient(store) as client:
        with pytest.raises(RunFailed) as failed:
            await client.run(no_models, run_id="n1")
    assert "models=" in failed.value.message


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"prompt": ""}, None),
        ({"prompt": 3}, "prompt must be a string"),
        ({"prompt": [{"content": "x"}]}, "messages[0]"),
        ({"model": "a", "tier": "fast"}, None),
        ({"tier": "fastest"}, "unknown tier 'fastest'"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"output": int}, "Pydantic model class or a JSON Schema"),
        ({"output": {"type": "nonsense"}}, "nonsense"),
    ],
)
def test_bad_arguments_are_refused_before_any_call(
    kwargs: dict[str, Any], problem: str | None
) -> None:
    from stepstone.core.modelcalls import LLMCall

    args: dict[str, Any] = {
        "system": None,
        "model": None,
        "tier": None,
        "max_tokens": 10,
        "temperature": None,
        "output": None,
        "tools": None,
    }
    prompt = kwargs.pop("prompt", "hi")
    args.update(kwargs)
    if problem is None:
        LLMCall.build(prompt, **args)
        return
    with pytest.raises(InvalidArgument, match=re.escape(problem)):
        LLMCall.build(prompt, **args)


def test_tools_get_schemas_from_annotations() -> None:
    from stepstone.core.modelcalls import tool_spec

    def search(query: str, limit: int = 5) -> list[str]:
        """Search the web.

        More words."""
        return []

    spec = tool_spec(search)
    assert spec.name == "search" and spec.description == "Search the web."
    assert spec.parameters["required"] == ["query"]
    assert spec.parameters["properties"]["limit"] == {"type": "integer"}


def test_tiers_and_model_routing() -> None:
    a, b = ScriptedProvider(name="a"), ScriptedProvider(name="b")
    models = Models([a, b], tiers={"best": "b/big"}, default_model="tiny")
    assert models.resolve(None, None) == (a, "tiny")
    assert models.resolve(None, "best") == (b, "big")
    assert models.resolve("b/x", None) == (b, "x")
    assert models.resolve("b/x", "best") == (b, "x"), "a per-call model= wins over tier="
    assert models.resolve("org/model", None) == (a, "org/model")
    with pytest.raises(InvalidArgument, match="tier 'fast' has no model"):
        models.resolve(None, "fast")


def test_model_errors_replay_as_themselves() -> None:
    from stepstone.core.definitions import Registry
    from stepstone.core.failures import error_info, rebuild_error

    again = rebuild_error(error_info(MalformedOutput("p", "bad", "$.a")), Registry())
    assert isinstance(again, MalformedOutput) and again.path == "$.a"
    assert str(again) == "p: malformed output at $.a: bad"
    assert LLMResult(text="x").turns == 1


@workflow
def sync_ask(ctx: Any, topic: str) -> str:
    return str(ctx.llm(f"Say done about {topic}").text)


@workflow
async def twins(ctx: WorkflowContext) -> list[str]:
    a, b = await ctx.parallel(ctx.llm("left", name="left"), ctx.llm("right", name="right"))
    return [a.text, b.text]


async def test_sync_workflows_and_parallel_calls(store: Store) -> None:
    provider = scripted(
        ScriptedReply(match="Say done", text="done"),
        ScriptedReply(match="left", text="L"),
        ScriptedReply(match="right", text="R"),
    )
    async with AsyncClient(store, models=Models([provider])) as client:
        assert await client.run(sync_ask, "x", run_id="y1") == "done"
        assert await client.run(twins, run_id="t1") == ["L", "R"]
        assert [s.name for s in (await client.describe("t1")).steps] == ["left", "right"]
        [line] = await client.cost("t1")
        assert line.calls == 2


@workflow
async def conversation(ctx: WorkflowContext) -> str:
    first = await ctx.llm("Find it", tools=[{"name": "find", "parameters": {"type": "object"}}])
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Find it"},
        {"role": "assistant", "content": first.text, "tool_calls": list(first.tool_calls)},
        {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "found: 42"},
    ]
    return (await ctx.llm(messages)).text


async def test_tool_calls_go_back_to_the_model_as_messages(store: Store) -> None:
    provider = scripted(
        ScriptedReply(match="Find", tool_calls=(ToolCall("c7", "find", {"q": "it"}),)),
        ScriptedReply(text="it is 42"),
    )
    async with AsyncClient(store, models=Models([provider])) as client:
        assert await client.run(conversation, run_id="c1") == "it is 42"
    sent = provider.requests[1].messages
    assert sent[1]["tool_calls"] == [{"id": "c7", "name": "find", "arguments": {"q": "it"}}]
    assert sent[2] == {"role": "tool", "tool_call_id": "c7", "content": "found: 42"}
