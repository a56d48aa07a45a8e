"""The cost ledger: a priced model call written with its step, and the roll-ups over it."""

from __future__ import annotations

from stepstone.core.ledger import CostLine, CostQuery, LedgerEntry
from stepstone.store.scripts.tx import Tx

__all__ = ["cost", "insert_entry"]


async def insert_entry(tx: Tx, entry: LedgerEntry) -> None:
    """Write ``entry``; the caller runs it in the transaction that records its step."""
    call = entry.call
    params = {
        "run_id": entry.run_id,
        "seq": entry.seq,
        "step": entry.step,
        "workflow": entry.workflow,
        "queue": entry.queue,
        "model": call.model,
        "input_tokens": call.input_tokens,
        "output_tokens": call.output_tokens,
        "cache_read_tokens": call.cache_read_tokens,
        "cache_write_tokens": call.cache_write_tokens,
        "cost_usd": call.cost_usd,
        "latency_s": call.latency_s,
        "created_at": tx.columns.time_out(entry.created_at),
    }
    await tx.run("insert_ledger", params)


async def cost(tx: Tx, query: CostQuery) -> list[CostLine]:
    params = {
        "by": query.by,
        "run_id": query.run_id,
        "workflow": query.workflow,
        "queue": query.queue,
        "since": tx.columns.time_out(query.since),
    }
    return [
        CostLine(
            key=r["key"],
            calls=r["calls"],
            input_tokens=r["input_tokens"],
            output_tokens=r["output_tokens"],
            cache_read_tokens=r["cache_read_tokens"],
            cache_write_tokens=r["cache_write_tokens"],
            cost_usd=float(r["cost_usd"]),
            latency_s=float(r["latency_s"]),
        )
        for r in await tx.all("cost_rollup", params)
    ]
