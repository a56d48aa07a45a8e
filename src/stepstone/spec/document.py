"""The checked form of a YAML workflow document: steps with their expressions compiled.

:mod:`stepstone.spec.validate` builds these from a :class:`~stepstone.spec.source.Source`; the
walker (:mod:`stepstone.spec.walk`) only reads them. Values that hold ``${...}`` are kept as
*value templates*: the same JSON structure with each templated string compiled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepstone.core.frozen import frozen
from stepstone.core.retry import NO_RETRY, RetryPolicy
from stepstone.spec.expr import Expr, Template

if TYPE_CHECKING:
    from stepstone.spec.shell_quoting import ShellCommand
    from stepstone.spec.template import Template as TextTemplate
    from stepstone.spec.workflow import SpecWorkflow

__all__ = [
    "Branch",
    "Case",
    "Document",
    "StepSpec",
    "render_value",
]

CHECKPOINTFLOW = "checkpointflow/v1"
STEPSTONE = "stepstone/v1"
VERSIONS = (CHECKPOINTFLOW, STEPSTONE)


@frozen
class Case:
    """A ``when`` -> ``next`` rule (an await_event transition or a switch case)."""

    when: Expr
    next: str


@frozen
class Branch:
    """One branch of a ``parallel`` step: a step of the document (``start_at``) or inline
    ``steps`` (stepstone/v1)."""

    start_at: str | None
    steps: tuple[StepSpec, ...] = ()


@frozen(eq=False)
class StepSpec:
    """One step as checked: its raw fields and what was compiled from them.

    ``values`` holds the value templates of the step's templated fields (``command``, ``url``,
    ``inputs``, ``result`` ...), by field name. ``command`` is a ``cli`` step's command as
    prepared to run: quoted for the shell (``command:``) or each argument located (``argv:``).
    """

    id: str
    kind: str
    fields: Mapping[str, Any]
    when: Expr | None = None
    next: str | None = None
    retry: RetryPolicy = NO_RETRY
    timeout_s: float | None = None
    outputs_schema: Mapping[str, Any] | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    cases: tuple[Case, ...] = ()
    default: str | None = None
    on_timeout: str | None = None
    items: Expr | None = None
    body: tuple[StepSpec, ...] = ()
    branches: tuple[Branch, ...] = ()
    max_concurrency: int = 1
    sub: SpecWorkflow | None = None
    function: Callable[..., Any] | None = None
    command: ShellCommand | tuple[TextTemplate, ...] | None = None

    @property
    def is_single_call(self) -> bool:
        """One checkpointed step call and nothing else (may run inside ``ctx.parallel``)."""
        return self.kind in ("cli", "api", "python") and self.next is None


@frozen(eq=False)
class Document:
    """A whole checked document."""

    file: Path
    schema_version: str
    id: str
    data: Mapping[str, Any]
    steps: tuple[StepSpec, ...]
    inputs_schema: Mapping[str, Any] | None
    outputs_schema: Mapping[str, Any] | None
    """``workflow.outputs`` without the ``from:`` of its properties (those are ``outputs_from``)."""
    outputs_from: Mapping[str, Expr]
    defaults: Mapping[str, Any]
    owned: frozenset[str] = frozenset()
    """Ids of steps that run as a parallel branch and are skipped by the sequence."""

    @property
    def words(self) -> bool:
        return self.schema_version == CHECKPOINTFLOW

    def all_steps(self) -> list[StepSpec]:
        """Every step, bodies and inline branches included (depth first)."""
        out: list[StepSpec] = []

        def visit(steps: tuple[StepSpec, ...]) -> None:
            for spec in steps:
                out.append(spec)
                visit(spec.body)
                for branch in spec.branches:
                    visit(branch.steps)

        visit(self.steps)
        return out


def render_value(value: Any, scope: Mapping[str, Any]) -> Any:
    """A value template with every ``${...}`` evaluated in ``scope``."""
    if isinstance(value, Template):
        return value.render(scope)
    if isinstance(value, dict):
        return {k: render_value(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, scope) for v in value]
    return value
