"""Flow tasks: the ``@task`` decorator, task metadata, stable task ids and the task context."""

from __future__ import annotations

import contextvars
import inspect
import linecache
import re
from collections.abc import Callable, Mapping
from dataclasses import field
from datetime import timedelta
from typing import Any, TypeVar, overload

from stepstone.core.digest import sha256
from stepstone.core.frozen import frozen
from stepstone.core.retry import RetryPolicy as CoreRetryPolicy
from stepstone.errors import InvalidArgument

__all__ = [
    "RetryPolicy",
    "TaskExecutionContext",
    "TaskMetadata",
    "get_task_context",
    "parse_duration",
    "task",
]

F = TypeVar("F", bound=Callable[..., Any])

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_ATTRIBUTE = "__stepstone_task__"


def parse_duration(value: str | float | timedelta, what: str = "duration") -> float:
    """Seconds from ``"30s"``, ``"5m"``, ``"1h"``, ``"100ms"``, ``"2d"``, a number or a timedelta.

    >>> parse_duration("5m")
    300.0
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_S[(match.group(2) or "s").lower()]
    else:
        raise InvalidArgument(
            f"{what}: expected seconds, a timedelta or a string like '30s', '5m', '1h', "
            f"'100ms', got {value!r}"
        )
    if seconds < 0:
        raise InvalidArgument(f"{what} must be >= 0, got {value!r}")
    return seconds


class RetryPolicy(CoreRetryPolicy):
    """A retry policy in sayiir's spelling; it *is* a :class:`stepstone.RetryPolicy`.

    ``max_retries`` counts retries after the first attempt (``max_attempts = max_retries + 1``);
    the delay before retry ``n`` is ``initial_delay_secs * backoff_multiplier ** (n - 1)``.

    >>> @task(retries=RetryPolicy(max_retries=3, initial_delay_secs=0.5, backoff_multiplier=2.0))
    ... def fetch(url: str) -> dict: ...
    """

    __slots__ = ()

    def __init__(
        self,
        max_retries: int = 2,
        initial_delay_secs: float = 1.0,
        backoff_multiplier: float = 2.0,
        *,
        max_delay_s: float = 60.0,
        jitter: bool = False,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        give_up_on: tuple[type[BaseException], ...] = (),
    ) -> None:
        if not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidArgument(f"RetryPolicy.max_retries must be >= 0, got {max_retries!r}")
        super().__init__(
            max_attempts=max_retries + 1,
            initial_delay_s=initial_delay_secs,
            backoff=backoff_multiplier,
            max_delay_s=max_delay_s,
            jitter=jitter,
            retry_on=retry_on,
            give_up_on=give_up_on,
        )

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt."""
        return self.max_attempts - 1

    @property
    def initial_delay_secs(self) -> float:
        """Seconds before the first retry."""
        return self.initial_delay_s

    @property
    def backoff_multiplier(self) -> float:
        """Factor between successive delays."""
        return self.backoff


def _retry_of(retries: int | CoreRetryPolicy | None) -> CoreRetryPolicy | None:
    if retries is None:
        return None
    if isinstance(retries, CoreRetryPolicy):
        return retries
    if isinstance(retries, int) and not isinstance(retries, bool):
        return RetryPolicy(max_retries=retries)
    raise InvalidArgument(f"retries must be an int or a RetryPolicy, got {retries!r}")


@frozen
class TaskMetadata:
    """What ``@task`` says about a task (``get_task_context().metadata``)."""

    display_name: str | None = None
    description: str | None = None
    timeout_secs: float | None = None
    retries: CoreRetryPolicy | None = None
    tags: tuple[str, ...] = ()
    version: str | None = None
    priority: int | None = None


@frozen
class TaskExecutionContext:
    """Where a running task is: its flow, run ("instance"), task id and metadata."""

    workflow_id: str
    instance_id: str
    task_id: str
    metadata: TaskMetadata
    workflow_metadata: Mapping[str, Any] | None = field(default=None)


_current: contextvars.ContextVar[TaskExecutionContext | None] = contextvars.ContextVar(
    "stepstone_flow_task", default=None
)


def get_task_context() -> TaskExecutionContext | None:
    """The context of the task running now, or None outside a task.

    >>> @task(timeout="30s", tags=["io"])
    ... def fetch(url: str) -> dict:
    ...     ctx = get_task_context()
    ...     print(ctx.task_id, ctx.instance_id, ctx.metadata.tags)
    """
    return _current.get()


def enter_task(context: TaskExecutionContext) -> contextvars.Token[TaskExecutionContext | None]:
    """Make ``context`` what :func:`get_task_context` returns (in this context only)."""
    return _current.set(context)


def leave_task(token: contextvars.Token[TaskExecutionContext | None]) -> None:
    """Undo :func:`enter_task`."""
    _current.reset(token)


@overload
def task(fn: F, /) -> F: ...


@overload
def task(
    name: str | None = None,
    /,
    *,
    timeout: str | float | timedelta | None = None,
    retries: int | CoreRetryPolicy | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    description: str | None = None,
    version: str | None = None,
    priority: int | None = None,
) -> Callable[[F], F]: ...


def task(
    fn_or_name: Any = None,
    /,
    *,
    name: str | None = None,
    timeout: str | float | timedelta | None = None,
    timeout_secs: float | None = None,
    retries: int | CoreRetryPolicy | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    description: str | None = None,
    version: str | None = None,
    priority: int | None = None,
) -> Any:
    """Mark a function as a Flow task; the function itself is returned, still callable.

    >>> @task("Process Payment", timeout="60s", retries=3, tags=["payments"])
    ... def process_payment(order: dict) -> dict: ...

    The name (positional or ``name=``) is the task id, the step name every run records; the
    default is the function's name. ``retries`` is an int (that many retries, 1 s then doubling)
    or a :class:`RetryPolicy`. Plain functions and lambdas work in a Flow without ``@task``.
    """
    if isinstance(fn_or_name, str):
        name, fn_or_name = fn_or_name, None
    if name is not None and (not isinstance(name, str) or not name):
        raise InvalidArgument(f"@task name must be a non-empty string, got {name!r}")
    seconds = parse_duration(timeout, "task timeout") if timeout is not None else timeout_secs
    if seconds is not None and seconds <= 0:
        raise InvalidArgument(f"task timeout must be > 0, got {timeout!r}")
    if priority is not None and not 1 <= priority <= 5:
        raise InvalidArgument(f"task priority must be between 1 and 5, got {priority}")
    labels = tuple(tags or ())
    if not all(isinstance(t, str) and t for t in labels):
        raise InvalidArgument(f"task tags must be non-empty strings, got {tags!r}")
    retry = _retry_of(retries)

    def decorate(fn: F) -> F:
        if not callable(fn):
            raise InvalidArgument(f"@task needs a function, got {fn!r}")
        meta = TaskMetadata(
            display_name=name or getattr(fn, "__name__", None),
            description=description,
            timeout_secs=seconds,
            retries=retry,
            tags=labels,
            version=version,
            priority=priority,
        )
        setattr(fn, _ATTRIBUTE, (name, meta))
        return fn

    return decorate(fn_or_name) if fn_or_name is not None else decorate


def declared(fn: Callable[..., Any]) -> tuple[str | None, TaskMetadata]:
    """The id and metadata ``@task`` gave ``fn`` (``(None, TaskMetadata())`` for plain ones)."""
    found = getattr(fn, _ATTRIBUTE, None)
    if found is None:
        return None, TaskMetadata(display_name=getattr(fn, "__name__", None))
    ident, meta = found
    return ident, meta


# --- stable ids and code digests ----------------------------------------------------------------


def _lambda_source(fn: Callable[..., Any]) -> str | None:
    """The text of a lambda's body, cut from its file by the positions of its code."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    # zero-width positions (the RESUME at the start) point at the line's start: left out
    spans = [p for p in code.co_positions() if None not in p and (p[0], p[2]) != (p[1], p[3])]
    lines = linecache.getlines(code.co_filename)
    if not spans or not lines:
        return None
    first, last = min(p[0] for p in spans), max(p[1] for p in spans)
    start = min(p[2] for p in spans if p[0] == first)
    end = max(p[3] for p in spans if p[1] == last)
    text = "".join(lines[first - 1 : last])
    tail = len(lines[last - 1]) - end
    body = text[start : len(text) - tail] if tail > 0 else text[start:]
    params = ",".join(code.co_varnames[: code.co_argcount])
    return f"lambda {params}: {body.strip()}"


def _simple_values(fn: Callable[..., Any]) -> str:
    """Defaults and closed-over values that are plain data: two lambdas of the same text that
    close over different numbers are different tasks. Objects are left out (their repr often
    holds an address, which would change the version at every start)."""
    simple = (int, float, str, bool, type(None), bytes)
    values: list[Any] = list(getattr(fn, "__defaults__", None) or ())
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    return repr([v for v in values if isinstance(v, simple)])


def code_digest(fn: Callable[..., Any]) -> str:
    """A digest of a task's code: its source where there is one, else its bytecode or name."""
    target = inspect.unwrap(fn)
    text: str | None = None
    if getattr(target, "__name__", None) == "<lambda>":
        text = _lambda_source(target)
    if text is None:
        try:
            text = inspect.getsource(target)
        except (OSError, TypeError):
            code = getattr(target, "__code__", None)
            if code is not None:
                text = code.co_code.hex() + repr(code.co_consts)
            else:
                module = getattr(target, "__module__", None) or type(target).__module__
                qual = getattr(target, "__qualname__", None) or type(target).__qualname__
                text = f"{module}.{qual}"
    text += _simple_values(target)
    return sha256(text.encode()).hexdigest()[:16]


def task_id_for(fn: Callable[..., Any], name: str | None) -> str:
    """The id a task is recorded under: ``name=``, then ``@task``'s name, then the function's
    name; a lambda's id is taken from its code (``lambda_3fa2c19b``), so inserting or moving a
    lambda never gives it the id another lambda had."""
    if name is not None:
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"a task name must be a non-empty string, got {name!r}")
        return name
    declared_id, _ = declared(fn)
    if declared_id is not None:
        return declared_id
    fn_name = getattr(fn, "__name__", None)
    if fn_name is None or fn_name == "<lambda>":
        return f"lambda_{code_digest(fn)[:8]}"
    return str(fn_name)
