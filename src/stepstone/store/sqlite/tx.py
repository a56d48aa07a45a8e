"""The store scripts' transaction on SQLite: named blocks on the open connection, parameters
converted (times to REAL epoch seconds, lists to JSON text), scripts driven synchronously.

SQLite's driver is synchronous and a commit must stay on the event loop's thread (a thread hop
would cost more than a whole step), so nothing here ever suspends: :func:`drive` runs a script
to its end inside the write transaction the store opened, in one ``send``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Coroutine
from datetime import datetime
from types import NoneType, TracebackType
from typing import Any, TypeVar

from stepstone.store.scripts.tx import Params
from stepstone.store.sqlite.rows import COLUMNS
from stepstone.store.sqlite.sql import Q

__all__ = ["SQLiteReads", "SQLiteTx", "drive"]

T = TypeVar("T")

_BLOCKS = Q.blocks
_PLAIN = frozenset({str, int, float, bool, NoneType})


def drive(script: Coroutine[Any, Any, T]) -> T:
    """Run ``script`` to completion now; it must never suspend (see the module docstring)."""
    try:
        script.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    script.close()
    raise RuntimeError("a store script suspended inside a SQLite transaction")


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return value


def _params(params: Params) -> Params:
    """``params`` as SQLite takes them; the same dict when nothing needs converting (a step's
    parameters come from the row codec already converted: the hot path builds nothing)."""
    if _PLAIN.issuperset(map(type, params.values())):
        return params
    return {k: _value(v) for k, v in params.items()}


class _Atomic:
    """Already inside the store's BEGIN IMMEDIATE: nothing to open."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


_ATOMIC = _Atomic()


class SQLiteTx:
    """A write transaction the store opened on ``conn`` (see :mod:`stepstone.store.scripts.tx`)."""

    __slots__ = ("conn",)

    attempt = 0  # SQLite never runs a write again: its commit is known
    columns = COLUMNS
    claims_in_one_statement = False
    record_step_logs_failures = False

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def one(self, name: str, params: Params) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(_BLOCKS[name], _params(params)).fetchone()
        return row

    async def all(self, name: str, params: Params) -> list[sqlite3.Row]:
        return self.conn.execute(_BLOCKS[name], _params(params)).fetchall()

    async def run(self, name: str, params: Params) -> int:
        return self.conn.execute(_BLOCKS[name], _params(params)).rowcount

    def atomic(self) -> _Atomic:
        return _ATOMIC


class SQLiteReads:
    """Reads outside a write transaction, through ``read`` (the store's locked, error-converting
    read of one statement)."""

    __slots__ = ("_read",)

    attempt = 0
    columns = COLUMNS
    claims_in_one_statement = False
    record_step_logs_failures = False

    def __init__(self, read: Callable[[str, Params], list[sqlite3.Row]]) -> None:
        self._read = read

    async def one(self, name: str, params: Params) -> sqlite3.Row | None:
        rows = self._read(_BLOCKS[name], _params(params))
        return rows[0] if rows else None

    async def all(self, name: str, params: Params) -> list[sqlite3.Row]:
        return self._read(_BLOCKS[name], _params(params))

    async def run(self, name: str, params: Params) -> int:
        raise RuntimeError(f"{name}: a read-only script wrote")

    def atomic(self) -> _Atomic:
        return _ATOMIC
