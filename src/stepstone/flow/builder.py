"""The Flow builder: ``Flow(name).then(...).fork()...join(...).route(...).loop(...).build()``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

from stepstone.core.definitions import RunDefaults
from stepstone.errors import InvalidArgument
from stepstone.flow.compile import FlowWorkflow, compile_graph
from stepstone.flow.graph import (
    Branch,
    DelayNode,
    ForkNode,
    Graph,
    LoopNode,
    Node,
    OnMax,
    RouteNode,
    SignalNode,
    SubflowNode,
    TaskNode,
    make_task,
)
from stepstone.flow.tasks import parse_duration

__all__ = ["BranchBuilder", "Flow", "ForkBuilder"]

Task = Callable[..., Any]


def _chain(fns: Iterable[Task], name: str | None, what: str) -> tuple[TaskNode, ...]:
    """Tasks in a chain; ``name`` names the first (sayiir's rule)."""
    chain = tuple(make_task(fn, name if i == 0 else None) for i, fn in enumerate(fns))
    if not chain:
        raise InvalidArgument(f"{what} needs at least one task")
    return chain


class Flow:
    """Build a workflow from tasks: each task gets the previous one's output.

    >>> wf = Flow("welcome").then(fetch_user).then(send_email).build()
    >>> run_workflow(wf, 42)

    ``build()`` returns a :class:`stepstone.Workflow`: start it with a client, serve it with
    ``stepstone worker --app``, check it with ``stepstone check``. Each task is a checkpointed
    step named by its task id. ``metadata`` is handed to tasks as
    ``get_task_context().workflow_metadata``; ``queue``, ``deadline_s`` and ``priority`` are run
    defaults as for ``@workflow``.
    """

    def __init__(
        self,
        name: str = "workflow",
        *,
        metadata: Mapping[str, Any] | None = None,
        queue: str | None = None,
        deadline_s: float | None = None,
        priority: int = 0,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"a Flow needs a non-empty name, got {name!r}")
        if deadline_s is not None and deadline_s <= 0:
            raise InvalidArgument(f"Flow deadline_s must be > 0, got {deadline_s}")
        self.name = name
        self.metadata = dict(metadata) if metadata is not None else None
        self._defaults = RunDefaults(queue=queue, deadline_s=deadline_s, priority=priority)
        self._nodes: list[Node] = []

    def _add(self, node: Node) -> Flow:
        self._nodes.append(node)
        return self

    def then(self, task_fn: Task, *, name: str | None = None) -> Flow:
        """Append a task: a ``@task``, a plain function or a lambda; ``name`` sets its id."""
        return self._add(make_task(task_fn, name))

    def fork(self) -> ForkBuilder:
        """Start branches that run concurrently on the current value; end with ``.join(fn)``."""
        return ForkBuilder(self)

    def route(self, key_fn: Task, *, keys: Iterable[str], name: str | None = None) -> BranchBuilder:
        """Pick one branch by the string ``key_fn`` returns; every key in ``keys`` needs a
        ``.branch(key, ...)`` unless there is a ``.default_branch(...)``; end with ``.done()``.
        The output is ``{"branch": key, "result": the branch's output}``."""
        return BranchBuilder(self, make_task(key_fn, name), keys)

    def loop(
        self,
        task_fn: Task,
        *,
        max_iterations: int = 10,
        on_max: str | OnMax = OnMax.FAIL,
        name: str | None = None,
    ) -> Flow:
        """Run ``task_fn`` until it returns ``LoopResult.done(v)``; ``LoopResult.again(v)`` goes
        round with ``v``. After ``max_iterations`` the run fails (``on_max="fail"``) or goes on
        with the last value (``"exit_with_last"``); every iteration is a checkpointed step."""
        if not isinstance(max_iterations, int) or max_iterations < 1:
            raise InvalidArgument(f"loop max_iterations must be >= 1, got {max_iterations!r}")
        try:
            policy = OnMax(on_max)
        except ValueError:
            raise InvalidArgument(
                f"loop on_max must be 'fail' or 'exit_with_last', got {on_max!r}"
            ) from None
        return self._add(LoopNode(make_task(task_fn, name), max_iterations, policy))

    def delay(self, name: str, duration: str | float | timedelta) -> Flow:
        """A durable timer (``"30s"``, ``"5m"``, ``"1h"``, seconds or a timedelta): the run is
        parked and no worker is held; the value passes through."""
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"delay needs a non-empty name, got {name!r}")
        return self._add(DelayNode(name, parse_duration(duration, f"delay {name!r}")))

    def wait_for_signal(
        self,
        signal_name: str,
        *,
        name: str | None = None,
        timeout: str | float | timedelta | None = None,
        on_timeout: Task | None = None,
    ) -> Flow:
        """Wait for the signal ``signal_name`` (``send_signal``); its payload is the next value.

        After ``timeout`` the task ``on_timeout`` is called with the value that reached the wait
        and its output goes on; without ``on_timeout`` the run fails with ``WaitTimeout``.
        """
        if not isinstance(signal_name, str) or not signal_name:
            raise InvalidArgument(f"wait_for_signal needs a signal name, got {signal_name!r}")
        timeout_s = parse_duration(timeout, "signal timeout") if timeout is not None else None
        fallback = make_task(on_timeout) if on_timeout is not None else None
        return self._add(SignalNode(name or signal_name, signal_name, timeout_s, fallback))

    def then_flow(self, other: Flow | FlowWorkflow) -> Flow:
        """Run another flow's graph inline: its first task gets the current value."""
        if isinstance(other, Flow):
            graph = other.graph()
        elif isinstance(other, FlowWorkflow):
            graph = other.graph
        else:
            raise InvalidArgument(f"then_flow needs a Flow or a built flow, got {other!r}")
        return self._add(SubflowNode(graph.name, graph))

    def graph(self) -> Graph:
        """The graph built so far."""
        if not self._nodes:
            raise InvalidArgument(f"flow {self.name!r} has no tasks")
        return Graph(self.name, tuple(self._nodes), self.metadata)

    def build(self) -> FlowWorkflow:
        """The workflow: usable everywhere a ``@workflow`` is."""
        return compile_graph(self.graph(), self._defaults)

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart."""
        from stepstone.flow.mermaid import to_mermaid

        return to_mermaid(self.graph())


class ForkBuilder:
    """The branches of a fork: ``.branch(*tasks, name=)`` each, then ``.join(fn)``."""

    def __init__(self, flow: Flow) -> None:
        self._flow = flow
        self._branches: list[Branch] = []

    def branch(self, *task_fns: Task, name: str | None = None) -> ForkBuilder:
        """A branch of one or more chained tasks. Its output is keyed in the join's input by its
        first task's id (``name`` sets that id)."""
        chain = _chain(task_fns, name, "fork branch")
        key = chain[0].task_id
        if any(b.name == key for b in self._branches):
            raise InvalidArgument(
                f"flow {self._flow.name!r}: two fork branches are named {key!r}; pass name="
            )
        self._branches.append(Branch(key, chain))
        return self

    def join(self, task_fn: Task, *, name: str | None = None) -> Flow:
        """Merge the branches: ``task_fn`` gets ``{branch name: output}``."""
        if not self._branches:
            raise InvalidArgument(f"flow {self._flow.name!r}: a fork needs at least one branch")
        return self._flow._add(ForkNode(tuple(self._branches), make_task(task_fn, name)))


class BranchBuilder:
    """The branches of a route: ``.branch(key, *tasks)``, ``.default_branch(*tasks)``,
    ``.done()``."""

    def __init__(self, flow: Flow, key: TaskNode, keys: Iterable[str]) -> None:
        self._flow = flow
        self._key = key
        self._keys = tuple(keys)
        if isinstance(keys, str) or not all(isinstance(k, str) and k for k in self._keys):
            raise InvalidArgument(f"route keys must be a list of non-empty strings, got {keys!r}")
        self._branches: dict[str, tuple[TaskNode, ...]] = {}
        self._default: tuple[TaskNode, ...] | None = None

    def branch(self, key: str, *task_fns: Task, name: str | None = None) -> BranchBuilder:
        """The tasks run when the key function returns ``key`` (one of the declared keys)."""
        if key not in self._keys:
            raise InvalidArgument(
                f"route branch {key!r} is not one of the declared keys {list(self._keys)}"
            )
        if key in self._branches:
            raise InvalidArgument(f"route branch {key!r} is given twice")
        self._branches[key] = _chain(task_fns, name, f"route branch {key!r}")
        return self

    def default_branch(self, *task_fns: Task, name: str | None = None) -> BranchBuilder:
        """The tasks run for any other key."""
        self._default = _chain(task_fns, name, "default branch")
        return self

    def done(self) -> Flow:
        """Finish the route; every declared key needs a branch unless there is a default."""
        missing = [k for k in self._keys if k not in self._branches]
        if missing and self._default is None:
            raise InvalidArgument(
                f"route {self._key.task_id!r}: no branch for keys {missing} and no default_branch"
            )
        node = RouteNode(self._key, self._keys, dict(self._branches), self._default)
        return self._flow._add(node)
