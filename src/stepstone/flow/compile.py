"""Compile a Flow's graph into a workflow: each task one ``ctx.step`` named by its task id.

The workflow function walks the graph with the engine's own calls: tasks are steps, a fork's
one-task branches are steps in one ``ctx.parallel`` and its longer branches child runs of the same
workflow (so their steps are numbered within their own run and replays stay deterministic),
delays are ``ctx.sleep``, signal waits ``ctx.wait_for_signal``. Nothing runs beside the engine,
so retry, fork, check, pause and every store work on a Flow as on any workflow.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from stepstone.core.definitions import RunDefaults, Workflow
from stepstone.errors import FlowError, InvalidArgument, WaitTimeout
from stepstone.flow.graph import (
    DelayNode,
    ForkNode,
    Graph,
    LoopNode,
    LoopResult,
    Node,
    OnMax,
    RouteNode,
    SignalNode,
    TaskNode,
)
from stepstone.flow.tasks import TaskExecutionContext, enter_task, leave_task

if TYPE_CHECKING:
    from stepstone.core.context import WorkflowContext

__all__ = ["FlowWorkflow", "SignalRequest", "compile_graph", "signal_given"]

_WAIT = "$flow_wait"  # the recorded output of a task that asked for a signal (SignalRequest)


class SignalRequest(BaseException):
    """Raised inside a task to ask its flow to wait for a signal and run the task again with
    the payload (``ApprovalGate.wait``). A ``BaseException``, so ``except Exception`` in the
    task does not swallow it."""

    def __init__(self, signal_name: str, timeout_s: float | None) -> None:
        super().__init__(signal_name)
        self.signal_name, self.timeout_s = signal_name, timeout_s


_given: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "stepstone_flow_given", default=None
)
_TIMED_OUT = {"$flow_timed_out": True}


def signal_given(signal_name: str) -> tuple[bool, Any]:
    """Inside a task run again after a :class:`SignalRequest`: ``(True, payload)``; raises
    :class:`WaitTimeout` if the wait timed out; ``(False, None)`` if nothing was waited for."""
    given = _given.get()
    if given is None or signal_name not in given:
        return False, None
    payload = given[signal_name]
    if payload == _TIMED_OUT:
        raise WaitTimeout(f"signal {signal_name!r}", None)
    return True, payload


class FlowWorkflow(Workflow[Any, Any]):
    """The workflow ``Flow.build()`` returns: a :class:`stepstone.Workflow` (use it with the
    client, a worker, the CLI, fork, retry and check) that also knows its graph."""

    __slots__ = ("graph",)

    def __init__(self, fn: Callable[..., Any], graph: Graph, defaults: RunDefaults) -> None:
        super().__init__(
            fn,
            name=graph.name,
            version=graph.version(),
            defaults=defaults,
            max_recoveries=None,
            signals={},
        )
        self.graph = graph

    @property
    def workflow_id(self) -> str:
        """The flow's name (sayiir's spelling)."""
        return self.name

    @property
    def metadata(self) -> Mapping[str, Any] | None:
        """The ``metadata`` given to ``Flow(name, metadata=...)``."""
        return self.graph.metadata

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart."""
        from stepstone.flow.mermaid import to_mermaid

        return to_mermaid(self.graph)

    def __repr__(self) -> str:
        return f"<flow {self.name}>"


def compile_graph(graph: Graph, defaults: RunDefaults | None = None) -> FlowWorkflow:
    """The workflow that runs ``graph`` on the engine."""
    graph.check()
    forks = tuple(graph.forks())

    async def run_flow(
        ctx: WorkflowContext, input: Any = None, *, flow_branch: str | None = None
    ) -> Any:
        instance = ctx.parent_run_id if flow_branch and ctx.parent_run_id else ctx.run_id
        walk = _Walk(ctx, wf, forks, instance)
        if flow_branch is not None:
            return await walk.chain(_branch_at(forks, flow_branch).tasks, input)
        return await walk.nodes(graph.nodes, input)

    run_flow.__qualname__ = run_flow.__name__ = f"flow_{graph.name}"
    run_flow.__doc__ = f"The flow {graph.name!r}."
    wf = FlowWorkflow(run_flow, graph, defaults or RunDefaults())
    return wf


def _branch_at(forks: tuple[ForkNode, ...], ref: str) -> Any:
    try:
        fork_at, _, branch_at = ref.partition(".")
        return forks[int(fork_at)].branches[int(branch_at)]
    except (ValueError, IndexError):
        raise InvalidArgument(f"this flow has no fork branch {ref!r}") from None


class _Walk:
    """One execution of a flow's graph inside one run."""

    __slots__ = ("ctx", "forks", "instance", "wf")

    def __init__(
        self, ctx: WorkflowContext, wf: FlowWorkflow, forks: tuple[ForkNode, ...], instance: str
    ) -> None:
        self.ctx, self.wf, self.forks, self.instance = ctx, wf, forks, instance

    async def nodes(self, nodes: tuple[Node, ...], value: Any) -> Any:
        for node in nodes:
            value = await self.node(node, value)
        return value

    async def chain(self, tasks: tuple[TaskNode, ...], value: Any) -> Any:
        for node in tasks:
            value = await self.task(node, value)
        return value

    async def node(self, node: Node, value: Any) -> Any:
        if isinstance(node, TaskNode):
            return await self.task(node, value)
        if isinstance(node, ForkNode):
            return await self.fork(node, value)
        if isinstance(node, RouteNode):
            return await self.route(node, value)
        if isinstance(node, LoopNode):
            return await self.loop(node, value)
        if isinstance(node, DelayNode):
            await self.ctx.sleep(node.seconds)
            return value
        if isinstance(node, SignalNode):
            return await self.signal(node, value)
        return await self.nodes(node.graph.nodes, value)

    def step(
        self, node: TaskNode, value: Any, given: Mapping[str, Any] | None = None
    ) -> Awaitable[Any]:
        """The task as a checkpointed step named by its task id (not awaited yet: its journal
        position is taken now, so concurrent steps number deterministically)."""
        graph = self.wf.graph
        context = TaskExecutionContext(
            graph.name, self.instance, node.task_id, node.meta, graph.metadata
        )
        call = _call_async if node.is_async else _call_sync
        body = functools.partial(call, node, context, given)
        meta = node.meta
        return self.ctx.step(
            node.task_id, body, value, retry=meta.retries, timeout_s=meta.timeout_secs
        )

    async def task(self, node: TaskNode, value: Any) -> Any:
        out = await self.step(node, value)
        given: dict[str, Any] = {}
        while isinstance(out, dict) and _WAIT in out:  # the task asked for a signal
            request = out[_WAIT]
            try:
                payload = await self.ctx.wait_for_signal(
                    request["signal"], timeout_s=request.get("timeout_s")
                )
            except WaitTimeout:
                payload = _TIMED_OUT
            given[request["signal"]] = payload
            out = await self.step(node, value, dict(given))
        return out

    async def fork(self, node: ForkNode, value: Any) -> Any:
        at = self.forks.index(node)
        calls: list[Awaitable[Any]] = []
        for i, branch in enumerate(node.branches):
            if len(branch.tasks) == 1:
                calls.append(self.step(branch.tasks[0], value))
            else:
                calls.append(self.ctx.child(self.wf, value, flow_branch=f"{at}.{i}"))
        outputs = await self.ctx.parallel(*calls)
        joined = {b.name: out for b, out in zip(node.branches, outputs, strict=True)}
        return await self.task(node.join, joined)

    async def route(self, node: RouteNode, value: Any) -> Any:
        key = await self.task(node.key, value)
        where = f"route {node.key.task_id!r}"
        if not isinstance(key, str):
            raise FlowError(where, f"the key function returned {key!r}, not a string")
        chain = node.branches.get(key, node.default)
        if chain is None:
            known = ", ".join(repr(k) for k in node.keys)
            raise FlowError(where, f"no branch for key {key!r} (keys: {known}) and no default")
        return {"branch": key, "result": await self.chain(chain, value)}

    async def loop(self, node: LoopNode, value: Any) -> Any:
        where = f"loop {node.body.task_id!r}"
        for _ in range(node.max_iterations):
            out = await self.task(node.body, value)
            if not (isinstance(out, dict) and out.get("_loop") in ("again", "done")):
                raise FlowError(
                    where, f"the body returned {out!r}; return LoopResult.again(v) or .done(v)"
                )
            value = out.get("value")
            if out["_loop"] == "done":
                return value
        if node.on_max is OnMax.EXIT_WITH_LAST:
            return value
        raise FlowError(where, f"exceeded max iterations ({node.max_iterations})")

    async def signal(self, node: SignalNode, value: Any) -> Any:
        try:
            return await self.ctx.wait_for_signal(node.signal_name, timeout_s=node.timeout_s)
        except WaitTimeout:
            if node.on_timeout is None:
                raise
        return await self.task(node.on_timeout, value)


# --- the body of each step ---------------------------------------------------------------------


def _prepare(node: TaskNode, value: Any) -> Any:
    if node.input_model is not None and not isinstance(value, node.input_model):
        return node.input_model.model_validate(value)
    return value


def _finish(out: Any) -> Any:
    if isinstance(out, LoopResult):
        return {"_loop": out.tag, "value": _finish(out.value)}
    dump = getattr(out, "model_dump", None)
    if callable(dump) and not isinstance(out, type):
        return dump(mode="json")
    return out


def _call_sync(
    node: TaskNode, context: TaskExecutionContext, given: Mapping[str, Any] | None, value: Any
) -> Any:
    token = enter_task(context)
    given_token = _given.set(given)
    try:
        return _finish(node.fn(_prepare(node, value)))
    except SignalRequest as request:
        return {_WAIT: {"signal": request.signal_name, "timeout_s": request.timeout_s}}
    finally:
        _given.reset(given_token)
        leave_task(token)


async def _call_async(
    node: TaskNode, context: TaskExecutionContext, given: Mapping[str, Any] | None, value: Any
) -> Any:
    token = enter_task(context)
    given_token = _given.set(given)
    try:
        return _finish(await node.fn(_prepare(node, value)))
    except SignalRequest as request:
        return {_WAIT: {"signal": request.signal_name, "timeout_s": request.timeout_s}}
    finally:
        _given.reset(given_token)
        leave_task(token)
