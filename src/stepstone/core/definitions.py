"""Workflow and step definitions: the ``@workflow`` and ``@step`` decorators, the ``Registry``."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from stepstone.core.digest import sha256
from stepstone.core.errortypes import AppErrors
from stepstone.core.frozen import frozen
from stepstone.core.resources import SkillResources
from stepstone.core.retry import NO_RETRY, RetryPolicy
from stepstone.core.routing import KeyFunction, labels_of
from stepstone.core.scope import active_caller
from stepstone.errors import InvalidArgument, WorkflowNotFound

if TYPE_CHECKING:
    from stepstone.core.ledger import Budget
    from stepstone.core.schedules import Schedule

__all__ = [
    "Registry",
    "RunDefaults",
    "Step",
    "StepOptions",
    "Workflow",
    "as_registry",
    "step",
    "workflow",
]

P = ParamSpec("P")
R = TypeVar("R")
_NO_HINT: Any = object()


@frozen
class StepOptions:
    """How a step is executed: retries, per-attempt timeout, at-most-once."""

    retry: RetryPolicy = NO_RETRY
    timeout_s: float | None = None
    at_most_once: bool = False

    def __post_init__(self) -> None:
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise InvalidArgument(f"step timeout_s must be > 0, got {self.timeout_s}")
        if not isinstance(self.retry, RetryPolicy):
            raise InvalidArgument(
                f"step retry must be a RetryPolicy, got {type(self.retry).__name__}"
            )


def _return_hint(fn: Callable[..., Any]) -> Any:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to plain JSON
        return _NO_HINT
    return hints.get("return", _NO_HINT)


class Step(Generic[P, R]):
    """A function whose calls inside a workflow are checkpointed steps.

    Outside a workflow it is the plain function. Inside an ``async`` workflow calling it returns an
    awaitable (the step's position in the journal is taken at the call, before any ``await``);
    inside a sync workflow it blocks and returns the result.
    """

    __slots__ = ("__dict__", "fn", "is_async", "name", "options")

    def __init__(self, fn: Callable[P, R], *, name: str, options: StepOptions) -> None:
        self.fn = fn
        self.name = name
        self.options = options
        self.is_async = inspect.iscoroutinefunction(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        caller = active_caller.get()
        if caller is None:
            return self.fn(*args, **kwargs)
        result: R = caller.call_step(self, args, kwargs)
        return result

    @property
    def return_type(self) -> Any:
        """The annotation step results are decoded into on replay."""
        cached = self.__dict__.get("_return_type", None)
        if cached is None:
            cached = self.__dict__["_return_type"] = _return_hint(self.fn)
        return cached

    def __repr__(self) -> str:
        return f"<step {self.name}>"


@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...


@overload
def step(
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    timeout_s: float | None = None,
    at_most_once: bool = False,
) -> Callable[[Callable[P, R]], Step[P, R]]: ...


def step(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    timeout_s: float | None = None,
    at_most_once: bool = False,
) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
    """Declare a checkpointed step. Works on ``async def`` and plain ``def`` functions.

    >>> @step(retry=RetryPolicy(max_attempts=5), timeout_s=60)
    ... async def charge(order: Order) -> Receipt: ...

    ``at_most_once=True`` records a start mark before the call: after a crash between the start and
    the record, the step is not run again and the run fails with :class:`OutcomeUnknown`.
    """
    options = StepOptions(retry=retry or NO_RETRY, timeout_s=timeout_s, at_most_once=at_most_once)

    def decorate(f: Callable[P, R]) -> Step[P, R]:
        if not callable(f):
            raise InvalidArgument(f"@step needs a function, got {type(f).__name__}")
        return Step(f, name=name or f.__qualname__, options=options)

    return decorate(fn) if fn is not None else decorate


# --- workflows -------------------------------------------------------------------------------


@frozen
class RunDefaults:
    """What ``start`` uses for a workflow's runs when the caller does not say.

    ``concurrency_key`` and ``dedup_key`` may be functions of the run's input, called with the
    workflow's arguments: ``concurrency_key=lambda user_id, **_: user_id``.
    """

    queue: str | None = None
    priority: int = 0
    deadline_s: float | None = None
    labels: Mapping[str, str] | None = None
    pool: str | None = None
    concurrency_key: str | KeyFunction | None = None
    dedup_key: str | KeyFunction | None = None
    budget: Budget | None = None
    """Each run's own model-call budget (stored with the run at its first model call)."""


@frozen
class _Signature:
    params: tuple[inspect.Parameter, ...]
    hints: Mapping[str, Any]


class Workflow(Generic[P, R]):
    """A workflow definition: orchestration code whose every step is checkpointed.

    Calling the object calls the function directly (useful in unit tests). Start durable runs with
    :class:`~stepstone.Client` (``client.run(wf, ...)`` or ``client.start(wf, ...)``).
    """

    __slots__ = (
        "__dict__",
        "defaults",
        "fn",
        "is_async",
        "max_recoveries",
        "name",
        "resources",
        "schedule",
        "signals",
        "webhook",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        version: str | None,
        defaults: RunDefaults,
        max_recoveries: int | None,
        signals: Mapping[str, Any],
        schedule: Schedule | None = None,
        webhook: str | None = None,
    ) -> None:
        self.fn = fn
        self.name = name
        self.webhook = webhook
        """The webhook of ``@workflow(webhook=...)``: ``POST /hooks/{webhook}`` starts a run."""
        self.schedule = schedule
        """The schedule of ``@workflow(schedule=...)`` (named after the workflow), else None."""
        self.defaults = defaults
        self.max_recoveries = max_recoveries
        self.signals = dict(signals)
        self.is_async = inspect.iscoroutinefunction(fn)
        self.resources: SkillResources | None = None
        """A skill's prompts and run folder (``ctx.prompt``, ``ctx.artifact``); set by
        :mod:`stepstone.desk` when it loads the workflow from a skill folder."""
        self.__dict__["_version"] = version
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, ctx: Any, *args: P.args, **kwargs: P.kwargs) -> Any:
        return self.fn(ctx, *args, **kwargs)

    @property
    def queue(self) -> str | None:
        return self.defaults.queue

    @property
    def deadline_s(self) -> float | None:
        return self.defaults.deadline_s

    @property
    def version(self) -> str:
        """The code version runs record: ``@workflow(version=...)`` or a hash of the source."""
        version: str | None = self.__dict__.get("_version")
        if version is None:
            try:
                source = inspect.getsource(self.fn).encode()
            except (OSError, TypeError):
                source = self.fn.__code__.co_code + repr(self.fn.__code__.co_consts).encode()
            version = self.__dict__["_version"] = sha256(source).hexdigest()[:12]
        return version

    @property
    def signature(self) -> _Signature:
        """Parameters after ``ctx`` and their annotations (decoding of the run input)."""
        cached: _Signature | None = self.__dict__.get("_signature")
        if cached is None:
            params = tuple(inspect.signature(self.fn).parameters.values())[1:]
            try:
                hints = typing.get_type_hints(self.fn)
            except Exception:
                hints = {}
            cached = self.__dict__["_signature"] = _Signature(params, hints)
        return cached

    @property
    def return_type(self) -> Any:
        cached = self.__dict__.get("_return_type")
        if cached is None:
            cached = self.__dict__["_return_type"] = _return_hint(self.fn)
        return cached

    def bind_input(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        """Check that ``args``/``kwargs`` fit the workflow's parameters (raises InvalidArgument)."""
        sig: inspect.Signature | None = self.__dict__.get("_inspect_signature")
        if sig is None:
            sig = self.__dict__["_inspect_signature"] = inspect.signature(self.fn)
        try:
            sig.bind(None, *args, **kwargs)
        except TypeError as exc:
            raise InvalidArgument(f"workflow {self.name!r}: {exc}") from None

    def __repr__(self) -> str:
        return f"<workflow {self.name}>"


@overload
def workflow(fn: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]], /) -> Workflow[P, R]: ...


@overload
def workflow(fn: Callable[Concatenate[Any, P], R], /) -> Workflow[P, R]: ...


@overload
def workflow(
    *,
    name: str | None = None,
    version: str | None = None,
    queue: str | None = None,
    priority: int = 0,
    deadline_s: float | None = None,
    max_recoveries: int | None = None,
    signals: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    pool: str | None = None,
    concurrency_key: str | KeyFunction | None = None,
    dedup_key: str | KeyFunction | None = None,
    budget: Budget | None = None,
    schedule: str | None = None,
    timezone: str = "UTC",
    webhook: str | None = None,
) -> _WorkflowDecorator: ...


def workflow(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    version: str | None = None,
    queue: str | None = None,
    priority: int = 0,
    deadline_s: float | None = None,
    max_recoveries: int | None = None,
    signals: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    pool: str | None = None,
    concurrency_key: str | KeyFunction | None = None,
    dedup_key: str | KeyFunction | None = None,
    budget: Budget | None = None,
    schedule: str | None = None,
    timezone: str = "UTC",
    webhook: str | None = None,
) -> Any:
    """Declare a workflow. The first parameter receives the :class:`WorkflowContext`.

    >>> @workflow(name="checkout")
    ... async def checkout(ctx: WorkflowContext, order: Order) -> Receipt:
    ...     return await charge(order)

    ``version`` pins the code version recorded on each run (default: a hash of the source);
    ``signals`` declares signal payload types (``{"approval": Approval}``) so ``signal()`` can
    validate before the wait is reached. ``queue``, ``priority``, ``deadline_s``, ``labels``,
    ``pool``, ``concurrency_key`` and ``dedup_key`` are defaults for ``start`` (see
    :class:`RunDefaults`); the keys may be functions of the run's input. ``budget`` (a
    :class:`~stepstone.core.ledger.Budget`) limits what each run may spend on model calls.

    ``schedule`` (a cron expression, local to ``timezone``) starts a run at every tick on the
    workers serving it (exactly one per tick): ``@workflow(schedule="0 9 * * 1-5",
    timezone="Europe/Paris")``. The workflow must take no arguments; for inputs or policies
    declare a :class:`~stepstone.Schedule`. A bad expression or zone fails here.

    ``webhook`` names a hook of ``stepstone serve``: a signed ``POST /hooks/{webhook}`` starts
    a run with the delivery's JSON body as the one argument (``"github"`` and ``"stripe"``
    check those senders' signatures; see the README, "Webhooks and the HTTP API").
    """
    if webhook is not None and (
        not isinstance(webhook, str)
        or not webhook
        or len(webhook) > 64
        or not all(c.isascii() and (c.isalnum() or c in "_-") for c in webhook)
    ):
        raise InvalidArgument(
            f"@workflow webhook= must be 1-64 letters, digits, '_' or '-', got {webhook!r}"
        )
    if deadline_s is not None and deadline_s <= 0:
        raise InvalidArgument(f"workflow deadline_s must be > 0, got {deadline_s}")
    if max_recoveries is not None and max_recoveries < 0:
        raise InvalidArgument(f"workflow max_recoveries must be >= 0, got {max_recoveries}")
    labels_of(labels, "workflow labels")  # refuse bad labels at definition time

    def decorate(f: Callable[..., Any]) -> Workflow[Any, Any]:
        if not callable(f):
            raise InvalidArgument(f"@workflow needs a function, got {type(f).__name__}")
        _check_context_parameter(f)
        wf: Workflow[Any, Any] = Workflow(
            f,
            name=name or f.__name__,
            version=version,
            defaults=RunDefaults(
                queue=queue,
                priority=priority,
                deadline_s=deadline_s,
                labels=labels,
                pool=pool,
                concurrency_key=concurrency_key,
                dedup_key=dedup_key,
                budget=budget,
            ),
            max_recoveries=max_recoveries,
            signals=signals or {},
            webhook=webhook,
        )
        if schedule is not None:
            from stepstone.core.schedules import Schedule

            wf.schedule = Schedule(wf.name, wf, schedule, timezone=timezone)
        return wf

    if schedule is None and timezone != "UTC":
        raise InvalidArgument("@workflow timezone= is only meaningful with schedule=")
    return decorate(fn) if fn is not None else decorate


def _check_context_parameter(f: Callable[..., Any]) -> None:
    """A workflow's first parameter is the context: refuse, at decoration, a function whose first
    parameter is missing, keyword-only or annotated with another type (the context would be
    passed as that argument and the mistake would only show when a run executes)."""
    params = list(inspect.signature(f).parameters.values())
    hint = f"add it first: async def {f.__name__}(ctx: WorkflowContext, ...)"
    if not params:
        raise InvalidArgument(
            f"workflow {f.__qualname__} must take the context as its first parameter; {hint}"
        )
    first = params[0]
    if first.kind not in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD):
        raise InvalidArgument(
            f"workflow {f.__qualname__}: its first parameter {first.name!r} must be the "
            f"context (a positional parameter); {hint}"
        )
    note = first.annotation
    if note is inspect.Parameter.empty:
        return
    text = note if isinstance(note, str) else getattr(note, "__name__", repr(note))
    if "Context" in text or text in ("Any", "typing.Any", "object"):
        return
    raise InvalidArgument(
        f"workflow {f.__qualname__}: its first parameter '{first.name}: {text}' must be the "
        f"context; {hint}"
    )


class _WorkflowDecorator(typing.Protocol):
    @overload
    def __call__(
        self, fn: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]], /
    ) -> Workflow[P, R]: ...

    @overload
    def __call__(self, fn: Callable[Concatenate[Any, P], R], /) -> Workflow[P, R]: ...


# --- the registry ----------------------------------------------------------------------------


class Registry:
    """The workflows a client or worker knows, by name, and the app's exception types that a
    replay raises again as themselves. Pass one explicitly; there is no global.

    A recorded step failure is rebuilt as its own class when that class is registered with
    ``errors=`` (classes, or modules for all their exception classes), is named at the top
    level of a registered workflow's module (defined or imported there), is one of stepstone's
    errors or is a Python builtin; otherwise it comes back as :class:`~stepstone.StepFailed`.

    >>> Registry([checkout, refund], errors=[PaymentDeclined])  # or Registry.from_module(my_app)
    """

    def __init__(
        self,
        workflows: Iterable[Workflow[Any, Any]] = (),
        *,
        errors: Iterable[type[Exception] | ModuleType] = (),
        schedules: Iterable[Schedule] = (),
    ) -> None:
        self.workflows: dict[str, Workflow[Any, Any]] = {}
        self.declared_schedules: dict[str, Schedule] = {}
        self.errors = AppErrors()
        for wf in workflows:
            self.add(wf)
        self.errors.add(*errors)
        for schedule in schedules:
            self.add_schedule(schedule)

    @classmethod
    def from_module(cls, module: ModuleType) -> Registry:
        """Every workflow and :class:`~stepstone.Schedule` defined at the top level of
        ``module``."""
        from stepstone.core.schedules import Schedule

        values = list(vars(module).values())
        registry = cls(
            (v for v in values if isinstance(v, Workflow)),
            schedules=(v for v in values if isinstance(v, Schedule)),
        )
        registry.errors.add(module)
        return registry

    def add_schedule(self, schedule: Schedule) -> Schedule:
        """Declare a schedule of one of these workflows (registered on the way when the
        schedule was given the workflow object)."""
        from stepstone.core.schedules import Schedule

        if not isinstance(schedule, Schedule):
            raise InvalidArgument(f"expected a Schedule, got {schedule!r}")
        if isinstance(schedule.workflow, Workflow):
            self.add(schedule.workflow)
        existing = self.declared_schedules.get(schedule.name)
        if existing is not None and existing.spec != schedule.spec:
            raise InvalidArgument(f"two different schedules are named {schedule.name!r}")
        self.declared_schedules[schedule.name] = schedule
        return schedule

    def schedules(self) -> list[Schedule]:
        """The schedules declared in code: ``@workflow(schedule=...)`` and :class:`Schedule`
        objects, by name. Each must name a workflow of this registry."""
        found = dict(self.declared_schedules)
        for wf in self.workflows.values():
            if wf.schedule is not None:
                other = found.setdefault(wf.schedule.name, wf.schedule)
                if other.spec != wf.schedule.spec:
                    raise InvalidArgument(
                        f"two different schedules are named {wf.schedule.name!r} (a Schedule "
                        f"and @workflow(schedule=...) of workflow {wf.name!r})"
                    )
        for schedule in found.values():
            if schedule.spec.workflow not in self.workflows:
                raise WorkflowNotFound(schedule.spec.workflow, tuple(self.workflows))
        return [found[name] for name in sorted(found)]

    def add(self, wf: Workflow[Any, Any]) -> Workflow[Any, Any]:
        if not isinstance(wf, Workflow):
            raise InvalidArgument(f"expected a @workflow, got {wf!r}")
        existing = self.workflows.get(wf.name)
        if existing is not None and existing.fn is not wf.fn:
            raise InvalidArgument(
                f"two different workflows are named {wf.name!r} "
                f"({existing.fn.__module__}.{existing.fn.__qualname__} and "
                f"{wf.fn.__module__}.{wf.fn.__qualname__})"
            )
        self.workflows[wf.name] = wf
        self.errors.add_module(wf.fn.__module__)
        return wf

    def get(self, name: str) -> Workflow[Any, Any]:
        try:
            return self.workflows[name]
        except KeyError:
            raise WorkflowNotFound(name, tuple(self.workflows)) from None

    def resolve(self, wf: Workflow[Any, Any] | str) -> Workflow[Any, Any]:
        """A workflow object (registered on the way) or a registered name."""
        if isinstance(wf, Workflow):
            return self.add(wf)
        if isinstance(wf, str):
            return self.get(wf)
        raise InvalidArgument(f"expected a @workflow or a workflow name, got {wf!r}")

    def error_type(self, module: str, qualname: str) -> type[Exception] | None:
        """The app's exception class ``module.qualname`` if it is known (see above), else None."""
        return self.errors.find(module, qualname)

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.workflows))

    @property
    def version(self) -> str:
        """A digest of every workflow's name and code version: which code a worker serves, so
        an operator can tell workers of two deploys apart (``stepstone workers``)."""
        text = "\n".join(f"{name}={self.workflows[name].version}" for name in self.names())
        return sha256(text.encode()).hexdigest()[:12]

    def __iter__(self) -> Iterator[Workflow[Any, Any]]:
        return iter(self.workflows.values())

    def __len__(self) -> int:
        return len(self.workflows)


def as_registry(
    workflows: Registry | ModuleType | Iterable[Workflow[Any, Any]] | Workflow[Any, Any] | None,
) -> Registry:
    """Accept what users pass as ``workflows=``: a registry, a module, a list, or one workflow."""
    if workflows is None:
        return Registry()
    if isinstance(workflows, Registry):
        return workflows
    if isinstance(workflows, ModuleType):
        return Registry.from_module(workflows)
    if isinstance(workflows, Workflow):
        return Registry([workflows])
    return Registry(workflows)
