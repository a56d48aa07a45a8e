"""The graph a Flow builds: its nodes, their task ids, and the code version derived from them."""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable, Iterator, Mapping
from enum import StrEnum
from typing import Any

from stepstone.core.digest import sha256
from stepstone.core.frozen import frozen
from stepstone.errors import InvalidArgument
from stepstone.flow.tasks import TaskMetadata, code_digest, declared, task_id_for

__all__ = [
    "Branch",
    "DelayNode",
    "ForkNode",
    "Graph",
    "LoopNode",
    "LoopResult",
    "Node",
    "OnMax",
    "RouteNode",
    "SignalNode",
    "SubflowNode",
    "TaskNode",
    "make_task",
]


class OnMax(StrEnum):
    """What a loop does when it reaches ``max_iterations``: fail the run, or go on with the
    last value."""

    FAIL = "fail"
    EXIT_WITH_LAST = "exit_with_last"


class LoopResult:
    """What a loop body returns: ``LoopResult.again(v)`` to go round with ``v``,
    ``LoopResult.done(v)`` to leave the loop with ``v``. Recorded as ``{"_loop": "again"|"done",
    "value": v}`` (``to_dict()``), which a body may also return itself."""

    __slots__ = ("tag", "value")

    def __init__(self, tag: str, value: Any) -> None:
        if tag not in ("again", "done"):
            raise InvalidArgument(f"LoopResult tag must be 'again' or 'done', got {tag!r}")
        self.tag, self.value = tag, value

    @classmethod
    def again(cls, value: Any) -> LoopResult:
        """Go round the loop again with ``value``."""
        return cls("again", value)

    @classmethod
    def done(cls, value: Any) -> LoopResult:
        """Leave the loop with ``value``."""
        return cls("done", value)

    @property
    def is_done(self) -> bool:
        """True for ``done``."""
        return self.tag == "done"

    @property
    def is_again(self) -> bool:
        """True for ``again``."""
        return self.tag == "again"

    def to_dict(self) -> dict[str, Any]:
        """The recorded form, ``{"_loop": tag, "value": value}``."""
        return {"_loop": self.tag, "value": self.value}

    def __repr__(self) -> str:
        return f"LoopResult.{self.tag}({self.value!r})"


@frozen(eq=False)
class TaskNode:
    """One task: a function run as a checkpointed step named ``task_id``."""

    task_id: str
    fn: Callable[..., Any]
    meta: TaskMetadata
    digest: str
    is_async: bool
    input_model: Any = None  # a Pydantic model class the input is validated into


def _input_model(fn: Callable[..., Any]) -> Any:
    """The Pydantic model the first parameter is annotated with, if any."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if not params:
        return None
    try:
        hint = typing.get_type_hints(fn).get(params[0].name)
    except Exception:  # unresolvable forward references: no validation
        return None
    if isinstance(hint, type) and callable(getattr(hint, "model_validate", None)):
        return hint
    return None


def make_task(fn: Callable[..., Any], name: str | None = None) -> TaskNode:
    """A task node for ``fn`` (a ``@task``, a plain function, a lambda or any callable)."""
    if not callable(fn):
        raise InvalidArgument(f"a Flow task must be callable, got {fn!r}")
    _, meta = declared(fn)
    return TaskNode(
        task_id=task_id_for(fn, name),
        fn=fn,
        meta=meta,
        digest=code_digest(fn),
        is_async=inspect.iscoroutinefunction(fn),
        input_model=_input_model(fn),
    )


@frozen(eq=False)
class Branch:
    """One branch of a fork: tasks in a chain; ``name`` keys its output in the join's input."""

    name: str
    tasks: tuple[TaskNode, ...]


@frozen(eq=False)
class ForkNode:
    """Branches run concurrently on the same input; the join gets ``{branch name: output}``."""

    branches: tuple[Branch, ...]
    join: TaskNode


@frozen(eq=False)
class RouteNode:
    """``key`` picks one branch by the string it returns; output ``{"branch", "result"}``."""

    key: TaskNode
    keys: tuple[str, ...]
    branches: Mapping[str, tuple[TaskNode, ...]]
    default: tuple[TaskNode, ...] | None


@frozen(eq=False)
class LoopNode:
    """``body`` runs until it returns ``LoopResult.done(v)`` or ``max_iterations`` is reached."""

    body: TaskNode
    max_iterations: int
    on_max: OnMax


@frozen(eq=False)
class DelayNode:
    """A durable timer; the value passes through unchanged."""

    name: str
    seconds: float


@frozen(eq=False)
class SignalNode:
    """Waits for ``signal_name``; its payload is the next value. ``on_timeout`` (a task given
    the value that reached the wait) replaces it when ``timeout_s`` runs out; without one the
    run fails with ``WaitTimeout``."""

    name: str
    signal_name: str
    timeout_s: float | None
    on_timeout: TaskNode | None


@frozen(eq=False)
class SubflowNode:
    """Another flow's graph, run inline (``.then_flow``)."""

    name: str
    graph: Graph


Node = TaskNode | ForkNode | RouteNode | LoopNode | DelayNode | SignalNode | SubflowNode


@frozen(eq=False)
class Graph:
    """A built flow: its name, metadata and nodes in order."""

    name: str
    nodes: tuple[Node, ...]
    metadata: Mapping[str, Any] | None = None

    def tasks(self) -> Iterator[TaskNode]:
        """Every task node, in graph order."""
        for node in self.nodes:
            yield from _tasks_of(node)

    def forks(self) -> Iterator[ForkNode]:
        """Every fork, in graph order (their position names a branch's child run)."""
        for node in self.nodes:
            if isinstance(node, ForkNode):
                yield node
            elif isinstance(node, SubflowNode):
                yield from node.graph.forks()

    def check(self) -> None:
        """Refuse one id for two different functions: a run's record could not tell them
        apart."""
        seen: dict[str, TaskNode] = {}
        for node in self.tasks():
            other = seen.setdefault(node.task_id, node)
            if other is not node and other.fn is not node.fn and other.digest != node.digest:
                raise InvalidArgument(
                    f"flow {self.name!r}: the task id {node.task_id!r} names two different "
                    f"functions ({_where(other.fn)} and {_where(node.fn)}); give one a name="
                )

    def version(self) -> str:
        """The code version of the built workflow: a digest of the shape (every node and task
        id in order, the branches) and of every task's code, so inserting, removing or moving
        a task changes it."""
        text = json.dumps(self.shape(), separators=(",", ":"), sort_keys=True)
        return sha256(text.encode()).hexdigest()[:12]

    def shape(self) -> list[Any]:
        """The graph as plain data (what :meth:`version` digests)."""
        return [_shape(node) for node in self.nodes]


def _tasks_of(node: Node) -> Iterator[TaskNode]:
    if isinstance(node, TaskNode):
        yield node
    elif isinstance(node, ForkNode):
        for branch in node.branches:
            yield from branch.tasks
        yield node.join
    elif isinstance(node, RouteNode):
        yield node.key
        for chain in node.branches.values():
            yield from chain
        yield from node.default or ()
    elif isinstance(node, LoopNode):
        yield node.body
    elif isinstance(node, SignalNode) and node.on_timeout is not None:
        yield node.on_timeout
    elif isinstance(node, SubflowNode):
        yield from node.graph.tasks()


def _task_shape(node: TaskNode) -> list[Any]:
    return [node.task_id, node.digest]


def _chain_shape(chain: tuple[TaskNode, ...] | None) -> list[Any] | None:
    return None if chain is None else [_task_shape(t) for t in chain]


def _shape(node: Node) -> list[Any]:
    if isinstance(node, TaskNode):
        return ["task", *_task_shape(node)]
    if isinstance(node, ForkNode):
        branches = [[b.name, _chain_shape(b.tasks)] for b in node.branches]
        return ["fork", branches, _task_shape(node.join)]
    if isinstance(node, RouteNode):
        chains = {k: _chain_shape(v) for k, v in node.branches.items()}
        return ["route", _task_shape(node.key), list(node.keys), chains, _chain_shape(node.default)]
    if isinstance(node, LoopNode):
        return ["loop", _task_shape(node.body), node.max_iterations, node.on_max.value]
    if isinstance(node, DelayNode):
        return ["delay", node.name, node.seconds]
    if isinstance(node, SignalNode):
        fallback = _task_shape(node.on_timeout) if node.on_timeout is not None else None
        return ["signal", node.name, node.signal_name, node.timeout_s, fallback]
    return ["flow", node.name, node.graph.shape()]


def _where(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}.{getattr(fn, '__qualname__', repr(fn))}"
