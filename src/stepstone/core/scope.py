"""Context variables: which workflow run is orchestrating here, and which step body is running."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

from stepstone.core.frozen import frozen
from stepstone.errors import StepstoneError

if TYPE_CHECKING:
    from stepstone.core.definitions import Step

__all__ = [
    "Credentials",
    "StepCaller",
    "StepInfo",
    "active_caller",
    "credentials_scope",
    "current_step",
    "step_scope",
    "worker_credentials",
]


class StepCaller(Protocol):
    """What a ``@step`` function hands its call to when called inside a workflow."""

    def call_step(
        self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any: ...


@frozen
class StepInfo:
    """What a running step knows about itself (see :func:`current_step`)."""

    run_id: str
    workflow: str
    seq: int
    name: str
    attempt: int
    idempotency_key: str


class Credentials(Mapping[str, Any]):
    """A worker's credentials: a read-only mapping whose ``repr`` shows the keys, never the
    values, so they do not end up in logs or tracebacks by accident."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values = dict(values or {})

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<credentials: {', '.join(sorted(self._values)) or 'none'}>"


NO_CREDENTIALS = Credentials()

active_caller: ContextVar[StepCaller | None] = ContextVar("stepstone_workflow", default=None)
step_scope: ContextVar[StepInfo | None] = ContextVar("stepstone_step", default=None)
credentials_scope: ContextVar[Credentials] = ContextVar(
    "stepstone_credentials", default=NO_CREDENTIALS
)


def worker_credentials() -> Credentials:
    """The credentials of the worker executing this run (``Worker(..., credentials={...})``).

    Each worker can carry its own (an API key per machine, per pool); they are never written
    to the store or to logs. Empty outside a worker.

    >>> @step
    ... async def call_model(prompt: str) -> str:
    ...     key = worker_credentials()["ANTHROPIC_API_KEY"]
    """
    return credentials_scope.get()


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
