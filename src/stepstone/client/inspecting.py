"""Looking at runs: get, list, describe, timeline, events, dead letters, queues, workers, check,
and what model calls cost (the ledger)."""

from __future__ import annotations

import builtins
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from stepstone.client.base import ClientBase, states_of
from stepstone.client.views import RunDescription, TimelineEntry, describe_wait
from stepstone.core.executor import CheckResult, check_run
from stepstone.core.model import (
    ACTIVE_STATES,
    Claim,
    EventRecord,
    NamedLease,
    PoolSpec,
    QueueSpec,
    QueueStats,
    Run,
    RunQuery,
    RunState,
    StepKind,
    StepRecord,
    WorkerInfo,
)
from stepstone.core.records import failures_from_events, waits_from_event
from stepstone.core.routing import labels_of
from stepstone.errors import InvalidArgument

if TYPE_CHECKING:
    from stepstone.core.ledger import Budget, BudgetSpec, BudgetUse, CostGroup, CostLine
    from stepstone.core.rerun import ReplayResult

__all__ = ["Inspecting"]

_LOOKBACK = 256  # event ids re-read behind a follower's position (see events())


class Inspecting(ClientBase):
    """Reading runs, their histories and the state of queues and workers."""

    async def status(self, run_id: str) -> RunState:
        return (await self.get(run_id)).state

    async def list(
        self,
        *,
        state: RunState | str | Iterable[RunState | str] | None = None,
        workflow: str | None = None,
        queue: str | None = None,
        parent_run_id: str | None = None,
        limit: int = 50,
        before_run_id: str | None = None,
        labels: Mapping[str, object] | None = None,
    ) -> list[Run]:
        """Runs, newest first, filtered by state(s), workflow, queue, parent or labels (runs
        that carry all of them: ``labels={"team": "ops"}``)."""
        states = states_of(state)
        query = RunQuery(
            states=states,
            workflow=workflow,
            queue=queue,
            parent_run_id=parent_run_id,
            limit=limit,
            before_run_id=before_run_id,
            labels=labels_of(labels),
        )
        return await self.store.list_runs(query)

    async def dead_letters(
        self, *, workflow: str | None = None, queue: str | None = None, limit: int = 100
    ) -> builtins.list[Run]:
        """Runs that failed for good (retries, recoveries or deadline exhausted), newest first;
        each carries its error. ``retry`` continues one, ``retry(fresh=True)`` starts it anew."""
        return await self.list(state=RunState.FAILED, workflow=workflow, queue=queue, limit=limit)

    async def describe(self, run_id: str) -> RunDescription:
        """The run with its steps (timings, attempts, errors), signals, children and waits, and
        every earlier error (failed attempts, failures before a retry)."""
        return (await self._describe(run_id))[0]

    async def _describe(self, run_id: str) -> tuple[RunDescription, builtins.list[EventRecord]]:
        run = await self.get(run_id)
        steps = await self.store.load_steps(run_id)
        signals = await self.store.list_signals(run_id)
        children = await self.store.list_runs(RunQuery(parent_run_id=run_id, limit=1000))
        events = await self.store.read_events(run_id, limit=100_000)
        state = json.loads(run.state_json) if run.state_json else {}
        desc = RunDescription(
            run,
            tuple(steps),
            tuple(signals),
            tuple(reversed(children)),
            state,
            failures_from_events(events),
        )
        return desc, events

    async def timeline(self, run_id: str) -> builtins.list[TimelineEntry]:
        """Everything that happened to the run, in time order."""
        desc, events = await self._describe(run_id)
        run = desc.run
        entries = [TimelineEntry(run.created_at, "created", f"workflow {run.workflow}")]
        if run.finished_at is not None:
            error = f"{run.error.type}: {run.error.message}" if run.error else ""
            entries.append(TimelineEntry(run.finished_at, run.state.value, error))
        for event in events:
            data = json.loads(event.data_json) if event.data_json else None
            if event.source == "user":
                entries.append(
                    TimelineEntry(event.created_at, f"event:{event.kind}", json.dumps(data))
                )
                continue
            seq = (
                data.get("seq")
                if isinstance(data, dict) and event.kind == "attempt_failed"
                else None
            )
            entries.append(
                TimelineEntry(event.created_at, event.kind, _event_detail(event.kind, data), seq)
            )
        for step in desc.steps:
            entries.extend(_step_entries(step, run.created_at))
        for sig in desc.signals:
            entries.append(TimelineEntry(sig.created_at, "signal", f"{sig.name!r} received"))
            if sig.rejected:
                by = f" by wait #{sig.consumed_seq}" if sig.consumed_seq is not None else ""
                detail = f"{sig.name!r} (#{sig.signal_id}) rejected{by}: {sig.problem}"
                at = sig.consumed_at or sig.created_at
                entries.append(TimelineEntry(at, "signal_rejected", detail, sig.consumed_seq))
        entries.sort(key=lambda e: (e.at, e.seq if e.seq is not None else -1))
        return entries

    async def events(
        self, run_id: str, *, follow: bool = False, after_id: int = 0, include_system: bool = False
    ) -> AsyncIterator[EventRecord]:
        """The run's progress events (``ctx.emit``); ``follow=True`` keeps yielding new ones until
        the run finishes.

        Event ids grow with insertion, but on PostgreSQL an id can commit after a higher one
        (two writers at once), so a follower re-reads a short window behind its position and
        skips the ids it has yielded: nothing is missed and nothing is yielded twice. Nothing at
        or before ``after_id`` is yielded (the caller's own position, e.g. SSE's Last-Event-ID).
        """
        await self.get(run_id)
        seen: set[int] = set()
        floor = after_id  # the caller has seen up to here (a resumed SSE stream: Last-Event-ID)
        while True:
            token = await self.store.change_token()
            start = max(after_id - _LOOKBACK, floor) if follow else after_id
            fresh = [
                e
                for e in await self.store.read_events(run_id, after_id=start)
                if e.event_id not in seen
            ]
            for event in fresh:
                seen.add(event.event_id)
                after_id = max(after_id, event.event_id)
                if include_system or event.source == "user":
                    yield event
            seen = {i for i in seen if i > after_id - _LOOKBACK}
            if fresh:
                continue
            if not follow:
                return
            run = await self.get(run_id)
            if run.is_finished:
                final = await self.store.read_events(
                    run_id, after_id=max(after_id - _LOOKBACK, floor)
                )
                if all(e.event_id in seen for e in final):
                    return
                continue
            await self.store.wait_for_change(self.settings.poll_s, since=token)

    async def queues(self) -> builtins.list[QueueSpec]:
        """The queue limits declared so far (by workers at start, or ``declare``)."""
        return await self.store.list_queues()

    async def pools(self) -> builtins.list[PoolSpec]:
        """The pool strategies declared so far."""
        return await self.store.list_pools()

    async def queue_stats(self, *, window_s: float = 60.0) -> builtins.list[QueueStats]:
        """Per queue: pending, running, waiting, sleeping and paused runs, runs finished in the
        last ``window_s`` (throughput), and the age of the oldest due pending run."""
        return await self.store.queue_stats(now=self.clock.now(), window_s=window_s)

    async def queue_throughput(
        self, *, window_s: float = 3600.0, buckets: int = 60
    ) -> dict[str, dict[str, builtins.list[int]]]:
        """Per queue, runs finished in each of ``buckets`` equal slices of the last
        ``window_s`` (``{"completed": [...], "failed": [...]}``, oldest first): throughput over
        time, as the dashboard's queue page draws it."""
        if not (isinstance(buckets, int) and 1 <= buckets <= 1440):
            raise InvalidArgument(f"buckets must be an int from 1 to 1440, got {buckets!r}")
        if not 0 < window_s <= 31 * 86400:
            raise InvalidArgument(f"window_s must be > 0 and at most 31 days, got {window_s!r}")
        return await self.store.queue_throughput(
            now=self.clock.now(), window_s=window_s, buckets=buckets
        )

    async def cost(
        self,
        run_id: str | None = None,
        *,
        workflow: str | None = None,
        queue: str | None = None,
        since: datetime | timedelta | float | None = None,
        by: CostGroup | None = None,
    ) -> builtins.list[CostLine]:
        """What model calls cost, from the ledger: one :class:`CostLine` per model, workflow or
        UTC day (``by``), or a single total; filtered by run, workflow, queue and ``since`` (an
        aware datetime, or how far back: a timedelta or seconds). Costliest first.

        >>> client.cost(workflow="research", since=timedelta(hours=24), by="model")
        """
        if by is not None and by not in ("model", "workflow", "day"):
            raise InvalidArgument(f"cost by= must be 'model', 'workflow' or 'day', got {by!r}")
        start: datetime | None
        if since is None or isinstance(since, datetime):
            start = since
            if start is not None and start.tzinfo is None:
                raise InvalidArgument("cost since= needs an aware datetime (e.g. tzinfo=UTC)")
        else:
            seconds = since.total_seconds() if isinstance(since, timedelta) else float(since)
            if seconds < 0:
                raise InvalidArgument(f"cost since= must not be negative, got {since!r}")
            start = self.clock.now() - timedelta(seconds=seconds)
        from stepstone.core.ledger import CostQuery  # loaded by the first cost query

        query = CostQuery(run_id=run_id, workflow=workflow, queue=queue, since=start, by=by)
        return await self.store.cost(query)

    async def set_budget(
        self,
        budget: Budget | None,
        *,
        run_id: str | None = None,
        workflow: str | None = None,
        queue: str | None = None,
        key: str | None = None,
    ) -> None:
        """Store the model-call budget of one run, workflow, queue or concurrency key (exactly
        one of them); ``None`` removes it. Every worker checks it against the ledger before each
        call, so it holds across restarts and workers. A run paused by a budget goes on once
        the budget is raised and the run unpaused. A ``key`` budget counts the calls of every
        run started with that ``concurrency_key`` (one customer, one API key of yours).

        >>> client.set_budget(Budget(usd=5.0, period_s=86400), workflow="research")
        >>> client.set_budget(Budget(tokens=50_000, period_s=60, on_limit="wait"), key="acme")
        """
        named = [
            (s, n)
            for s, n in (("run", run_id), ("workflow", workflow), ("queue", queue), ("key", key))
        ]
        given = [(s, n) for s, n in named if n is not None]
        if len(given) != 1 or not given[0][1]:
            raise InvalidArgument(
                "set_budget needs exactly one of run_id=, workflow=, queue=, key="
            )
        scope, name = given[0]
        assert name is not None
        await self.store.set_budget(scope, name, budget, now=self.clock.now())  # type: ignore[arg-type]

    async def budgets(self) -> builtins.list[BudgetSpec]:
        """Every stored budget, by scope and name."""
        return await self.store.list_budgets()

    async def budget_use(self, run_id: str) -> builtins.list[BudgetUse]:
        """The budgets a run's next model call counts against, with what each has spent."""
        run = await self.get(run_id)
        return await self.store.budget_use(
            run.run_id,
            run.workflow,
            run.queue,
            now=self.clock.now(),
            key=run.routing.concurrency_key,
        )

    async def workers(self) -> builtins.list[WorkerInfo]:
        """The worker registry: id, host, pid, queues, labels, pool, capacity, load, version
        and last heartbeat (``alive_at(now)`` tells whether it is still beating)."""
        return await self.store.list_workers()

    async def lease(self, name: str) -> NamedLease | None:
        """The lease on ``name`` in the store (a worker's ``exclusive=name``; the skills
        daemon's), expired or not, or None: its holder, when it was taken and last renewed."""
        return await self.store.get_lease(name)

    async def check(self, *, unblock: bool = False) -> builtins.list[CheckResult]:
        """Replay every unfinished run of this client's workflows against the code now loaded,
        executing nothing; report which runs it can continue. ``unblock`` makes blocked runs that
        now replay cleanly pending again. Run it before a deploy."""
        runner = await self._get_runner()
        results = []
        active = tuple(s for s in ACTIVE_STATES)
        for wf in self.registry:
            runs = await self.store.list_runs(
                RunQuery(states=active, workflow=wf.name, limit=1_000_000)
            )
            for run in runs:
                result = await check_run(runner.runtime, Claim(run, "check", run.lease_token), wf)
                results.append(result)
                if unblock and result.ok and run.state is RunState.BLOCKED:
                    await self.store.retry_run(run.run_id, now=self.clock.now())
        return results

    async def replay(self, run_id: str, *, from_seq: int | None = None) -> ReplayResult:
        """Re-execute one run's workflow code (as this client loads it) against the run's
        journal, writing nothing: recorded outcomes and model replies are returned as recorded,
        and the first divergence (seq, step, expected, got) is reported. ``from_seq`` runs the
        ordinary steps from that seq on again (never model calls) and compares their results.

        >>> report = await client.replay("run-7")
        >>> report.ok or report.divergence
        """
        from stepstone.core.rerun import replay_run

        if from_seq is not None and (not isinstance(from_seq, int) or from_seq < 0):
            raise InvalidArgument(f"from_seq must be an int >= 0, got {from_seq!r}")
        run = await self.get(run_id)
        wf = self.registry.resolve(run.workflow)
        runner = await self._get_runner()
        return await replay_run(
            runner.runtime, Claim(run, "replay", run.lease_token), wf, from_seq=from_seq
        )


def _step_entries(step: StepRecord, fallback: datetime) -> builtins.list[TimelineEntry]:
    """A step is one entry when it finished (with its duration); a wait is also one when it
    began, so the time spent waiting shows."""
    label = step.name if step.kind is StepKind.STEP else f"{step.kind.value} {step.name!r}"
    started = step.started_at or step.finished_at or fallback
    entries = []
    waits = step.kind in (StepKind.SLEEP, StepKind.SIGNAL, StepKind.CHILD)
    if waits or step.finished_at is None:
        entries.append(TimelineEntry(started, "step", f"{label} began", step.seq))
    if step.finished_at is not None:
        duration = (step.finished_at - step.started_at).total_seconds() if step.started_at else None
        detail = f"{label} {step.status.value}"
        if step.attempts > 1:
            detail += f" after {step.attempts} attempts"
        if step.error is not None:
            detail += f": {step.error.type}: {step.error.message}"
        entries.append(TimelineEntry(step.finished_at, "step", detail, step.seq, duration))
    return entries


def _event_detail(kind: str, data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    if kind in ("attempt_failed", "failed") and isinstance(data.get("error"), dict):
        error = f"{data['error'].get('type', 'Error')}: {data['error'].get('message', '')}"
        if kind == "failed":
            return error
        return f"{data.get('step')} attempt {data.get('attempt')} failed: {error}"
    if kind in ("claimed", "recovered") and "worker" in data:
        return f"by {data['worker']}"
    if "waits" in data:
        waits = waits_from_event(data)
        return "waiting for " + ", ".join(describe_wait(w) for w in waits) if waits else ""
    return ", ".join(f"{k}={v}" for k, v in data.items())
