"""Context variables: which workflow run is orchestrating here, and which step body is running."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from stepstone.errors import StepstoneError

if TYPE_CHECKING:
    from stepstone.core.definitions import Step

__all__ = ["StepCaller", "StepInfo", "active_caller", "current_step", "step_scope"]


class StepCaller(Protocol):
    """What a ``@step`` function hands its call to when called inside a workflow."""

    def call_step(
        self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class StepInfo:
    """What a running step knows about itself (see :func:`current_step`)."""

    run_id: str
    workflow: str
    seq: int
    name: str
    attempt: int
    idempotency_key: str


active_caller: ContextVar[StepCaller | None] = ContextVar("stepstone_workflow", default=None)
step_scope: ContextVar[StepInfo | None] = ContextVar("stepstone_step", default=None)


def current_step() -> StepInfo:
    """The run id, workflow, seq, name, attempt and idempotency key of the running step.

    >>> @step
    ... def charge(order):
    ...     payments.charge(order, idempotency_key=current_step().idempotency_key)
    """
    info = step_scope.get()
    if info is None:
        raise StepstoneError("current_step() was called outside a running step")
    return info
