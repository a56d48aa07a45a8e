"""``ctx.llm``: one model call as a checkpointed step, priced in the cost ledger.

The call takes its journal position when it is made, like any step. Its body asks the provider
that :class:`~stepstone.core.llm.Models` picks, checks structured output (one repair turn quoting
the validation error, then :class:`~stepstone.errors.MalformedOutput`), prices the usage and
returns the :class:`~stepstone.core.llm.LLMResult` to record, with the call for the ledger (the
store writes both in one transaction). A replay returns the recorded result and never calls the
provider. Retries follow the step's :class:`~stepstone.core.retry.RetryPolicy`: rate limits and
overloads are retried after the provider's retry-after; auth and invalid requests never are.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import time
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from stepstone.core import codec
from stepstone.core.definitions import StepOptions
from stepstone.core.frozen import frozen
from stepstone.core.jsonschema import check_schema, schema_for
from stepstone.core.ledger import BudgetSpec, BudgetUse, MeteredCall
from stepstone.core.llm import (
    TIERS,
    LLMResult,
    ModelProvider,
    ModelRequest,
    Models,
    ToolCall,
    ToolSpec,
    Usage,
)
from stepstone.core.model import Wait
from stepstone.core.port import NewEvent
from stepstone.core.retry import RetryPolicy
from stepstone.core.scope import step_scope
from stepstone.core.steps import MODEL_CALL, Metered, StepCall
from stepstone.core.structured import OutputProblem, parse_output, repair_prompt
from stepstone.errors import (
    BudgetExhausted,
    DecodeError,
    InvalidArgument,
    MalformedOutput,
    ModelAuthError,
    ModelInvalidRequest,
)

if TYPE_CHECKING:
    from stepstone.core.engine import Execution

__all__ = ["LLM_RETRY", "LLMCall", "call_llm", "tool_spec"]

LLM_RETRY = RetryPolicy(
    max_attempts=5,
    initial_delay_s=1.0,
    backoff=2.0,
    max_delay_s=60.0,
    give_up_on=(ModelAuthError, ModelInvalidRequest, MalformedOutput, InvalidArgument),
)
"""The retry policy of a ``ctx.llm`` step unless ``retry=`` says otherwise."""


@frozen
class LLMCall:
    """The checked arguments of one ``ctx.llm`` call."""

    messages: tuple[dict[str, Any], ...]
    system: str | None
    model: str | None
    tier: str | None
    max_tokens: int
    temperature: float | None
    schema: dict[str, Any] | None
    output_type: Any
    tools: tuple[ToolSpec, ...]

    @classmethod
    def build(
        cls,
        prompt: str | Sequence[Mapping[str, Any]],
        *,
        system: str | None,
        model: str | None,
        tier: str | None,
        max_tokens: int,
        temperature: float | None,
        output: Any,
        tools: Sequence[Any] | None,
    ) -> LLMCall:
        if isinstance(prompt, str):
            messages: tuple[dict[str, Any], ...] = ({"role": "user", "content": prompt},)
        elif (
            isinstance(prompt, Sequence) and prompt and all(isinstance(m, Mapping) for m in prompt)
        ):
            messages = tuple(_plain(typing.cast(Mapping[str, Any], m)) for m in prompt)
            for i, m in enumerate(messages):
                if not isinstance(m.get("role"), str) or "content" not in m:
                    raise InvalidArgument(
                        f"ctx.llm messages[{i}]: needs a 'role' and a 'content', got {m!r}"
                    )
        else:
            raise InvalidArgument(
                f"ctx.llm: the prompt must be a string or a non-empty list of messages, "
                f"got {prompt!r}"
            )
        if tier is not None and tier not in TIERS:
            raise InvalidArgument(f"ctx.llm: unknown tier {tier!r} (one of {', '.join(TIERS)})")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidArgument(f"ctx.llm: max_tokens must be a positive int, got {max_tokens!r}")
        schema: dict[str, Any] | None = None
        output_type: Any = None
        if isinstance(output, Mapping):
            schema = dict(output)
            check_schema(schema)
        elif output is not None:
            if not codec.is_pydantic_model(output):
                raise InvalidArgument(
                    "ctx.llm output= takes a Pydantic model class or a JSON Schema dict, "
                    f"got {output!r}"
                )
            schema, output_type = schema_for(output), output
        specs = tuple(tool_spec(t) for t in tools or ())
        return cls(
            messages,
            system,
            model,
            tier,
            max_tokens,
            temperature,
            schema,
            output_type,
            specs,
        )

    def finish(self, recorded: dict[str, Any]) -> LLMResult:
        """The recorded reply (plain JSON, see :func:`_recorded`) as the workflow sees it: an
        :class:`LLMResult` with ``output`` rebuilt as the Pydantic model asked for (on a first
        run and on a replay alike)."""
        try:
            usage = recorded["usage"]
            output = recorded["output"]
            if self.output_type is not None and output is not None:
                output = codec.decode_value(output, self.output_type, "ctx.llm output")
            return LLMResult(
                text=recorded["text"],
                output=output,
                tool_calls=tuple(
                    ToolCall(c["id"], c["name"], c["arguments"]) for c in recorded["tool_calls"]
                ),
                usage=Usage(usage[0], usage[1], usage[2], usage[3]),
                model=recorded["model"],
                cost_usd=recorded["cost_usd"],
                latency_s=recorded["latency_s"],
                stop_reason=recorded["stop_reason"],
                turns=recorded["turns"],
            )
        except (KeyError, IndexError, TypeError) as exc:
            raise DecodeError("ctx.llm result", "$", f"not a recorded model reply: {exc}") from None


def _plain(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message as plain JSON: tool calls given as :class:`ToolCall` (from an earlier
    ``result.tool_calls``) become ``{"id", "name", "arguments"}``."""
    out = dict(message)
    calls = out.get("tool_calls")
    if calls:
        out["tool_calls"] = [
            dataclasses.asdict(c) if isinstance(c, ToolCall) else dict(c) for c in calls
        ]
    return out


def tool_spec(tool: Any) -> ToolSpec:
    """A :class:`ToolSpec` from a ToolSpec, a dict (``name``, ``description``, ``parameters``)
    or a function (its name, docstring's first line and parameters' annotations)."""
    if isinstance(tool, ToolSpec):
        return tool
    if isinstance(tool, Mapping):
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"ctx.llm tools: a tool dict needs a 'name', got {tool!r}")
        params = dict(tool.get("parameters") or tool.get("input_schema") or {"type": "object"})
        check_schema(params)
        return ToolSpec(name, str(tool.get("description", "")), params)
    if callable(tool):
        fn: Callable[..., Any] = getattr(tool, "fn", tool)  # a @step's own function
        try:
            hints = typing.get_type_hints(fn)
        except Exception:
            hints = {}
        props: dict[str, Any] = {}
        required: list[str] = []
        for p in inspect.signature(fn).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            props[p.name] = schema_for(hints[p.name]) if p.name in hints else {}
            if p.default is p.empty:
                required.append(p.name)
        doc = (inspect.getdoc(fn) or "").strip().splitlines()
        params = {"type": "object", "properties": props, "required": required}
        return ToolSpec(getattr(fn, "__name__", "tool"), doc[0] if doc else "", params)
    raise InvalidArgument(f"ctx.llm tools: expected a function, dict or ToolSpec, got {tool!r}")


def call_llm(
    exe: Execution,
    call: LLMCall,
    *,
    name: str,
    retry: RetryPolicy | None,
    timeout_s: float | None,
) -> StepCall[dict[str, Any]]:
    """Take the journal position of a ``ctx.llm`` call; awaiting it calls (or replays) it and
    gives the recorded reply, which :meth:`LLMCall.finish` turns into the LLMResult."""
    options = StepOptions(retry=retry if retry is not None else LLM_RETRY, timeout_s=timeout_s)

    async def body() -> Metered:
        return await _complete(exe, call)

    setattr(body, MODEL_CALL, True)
    step: StepCall[dict[str, Any]] = exe.steps.lazy(name, body, (), {}, options, codec._NO_HINT)
    return step


async def _complete(exe: Execution, call: LLMCall) -> Metered:
    models = exe.rt.models
    if models is None:
        raise ModelInvalidRequest(
            "stepstone",
            "no model providers: pass models= to the Client or Worker "
            "(stepstone.models.load_models() reads ~/.stepstone/config.toml)",
        )
    uses = await _budget_uses(exe)
    tier = call.tier
    if tier is not None and call.model is None:
        tier = _downgraded(tier, uses)
    provider, model = models.resolve(call.model, tier)
    system = call.system
    if call.schema is not None:
        lead = "When you answer without calling a tool, answer" if call.tools else "Answer"
        hint = f"{lead} with only a JSON value matching this JSON Schema:\n" + json.dumps(
            call.schema, sort_keys=True
        )
        system = f"{system}\n\n{hint}" if system else hint
    request = ModelRequest(
        messages=call.messages,
        model=model,
        system=system,
        max_tokens=call.max_tokens,
        temperature=call.temperature,
        tools=call.tools,
        response_schema=call.schema,
    )
    if uses:
        _check_budgets(exe, uses, models, provider, model, request)
    started = time.monotonic()
    reply = await provider.complete(request)
    usage, turns, output = reply.usage, 1, None
    if call.schema is not None and not reply.tool_calls:
        try:
            output = parse_output(reply.text, call.schema)
        except OutputProblem as problem:
            repair = dataclasses.replace(
                request,
                messages=(
                    *request.messages,
                    {"role": "assistant", "content": reply.text},
                    {"role": "user", "content": repair_prompt(problem, call.schema)},
                ),
            )
            reply = await provider.complete(repair)
            usage, turns = usage + reply.usage, 2
            try:
                output = parse_output(reply.text, call.schema)
            except OutputProblem as again:
                exc = MalformedOutput(provider.name, again.problem, again.path)
                latency = time.monotonic() - started
                metered = _metered(models, provider, model, reply.model, usage, latency)
                exc.__stepstone_metered__ = metered  # type: ignore[attr-defined]
                raise exc from None
    latency = time.monotonic() - started
    metered = _metered(models, provider, model, reply.model, usage, latency)
    # Recorded as plain JSON (cheaper to write and read back than the dataclass); finish()
    # makes the LLMResult from it on a first run and on a replay alike.
    recorded = {
        "text": reply.text,
        "output": output,
        "tool_calls": [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls
        ],
        "usage": [
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
        ],
        "model": metered.model,
        "cost_usd": metered.cost_usd,
        "latency_s": latency,
        "stop_reason": reply.stop_reason,
        "turns": turns,
    }
    if uses:
        await _alerts(exe, uses, metered)
    return Metered(recorded, metered)


# --- budgets ---------------------------------------------------------------------------------

_CHEAPER = {"best": "balanced", "balanced": "fast"}


async def _budget_uses(exe: Execution) -> list[BudgetUse]:
    """The stored budgets this call counts against; a workflow's own per-run budget is stored
    with the run at its first model call (raise it there: ``stepstone budget set --run``)."""
    store, run = exe.rt.store, exe.run
    uses = await exe.store_call(store.budget_use(run.run_id, exe.wf.name, run.queue, now=exe.now()))
    own = exe.wf.defaults.budget
    if own is not None and not any(u.spec.scope == "run" for u in uses):
        await exe.store_call(store.set_budget("run", run.run_id, own, now=exe.now()))
        uses.append(BudgetUse(BudgetSpec("run", run.run_id, own), 0.0, 0))
    return uses


def _downgraded(tier: str, uses: list[BudgetUse]) -> str:
    """The next cheaper tier while a budget is past its ``downgrade_at`` (as often as it is
    past, ladder permitting: best -> balanced -> fast)."""
    for use in uses:
        at = use.spec.budget.downgrade_at
        if at is not None and use.fraction() >= at:
            return _CHEAPER.get(tier, tier)
    return tier


def _check_budgets(
    exe: Execution,
    uses: list[BudgetUse],
    models: Models,
    provider: ModelProvider,
    model: str,
    request: ModelRequest,
) -> None:
    """Pause the run (BudgetExhausted) if this call, at its worst, would pass a budget."""
    chars = len(request.system or "") + sum(
        len(str(m.get("content", ""))) for m in request.messages
    )
    worst = Usage(chars // 4 + 1, request.max_tokens)
    price = models.price(provider.name, model)
    worst_usd = price.cost_usd(worst) if price is not None else 0.0
    worst_tokens = worst.input_tokens + worst.output_tokens
    for use in uses:
        if use.fraction() >= 1.0 or use.fraction(worst_usd, worst_tokens) > 1.0:
            budget = use.spec.budget
            if budget.on_limit == "wait" and budget.period_s is not None:
                # a rate limit: sleep (durably) for the window, then this call tries again
                info = step_scope.get()
                seq = info.seq if info is not None else -1
                until = exe.now() + timedelta(seconds=budget.period_s)
                raise exe.suspend(Wait("retry", seq, until=until))
            reason = (
                f"{use.describe()}; the next model call ({provider.name}/{model}) may cost up "
                f"to ${worst_usd:.6f} / {worst_tokens} tokens: raise the budget and unpause"
            )
            raise exe.set_unwind(BudgetExhausted(reason))


async def _alerts(exe: Execution, uses: list[BudgetUse], call: MeteredCall) -> None:
    """A ``budget_alert`` event for each alert threshold this call crossed."""
    tokens = (
        call.input_tokens
        + call.output_tokens
        + (call.cache_read_tokens or 0)
        + (call.cache_write_tokens or 0)
    )
    events = []
    for use in uses:
        before, after = use.fraction(), use.fraction(call.cost_usd, tokens)
        for threshold in use.spec.budget.alerts:
            if before < threshold <= after:
                data = {
                    "scope": use.spec.scope,
                    "name": use.spec.name,
                    "threshold": threshold,
                    "used": round(after, 6),
                    "spent_usd": use.spent_usd + call.cost_usd,
                    "spent_tokens": use.spent_tokens + tokens,
                }
                events.append(NewEvent("budget_alert", json.dumps(data), None))
    if events:
        store = exe.rt.store
        await exe.store_call(store.append_events(exe.claim, events, now=exe.now()))


def _metered(
    models: Models,
    provider: ModelProvider,
    asked: str,
    answered: str,
    usage: Usage,
    latency_s: float,
) -> MeteredCall:
    """The call as the ledger sees it: the model that answered (a provider may name a dated
    version of the one asked for), priced by its own price, else by the asked model's."""
    answered = answered or asked
    price = models.price(provider.name, answered) or models.price(provider.name, asked)
    return MeteredCall(
        model=f"{provider.name}/{answered}",
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        cost_usd=price.cost_usd(usage) if price is not None else 0.0,
        latency_s=latency_s,
    )
