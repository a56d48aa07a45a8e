"""The workflow context: what orchestration code calls (steps, waits, children, state, events).

``WorkflowContext`` is handed to ``async def`` workflows; every call takes its journal position
when it is made (before any ``await``), so concurrent calls number deterministically.
``SyncWorkflowContext`` is handed to plain ``def`` workflows: the same calls, blocking. Both are
thin facades over one :class:`~stepstone.core.engine.Execution` and its collaborators.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping, MutableMapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from stepstone.core.asking import Answer, AskKind, AskPlan, plan_ask
from stepstone.core.definitions import Workflow
from stepstone.core.engine import Execution
from stepstone.core.memory import Memory, MemoryScope
from stepstone.core.model import Audience, RiskLevel, StepKind, WaitInfo
from stepstone.core.resources import NOTIFY_EVENT, NOTIFY_LEVELS, Prompt, SkillResources
from stepstone.core.retry import RetryPolicy
from stepstone.core.steps import StepCall, resolve_step
from stepstone.core.values import StateView
from stepstone.errors import InvalidArgument, Suspend, Unwind

if TYPE_CHECKING:
    from stepstone.core.agentloop import AgentResult, AgentTurn
    from stepstone.core.llm import LLMResult, Tier

__all__ = ["ChildHandle", "SyncWorkflowContext", "WorkflowContext"]

R = TypeVar("R")
T = TypeVar("T")


class JournalCall(Awaitable[T]):
    """A ctx call (wait, child, ...) whose journal position is taken; awaiting it runs it."""

    __slots__ = ("_coro",)

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro

    def __await__(self) -> Any:
        return self._coro.__await__()

    def close(self) -> None:
        self._coro.close()


class _ContextBase:
    """What both contexts share: identity, state, events and the journaled helpers."""

    __slots__ = ("_exe", "_state")

    def __init__(self, exe: Execution) -> None:
        self._exe = exe
        self._state = StateView(exe.values)

    @property
    def run_id(self) -> str:
        return self._exe.run.run_id

    @property
    def workflow(self) -> str:
        return self._exe.wf.name

    @property
    def parent_run_id(self) -> str | None:
        return self._exe.run.parent_run_id

    @property
    def state(self) -> MutableMapping[str, Any]:
        """Run state, visible from outside (``client.describe``); saved at the next checkpoint."""
        return self._state

    def _ask(
        self,
        question: str,
        kind: str,
        *,
        gate: str | None,
        options: Sequence[Any] | None,
        schema: Mapping[str, Any] | None,
        timeout_s: float | None,
        approvers: Sequence[str] | None,
        summary: str | None,
        risk_level: RiskLevel | None,
        multiple: bool = False,
        allow_custom: bool = False,
        skippable: bool = False,
    ) -> Coroutine[Any, Any, Answer]:
        plan = plan_ask(
            question,
            kind,
            gate=gate,
            options=options,
            schema=schema,
            approvers=approvers,
            multiple=multiple,
            allow_custom=allow_custom,
            skippable=skippable,
        )
        info = wait_info(plan.gate, question, summary, "user", risk_level)
        assert info is not None  # the question is its prompt
        waiting = self._exe.waits.call_signal(
            plan.gate, timeout_s, plan.schema, dataclasses.replace(info, ask=plan.kind)
        )
        return _answered(waiting, plan)

    def _user(
        self,
        question: str,
        input_type: str,
        options: Sequence[Any] | None,
        allow_custom: bool,
        skippable: bool,
        timeout_s: float | None,
        gate: str | None,
    ) -> Coroutine[Any, Any, Any]:
        kinds = {
            "text": "text",
            "approval": "approval",
            "select": "choice",
            "multiselect": "choice",
        }
        if input_type not in kinds:
            raise InvalidArgument(
                f"wait_for_user input_type= must be one of {', '.join(kinds)}, got {input_type!r}"
            )
        asked = self._ask(
            question,
            kinds[input_type],
            gate=gate or "user_input",
            options=options,
            schema=None,
            timeout_s=timeout_s,
            approvers=None,
            summary=None,
            risk_level=None,
            multiple=input_type == "multiselect",
            allow_custom=allow_custom,
            skippable=skippable,
        )
        return _value_of(asked)

    @property
    def is_replaying(self) -> bool:
        """True while the code re-runs calls that are already recorded (e.g. to skip logging)."""
        return self._exe.journal.replaying

    def emit(self, kind: str, data: Any = None) -> None:
        """Publish a progress event to watchers (``client.events(run_id, follow=True)``).
        Events are emitted once: a replay does not emit them again."""
        self._exe.values.emit(kind, data)

    def now(self) -> datetime:
        """The current time, recorded: a replay sees the same value."""
        return self._exe.values.current_time()

    def random(self) -> float:
        """A random float in [0, 1), recorded: a replay sees the same value."""
        return self._exe.values.new_random()

    def uuid(self) -> Any:
        """A random UUID, recorded: a replay sees the same value."""
        return self._exe.values.new_uuid()

    def prompt(self, name: str, /, **variables: Any) -> Prompt:
        """The skill's prompt ``prompts/NAME.md`` with ``$var`` filled from ``variables``.

        The filled text is recorded like ``ctx.now()``: a replay returns what the first
        execution saw, even if the file changed since. A variable the prompt uses and the call
        does not give raises :class:`~stepstone.errors.PromptError` naming it and the file.
        The result is a ``str`` (a :class:`~stepstone.core.resources.Prompt`) that also carries
        the front matter's ``tier`` and ``max_tokens``.

        >>> text = ctx.prompt("greeter.user", name="ann")
        """

        def fill() -> dict[str, Any]:
            return self._resources("prompt", name).fill_prompt(name, variables).to_json()

        data = self._exe.values.journaled(StepKind.PROMPT, fill, dict, name)
        return Prompt.from_json(data)

    def artifact(self, path: str, content: str | bytes) -> Path:
        """Write ``content`` to ``path`` (relative) inside this run's folder, atomically, once:
        the write is recorded, and a replay returns the path without writing again. Returns the
        file's absolute path (``~/.stepstone/runs/RUN/PATH`` for launched skills)."""
        if not isinstance(content, str | bytes):
            raise InvalidArgument(
                f"ctx.artifact({path!r}): content must be str or bytes, "
                f"got {type(content).__name__}"
            )

        def write() -> str:
            return self._resources("artifact", path).write_artifact(self.run_id, path, content)

        written = self._exe.values.journaled(StepKind.ARTIFACT, write, str, path)
        return Path(written)

    def notify(self, summary: str, *, level: str = "info") -> None:
        """Say what this run's next inbox item shows (a launched run's outcome: done, failed,
        cancelled or waiting) instead of the default (its result, error, reason or question).
        ``level`` is ``info``, ``warning`` or ``error``. Recorded once: a replay does not repeat
        it. Multi-line summaries are kept as they are."""
        if not isinstance(summary, str) or not summary.strip():
            raise InvalidArgument("ctx.notify(summary): summary must be a non-empty string")
        if level not in NOTIFY_LEVELS:
            raise InvalidArgument(
                f"ctx.notify level= must be one of {', '.join(NOTIFY_LEVELS)}, got {level!r}"
            )
        self._exe.values.emit(NOTIFY_EVENT, {"summary": summary, "level": level})

    def _resources(self, call: str, what: str) -> SkillResources:
        res = self._exe.wf.resources
        if res is None:
            raise InvalidArgument(
                f"ctx.{call}({what!r}): workflow {self.workflow!r} was not loaded as a skill, so "
                "it has no prompts folder nor run folder (launch it with `stepstone launch`, or "
                "serve it with `stepstone worker --skills`)"
            )
        return res

    def _until(self, seconds: float) -> datetime:
        if seconds < 0:
            raise InvalidArgument(f"sleep seconds must be >= 0, got {seconds}")
        return self._exe.now() + timedelta(seconds=seconds)

    @staticmethod
    def _check_when(when: datetime) -> datetime:
        if not isinstance(when, datetime) or when.tzinfo is None:
            raise InvalidArgument("sleep_until needs an aware datetime (e.g. with tzinfo=UTC)")
        return when


class ChildHandle(Generic[R]):
    """A child run started with ``ctx.start_child``; ``await handle.result()`` waits for it."""

    __slots__ = ("_ctx", "_wf", "run_id")

    def __init__(self, ctx: _ContextBase, wf: Workflow[Any, R], run_id: str) -> None:
        self._ctx, self._wf, self.run_id = ctx, wf, run_id

    def result(self) -> Any:
        """Wait for the child's result (a recorded wait; a failed child raises RunFailed).
        In an async workflow this returns an awaitable; in a sync workflow, the result."""
        exe = self._ctx._exe
        coro = exe.children.call(self._wf, (), {}, start_only=False, existing_run_id=self.run_id)
        if isinstance(self._ctx, SyncWorkflowContext):
            return exe.block(coro)
        return JournalCall(coro)


class WorkflowContext(_ContextBase):
    """The context of an ``async def`` workflow.

    >>> @workflow
    ... async def onboard(ctx: WorkflowContext, user: str) -> str:
    ...     page = await ctx.step("fetch", fetch_profile, user)
    ...     a, b = await ctx.parallel(score(page), summarize(page))
    ...     await ctx.sleep(3600)
    ...     ok = await ctx.wait_for_signal("approval", timeout_s=86400, schema=Approval)
    ...     return await ctx.child(provision, user)
    """

    __slots__ = ()

    @overload
    def step(
        self,
        name: str,
        fn: Callable[..., Awaitable[R]],
        /,
        *args: Any,
        retry: RetryPolicy | None = None,
        timeout_s: float | None = None,
        at_most_once: bool | None = None,
        **kwargs: Any,
    ) -> Awaitable[R]: ...

    @overload
    def step(
        self,
        name: str,
        fn: Callable[..., R] | Awaitable[R],
        /,
        *args: Any,
        retry: RetryPolicy | None = None,
        timeout_s: float | None = None,
        at_most_once: bool | None = None,
        **kwargs: Any,
    ) -> Awaitable[R]: ...

    @overload
    def step(
        self,
        fn: Callable[..., Awaitable[R]],
        /,
        *args: Any,
        retry: RetryPolicy | None = None,
        timeout_s: float | None = None,
        at_most_once: bool | None = None,
        **kwargs: Any,
    ) -> Awaitable[R]: ...

    @overload
    def step(
        self,
        fn: Callable[..., R],
        /,
        *args: Any,
        retry: RetryPolicy | None = None,
        timeout_s: float | None = None,
        at_most_once: bool | None = None,
        **kwargs: Any,
    ) -> Awaitable[R]: ...

    def step(
        self,
        name_or_fn: Any,
        /,
        *args: Any,
        retry: RetryPolicy | None = None,
        timeout_s: float | None = None,
        at_most_once: bool | None = None,
        **kwargs: Any,
    ) -> Awaitable[Any]:
        """Run any callable (sync or async) or awaitable as a checkpointed step.

        ``ctx.step("fetch", fetch_url, url)`` names the step; ``ctx.step(fetch_url, url)`` uses the
        function's name. ``retry``, ``timeout_s`` and ``at_most_once`` override a ``@step``'s own
        options (pass a function's own arguments of those names through ``functools.partial``).
        """
        name, fn, args, options, rtype = resolve_step(
            name_or_fn, args, retry, timeout_s, at_most_once
        )
        call: Awaitable[Any] = self._exe.steps.lazy(name, fn, args, kwargs, options, rtype)
        return call

    async def parallel(self, *calls: Awaitable[Any]) -> list[Any]:
        """Await several step/child/wait calls concurrently; results in argument order.

        Every call is waited for (their outcomes are all recorded); then, if any failed, the
        failure of the earliest argument is raised.
        """
        results = await gather_calls(self._exe, calls)
        return results

    async def gather(self, **calls: Awaitable[Any]) -> dict[str, Any]:
        """Like :meth:`parallel`, keyed: ``await ctx.gather(a=f(1), b=g(2))`` -> a dict."""
        results = await gather_calls(self._exe, tuple(calls.values()))
        return dict(zip(calls, results, strict=True))

    def sleep(self, seconds: float) -> Awaitable[None]:
        """A durable timer: the run is suspended (no worker held) and resumes after ``seconds``."""
        return JournalCall(self._exe.waits.call_sleep(self._until(seconds)))

    def sleep_until(self, when: datetime) -> Awaitable[None]:
        """A durable timer until an aware datetime."""
        return JournalCall(self._exe.waits.call_sleep(self._check_when(when)))

    @overload
    def wait_for_signal(
        self,
        name: str,
        *,
        timeout_s: float | None = None,
        schema: type[R],
        prompt: str | None = None,
        summary: str | None = None,
        audience: Audience | None = None,
        risk_level: RiskLevel | None = None,
        step: str | None = None,
    ) -> Awaitable[R]: ...

    @overload
    def wait_for_signal(
        self,
        name: str,
        *,
        timeout_s: float | None = None,
        schema: Mapping[str, Any] | None = None,
        prompt: str | None = None,
        summary: str | None = None,
        audience: Audience | None = None,
        risk_level: RiskLevel | None = None,
        step: str | None = None,
    ) -> Awaitable[Any]: ...

    def wait_for_signal(
        self,
        name: str,
        *,
        timeout_s: float | None = None,
        schema: Any = None,
        prompt: str | None = None,
        summary: str | None = None,
        audience: Audience | None = None,
        risk_level: RiskLevel | None = None,
        step: str | None = None,
    ) -> Awaitable[Any]:
        """Wait for the signal ``name`` (sent with ``client.signal``) and return its payload.

        Signals sent before the wait is reached are buffered and delivered in order. After
        ``timeout_s`` the wait raises :class:`~stepstone.WaitTimeout` (catch it for a fallback).
        ``schema`` (a dataclass, Pydantic model or other annotation) decodes the payload and is
        stored with the wait so ``signal()`` rejects a malformed payload before it reaches the run;
        a mapping is a JSON Schema document (the payload is checked and returned as plain JSON).

        ``prompt``, ``summary``, ``audience`` (``"user"``, ``"agent"`` or ``"system"``),
        ``risk_level`` (``"low"``, ``"medium"``, ``"high"``) and ``step`` (the name of the step
        that waits; default: the signal's name) are stored with the wait for whoever answers it:
        ``stepstone run`` prints them in its waiting envelope with the command that resumes it.
        """
        info = wait_info(step, prompt, summary, audience, risk_level)
        return JournalCall(self._exe.waits.call_signal(name, timeout_s, schema, info))

    def ask(
        self,
        question: str,
        *,
        kind: AskKind = "approval",
        gate: str | None = None,
        options: Sequence[Any] | None = None,
        schema: Mapping[str, Any] | None = None,
        approvers: Sequence[str] | None = None,
        timeout_s: float | None = None,
        summary: str | None = None,
        risk_level: RiskLevel | None = None,
    ) -> Awaitable[Answer]:
        """Ask a human and wait (freeing the worker) for the answer, as the named ``gate``.

        ``kind``: ``"approval"`` (yes/no: ``stepstone approve RUN --gate G [--reject]``),
        ``"text"``, ``"choice"`` (one of ``options``) or ``"form"`` (an object valid against the
        JSON Schema ``schema``), answered with ``stepstone answer RUN --gate G --input JSON``.
        The answer is checked against the gate's schema by whoever delivers it, before it reaches
        the run. With ``approvers``, only one of those names may answer (``--as WHO``); the
        :class:`~stepstone.Answer` records who did either way. Each gate is answered separately;
        the default gate is ``"approval"`` for an approval, else ``"answer"``. After
        ``timeout_s`` the call raises :class:`~stepstone.WaitTimeout`.

        >>> ok = await ctx.ask("Publish the report?", gate="publish", approvers=["ana", "bo"])
        >>> if not ok.approved: ...
        """
        return JournalCall(
            self._ask(
                question,
                kind,
                gate=gate,
                options=options,
                schema=schema,
                timeout_s=timeout_s,
                approvers=approvers,
                summary=summary,
                risk_level=risk_level,
            )
        )

    def wait_for_user(
        self,
        question: str,
        *,
        input_type: str = "text",
        options: Sequence[Any] | None = None,
        allow_custom: bool = False,
        skippable: bool = False,
        timeout_s: float | None = None,
        gate: str | None = None,
    ) -> Awaitable[Any]:
        """agnt5's name for :meth:`ask`: ``input_type`` ``text``, ``approval``, ``select`` (one of
        ``options``; ``allow_custom``: or any text) or ``multiselect`` (a list of them);
        ``skippable``: the answer may be null. Returns the answer's value (gate ``user_input``)."""
        return JournalCall(
            self._user(question, input_type, options, allow_custom, skippable, timeout_s, gate)
        )

    def llm(
        self,
        prompt: str | Sequence[Mapping[str, Any]],
        /,
        *,
        system: str | None = None,
        model: str | None = None,
        tier: Tier | None = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
        output: Any = None,
        tools: Sequence[Any] | None = None,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float | None = None,
    ) -> Awaitable[LLMResult]:
        """Call a model as a checkpointed step and return its :class:`LLMResult`.

        ``prompt`` is a string (one user message) or a list of ``{"role", "content"}``
        messages. ``model=`` (``"openai/gpt-4o-mini"``, or a name for the default provider)
        wins over ``tier=`` (``"fast"``, ``"balanced"``, ``"best"``, mapped to models in the
        config) when both are given. ``output=`` (a Pydantic model class or a JSON Schema
        dict) asks for structured output: the reply's JSON (bare, fenced or sagaflow's
        ``STRUCTURED_OUTPUT_START`` block) is validated, one repair turn quotes the problem,
        then :class:`~stepstone.errors.MalformedOutput` names the bad path. ``tools=`` offers
        functions (schemas from their annotations), dicts or :class:`ToolSpec`; the calls the
        model asks for are in ``result.tool_calls``. ``name`` names the step (default
        ``"llm"``). Retries: ``retry=`` (default :data:`LLM_RETRY`: rate limits and overloads
        after the provider's retry-after; auth and invalid requests are never retried).

        The reply is recorded: a replay returns it without calling the provider. Its usage and
        cost are written to the cost ledger with the step (``stepstone cost``).

        >>> summary = await ctx.llm(f"Summarise: {text}", tier="fast", output=Summary)
        >>> summary.output.title, summary.cost_usd
        """
        from stepstone.core.modelcalls import LLMCall, call_llm  # loaded by the first model call

        call = LLMCall.build(
            prompt,
            system=system,
            model=model,
            tier=tier,
            max_tokens=max_tokens,
            temperature=temperature,
            output=output,
            tools=tools,
        )
        step = call_llm(self._exe, call, name=name or "llm", retry=retry, timeout_s=timeout_s)

        async def finish() -> LLMResult:
            return call.finish(await step)

        return JournalCall(finish())

    def memory(self, scope: MemoryScope, key: str, *, owner: str | None = None) -> Memory:
        """A durable JSON document shared across runs: ``scope`` ``"session"`` or ``"user"``
        (``owner=`` names the session or user) or ``"global"``. ``await mem.get(default=)``
        reads it (recorded: a replay sees what this run saw), ``await mem.update(fn)`` reads,
        applies ``fn`` and writes in one step (compare-and-set; another run's write in between
        runs the step again on the newer value), ``await mem.set(value)`` writes on the version
        read. Each write lands in the transaction that records its step, so it lands once.

        >>> notes = ctx.memory("user", "notes", owner=user_id)
        >>> await notes.update(lambda doc: (doc or []) + [summary])
        """
        return Memory(self._exe, JournalCall, scope, key, owner)

    def agent(
        self,
        messages: str | Sequence[Mapping[str, Any]],
        *,
        system: str | None = None,
        tools: Sequence[Any] = (),
        model: str | None = None,
        tier: Tier | None = None,
        max_turns: int = 10,
        stop_when: Callable[[AgentTurn], bool] | None = None,
        output: Any = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
        name: str = "agent",
        retry: RetryPolicy | None = None,
        inject: bool = True,
        parallel_tools: bool = True,
    ) -> Awaitable[AgentResult]:
        """Run a durable tool-use loop and return its :class:`~stepstone.AgentResult`.

        Each model turn is a ``ctx.llm`` step named ``name`` (``retry=`` is its policy); each
        tool call the model makes runs as an ordinary step named after the tool, with the
        tool's own retry policy (``tools=``: functions, ``@step`` functions or
        :class:`~stepstone.Tool`; schemas from their annotations). A tool that still fails, an
        unknown tool or bad arguments go back to the model as an error result. The loop ends
        when the model answers without tool calls, when ``stop_when(turn)`` is true, or after
        ``max_turns``; ``output=`` parses the final answer (see :meth:`llm`). The journal holds
        one reply per turn and one result per tool call: a resumed run rebuilds the
        conversation from them without calling the model again. With ``inject`` (the default),
        notes sent with ``stepstone inject RUN "note"`` join the conversation at the next turn.
        The tool calls of one turn run at once (``parallel_tools=False``: one after another);
        their journal positions follow the model's order either way, so a replay matches.
        Run loops one after another (a loop takes its journal positions as it goes, so two in
        ``ctx.parallel`` would not replay alike); for loops at once, use child workflows.

        >>> found = await ctx.agent("Find three sources on X", tools=[search, fetch],
        ...                         tier="balanced", max_turns=20, output=Sources)
        """
        from stepstone.core.agentloop import call_agent

        return JournalCall(
            call_agent(
                self._exe,
                messages,
                system=system,
                tools=tools,
                model=model,
                tier=tier,
                max_turns=max_turns,
                stop_when=stop_when,
                output=output,
                max_tokens=max_tokens,
                temperature=temperature,
                name=name,
                retry=retry,
                inject=inject,
                parallel_tools=parallel_tools,
            )
        )

    def child(self, wf: Workflow[Any, R], /, *args: Any, **kwargs: Any) -> Awaitable[R]:
        """Run ``wf`` as a child run and wait for its result (a failed child raises RunFailed)."""
        return JournalCall(self._exe.children.call(wf, args, kwargs, start_only=False))

    def start_child(
        self, wf: Workflow[Any, R], /, *args: Any, **kwargs: Any
    ) -> Awaitable[ChildHandle[R]]:
        """Start ``wf`` as a child run without waiting; ``await handle.result()`` later."""
        started = self._exe.children.call(wf, args, kwargs, start_only=True)

        async def start() -> ChildHandle[R]:
            return ChildHandle(self, wf, str(await started))

        return JournalCall(start())


class SyncWorkflowContext(_ContextBase):
    """The context of a plain ``def`` workflow: the calls of :class:`WorkflowContext`, blocking.

    ``parallel`` takes ``(fn, *args)`` tuples or ``functools.partial`` objects, since a step called
    directly in a sync workflow runs at once.
    """

    __slots__ = ()

    def step(
        self,
        name_or_fn: Any,
        /,
        *args: Any,
        retry: RetryPolicy | None = None,
        timeout_s: float | None = None,
        at_most_once: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run a callable as a checkpointed step and return its result (blocks)."""
        name, fn, args, options, rtype = resolve_step(
            name_or_fn, args, retry, timeout_s, at_most_once
        )
        steps = self._exe.steps
        return steps.deliver(steps.lazy(name, fn, args, kwargs, options, rtype))

    def parallel(self, *calls: Any) -> list[Any]:
        """Run ``(fn, *args)`` tuples or partials as concurrent steps; results in order."""
        exe = self._exe
        exe.raise_if_unwinding()
        pending = [self._lazy(call) for call in calls]
        return exe.block(gather_calls(exe, pending))

    def gather(self, **calls: Any) -> dict[str, Any]:
        results = self.parallel(*calls.values())
        return dict(zip(calls, results, strict=True))

    def _lazy(self, call: Any) -> StepCall[Any]:
        if isinstance(call, functools.partial):
            fn, args, kwargs = call.func, call.args, dict(call.keywords)
        elif isinstance(call, tuple) and call and callable(call[0]):
            fn, args, kwargs = call[0], tuple(call[1:]), {}
        elif callable(call):
            fn, args, kwargs = call, (), {}
        else:
            raise InvalidArgument(
                "SyncWorkflowContext.parallel takes (fn, *args) tuples, partials or callables, "
                f"got {call!r}"
            )
        name, body, args, options, rtype = resolve_step(fn, args, None, None, None)
        return self._exe.steps.lazy(name, body, args, kwargs, options, rtype)

    def sleep(self, seconds: float) -> None:
        self._exe.block(self._exe.waits.call_sleep(self._until(seconds)))

    def sleep_until(self, when: datetime) -> None:
        self._exe.block(self._exe.waits.call_sleep(self._check_when(when)))

    def wait_for_signal(
        self,
        name: str,
        *,
        timeout_s: float | None = None,
        schema: Any = None,
        prompt: str | None = None,
        summary: str | None = None,
        audience: Audience | None = None,
        risk_level: RiskLevel | None = None,
        step: str | None = None,
    ) -> Any:
        info = wait_info(step, prompt, summary, audience, risk_level)
        return self._exe.block(self._exe.waits.call_signal(name, timeout_s, schema, info))

    def ask(
        self,
        question: str,
        *,
        kind: AskKind = "approval",
        gate: str | None = None,
        options: Sequence[Any] | None = None,
        schema: Mapping[str, Any] | None = None,
        approvers: Sequence[str] | None = None,
        timeout_s: float | None = None,
        summary: str | None = None,
        risk_level: RiskLevel | None = None,
    ) -> Answer:
        """:meth:`WorkflowContext.ask`, blocking."""
        asked = self._ask(
            question,
            kind,
            gate=gate,
            options=options,
            schema=schema,
            timeout_s=timeout_s,
            approvers=approvers,
            summary=summary,
            risk_level=risk_level,
        )
        answer: Answer = self._exe.block(asked)
        return answer

    def wait_for_user(
        self,
        question: str,
        *,
        input_type: str = "text",
        options: Sequence[Any] | None = None,
        allow_custom: bool = False,
        skippable: bool = False,
        timeout_s: float | None = None,
        gate: str | None = None,
    ) -> Any:
        """:meth:`WorkflowContext.wait_for_user`, blocking."""
        return self._exe.block(
            self._user(question, input_type, options, allow_custom, skippable, timeout_s, gate)
        )

    def llm(
        self,
        prompt: str | Sequence[Mapping[str, Any]],
        /,
        *,
        system: str | None = None,
        model: str | None = None,
        tier: Tier | None = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
        output: Any = None,
        tools: Sequence[Any] | None = None,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float | None = None,
    ) -> LLMResult:
        """:meth:`WorkflowContext.llm`, blocking: call a model as a checkpointed step."""
        from stepstone.core.modelcalls import LLMCall, call_llm  # loaded by the first model call

        call = LLMCall.build(
            prompt,
            system=system,
            model=model,
            tier=tier,
            max_tokens=max_tokens,
            temperature=temperature,
            output=output,
            tools=tools,
        )
        exe = self._exe
        step = call_llm(exe, call, name=name or "llm", retry=retry, timeout_s=timeout_s)
        return call.finish(exe.block(step.run()))

    def memory(self, scope: MemoryScope, key: str, *, owner: str | None = None) -> Memory:
        """:meth:`WorkflowContext.memory`: its ``get``/``set``/``update`` block and return."""
        return Memory(self._exe, self._exe.block, scope, key, owner)

    def agent(
        self,
        messages: str | Sequence[Mapping[str, Any]],
        *,
        system: str | None = None,
        tools: Sequence[Any] = (),
        model: str | None = None,
        tier: Tier | None = None,
        max_turns: int = 10,
        stop_when: Callable[[AgentTurn], bool] | None = None,
        output: Any = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
        name: str = "agent",
        retry: RetryPolicy | None = None,
        inject: bool = True,
        parallel_tools: bool = True,
    ) -> AgentResult:
        """:meth:`WorkflowContext.agent`, blocking: a durable tool-use loop."""
        from stepstone.core.agentloop import call_agent

        exe = self._exe
        loop = call_agent(
            exe,
            messages,
            system=system,
            tools=tools,
            model=model,
            tier=tier,
            max_turns=max_turns,
            stop_when=stop_when,
            output=output,
            max_tokens=max_tokens,
            temperature=temperature,
            name=name,
            retry=retry,
            inject=inject,
            parallel_tools=parallel_tools,
        )
        return exe.block(loop)

    def child(self, wf: Workflow[Any, R], /, *args: Any, **kwargs: Any) -> R:
        result: R = self._exe.block(self._exe.children.call(wf, args, kwargs, start_only=False))
        return result

    def start_child(self, wf: Workflow[Any, R], /, *args: Any, **kwargs: Any) -> ChildHandle[R]:
        run_id = self._exe.block(self._exe.children.call(wf, args, kwargs, start_only=True))
        return ChildHandle(self, wf, str(run_id))


_OURS = (StepCall, JournalCall)


async def gather_calls(
    exe: Execution, calls: tuple[Awaitable[Any], ...] | list[StepCall[Any]]
) -> list[Any]:
    """Wait for every call; then re-raise the strongest unwind, else the first failure."""
    for call in calls:
        if not isinstance(call, _OURS):
            for other in calls:
                if isinstance(other, JournalCall) or inspect.iscoroutine(other):
                    other.close()
            raise InvalidArgument(
                "ctx.parallel takes step, child and wait calls made on this context, got "
                f"{call!r}; for a multi-step branch use a child workflow (ctx.child), whose steps "
                "are numbered within its own run"
            )
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    unwinds = [o for o in outcomes if isinstance(o, Unwind)]
    for unwind in unwinds:
        if not isinstance(unwind, Suspend):
            exe.set_unwind(unwind)
    if exe.unwind is not None:
        raise exe.unwind
    if unwinds:
        raise unwinds[0]  # only suspensions: every wait is registered, the run suspends
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return list(outcomes)


_AUDIENCES = ("user", "agent", "system")
_RISK_LEVELS = ("low", "medium", "high")


def wait_info(
    step: str | None,
    prompt: str | None,
    summary: str | None,
    audience: str | None,
    risk_level: str | None,
) -> WaitInfo | None:
    """The :class:`WaitInfo` a ``wait_for_signal`` was given (checked), or None."""
    for label, text in (("step", step), ("prompt", prompt), ("summary", summary)):
        if text is not None and not isinstance(text, str):
            raise InvalidArgument(f"wait_for_signal {label}= must be a string, got {text!r}")
    if audience is not None and audience not in _AUDIENCES:
        raise InvalidArgument(
            f"wait_for_signal audience= must be one of {', '.join(_AUDIENCES)}, got {audience!r}"
        )
    if risk_level is not None and risk_level not in _RISK_LEVELS:
        raise InvalidArgument(
            f"wait_for_signal risk_level= must be one of {', '.join(_RISK_LEVELS)}, "
            f"got {risk_level!r}"
        )
    if step is prompt is summary is audience is risk_level is None:
        return None
    return WaitInfo(step, prompt, summary, audience, risk_level)  # type: ignore[arg-type]


async def _answered(waiting: Coroutine[Any, Any, Any], plan: AskPlan) -> Answer:
    return plan.answer(await waiting)


async def _value_of(asked: Coroutine[Any, Any, Answer]) -> Any:
    return (await asked).value
