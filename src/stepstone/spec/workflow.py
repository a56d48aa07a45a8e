"""``SpecWorkflow``: a checked YAML document as an ordinary :class:`stepstone.Workflow`.

Its function walks the document with the engine's own calls (see :mod:`stepstone.spec.walk`),
so a client, ``stepstone worker``, ``check``, ``fork`` and ``retry`` treat it like any
``@workflow``. The version is a digest of the document's canonical JSON: an edited file is a new
version (``stepstone check`` reports which runs it can continue).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepstone.core.definitions import Registry, RunDefaults, Workflow
from stepstone.core.digest import sha256
from stepstone.errors import SpecError
from stepstone.spec.document import Document, StepSpec
from stepstone.spec.graph import Sequence_

if TYPE_CHECKING:
    from stepstone.core.context import WorkflowContext

__all__ = ["SOURCE_KEY", "SpecWorkflow", "compile_document", "source_of"]

SOURCE_KEY = "stepstone.yaml"
"""The key of a YAML run's ``ctx.state`` that names its document's file (absolute path)."""


def source_of(state_json: str | None) -> str | None:
    """The YAML file a run's recorded state names (None: not a YAML run, or not started)."""
    if not state_json:
        return None
    value = json.loads(state_json).get(SOURCE_KEY)
    return value if isinstance(value, str) else None


class SpecWorkflow(Workflow[Any, Any]):
    """A YAML workflow (``checkpointflow/v1`` or ``stepstone/v1``) compiled onto the engine.

    >>> wf = load_workflow("flows/publish.yaml")
    >>> Client("runs.db", workflows=wf.registry()).start(wf, {"page_id": "123"})

    ``document`` is the parsed document (plain JSON), ``path`` the file, ``input_schema`` the
    JSON Schema of ``workflow.inputs`` (None when the document declares none). The run input is
    one mapping, checked against ``input_schema`` before the run is created.
    """

    __slots__ = ("doc", "sequences", "steps_by_id", "subworkflows")

    def __init__(self, fn: Any, doc: Document, subworkflows: tuple[SpecWorkflow, ...]) -> None:
        canonical = json.dumps(doc.data, sort_keys=True, separators=(",", ":"))
        super().__init__(
            fn,
            name=doc.id,
            version=sha256(canonical.encode()).hexdigest()[:12],
            defaults=RunDefaults(),
            max_recoveries=None,
            signals={},
        )
        self.doc = doc
        self.subworkflows = subworkflows
        self.steps_by_id: dict[str, StepSpec] = {s.id: s for s in doc.all_steps()}
        self.sequences: dict[int, Sequence_] = {}

    @property
    def document(self) -> Mapping[str, Any]:
        """The document as parsed (plain JSON)."""
        return self.doc.data

    @property
    def path(self) -> Path:
        """The file the document was loaded from."""
        return self.doc.file

    @property
    def input_schema(self) -> Mapping[str, Any] | None:
        """The JSON Schema of the run input (``workflow.inputs``), if declared."""
        return self.doc.inputs_schema

    def sequence(self, steps: tuple[StepSpec, ...]) -> Sequence_:
        """The ordering rules of one list of steps (computed once)."""
        found = self.sequences.get(id(steps))
        if found is None:
            found = self.sequences[id(steps)] = Sequence_.of(steps)
        return found

    def check_input(self, inputs: Any) -> None:
        """Raise :class:`SpecError` (naming the JSON path) unless ``inputs`` fits
        ``workflow.inputs``."""
        if inputs is not None and not isinstance(inputs, dict):
            raise SpecError(
                str(self.path), 0, 0, "inputs", f"expected a mapping, got {type(inputs).__name__}"
            )
        if self.input_schema is None:
            return
        from stepstone.core.jsonschema import first_problem

        problem = first_problem(inputs or {}, dict(self.input_schema))
        if problem:
            where, _, what = problem.partition(": ")
            raise SpecError(
                str(self.path), 0, 0, "inputs" + where[1:], f"{what} (see workflow.inputs)"
            )

    def bind_input(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """Check the arguments fit, and the input mapping fits ``workflow.inputs`` (before any
        run is created: a bad input stores nothing)."""
        super().bind_input(args, kwargs)
        if kwargs.get("spec_branch") is None:
            self.check_input(args[0] if args else kwargs.get("inputs"))

    def registry(self) -> Registry:
        """A registry of this workflow and every sub-workflow it runs (``workflow_ref``)."""
        return Registry(self.family())

    def family(self) -> Iterator[SpecWorkflow]:
        """This workflow and its sub-workflows, each once."""
        seen: set[int] = set()
        todo: list[SpecWorkflow] = [self]
        while todo:
            wf = todo.pop()
            if id(wf) in seen:
                continue
            seen.add(id(wf))
            yield wf
            todo.extend(wf.subworkflows)

    def to_mermaid(self) -> str:
        """The steps and their transitions as a Mermaid flowchart."""
        from stepstone.spec.mermaid import to_mermaid

        return to_mermaid(self)

    def __repr__(self) -> str:
        return f"<yaml workflow {self.name} ({self.path})>"


def compile_document(doc: Document) -> SpecWorkflow:
    """The workflow that runs ``doc`` on the engine."""
    subs = tuple({id(s.sub): s.sub for s in doc.all_steps() if s.sub is not None}.values())

    async def run_yaml(
        ctx: WorkflowContext,
        inputs: dict[str, Any] | None = None,
        *,
        spec_branch: str | None = None,
        spec_scope: dict[str, Any] | None = None,
    ) -> Any:
        from stepstone.spec.walk import Walk

        if spec_branch is None and SOURCE_KEY not in ctx.state:
            # where this run's document lives: `stepstone resume RUN` loads it from here
            ctx.state[SOURCE_KEY] = str(doc.file.resolve())
        return await Walk(ctx, wf, inputs or {}, spec_scope).run(spec_branch)

    run_yaml.__qualname__ = run_yaml.__name__ = f"yaml_{doc.id}"
    run_yaml.__doc__ = f"The YAML workflow {doc.id!r} ({doc.file})."
    wf = SpecWorkflow(run_yaml, doc, subs)
    return wf
