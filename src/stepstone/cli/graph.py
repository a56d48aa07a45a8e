"""``stepstone graph``: print a workflow's graph as a Mermaid flowchart."""

from __future__ import annotations

import argparse

from stepstone.cli.app import load_target
from stepstone.cli.output import Output
from stepstone.cli.session import Session
from stepstone.flow import FlowWorkflow
from stepstone.spec import SpecWorkflow

__all__ = ["cmd_graph"]


def _code_graph(name: str) -> str:
    """A ``@workflow``'s steps are decided by its code as it runs: one node says so."""
    return (
        "flowchart TD\n"
        f'    n0(["{name}"])\n'
        f'    n1["{name}: workflow code (its steps are known only as it runs)"]\n'
        "    n0 --> n1\n"
        '    n2(["end"])\n'
        "    n1 --> n2\n"
    )


def cmd_graph(ns: argparse.Namespace, session: Session) -> Output:
    wf = load_target(ns.app, ns.file, ns.workflow, "graph").workflow
    if isinstance(wf, FlowWorkflow):
        kind, text = "flow", wf.to_mermaid()
    elif isinstance(wf, SpecWorkflow):
        kind, text = "yaml", wf.to_mermaid()
    else:
        kind, text = "code", _code_graph(wf.name)
    data = {"workflow": wf.name, "kind": kind, "mermaid": text}
    return Output(data, lambda screen: screen.line(text.rstrip("\n")))
