"""Schedules: a workflow started on a cron expression in a time zone; ticks and which to fire.

>>> nightly = Schedule("nightly-report", report, "0 3 * * *", timezone="Europe/Paris")
>>> Worker(store, workflows=[report], schedules=[nightly]).run()

or ``@workflow(schedule="0 9 * * 1-5", timezone="Europe/Paris")`` on a workflow that takes no
arguments. Every worker serving the workflow fires the schedule; each tick starts exactly one run
whatever the number of workers, because the tick is the run's id and dedup key and the store
moves the schedule's next fire time in the same transaction that creates the run.

The cron library is cronsim (5 fields, or 6 with seconds first). It is imported when a schedule
is first checked, never by ``import stepstone``. Daylight-saving changes follow cronsim, which
follows Debian cron: a job at a fixed local time that falls in a skipped hour runs when the
clock jumps (02:30 on the spring-forward night runs at 03:00), one in a repeated hour runs once
(at its first occurrence); an expression whose minute or hour is a wildcard (``*/15 * * * *``)
runs by real elapsed time, so in a repeated hour it runs in both.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, get_args

from stepstone.core.digest import sha256
from stepstone.core.frozen import frozen
from stepstone.errors import InvalidArgument

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from stepstone.core.definitions import Workflow

__all__ = [
    "Catchup",
    "FireTemplate",
    "FiredTick",
    "Overlap",
    "Schedule",
    "ScheduleInfo",
    "ScheduleSpec",
    "TickPlan",
    "backfill_ticks",
    "check_schedule_name",
    "jitter_for",
    "next_tick",
    "plan_ticks",
    "tick_run_id",
]

Overlap = Literal["skip", "buffer_one", "allow"]
"""When a tick comes while the schedule's previous run is still active: ``skip`` it,
``buffer_one`` (start it when the active run finishes; at most one waits, later ticks are
skipped), or ``allow`` (start it at once)."""

Catchup = Literal["none", "latest", "all"]
"""Ticks missed while no worker fired (every worker down, or the schedule paused): ``none``
fires none of them, ``latest`` the most recent one, ``all`` every one, oldest first."""

MAX_TICKS_PER_FIRE = 1000
"""The most ticks one firing of one schedule starts; the rest stay due for the next firing."""

ON_TIME_S = 10.0
"""With ``catchup="none"`` the latest due tick still fires when it is at most this late (and not
later than the tick after it): a worker that polls late is not a worker that was down."""


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidArgument(
            f"unknown time zone {name!r} (use an IANA name such as 'Europe/Paris' or 'UTC')"
        ) from exc


def _check_cron(expr: str, where: str) -> None:
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidArgument(f"{where}: the cron expression must be a non-empty string")
    problem = _cron_problem(expr)
    if problem is not None:
        raise InvalidArgument(f"{where}: bad cron expression {expr!r}: {problem}")


@functools.lru_cache(maxsize=1024)
def _cron_problem(expr: str) -> str | None:
    """What cronsim says is wrong with ``expr`` (None: nothing). Cached: every schedule read
    from the store is checked again, and firing reads each due one."""
    from cronsim import CronSim, CronSimError

    try:
        CronSim(expr, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        return str(exc)
    return None


def check_schedule_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 100 or ":" in name:
        raise InvalidArgument(
            f"schedule name must be a non-empty string of at most 100 characters without ':', "
            f"got {name!r}"
        )
    return name


@frozen
class ScheduleSpec:
    """A schedule's definition as stored (checked when made: cron, time zone, policies)."""

    name: str
    workflow: str
    cron: str
    timezone: str = "UTC"
    input_json: str = '{"args": [], "kwargs": {}}'
    overlap: Overlap = "allow"
    catchup: Catchup = "latest"
    jitter_s: float = 0.0
    queue: str | None = None

    def __post_init__(self) -> None:
        check_schedule_name(self.name)
        where = f"schedule {self.name!r}"
        if not isinstance(self.workflow, str) or not self.workflow:
            raise InvalidArgument(f"{where}: workflow must be a workflow name")
        _check_cron(self.cron, where)
        if not isinstance(self.timezone, str):
            raise InvalidArgument(f"{where}: timezone must be a string")
        try:
            _zone(self.timezone)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{where}: {exc}") from None
        if self.overlap not in get_args(Overlap):
            raise InvalidArgument(
                f"{where}: overlap must be one of {', '.join(get_args(Overlap))}, "
                f"got {self.overlap!r}"
            )
        if self.catchup not in get_args(Catchup):
            raise InvalidArgument(
                f"{where}: catchup must be one of {', '.join(get_args(Catchup))}, "
                f"got {self.catchup!r}"
            )
        jitter = self.jitter_s
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not jitter >= 0:
            raise InvalidArgument(f"{where}: jitter_s must be a number >= 0, got {jitter!r}")
        if jitter > 86400:
            raise InvalidArgument(f"{where}: jitter_s must be at most 86400, got {jitter!r}")
        if self.queue is not None and (not isinstance(self.queue, str) or not self.queue):
            raise InvalidArgument(f"{where}: queue must be a non-empty name")

    def definition(self) -> tuple[object, ...]:
        """What, when it changes, moves the next fire time (everything but the name)."""
        return (
            self.workflow,
            self.cron,
            self.timezone,
            self.input_json,
            self.overlap,
            self.catchup,
            float(self.jitter_s),
            self.queue,
        )


@frozen
class ScheduleInfo:
    """A schedule as stored: its definition and where its firing is."""

    spec: ScheduleSpec
    paused: bool
    next_fire_at: datetime | None
    """The next tick to fire (None: the expression has no future tick)."""
    last_tick_at: datetime | None = None
    last_run_id: str | None = None
    buffered_at: datetime | None = None
    """A tick held back by ``overlap="buffer_one"`` until the active run finishes."""
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.spec.name


class Schedule:
    """A workflow started on a cron schedule, declared in code and stored when a worker starts.

    >>> Schedule("digest", send_digest, "0 9 * * 1-5", timezone="Europe/Paris",
    ...          kwargs={"team": "ops"}, overlap="skip", catchup="latest", jitter_s=30)

    ``cron``: 5 fields (minute hour day month weekday) or 6 with seconds first. ``timezone``: an
    IANA name; ticks are local times there. ``args``/``kwargs``: the input of every run.
    ``overlap`` (default ``allow``): see :data:`Overlap`; ``catchup`` (default ``latest``): see
    :data:`Catchup`. ``jitter_s``: each run starts up to this many seconds after its tick (the
    same delay every time for a given tick). ``queue``: default, the workflow's queue.
    """

    __slots__ = ("args", "kwargs", "spec", "workflow")

    def __init__(
        self,
        name: str,
        workflow: Workflow[Any, Any] | str,
        cron: str,
        *,
        timezone: str = "UTC",
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        overlap: Overlap = "allow",
        catchup: Catchup = "latest",
        jitter_s: float = 0.0,
        queue: str | None = None,
    ) -> None:
        from stepstone.core.children import encode_input
        from stepstone.core.definitions import Workflow

        check_schedule_name(name)
        wf_name = workflow.name if isinstance(workflow, Workflow) else workflow
        args, kw = tuple(args), dict(kwargs or {})
        self.workflow = workflow
        self.args, self.kwargs = args, kw
        self.spec = ScheduleSpec(
            name=name,
            workflow=wf_name,
            cron=cron,
            timezone=timezone,
            input_json=encode_input(args, kw, f"schedule {name!r} input"),
            overlap=overlap,
            catchup=catchup,
            jitter_s=jitter_s,
            queue=queue,
        )
        if isinstance(workflow, Workflow):
            try:
                workflow.bind_input(args, kw)
            except InvalidArgument as exc:
                raise InvalidArgument(f"schedule {name!r}: {exc}") from None

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        s = self.spec
        return f"<schedule {s.name}: {s.workflow} at {s.cron!r} {s.timezone}>"


# --- ticks -----------------------------------------------------------------------------------


def _ticks_after(spec: ScheduleSpec, after: datetime) -> Iterator[datetime]:
    """The schedule's ticks strictly after ``after``, as aware UTC datetimes."""
    from cronsim import CronSim

    zone = _zone(spec.timezone)
    start = after.astimezone(zone)
    if start.microsecond:  # cronsim counts from the whole second
        start = start.replace(microsecond=0)
    try:
        for local in CronSim(spec.cron, start):
            yield local.astimezone(UTC)
    except StopIteration:  # no tick within cronsim's 50-year horizon
        return


def next_tick(spec: ScheduleSpec, after: datetime) -> datetime | None:
    """The first tick strictly after ``after`` (None: there is none)."""
    return next(_ticks_after(spec, after), None)


def backfill_ticks(
    spec: ScheduleSpec, start: datetime, end: datetime, *, limit: int = 10_000
) -> list[datetime]:
    """The ticks in ``[start, end]`` (at most ``limit``; more is an error, not a truncation)."""
    if end < start:
        raise InvalidArgument(
            f"backfill: --to {end.isoformat()} is before --from {start.isoformat()}"
        )
    ticks: list[datetime] = []
    for tick in _ticks_after(spec, start - timedelta(seconds=1)):
        if tick > end:
            break
        if len(ticks) == limit:
            raise InvalidArgument(f"backfill: more than {limit} ticks between {start} and {end}")
        ticks.append(tick)
    return ticks


@frozen
class TickPlan:
    """Which due ticks a firing starts and where the schedule goes next."""

    ticks: tuple[datetime, ...]
    next_fire_at: datetime | None
    missed: int
    """Due ticks dropped by the catchup policy."""


def plan_ticks(spec: ScheduleSpec, next_fire_at: datetime, now: datetime) -> TickPlan:
    """The ticks due at ``now`` (``next_fire_at`` and those after it up to ``now``) that the
    catchup policy fires, and the next fire time after them. ``all`` starts at most
    :data:`MAX_TICKS_PER_FIRE` in one firing; the next fire time is then the first one left."""
    due = [next_fire_at]
    following: datetime | None = None
    for tick in _ticks_after(spec, next_fire_at):
        if tick > now:
            following = tick
            break
        if len(due) == MAX_TICKS_PER_FIRE:
            if spec.catchup == "all":
                return TickPlan(tuple(due), tick, 0)
            # too many to walk: jump to the last one due (the count of missed is a floor)
            due[-1] = _last_tick_until(spec, now) or due[-1]
            following = next_tick(spec, now)
            break
        due.append(tick)
    if spec.catchup == "all":
        return TickPlan(tuple(due), following, 0)
    latest = due[-1]
    if spec.catchup == "latest":
        return TickPlan((latest,), following, len(due) - 1)
    window = ON_TIME_S
    if following is not None:
        window = min(window, (following - latest).total_seconds())
    on_time = (now - latest).total_seconds() <= window
    return TickPlan((latest,) if on_time else (), following, len(due) - int(on_time))


def _last_tick_until(spec: ScheduleSpec, now: datetime) -> datetime | None:
    """The last tick at or before ``now``."""
    from cronsim import CronSim

    start = now.astimezone(_zone(spec.timezone)).replace(microsecond=0) + timedelta(seconds=1)
    try:
        return next(CronSim(spec.cron, start, reverse=True)).astimezone(UTC)
    except StopIteration:
        return None


def tick_run_id(name: str, tick: datetime) -> str:
    """The run id (and dedup key) of a schedule's tick: the same in every process, so a tick
    fired twice finds its run instead of starting another."""
    at = tick.astimezone(UTC)
    stamp = at.strftime("%Y%m%dT%H%M%S")
    if at.microsecond:
        stamp += f".{at.microsecond:06d}"
    return f"schedule:{name}:{stamp}Z"


def jitter_for(spec: ScheduleSpec, tick: datetime) -> float:
    """A delay in ``[0, jitter_s)`` fixed by the schedule and tick (every firer agrees)."""
    if not spec.jitter_s:
        return 0.0
    digest = sha256(tick_run_id(spec.name, tick).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * float(spec.jitter_s)


@frozen
class FireTemplate:
    """What a firer knows of a workflow that the store does not: its code version and the
    defaults its runs get."""

    version: str
    queue: str = "default"
    priority: int = 0

    @classmethod
    def of(cls, wf: Workflow[Any, Any]) -> FireTemplate:
        return cls(version=wf.version, queue=wf.queue or "default", priority=wf.defaults.priority)


@frozen
class FiredTick:
    """One tick a firing handled: ``started`` (run created), ``existing`` (its run was already
    there), ``skipped`` (overlap), ``buffered`` (overlap ``buffer_one``)."""

    schedule: str
    tick: datetime
    outcome: Literal["started", "existing", "skipped", "buffered"]
    run_id: str | None = None
