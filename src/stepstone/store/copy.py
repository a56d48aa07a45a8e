"""Copy everything from one store to another (SQLite to PostgreSQL and back), so a user who
starts embedded can grow without losing history.

Runs are copied in run-id order in batches, each with its journal, signals and events, plus the
declared queues and pools. Runs already in the destination are skipped, so an interrupted copy
can simply be started again. Workers are not copied: they register themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from stepstone.core.port import Store

__all__ = ["CopyReport", "copy_store"]


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What a copy did."""

    runs_seen: int
    runs_added: int
    steps: int
    signals: int
    events: int
    queues: int
    pools: int


async def copy_store(
    source: Store,
    target: Store,
    *,
    now: datetime,
    batch: int = 500,
    progress: Callable[[int, int], None] | None = None,
) -> CopyReport:
    """Copy every run (with its steps, signals and events), queue and pool from ``source`` into
    ``target``; ``progress(seen, added)`` is called after each batch."""
    queues = await source.list_queues()
    if queues:
        await target.declare_queues(queues, now=now)
    pools = await source.list_pools()
    if pools:
        await target.declare_pools(pools, now=now)
    seen = added = steps = signals = events = 0
    after: str | None = None
    while True:
        exported = await source.export_runs(after_run_id=after, limit=batch)
        if not exported:
            break
        added += await target.import_runs(exported)
        seen += len(exported)
        steps += sum(len(e.steps) for e in exported)
        signals += sum(len(e.signals) for e in exported)
        events += sum(len(e.events) for e in exported)
        after = exported[-1].run.run_id
        if progress is not None:
            progress(seen, added)
    return CopyReport(seen, added, steps, signals, events, len(queues), len(pools))
