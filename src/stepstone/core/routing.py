"""Queues and pools declared in code, and the routing options of a run, checked at the edge.

>>> payments = Queue("payments", concurrency=10, rate_limit=(100, 60), per_key_concurrency=1)
>>> gpus = Pool("gpu", strategy="least_loaded")
>>> Worker(store, workflows=app, queue=[payments, "default"], pool=gpus, labels={"gpu": "a100"})

Limits are stored when a worker (or ``client.declare``) starts, so every worker enforces the same
ones, whatever version of the code it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from stepstone.core.frozen import frozen
from stepstone.errors import InvalidArgument

if TYPE_CHECKING:  # the model is imported on use: `import stepstone` stays light
    from stepstone.core.model import Labels, PoolSpec, QueueSpec, Routing

__all__ = ["KeyFunction", "Pool", "Queue", "StartOptions", "labels_of", "routing_for"]

KeyFunction = Callable[..., str | None]
"""A key computed from the run's input: called with the workflow's arguments."""


def _name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"{kind} name must be a non-empty string, got {name!r}")
    return name


def _positive(what: str, value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidArgument(f"{what} must be a whole number >= 1, got {value!r}")


@frozen
class Queue:
    """A queue with limits that every worker enforces.

    ``concurrency``: runs of this queue executing at once across all workers.
    ``per_key_concurrency``: the same per ``concurrency_key`` (e.g. one run per user at a time).
    ``rate_limit=(n, per_s)``: at most ``n`` runs start per ``per_s`` seconds; with
    ``rate_limit_per_key`` the budget is per ``concurrency_key``.
    """

    name: str
    concurrency: int | None = None
    rate_limit: tuple[int, float] | None = None
    per_key_concurrency: int | None = None
    rate_limit_per_key: bool = False

    def __post_init__(self) -> None:
        _name("queue", self.name)
        _positive(f"queue {self.name!r} concurrency", self.concurrency)
        _positive(f"queue {self.name!r} per_key_concurrency", self.per_key_concurrency)
        if self.rate_limit is not None:
            shape_ok = isinstance(self.rate_limit, tuple) and len(self.rate_limit) == 2
            if not shape_ok:
                raise InvalidArgument(
                    f"queue {self.name!r} rate_limit must be (n, per_s), got {self.rate_limit!r}"
                )
            n, per_s = self.rate_limit
            _positive(f"queue {self.name!r} rate limit count", n)
            if not isinstance(per_s, int | float) or per_s <= 0:
                raise InvalidArgument(f"queue {self.name!r} rate limit period must be > 0 s")
        elif self.rate_limit_per_key:
            raise InvalidArgument(f"queue {self.name!r}: rate_limit_per_key needs a rate_limit")

    @property
    def spec(self) -> QueueSpec:
        from stepstone.core.model import QueueSpec

        n, per_s = self.rate_limit if self.rate_limit is not None else (None, None)
        return QueueSpec(
            self.name,
            concurrency=self.concurrency,
            per_key_concurrency=self.per_key_concurrency,
            rate_limit=n,
            rate_period_s=float(per_s) if per_s is not None else None,
            rate_limit_per_key=self.rate_limit_per_key,
        )


_STRATEGIES = ("direct", "round_robin", "least_loaded", "threshold")  # model.Strategy


@frozen
class Pool:
    """A pool of workers and how runs that name it are assigned to them.

    ``direct``: the pool's workers claim its runs themselves. ``round_robin``: each new run goes to
    the next live worker. ``least_loaded``: to the lowest load ratio. ``threshold``: like
    ``least_loaded``, skipping workers at or above ``threshold`` (0 to 1). A run assigned to a
    worker that dies goes back to the pool.
    """

    name: str
    strategy: Literal["direct", "round_robin", "least_loaded", "threshold"] = "direct"
    threshold: float = 0.8

    def __post_init__(self) -> None:
        _name("pool", self.name)
        if self.strategy not in _STRATEGIES:
            raise InvalidArgument(
                f"pool {self.name!r}: unknown strategy {self.strategy!r}; "
                f"choose one of {', '.join(_STRATEGIES)}"
            )
        if not 0 < self.threshold <= 1:
            raise InvalidArgument(f"pool {self.name!r}: threshold must be in (0, 1]")

    @property
    def spec(self) -> PoolSpec:
        from stepstone.core.model import PoolSpec

        return PoolSpec(self.name, self.strategy, self.threshold)


def labels_of(labels: Mapping[str, object] | None, what: str = "labels") -> Labels:
    """Labels as stored: string keys and values, sorted."""
    if labels is None:
        return ()
    if not isinstance(labels, Mapping):
        raise InvalidArgument(f"{what} must be a mapping such as {{'gpu': 'true'}}, got {labels!r}")
    out = []
    for key, value in labels.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgument(f"{what}: keys must be non-empty strings, got {key!r}")
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str | int | float):
            raise InvalidArgument(f"{what}[{key!r}] must be a string, got {value!r}")
        out.append((key, str(value)))
    return tuple(sorted(out))


def _key(
    what: str, key: str | KeyFunction | None, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> str | None:
    if key is None or isinstance(key, str):
        value = key
    elif callable(key):
        try:
            value = key(*args, **kwargs)
        except Exception as exc:
            raise InvalidArgument(f"{what} function failed on this input: {exc!r}") from exc
    else:
        raise InvalidArgument(f"{what} must be a string or a function of the input, got {key!r}")
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidArgument(f"{what} must be a non-empty string, got {value!r}")
    return value


def routing_for(
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    *,
    dedup_key: str | KeyFunction | None,
    concurrency_key: str | KeyFunction | None,
    labels: Mapping[str, object] | None,
    target_worker: str | None,
    pool: str | Pool | None,
) -> Routing:
    """The routing of a new run; keys given as functions are computed from its input."""
    if target_worker is not None and (not isinstance(target_worker, str) or not target_worker):
        raise InvalidArgument(f"worker_id must be a non-empty string, got {target_worker!r}")
    from stepstone.core.model import Routing

    pool_name = pool.name if isinstance(pool, Pool) else pool
    if pool_name is not None:
        _name("pool", pool_name)
    return Routing(
        dedup_key=_key("dedup_key", dedup_key, args, kwargs),
        concurrency_key=_key("concurrency_key", concurrency_key, args, kwargs),
        labels=labels_of(labels),
        target_worker=target_worker,
        pool=pool_name,
    )


@frozen
class StartOptions:
    """How a run is started, apart from its input: identity, queue, timing and routing.

    ``run_id`` is an idempotency key (starting an id that exists returns the existing run).
    ``dedup_key`` allows one unfinished run per key; a second start returns the existing run,
    or raises :class:`~stepstone.DuplicateRun` with ``on_conflict="raise"``. ``delay_s`` /
    ``start_at`` delay the start; ``priority`` orders claims (higher first); ``deadline_s``
    bounds the whole run; ``concurrency_key`` is what a queue's per-key limits count;
    ``labels`` must all be offered by the worker; ``worker_id`` pins the run to one worker;
    ``pool`` sends it to a worker pool. ``None`` takes the workflow's default.

    >>> client.start(charge, order, options=StartOptions(queue="payments", priority=5))
    """

    run_id: str | None = None
    queue: str | Queue | None = None
    delay_s: float | None = None
    start_at: datetime | None = None
    priority: int | None = None
    deadline_s: float | None = None
    dedup_key: str | KeyFunction | None = None
    on_conflict: Literal["return", "raise"] = "return"
    concurrency_key: str | KeyFunction | None = None
    labels: Mapping[str, str] | None = field(default=None, hash=False)
    worker_id: str | None = None
    pool: str | Pool | None = None
