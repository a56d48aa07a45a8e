"""``ctx.agent``: a durable tool-use loop written over ``ctx.llm``, ordinary steps and signals.

Each model turn is a ``ctx.llm`` step and each tool call its own step (with the tool's retry
policy), so the journal holds the conversation as per-turn deltas: a turn records only the model's
reply and each tool its result, never the whole history. A replay rebuilds the history from those
records and calls nothing; a run killed at turn 10 resumes at turn 10. Before each model turn the
loop takes every pending ``stepstone inject`` note (the :data:`INJECT_SIGNAL` signal, a journaled
non-blocking signal wait) and adds it to the conversation, so a replay sees the same notes at the
same turn. A tool that still fails after its retries, a call naming an unknown tool, or arguments
that fail the tool's schema go back to the model as an error tool result, never a crash.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import typing
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any

from stepstone.core import codec
from stepstone.core.definitions import Step, StepOptions
from stepstone.core.frozen import frozen
from stepstone.core.jsonschema import first_problem
from stepstone.core.llm import LLMResult, ToolCall, ToolSpec, Usage
from stepstone.core.retry import RetryPolicy
from stepstone.core.steps import StepCall
from stepstone.errors import InvalidArgument, StepFailed, WaitTimeout

if TYPE_CHECKING:
    from stepstone.core.engine import Execution

__all__ = [
    "INJECT_SIGNAL",
    "AgentResult",
    "AgentTurn",
    "Tool",
    "ToolRun",
    "bind_tools",
    "call_agent",
    "initial_messages",
    "run_agent",
]

INJECT_SIGNAL = "stepstone.inject"
"""The signal ``stepstone inject RUN "note"`` sends; the loop reads it at each turn boundary."""


@frozen
class Tool:
    """A function offered to the model as a tool, run as an ordinary step when called.

    ``name`` (default: the function's name) and ``description`` (default: its docstring's first
    line) are what the model sees; the arguments' JSON Schema comes from the annotations
    (Pydantic models and dataclasses included) unless ``parameters`` gives one. ``retry`` and
    ``timeout_s`` are the step's (default: a ``@step``'s own, else no retry).

    >>> Tool(search_web, retry=RetryPolicy(max_attempts=3), description="Search the web")
    """

    fn: Callable[..., Any]
    retry: RetryPolicy | None = None
    name: str | None = None
    description: str | None = None
    timeout_s: float | None = None
    parameters: dict[str, Any] | None = None


@frozen
class ToolRun:
    """One tool call of the loop: what the model asked, and the result or error it got back."""

    turn: int
    id: str
    name: str
    arguments: dict[str, Any]
    result: Any = None
    error: str | None = None


@frozen
class AgentTurn:
    """One finished turn, as ``stop_when`` sees it: the model's reply and the tools it ran."""

    turn: int
    reply: LLMResult
    tool_runs: tuple[ToolRun, ...] = ()


@frozen
class AgentResult:
    """What ``await ctx.agent(...)`` returns.

    ``text``: the last reply's text. ``output``: the final reply parsed by ``output=`` (None
    without it, or when the loop stopped on a tool-call turn). ``turns``: model turns taken.
    ``tool_runs``: every tool call with its result or error. ``usage`` / ``cost_usd``: totals
    over the turns. ``stop_reason``: ``"done"`` (the model answered without tool calls),
    ``"stop_when"`` or ``"max_turns"``. ``messages``: the whole conversation.
    """

    text: str
    output: Any = None
    turns: int = 0
    tool_runs: tuple[ToolRun, ...] = ()
    usage: Usage = Usage()
    cost_usd: float = 0.0
    stop_reason: str = "done"
    messages: tuple[dict[str, Any], ...] = field(default=())


@frozen
class _Bound:
    """A tool ready to run: what the model sees and how the step is made."""

    spec: ToolSpec
    fn: Callable[..., Any]
    options: StepOptions
    rtype: Any
    hints: dict[str, Any]
    names: frozenset[str] | None  # the arguments it takes (None: any, it has **kwargs)


def bind_tools(tools: Sequence[Any]) -> dict[str, _Bound]:
    """The loop's tools by name (functions, ``@step`` functions or :class:`Tool`); a bad or
    duplicate tool is an InvalidArgument naming it."""
    from stepstone.core.modelcalls import tool_spec

    bound: dict[str, _Bound] = {}
    for i, tool in enumerate(tools):
        t = tool if isinstance(tool, Tool) else Tool(tool)
        if not callable(t.fn):
            raise InvalidArgument(
                f"ctx.agent tools[{i}]: expected a function or Tool, got {tool!r}"
            )
        step = t.fn if isinstance(t.fn, Step) else None
        fn = step.fn if step is not None else t.fn
        base = step.options if step is not None else StepOptions()
        spec = tool_spec(fn)
        spec = ToolSpec(
            t.name or (step.name if step is not None else spec.name),
            t.description if t.description is not None else spec.description,
            dict(t.parameters) if t.parameters is not None else spec.parameters,
        )
        if spec.name in bound:
            raise InvalidArgument(f"ctx.agent tools[{i}]: a second tool named {spec.name!r}")
        options = StepOptions(
            retry=t.retry if t.retry is not None else base.retry,
            timeout_s=t.timeout_s if t.timeout_s is not None else base.timeout_s,
            at_most_once=base.at_most_once,
        )
        try:
            hints = typing.get_type_hints(fn)
        except Exception:
            hints = {}
        rtype = step.return_type if step is not None else hints.get("return", codec._NO_HINT)
        params = inspect.signature(fn).parameters
        hints = {k: v for k, v in hints.items() if k in params}
        varkw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        names = None if varkw else frozenset(params)
        bound[spec.name] = _Bound(spec, fn, options, rtype, hints, names)
    return bound


async def run_agent(
    exe: Execution,
    messages: tuple[dict[str, Any], ...],
    tools: dict[str, _Bound],
    *,
    llm: Callable[..., Any],
    max_turns: int,
    stop_when: Callable[[AgentTurn], bool] | None,
    inject: bool,
    parallel_tools: bool = True,
) -> AgentResult:
    """The loop. ``llm(messages, tools)`` makes one ``ctx.llm`` call (model, tier, output and
    the step's name already bound); the rest is steps and signal waits on ``exe``. A turn's
    tool calls take their journal positions in the order the model gave them, then run at once
    (``parallel_tools``) or one after another."""
    history = list(messages)
    specs = [b.spec for b in tools.values()]
    runs: list[ToolRun] = []
    usage, cost = Usage(), 0.0
    reply: LLMResult | None = None
    stop = "max_turns"
    turn = 0
    while turn < max_turns:
        turn += 1
        if inject:
            history += [
                {"role": "user", "content": f"[operator note] {note}"}
                for note in await _injected(exe)
            ]
        reply = await llm(tuple(history), specs)
        usage, cost = usage + reply.usage, cost + reply.cost_usd
        calls = [dataclasses.asdict(c) for c in reply.tool_calls]
        history.append({"role": "assistant", "content": reply.text, "tool_calls": calls})
        if not calls:
            history[-1].pop("tool_calls")
        prepared = [_prepare_tool(exe, tools, call, turn) for call in reply.tool_calls]
        if parallel_tools and len(prepared) > 1:
            from stepstone.core.context import JournalCall, gather_calls

            done: list[ToolRun] = await gather_calls(
                exe, tuple(JournalCall(_finish_tool(p)) for p in prepared)
            )
        else:
            done = [await _finish_tool(p) for p in prepared]
        for call, ran in zip(reply.tool_calls, done, strict=True):
            content = ran.error if ran.error is not None else _as_text(ran.result)
            message = {"role": "tool", "tool_call_id": call.id, "content": content}
            if ran.error is not None:
                message["is_error"] = True
            history.append(message)
        runs += done
        if stop_when is not None and stop_when(AgentTurn(turn, reply, tuple(done))):
            stop = "stop_when"
            break
        if not calls:
            stop = "done"
            break
    return AgentResult(
        text=reply.text if reply is not None else "",
        output=reply.output if reply is not None else None,
        turns=turn,
        tool_runs=tuple(runs),
        usage=usage,
        cost_usd=round(cost, 10),
        stop_reason=stop,
        messages=tuple(history),
    )


async def _injected(exe: Execution) -> list[str]:
    """Every pending inject note, each taken by a journaled wait that does not block."""
    notes: list[str] = []
    while True:
        try:
            payload = await exe.waits.call_signal(INJECT_SIGNAL, 0.0, None)
        except WaitTimeout:
            return notes
        notes.append(payload if isinstance(payload, str) else json.dumps(payload))


_Prepared = tuple[ToolCall, int, StepCall[Any]] | ToolRun


def _prepare_tool(exe: Execution, tools: dict[str, _Bound], call: ToolCall, turn: int) -> _Prepared:
    """Check one tool call and take its step's journal position (no await: the positions of a
    turn's calls follow the model's order whatever runs first); a call that cannot run is its
    error for the model already."""
    tool = tools.get(call.name)
    if tool is None:
        known = ", ".join(sorted(tools)) or "none"
        error = f"error: unknown tool {call.name!r} (tools: {known})"
        return ToolRun(turn, call.id, call.name, call.arguments, error=error)
    unknown = sorted(set(call.arguments) - tool.names) if tool.names is not None else []
    problem = f"unknown argument {unknown[0]!r}" if unknown else None
    problem = problem or first_problem(call.arguments, tool.spec.parameters)
    if problem is not None:
        error = f"error: bad arguments for {call.name!r}: {problem}"
        return ToolRun(turn, call.id, call.name, call.arguments, error=error)
    try:
        kwargs = {
            k: codec.decode_value(v, tool.hints[k], f"tool {call.name!r} argument {k!r}")
            if k in tool.hints
            else v
            for k, v in call.arguments.items()
        }
    except Exception as exc:
        error = f"error: bad arguments for {call.name!r}: {exc}"
        return ToolRun(turn, call.id, call.name, call.arguments, error=error)
    return call, turn, exe.steps.lazy(call.name, tool.fn, (), kwargs, tool.options, tool.rtype)


async def _finish_tool(prepared: _Prepared) -> ToolRun:
    """Run a prepared tool call's step; every way it can fail becomes an error for the model
    (an unwind of the run, a suspension or a cancel, goes through)."""
    if isinstance(prepared, ToolRun):
        return prepared
    call, turn, step = prepared
    try:
        result = await step
    except Exception as exc:  # recorded failed after its retries: the model hears about it
        name = exc.type_name if isinstance(exc, StepFailed) else type(exc).__qualname__
        message = exc.message if isinstance(exc, StepFailed) else str(exc)
        error = f"error: {name}: {message}"
        return ToolRun(turn, call.id, call.name, call.arguments, error=error)
    return ToolRun(turn, call.id, call.name, call.arguments, result=result)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return codec.encode(value, "tool result")


def initial_messages(messages: str | Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    """The conversation the loop starts from (a string is one user message)."""
    if isinstance(messages, str):
        return ({"role": "user", "content": messages},)
    out = tuple(dict(m) for m in messages or ())
    if not out:
        raise InvalidArgument("ctx.agent: messages= needs a string or a non-empty list of messages")
    return out


def call_agent(
    exe: Execution,
    messages: str | Sequence[Mapping[str, Any]],
    *,
    system: str | None,
    tools: Sequence[Any],
    model: str | None,
    tier: str | None,
    max_turns: int,
    stop_when: Callable[[AgentTurn], bool] | None,
    output: Any,
    max_tokens: int,
    temperature: float | None,
    name: str,
    retry: RetryPolicy | None,
    inject: bool,
    parallel_tools: bool = True,
) -> Coroutine[Any, Any, AgentResult]:
    """A ``ctx.agent`` call: arguments checked now (a bad one raises at the call), the loop
    runs when the coroutine is awaited."""
    from stepstone.core.modelcalls import LLMCall, call_llm

    exe.raise_if_unwinding()
    if not isinstance(max_turns, int) or max_turns < 1:
        raise InvalidArgument(f"ctx.agent: max_turns must be a positive int, got {max_turns!r}")
    if not name:
        raise InvalidArgument("ctx.agent: name must not be empty")
    start = initial_messages(messages)
    bound = bind_tools(tools)

    def build(history: Sequence[dict[str, Any]], specs: Sequence[ToolSpec]) -> LLMCall:
        return LLMCall.build(
            list(history),
            system=system,
            model=model,
            tier=tier,
            max_tokens=max_tokens,
            temperature=temperature,
            output=output,
            tools=specs,
        )

    build(start, ())  # checks model, tier, output and max_tokens at the call, before any turn

    async def llm(history: tuple[dict[str, Any], ...], specs: list[ToolSpec]) -> LLMResult:
        call = build(history, specs)
        return call.finish(await call_llm(exe, call, name=name, retry=retry, timeout_s=None))

    return run_agent(
        exe,
        start,
        bound,
        llm=llm,
        max_turns=max_turns,
        stop_when=stop_when,
        inject=inject,
        parallel_tools=parallel_tools,
    )
