"""Copy everything from one store to another (SQLite to PostgreSQL and back), so a user who
starts embedded can grow without losing history.

Runs are copied in run-id order in batches, each with its journal, signals, events, the ledger
rows of its model calls, its launch mark and its inbox items (read or not), plus the declared
queues and pools, the schedules (as they are: paused or not, next fire time) and the memory
documents (ctx.memory, versions kept). Ledger rows of runs purged before the copy stay behind.
Runs, schedules and documents already in the destination are skipped, so an interrupted copy
can simply be started again. Workers are not copied: they register themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from stepstone.core.bounds import INT_MAX, INT_MIN
from stepstone.core.frozen import frozen
from stepstone.core.model import RunExport
from stepstone.core.port import Store
from stepstone.errors import StepstoneError

__all__ = ["MEMORY_MAX", "CopyReport", "copy_store", "uncopyable"]

MEMORY_MAX = 10_000_000
"""Memory documents copied at most (all of them, in practice)."""


@frozen
class CopyReport:
    """What a copy did."""

    runs_seen: int
    runs_added: int
    steps: int
    signals: int
    events: int
    queues: int
    pools: int
    schedules: int = 0
    """Schedules added (those already in the target are skipped)."""
    refused: tuple[tuple[str, str], ...] = ()
    """Runs not copied, each with why (a value the target cannot hold, or its error)."""
    ledger: int = 0
    """Ledger rows (priced model calls) of the runs seen."""
    memory: int = 0
    """Memory documents added (those already in the target are kept)."""
    inbox: int = 0
    """Inbox items of the runs seen (launched runs' outcomes)."""


async def copy_store(
    source: Store,
    target: Store,
    *,
    now: datetime,
    batch: int = 500,
    progress: Callable[[int, int], None] | None = None,
) -> CopyReport:
    """Copy every run (with its steps, signals and events), queue, pool and schedule from
    ``source`` into ``target``; ``progress(seen, added)`` is called after each batch."""
    queues = await source.list_queues()
    if queues:
        await target.declare_queues(queues, now=now)
    pools = await source.list_pools()
    if pools:
        await target.declare_pools(pools, now=now)
    schedules = await target.import_schedules(await source.list_schedules())
    memory = await target.import_memory(await source.list_memory(limit=MEMORY_MAX))
    seen = added = steps = signals = events = 0
    refused: list[tuple[str, str]] = []
    ledger = inbox = 0
    after: str | None = None
    while True:
        exported = await source.export_runs(after_run_id=after, limit=batch)
        if not exported:
            break
        fit = []
        for e in exported:
            problem = uncopyable(e)
            if problem is None:
                fit.append(e)
            else:
                refused.append((e.run.run_id, problem))
        added += await _import(target, fit, refused)
        seen += len(exported)
        steps += sum(len(e.steps) for e in exported)
        signals += sum(len(e.signals) for e in exported)
        events += sum(len(e.events) for e in exported)
        ledger += sum(len(e.ledger) for e in exported)
        inbox += sum(len(e.inbox) for e in exported)
        after = exported[-1].run.run_id
        if progress is not None:
            progress(seen, added)
    return CopyReport(
        seen,
        added,
        steps,
        signals,
        events,
        len(queues),
        len(pools),
        schedules=schedules,
        refused=tuple(refused),
        ledger=ledger,
        memory=memory,
        inbox=inbox,
    )


def uncopyable(export: RunExport) -> str | None:
    """Why every store could not hold this run as it is (None: it fits). SQLite holds any
    64-bit integer where PostgreSQL's columns are ``integer``."""
    run = export.run
    if not INT_MIN <= run.priority <= INT_MAX:
        return f"priority {run.priority} is outside {INT_MIN}..{INT_MAX}"
    for step in export.steps:
        if not 0 <= step.seq <= INT_MAX:
            return f"step #{step.seq} is outside 0..{INT_MAX}"
    return None


async def _import(target: Store, runs: list[RunExport], refused: list[tuple[str, str]]) -> int:
    """Import a batch; if the target refuses it, import run by run to name the culprit(s)."""
    if not runs:
        return 0
    try:
        return await target.import_runs(runs)
    except StepstoneError:
        pass
    added = 0
    for export in runs:
        try:
            added += await target.import_runs([export])
        except StepstoneError as exc:
            refused.append((export.run.run_id, str(exc)))
    return added
