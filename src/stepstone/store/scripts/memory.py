"""Durable memory (``ctx.memory``): documents read and written by runs, compare-and-set.

A run's write is made by :func:`write_memory` inside the transaction that records its step, on
the version the step read. A write whose commit went unanswered and runs again (PostgreSQL's
writer retries) finds its own write in place (the row names its run and step at the next
version) and counts it as done, so a retried transaction cannot turn into a conflict and run
an update twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from stepstone.core.memory import MemoryDoc, MemoryWrite
from stepstone.errors import MemoryConflict
from stepstone.store.scripts.tx import Tx

__all__ = [
    "delete_memory",
    "get_memory",
    "import_memory",
    "list_memory",
    "put_memory",
    "write_memory",
]


def _address(scope: str, owner: str, key: str) -> dict[str, object]:
    return {"scope": scope, "owner": owner, "key": key}


async def get_memory(tx: Tx, scope: str, owner: str, key: str) -> MemoryDoc | None:
    row = await tx.one("get_memory", _address(scope, owner, key))
    return None if row is None else tx.columns.memory_doc(row)


async def write_memory(
    tx: Tx, run_id: str, seq: int, write: MemoryWrite, now: datetime | None
) -> None:
    """Land ``write`` on its expected version, or raise MemoryConflict (the caller's
    transaction, with the step's record, then rolls back)."""
    params = _address(write.scope, write.owner, write.key)
    params |= {
        "value": write.value_json,
        "run_id": run_id,
        "seq": seq,
        "now": tx.columns.time_out(now),
        "expected": write.expected,
    }
    name = "create_memory" if write.expected == 0 else "update_memory"
    if await tx.run(name, params) == 1:
        return
    row = await tx.one("get_memory", _address(write.scope, write.owner, write.key))
    found = 0 if row is None else int(row["version"])
    if (
        row is not None
        and found == write.expected + 1
        and (row["run_id"], row["seq"])
        == (
            run_id,
            seq,
        )
    ):
        return  # this step's own write, committed by an earlier try of this transaction
    where = f"{write.scope}/{write.owner + '/' if write.owner else ''}{write.key}"
    raise MemoryConflict(where, write.expected, found)


async def put_memory(
    tx: Tx, scope: str, owner: str, key: str, value_json: str, now: datetime
) -> int:
    params = _address(scope, owner, key)
    params |= {"value": value_json, "run_id": None, "seq": None, "now": tx.columns.time_out(now)}
    row = await tx.one("put_memory", params)
    assert row is not None  # RETURNING
    return int(row["version"])


async def delete_memory(tx: Tx, scope: str, owner: str, key: str) -> bool:
    return await tx.run("delete_memory", _address(scope, owner, key)) > 0


async def list_memory(tx: Tx, scope: str | None, owner: str | None, limit: int) -> list[MemoryDoc]:
    params = {"scope": scope, "owner": owner, "limit": limit}
    return [tx.columns.memory_doc(r) for r in await tx.all("list_memory", params)]


async def import_memory(tx: Tx, docs: Sequence[MemoryDoc]) -> int:
    """Add the copied documents not here yet, as they are; how many were added."""
    added = 0
    for d in docs:
        params = _address(d.scope, d.owner, d.key)
        params |= {
            "value": d.value_json,
            "version": d.version,
            "run_id": d.run_id,
            "seq": d.seq,
            "now": tx.columns.time_out(d.updated_at),
        }
        added += await tx.run("import_memory", params)
    return added
