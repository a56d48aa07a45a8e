"""Commands for YAML workflow files: flows (find them), init (write one), validate (check one),
guide (print the guide shipped in the package)."""

from __future__ import annotations

import argparse
import os
from importlib import resources
from pathlib import Path

from stepstone.cli import specs
from stepstone.cli.output import Output
from stepstone.cli.render import Screen
from stepstone.cli.session import Session
from stepstone.errors import InvalidArgument, WorkflowNotFound

__all__ = ["TEMPLATE", "cmd_flows", "cmd_guide", "cmd_init", "cmd_validate"]

TEMPLATE = """\
schema_version: stepstone/v1
workflow:
  id: hello
  name: Hello
  version: 1.0.0
  description: Greets someone, after asking whether to go ahead.
  inputs:
    type: object
    required: [name]
    properties:
      name: { type: string }
  steps:
    - id: greet
      kind: cli
      command: echo "Hello, ${inputs.name}!"
    - id: approval
      kind: await_event
      audience: user
      event_name: go_ahead
      prompt: Say whether to finish the greeting.
      input_schema:
        type: object
        required: [ok]
        properties:
          ok: { type: boolean }
    - id: done
      kind: end
      result:
        greeted: ${inputs.name}
"""
"""What ``stepstone init`` writes: a small valid stepstone/v1 workflow with a cli step, a wait
and an end (``stepstone run -f workflow.yaml --input '{"name": "Ada"}'``)."""


def cmd_flows(ns: argparse.Namespace, session: Session) -> Output:
    flows = specs.find_flows(Path.cwd(), session.env)
    if ns.detail is None:
        ids = [f.id for f in flows]

        def listing(screen: Screen) -> None:
            for flow_id in ids:
                screen.line(flow_id)

        return Output(ids, listing)
    match = [f for f in flows if ns.detail in (f.id, f.name)]
    if not match:
        raise WorkflowNotFound(ns.detail, tuple(f.id for f in flows))
    flow = match[0]
    data = {
        "id": flow.id,
        "name": flow.name,
        "version": flow.version,
        "description": flow.description,
        "path": str(flow.path),
    }

    def human(screen: Screen) -> None:
        for key, value in data.items():
            screen.line(f"{key}: {value if value is not None else '-'}")

    return Output(data, human)


def cmd_init(ns: argparse.Namespace, session: Session) -> Output:
    path = Path(ns.file)
    if path.exists() and not ns.force:
        raise InvalidArgument(f"{path} already exists (use --force to overwrite it)")
    if path.parent and not path.parent.is_dir():
        raise InvalidArgument(f"{path}: no such folder: {path.parent}")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(TEMPLATE, encoding="utf-8")
    os.replace(tmp, path)  # whole or not at all
    data = {"path": str(path), "workflow_id": "hello"}
    return Output(
        data,
        lambda screen: screen.line(
            f'wrote {path}: run it with `stepstone run -f {path} --input \'{{"name": "Ada"}}\'`'
        ),
    )


def guide_text() -> str:
    """The guide shipped in the package (``stepstone/cli/guide.md``)."""
    return resources.files("stepstone.cli").joinpath("guide.md").read_text(encoding="utf-8")


def cmd_guide(ns: argparse.Namespace, session: Session) -> Output:
    text = guide_text()
    return Output({"guide": text}, lambda screen: screen.line(text.rstrip("\n")))


def cmd_validate(ns: argparse.Namespace, session: Session) -> Output:
    from stepstone.cli import cpf

    wf = specs.load_workflow(ns.file)
    data = {"ok": True, "path": ns.file, "workflow_id": wf.name, "version": wf.version}
    envelope = {
        "schema_version": cpf.SCHEMA_VERSION,
        "ok": True,
        "command": "validate",
        "status": "completed",
        "exit_code": 0,
        "workflow_id": wf.name,
        "result": {"valid": True, "path": ns.file},
    }
    if wf.version:
        envelope["workflow_version"] = wf.version
    return Output(
        data,
        lambda screen: screen.line(f"{ns.file}: ok (workflow {wf.name!r})"),
        cpf=envelope,
    )
