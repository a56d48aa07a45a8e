"""The providers against a real HTTP server on 127.0.0.1: the OpenAI chat protocol over the
stdlib, and Anthropic's Messages API through the official SDK; config loading."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepstone import AsyncClient, RetryPolicy, RunFailed, WorkflowContext, workflow
from stepstone.core.llm import ModelRequest, Models, Price
from stepstone.core.port import Store
from stepstone.errors import InvalidArgument, ModelAuthError, ModelRateLimited, ModelUnavailable
from stepstone.models import OpenAICompatibleProvider, load_model_config, load_models
from tests.llm_server import Answer, LLMServer, chat_reply, llm_server, messages_reply

KEY = "sk-test-secret-123456"


@pytest.fixture
def server() -> Iterator[LLMServer]:
    with llm_server() as s:
        yield s


@pytest.fixture(params=["stdlib", "sdk"])
def transport(request: pytest.FixtureRequest) -> str:
    """The OpenAI-compatible provider over the stdlib, and through the official SDK."""
    if request.param == "sdk" and importlib.util.find_spec("openai") is None:
        pytest.skip("no openai SDK")
    return str(request.param)


def openai_models(server: LLMServer, transport: str = "stdlib", **kw: Any) -> Models:
    from stepstone.models import OpenAIProvider

    kind = OpenAIProvider if transport == "sdk" else OpenAICompatibleProvider
    provider = kind(f"{server.url}/v1", api_key=KEY, **kw)
    return Models([provider], default_model="m1", prices={"m1": Price(1.0, 2.0, 0.5)})


@workflow
async def ask(ctx: WorkflowContext, prompt: str) -> dict[str, Any]:
    retry = RetryPolicy(max_attempts=3, initial_delay_s=0.0, jitter=False)
    result = await ctx.llm(prompt, system="be brief", retry=retry, tools=[lookup])
    return {
        "text": result.text,
        "calls": [(c.name, c.arguments) for c in result.tool_calls],
        "usage": [result.usage.input_tokens, result.usage.output_tokens],
        "cached": result.usage.cache_read_tokens,
        "model": result.model,
    }


def lookup(term: str) -> str:
    """Look a term up."""
    return term


async def test_openai_compatible_reply_tools_and_usage(
    sqlite_store: Store, server: LLMServer, transport: str
) -> None:
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"term": "x"}'},
    }
    server.queue(Answer(body=chat_reply("hi", cached=4, prompt_tokens=10, tool_calls=[call])))
    async with AsyncClient(sqlite_store, models=openai_models(server, transport)) as client:
        out = await client.run(ask, "hello", run_id="o1")
        [line] = await client.cost("o1")
    assert out == {
        "text": "hi",
        "calls": [["lookup", {"term": "x"}]],
        "usage": [6, 7],
        "cached": 4,
        "model": "openai/m1",
    }
    # the ledger holds what the provider reported: 6 uncached + 4 cached in, 7 out
    assert (line.input_tokens, line.cache_read_tokens, line.output_tokens) == (6, 4, 7)
    assert line.cost_usd == pytest.approx((6 * 1.0 + 7 * 2.0 + 4 * 0.5) / 1e6)
    [request] = server.requests
    assert request["path"] == "/v1/chat/completions"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert body["messages"][1] == {"role": "user", "content": "hello"}
    assert body["tools"][0]["function"]["name"] == "lookup"
    assert body["tools"][0]["function"]["parameters"]["required"] == ["term"]


async def test_rate_limits_are_retried_after_retry_after_and_counted_once(
    sqlite_store: Store, server: LLMServer, transport: str
) -> None:
    server.queue(
        Answer(429, {"error": {"message": "slow down"}}, {"Retry-After": "0.2"}),
        Answer(503, {"error": {"message": "overloaded"}}),
        Answer(body=chat_reply("finally")),
    )
    async with AsyncClient(sqlite_store, models=openai_models(server, transport)) as client:
        out = await client.run(ask, "hello", run_id="o2")
        [step] = (await client.describe("o2")).steps
        [line] = await client.cost("o2")
    assert out["text"] == "finally" and step.attempts == 3
    assert server.calls == 3 and line.calls == 1


async def test_auth_errors_fail_at_once_and_never_show_the_key(
    sqlite_store: Store, server: LLMServer, transport: str
) -> None:
    server.queue(Answer(401, {"error": {"message": "invalid api key"}}))
    server.default = Answer(body=chat_reply("never"))
    async with AsyncClient(sqlite_store, models=openai_models(server, transport)) as client:
        with pytest.raises(RunFailed) as failed:
            await client.run(ask, "hello", run_id="o3")
        timeline = await client.timeline("o3")
    assert failed.value.error_type == "ModelAuthError"
    assert "HTTP 401: invalid api key" in failed.value.message
    assert server.calls == 1
    everything = repr(failed.value) + (failed.value.traceback or "") + repr(timeline)
    assert KEY not in everything


async def test_json_schema_is_sent_when_the_server_constrains_output(server: LLMServer) -> None:
    server.queue(Answer(body=chat_reply('{"a": 1}')))
    provider = OpenAICompatibleProvider(server.url, json_schema=True)
    schema = {"type": "object"}
    reply = await provider.complete(
        ModelRequest(({"role": "user", "content": "x"},), "m1", response_schema=schema)
    )
    assert reply.text == '{"a": 1}'
    [request] = server.requests
    assert request["body"]["response_format"]["json_schema"]["schema"] == schema
    assert "Authorization" not in request["headers"]


async def test_an_unreachable_server_is_unavailable(server: LLMServer) -> None:
    provider = OpenAICompatibleProvider("http://127.0.0.1:9/v1", timeout_s=2)
    with pytest.raises(ModelUnavailable, match="cannot reach"):
        await provider.complete(ModelRequest(({"role": "user", "content": "x"},), "m"))


@pytest.mark.skipif(importlib.util.find_spec("anthropic") is None, reason="no anthropic SDK")
async def test_anthropic_sdk_against_a_local_server(server: LLMServer) -> None:
    from stepstone.models.anthropic import AnthropicProvider

    server.queue(
        Answer(
            429,
            {"type": "error", "error": {"type": "rate_limit_error", "message": "wait"}},
            {"retry-after": "7"},
        ),
        Answer(401, {"type": "error", "error": {"type": "authentication_error", "message": "no"}}),
        Answer(body=messages_reply("bonjour")),
    )
    provider = AnthropicProvider(api_key=KEY, base_url=server.url)
    request = ModelRequest(({"role": "user", "content": "hi"},), "claude-x", system="s")
    with pytest.raises(ModelRateLimited, match="HTTP 429: wait") as limited:
        await provider.complete(request)
    assert limited.value.retry_after_s == 7.0
    with pytest.raises(ModelAuthError):
        await provider.complete(request)
    reply = await provider.complete(request)
    assert reply.text == "bonjour" and reply.model == "claude-x"
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("search", {"q": "x"})]
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (20, 5)
    assert (reply.usage.cache_read_tokens, reply.usage.cache_write_tokens) == (3, 2)
    assert server.calls == 3, "the SDK's own retries are off: the step's policy decides"
    body = server.requests[-1]["body"]
    assert body["system"] == "s" and body["messages"] == [{"role": "user", "content": "hi"}]
    assert server.requests[-1]["path"] == "/v1/messages"


# --- config ----------------------------------------------------------------------------------


def test_no_key_means_the_offline_scripted_provider(tmp_path: Path) -> None:
    config = load_model_config({"HOME": str(tmp_path)})
    assert config.provider == "scripted"
    models = load_models({"HOME": str(tmp_path)})
    assert list(models.providers) == ["scripted"]


def test_config_file_and_env(tmp_path: Path) -> None:
    (tmp_path / ".stepstone").mkdir()
    script = tmp_path / "replies.json"
    script.write_text('["hello"]')
    (tmp_path / ".stepstone" / "config.toml").write_text(
        f"""
[llm]
provider = "openai"
script = "{script}"
[llm.openai]
base_url = "http://127.0.0.1:1/v1"
api_key_env = "MY_KEY"
[llm.tiers]
fast = "openai/small"
best = "scripted/big"
[llm.prices."small"]
input = 0.5
output = 1.5
"""
    )
    env = {"HOME": str(tmp_path), "MY_KEY": KEY, "STEPSTONE_LLM_TIER_BEST": "openai/large"}
    config = load_model_config(env)
    assert config.provider == "openai" and config.openai_api_key == KEY
    assert KEY not in repr(config)
    assert config.tiers == {"fast": "openai/small", "best": "openai/large"}
    models = load_models(env)
    assert set(models.providers) == {"openai", "scripted"}
    assert models.resolve(None, "fast")[1] == "small"
    assert models.resolve("scripted/x", None)[0].name == "scripted"
    assert models.price("openai", "small") == Price(0.5, 1.5)
    assert type(models.providers["openai"]).__name__ == "OpenAICompatibleProvider"
    if importlib.util.find_spec("openai") is not None:  # sdk = true in the file, or the variable
        sdk = load_models({**env, "STEPSTONE_OPENAI_SDK": "1"}).providers["openai"]
        assert type(sdk).__name__ == "OpenAIProvider"
        assert KEY not in repr(sdk)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[llm]\nprovider = 'gpt'", "not one of scripted, openai, anthropic"),
        ("[llm.tiers]\nfastest = 'x'", "fastest: not one of fast, balanced, best"),
        ("[llm.prices.m]\ninput = 'cheap'", "prices must be numbers"),
        ("[llm\n", "config.toml"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(InvalidArgument, match=problem):
        load_model_config({}, path)


async def test_tool_results_reach_an_openai_server_as_function_messages(
    sqlite_store: Store, server: LLMServer
) -> None:
    from tests.test_llm import conversation

    call = {"id": "c7", "type": "function", "function": {"name": "find", "arguments": "{}"}}
    server.queue(Answer(body=chat_reply(None, tool_calls=[call])), Answer(body=chat_reply("42")))
    async with AsyncClient(sqlite_store, models=openai_models(server)) as client:
        assert await client.run(conversation, run_id="t1") == "42"
    sent = server.requests[1]["body"]["messages"]
    assert sent[1]["tool_calls"] == [
        {"id": "c7", "type": "function", "function": {"name": "find", "arguments": "{}"}}
    ]
    assert sent[1]["content"] == ""
    assert sent[2] == {"role": "tool", "tool_call_id": "c7", "content": "found: 42"}


@pytest.mark.skipif(importlib.util.find_spec("anthropic") is None, reason="no anthropic SDK")
async def test_tool_results_reach_anthropic_as_blocks(server: LLMServer) -> None:
    from stepstone.models.anthropic import AnthropicProvider

    server.queue(Answer(body=messages_reply("ok")))
    provider = AnthropicProvider(api_key=KEY, base_url=server.url)
    messages = (
        {"role": "user", "content": "Find it"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "t1", "name": "find"}]},
        {"role": "tool", "tool_call_id": "t1", "content": "found"},
    )
    await provider.complete(ModelRequest(messages, "claude-x"))
    sent = server.requests[0]["body"]["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t1", "name": "find", "input": {}}],
    }
    assert sent[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "found"}],
    }


async def test_a_dated_model_name_is_priced_as_the_model_asked_for(
    sqlite_store: Store, server: LLMServer
) -> None:
    server.queue(Answer(body=chat_reply("hi", model="m1-2026-01-01")))
    async with AsyncClient(sqlite_store, models=openai_models(server)) as client:
        assert (await client.run(ask, "hello", run_id="d1"))["model"] == "openai/m1-2026-01-01"
        [line] = await client.cost("d1")
    assert line.cost_usd == pytest.approx((11 * 1.0 + 7 * 2.0) / 1e6)
