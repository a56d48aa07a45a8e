"""A YAML workflow's steps and transitions as a Mermaid flowchart."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stepstone.spec.document import StepSpec

if TYPE_CHECKING:
    from stepstone.spec.workflow import SpecWorkflow

__all__ = ["to_mermaid"]

_SHAPES = {"await_event": ("{{", "}}"), "switch": ("{", "}"), "end": ("([", "])")}


def _node(spec: StepSpec) -> str:
    left, right = _SHAPES.get(spec.kind, ("[", "]"))
    return f'    {_name(spec.id)}{left}"{spec.id}: {spec.kind}"{right}'


def _name(step_id: str) -> str:
    return "s_" + "".join(ch if ch.isalnum() else "_" for ch in step_id)


def to_mermaid(wf: SpecWorkflow) -> str:
    """``flowchart TD`` with one node per step and one edge per way to go on."""
    lines = ["flowchart TD"]
    edges: list[str] = []

    def walk(steps: tuple[StepSpec, ...]) -> None:
        seq = wf.sequence(steps)
        for i, spec in enumerate(steps):
            lines.append(_node(spec))
            here = _name(spec.id)
            for case in spec.cases:
                label = case.when.text.replace('"', "'")
                edges.append(f'    {here} -->|"{label}"| {_name(case.next)}')
            for target, label in ((spec.default, "default"), (spec.on_timeout, "timeout")):
                if target:
                    edges.append(f"    {here} -->|{label}| {_name(target)}")
            for n, branch in enumerate(spec.branches):
                if branch.start_at:
                    edges.append(f"    {here} -.->|branch {n}| {_name(branch.start_at)}")
                elif branch.steps:
                    walk(branch.steps)
                    edges.append(f"    {here} -.->|branch {n}| {_name(branch.steps[0].id)}")
            if spec.body:
                walk(spec.body)
                edges.append(f"    {here} -.->|each item| {_name(spec.body[0].id)}")
            if spec.next:
                edges.append(f"    {here} --> {_name(spec.next)}")
            elif spec.kind != "end" and spec.id not in seq.owned:
                j = seq.after(i)
                if j is not None and not (spec.kind == "await_event" and spec.cases):
                    edges.append(f"    {here} --> {_name(steps[j].id)}")

    walk(wf.doc.steps)
    return "\n".join(lines + edges) + "\n"
