"""The inbox of launched runs: the launch mark, one row per outcome (written by the scripts that
change a run's state, in their transaction), listing and dismissing.

An outcome row is inserted only for runs marked by :func:`record_launch`; its key is
``(run_id, outcome, mark)`` with ``mark`` the lease token the change was made under, so a
transaction that runs again (PostgreSQL's retries) or a recovered run cannot add a second row
for one change, and none is lost: it commits or rolls back with the change itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from stepstone.core.model import ErrorInfo, InboxItem, InboxOutcome, Launch, Wait
from stepstone.core.resources import NOTIFY_EVENT
from stepstone.errors import InvalidArgument
from stepstone.store.scripts.tx import Tx

__all__ = [
    "count_unread",
    "dismiss",
    "import_desk",
    "list_inbox",
    "outcome_of_budget",
    "outcome_of_cancel",
    "outcome_of_end",
    "outcome_of_wait",
    "record_launch",
    "record_child_launch",
    "record_outcome",
    "server_now",
]

SUMMARY_MAX = 4000
"""A default summary (a result, an error) is cut to this many characters; ctx.notify's is not."""


async def record_launch(tx: Tx, launch: Launch, now: datetime) -> None:
    params = {
        "run_id": launch.run_id,
        "skill": launch.skill,
        "budget_usd": launch.budget_usd,
        "now": now,
    }
    await tx.run("record_launch", params)


async def record_child_launch(tx: Tx, parent_run_id: str, child_id: str, now: datetime) -> None:
    """Mark a child of a launched run (nothing for other runs): its waits for a human and its
    budget pauses then reach the inbox, named as the child of the launched run."""
    params = {"run_id": parent_run_id, "child_id": child_id, "now": now}
    await tx.run("launch_child", params)


async def record_outcome(
    tx: Tx,
    run_id: str,
    outcome: InboxOutcome,
    mark: int,
    summary: tuple[str, str],
    now: datetime,
) -> None:
    """The inbox row of this outcome, if the run was launched (``summary``: (level, text), the
    default when the run said nothing with ctx.notify)."""
    level, text = summary
    params: dict[str, Any] = {
        "run_id": run_id,
        "outcome": outcome,
        "mark": mark,
        "level": level,
        "summary": text,
        "notify_kind": NOTIFY_EVENT,
        "now": now,
    }
    await tx.run("record_outcome", params)


def outcome_of_end(output_json: str | None, error: ErrorInfo | None) -> tuple[str, str]:
    """The default (level, summary) of a completed or failed run."""
    if error is not None:
        return "error", _cut(f"{error.type}: {error.message}")
    value = json.loads(output_json) if output_json else None
    if isinstance(value, str):
        return "info", _cut(value)
    return "info", _cut(json.dumps(value, ensure_ascii=False, indent=2))


def outcome_of_cancel(reason: str) -> tuple[str, str]:
    return "warning", _cut(f"cancelled: {reason}")


def outcome_of_budget(reason: str) -> tuple[str, str]:
    return "warning", _cut(f"paused by a budget: {reason}")


def outcome_of_wait(waits: Sequence[Wait]) -> tuple[str, str] | None:
    """The default (level, summary) of a run parked on a signal (a question for a human), or
    None when it waits only for timers or children (nothing to answer)."""
    signals = [w for w in waits if w.kind == "signal"]
    if not signals:
        return None
    lines = []
    for wait in signals:
        info = wait.info
        text = (info.prompt or info.summary) if info is not None else None
        lines.append(f"waits for signal {wait.name!r}" + (f": {text}" if text else ""))
    return "warning", _cut("\n".join(lines))


def _cut(text: str) -> str:
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


async def list_inbox(tx: Tx, include_read: bool, limit: int) -> list[InboxItem]:
    if limit < 1:
        raise InvalidArgument(f"limit must be >= 1, got {limit}")
    rows = await tx.all("list_inbox", {"all": include_read, "limit": limit})
    return [tx.columns.inbox_item(r) for r in rows]


async def import_desk(
    tx: Tx, run_id: str, launch: Launch | None, items: Sequence[InboxItem]
) -> None:
    """A copied run's launch mark and inbox items, as they were (``db copy``). An item whose
    summary came from a ``ctx.notify`` points at the run's latest notify event here."""
    if launch is not None:
        params = {
            "run_id": run_id,
            "skill": launch.skill,
            "budget_usd": launch.budget_usd,
            "via": launch.via,
            "launched_at": tx.columns.time_out(launch.launched_at),
        }
        await tx.run("import_launch", params)
    for item in items:
        params = {
            "run_id": run_id,
            "skill": item.skill,
            "outcome": item.outcome,
            "mark": item.mark,
            "level": item.level,
            "summary": item.summary,
            "notified": item.notified,
            "notify_kind": NOTIFY_EVENT,
            "created_at": tx.columns.time_out(item.created_at),
            "read_at": tx.columns.time_out(item.read_at),
        }
        await tx.run("import_inbox", params)


async def server_now(tx: Tx) -> datetime:
    """The database's clock (doctor compares it with this process's)."""
    row = await tx.one("server_now", {})
    at = tx.columns.time_in(row["now"]) if row is not None else None
    assert at is not None
    return at


async def count_unread(tx: Tx) -> int:
    row = await tx.one("count_unread", {})
    return int(row["n"]) if row is not None else 0


async def dismiss(tx: Tx, run_id: str | None, now: datetime) -> int:
    """Mark unread items read: those of ``run_id``, or all (None); how many."""
    return await tx.run("dismiss_inbox", {"run_id": run_id, "now": now})
