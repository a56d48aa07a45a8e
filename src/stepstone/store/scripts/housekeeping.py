"""Housekeeping: purging finished runs in batches, and copying runs out of and into a store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from stepstone.core.model import TERMINAL_STATES, RunExport, RunState
from stepstone.errors import InvalidArgument, RunNotFound, RunStateError
from stepstone.store.records import exports
from stepstone.store.scripts.inbox import import_desk
from stepstone.store.scripts.ledger import insert_entry
from stepstone.store.scripts.runs import get_run
from stepstone.store.scripts.tx import Tx

__all__ = [
    "PURGE_BATCH",
    "remove_run",
    "export_runs",
    "import_runs",
    "purge_batch",
    "purgeable_states",
]

PURGE_BATCH = 500  # runs per purge transaction, so other writers are never held up for long

HISTORY = (
    "delete_steps",
    "delete_signals",
    "delete_events",
    "delete_launches",
    "delete_inbox",
)
"""What goes with a deleted run: its journal, signals, events, launch mark and inbox items."""


def purgeable_states(states: Sequence[RunState]) -> list[str]:
    """The states to purge, checked: only finished runs may be purged."""
    kinds = [RunState(s).value for s in states]
    if not kinds or any(RunState(k) not in TERMINAL_STATES for k in kinds):
        raise InvalidArgument(f"purge: states must be finished states, got {kinds}")
    return kinds


async def purge_batch(tx: Tx, finished_before: datetime, kinds: list[str]) -> int:
    """Delete up to :data:`PURGE_BATCH` runs finished before ``finished_before`` in these states,
    with their :data:`HISTORY`; how many runs."""
    params = {"before": finished_before, "states": kinds, "limit": PURGE_BATCH}
    ids = [r["run_id"] for r in await tx.all("purgeable_runs", params)]
    for statement in (*HISTORY, "delete_runs"):
        await tx.run(statement, {"run_ids": ids})
    return len(ids)


async def remove_run(tx: Tx, run_id: str) -> None:
    """Delete one finished run with its :data:`HISTORY`; an unfinished run is left
    as it is (RunStateError naming its state), a missing one is RunNotFound."""
    if await tx.run("delete_finished_run", {"run_id": run_id}) != 1:
        run = await get_run(tx, run_id)
        if run is None:
            raise RunNotFound(run_id)
        finished = "a completed, failed or cancelled run"
        raise RunStateError(run_id, run.state.value, "delete", finished)
    for statement in HISTORY:
        await tx.run(statement, {"run_ids": [run_id]})


async def export_runs(tx: Tx, after_run_id: str | None, limit: int) -> list[RunExport]:
    """Up to ``limit`` runs after ``after_run_id`` (by id), each with its journal."""
    c = tx.columns
    runs = [c.run(r) for r in await tx.all("export_runs", {"after": after_run_id, "limit": limit})]
    ids = {"run_ids": [r.run_id for r in runs]}
    return exports(
        runs,
        [(r["run_id"], c.step(r)) for r in await tx.all("export_steps", ids)],
        [(r["run_id"], c.signal(r)) for r in await tx.all("export_signals", ids)],
        [(r["run_id"], c.event(r)) for r in await tx.all("export_events", ids)],
        [c.ledger(r) for r in await tx.all("export_ledger", ids)],
        [c.launch(r) for r in await tx.all("export_launches", ids)],
        [c.inbox_item(r) for r in await tx.all("export_inbox", ids)],
    )


async def import_runs(tx: Tx, runs: Sequence[RunExport]) -> int:
    """Add exported runs that are not here yet (by id); how many were added."""
    added = 0
    for export in runs:
        if await tx.run("import_run", tx.columns.run_columns(export.run)) != 1:
            continue  # already there (or copied by an earlier attempt): a no-op
        added += 1
        run_id = export.run.run_id
        for step in export.steps:
            await tx.run("record_step_if_absent", tx.columns.step_params(run_id, 0, step))
        for s in export.signals:
            params = {
                "run_id": run_id,
                "name": s.name,
                "payload": s.payload_json,
                "created_at": s.created_at,
                "consumed_seq": s.consumed_seq,
                "consumed_at": s.consumed_at,
                "problem": s.problem,
            }
            await tx.run("import_signal", params)
        for e in export.events:
            params = {
                "run_id": run_id,
                "idx": e.idx,
                "kind": e.kind,
                "data": e.data_json,
                "source": e.source,
                "created_at": e.created_at,
            }
            await tx.run("import_event", params)
        for entry in export.ledger:
            await insert_entry(tx, entry)
        await import_desk(tx, run_id, export.launch, export.inbox)
    return added
