"""What Claude Code's SessionStart hook prints: the unread inbox, read without the engine.

The hook runs at every session start, so on the embedded store (SQLite) it reads the inbox
with ``sqlite3`` alone — read-only, the store's own named queries, no asyncio, no client —
and prints Claude Code's JSON. Anything it cannot read that way (PostgreSQL, a store whose
schema is not this version's) is left to the full command (:func:`read_unread` returns None).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

__all__ = ["EVENT", "SHOWN", "UnreadItem", "read_unread", "session_start_output"]

EVENT = "SessionStart"
SHOWN = 10
"""How many unread items the hook lists (the newest are counted, the oldest shown)."""


class Item(Protocol):
    """What the hook shows of an inbox item (an InboxItem has it)."""

    @property
    def run_id(self) -> str: ...
    @property
    def skill(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def summary(self) -> str: ...


class UnreadItem(NamedTuple):
    run_id: str
    skill: str
    outcome: str
    summary: str


def read_unread(path: Path) -> tuple[list[UnreadItem], int] | None:
    """The first :data:`SHOWN` unread items and how many there are, read from the SQLite store
    at ``path`` (([], 0) when there is no file); None when it cannot be read here (the full
    command then reads it through the store)."""
    if not path.exists():
        return [], 0
    from stepstone.store.sqlite.sql import LATEST, Q

    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
    except sqlite3.Error:
        return None
    try:
        if not conn.execute(Q.has_schema_table).fetchone()[0]:
            return None
        if conn.execute(Q.schema_version).fetchone()[0] != LATEST:
            return None
        conn.row_factory = sqlite3.Row
        unread = int(conn.execute(Q.count_unread).fetchone()[0])
        if not unread:
            return [], 0
        rows = conn.execute(Q.list_inbox, {"all": False, "limit": SHOWN}).fetchall()
        items = [UnreadItem(r["run_id"], r["skill"], r["outcome"], r["summary"]) for r in rows]
        return items, unread
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def session_start_output(items: Sequence[Item], unread: int) -> str | None:
    """What the hook prints: Claude Code's JSON for a SessionStart hook, whose
    ``additionalContext`` lists the unread items (the first ``len(items)`` of ``unread``);
    None when nothing is unread (the hook prints nothing)."""
    if unread == 0:
        return None
    lines = [f"stepstone inbox: {unread} unread result(s) of launched skills"]
    for item in items:
        first = (item.summary.strip().splitlines() or [""])[0]
        first = first if len(first) <= 160 else first[:159] + "…"
        lines.append(f"- {item.skill} {item.outcome} (run {item.run_id}): {first}")
    if unread > len(items):
        lines.append(f"- ... and {unread - len(items)} more")
    lines.append("Read them with `stepstone inbox`; mark them read with `stepstone dismiss RUN`.")
    payload = {
        "hookSpecificOutput": {"hookEventName": EVENT, "additionalContext": "\n".join(lines)}
    }
    return json.dumps(payload, ensure_ascii=False)
