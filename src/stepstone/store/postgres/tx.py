"""The store scripts' transaction on PostgreSQL: named blocks awaited on the writer's connection
(or, for reads, one retried statement at a time). Parameters need no conversion: sessions run in
UTC, so aware datetimes go both ways, and lists are arrays."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from stepstone.store.postgres.connection import Conn
from stepstone.store.postgres.rows import COLUMNS
from stepstone.store.postgres.sql import Q
from stepstone.store.scripts.tx import Params

__all__ = ["PostgresReads", "PostgresTx"]

_BLOCKS = Q.blocks


class PostgresTx:
    """A write on the writer's connection, inside the transaction the writer opened (or alone in
    autocommit when it is one statement). ``attempt`` > 0: an earlier attempt may have committed
    without its answer arriving (see :mod:`stepstone.store.postgres.writer`)."""

    __slots__ = ("attempt", "conn")

    columns = COLUMNS
    claims_in_one_statement = True  # find_claimable and claim_run take and log in one CTE
    record_step_logs_failures = True  # record_step's CTE appends a failed attempt's event

    def __init__(self, conn: Conn, attempt: int) -> None:
        self.conn = conn
        self.attempt = attempt

    async def one(self, name: str, params: Params) -> dict[str, Any] | None:
        cur = await self.conn.execute(_BLOCKS[name], params)
        return await cur.fetchone() if cur.description is not None else None

    async def all(self, name: str, params: Params) -> list[dict[str, Any]]:
        cur = await self.conn.execute(_BLOCKS[name], params)
        return await cur.fetchall() if cur.description is not None else []

    async def run(self, name: str, params: Params) -> int:
        cur = await self.conn.execute(_BLOCKS[name], params)
        return cur.rowcount

    def atomic(self) -> AbstractAsyncContextManager[Any]:
        return self.conn.transaction()


class PostgresReads:
    """Reads, each statement on a pooled connection through ``rows`` (the store's read, which
    retries while the database is unreachable)."""

    __slots__ = ("_rows",)

    attempt = 0
    columns = COLUMNS
    claims_in_one_statement = True
    record_step_logs_failures = True

    def __init__(self, rows: Callable[[str, Params], Awaitable[list[dict[str, Any]]]]) -> None:
        self._rows = rows

    async def one(self, name: str, params: Params) -> dict[str, Any] | None:
        rows = await self._rows(_BLOCKS[name], params)
        return rows[0] if rows else None

    async def all(self, name: str, params: Params) -> list[dict[str, Any]]:
        return await self._rows(_BLOCKS[name], params)

    async def run(self, name: str, params: Params) -> int:
        raise RuntimeError(f"{name}: a read-only script wrote")

    def atomic(self) -> AbstractAsyncContextManager[Any]:
        raise RuntimeError("a read-only script opened a transaction")
