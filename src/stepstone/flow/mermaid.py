"""Draw a Flow's graph as a Mermaid flowchart (``flow.to_mermaid()``, ``stepstone graph``)."""

from __future__ import annotations

from stepstone.flow.graph import (
    DelayNode,
    ForkNode,
    Graph,
    LoopNode,
    Node,
    RouteNode,
    SignalNode,
    SubflowNode,
    TaskNode,
)

__all__ = ["to_mermaid"]


def _label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


class _Drawing:
    """Mermaid lines, with fresh node ids."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.count = 0

    def box(self, text: str, shape: str = "[{}]") -> str:
        ident = f"n{self.count}"
        self.count += 1
        self.lines.append(f"    {ident}{shape.format(_label(text))}")
        return ident

    def edge(self, sources: list[str], target: str, label: str | None = None) -> None:
        arrow = f"-->|{_label(label)}|" if label else "-->"
        self.lines.extend(f"    {s} {arrow} {target}" for s in sources)

    def chain(self, tasks: tuple[TaskNode, ...], sources: list[str], label: str | None) -> str:
        for i, node in enumerate(tasks):
            ident = self.box(node.task_id)
            self.edge(sources, ident, label if i == 0 else None)
            sources = [ident]
        return sources[0]

    def nodes(self, nodes: tuple[Node, ...], sources: list[str]) -> list[str]:
        for node in nodes:
            sources = self.node(node, sources)
        return sources

    def node(self, node: Node, sources: list[str]) -> list[str]:
        if isinstance(node, TaskNode):
            ident = self.box(node.task_id)
        elif isinstance(node, DelayNode):
            ident = self.box(f"delay {node.name} ({node.seconds:g}s)", "[/{}/]")
        elif isinstance(node, SignalNode):
            ident = self.box(f"signal {node.signal_name}", "[/{}\\]")
            if node.on_timeout is not None:
                fallback = self.chain((node.on_timeout,), [ident], "timeout")
                self.edge(sources, ident)
                return [ident, fallback]
        elif isinstance(node, LoopNode):
            ident = self.box(f"{node.body.task_id} (loop, max {node.max_iterations})")
            self.edge([ident], ident, "again")
        elif isinstance(node, ForkNode):
            return self.fork(node, sources)
        elif isinstance(node, RouteNode):
            return self.route(node, sources)
        else:
            return self.subflow(node, sources)
        self.edge(sources, ident)
        return [ident]

    def fork(self, node: ForkNode, sources: list[str]) -> list[str]:
        split = self.box("fork", "{{{}}}")
        self.edge(sources, split)
        ends = [self.chain(b.tasks, [split], None) for b in node.branches]
        join = self.box(node.join.task_id)
        self.edge(ends, join)
        return [join]

    def route(self, node: RouteNode, sources: list[str]) -> list[str]:
        decide = self.box(node.key.task_id, "{{{}}}")
        self.edge(sources, decide)
        ends = [self.chain(chain, [decide], key) for key, chain in node.branches.items()]
        if node.default is not None:
            ends.append(self.chain(node.default, [decide], "default"))
        return ends

    def subflow(self, node: SubflowNode, sources: list[str]) -> list[str]:
        self.lines.append(f"    subgraph {_label(node.name)}")
        ends = self.nodes(node.graph.nodes, sources)
        self.lines.append("    end")
        return ends


def to_mermaid(graph: Graph) -> str:
    """``graph`` as a Mermaid ``flowchart TD``, from a start node to an end node."""
    drawing = _Drawing()
    drawing.lines.append("flowchart TD")
    start = drawing.box(graph.name, "([{}])")
    ends = drawing.nodes(graph.nodes, [start])
    finish = drawing.box("end", "([{}])")
    drawing.edge(ends, finish)
    return "\n".join(drawing.lines) + "\n"
