"""The transaction a store script runs in: named statements, their rows, the dialect's codec.

A script (``async def op(tx: Tx, ...)``, in the modules beside this one) is the one definition
of an operation's rules and the order of its statements. Each adapter implements :class:`Tx`
over its own connection: it looks the block up by name in its ``queries.sql`` (same names in
every dialect), converts parameters (SQLite stores times as REAL epoch seconds and lists as JSON
text; PostgreSQL takes datetimes and arrays) and lets its driver's errors through to its edge.
SQLite's implementation never suspends, so the SQLite store drives a script to completion
synchronously inside its write transaction (:func:`stepstone.store.sqlite.tx.drive`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from stepstone.store.records import Columns, Row

__all__ = ["Params", "Row", "Tx"]

Params = dict[str, Any]


class Tx(Protocol):
    """One open transaction (or, for reads, one connection) of a store.

    ``attempt``: how many times this write ran before. Above 0, an earlier attempt may have
    committed without its answer arriving (PostgreSQL's writer retries across lost
    connections), and the script recognises its own commit by the ``now`` it stamped; a store
    that never retries (SQLite) always says 0.

    ``claims_in_one_statement``: ``find_claimable`` with ``take`` also claims (and logs) the
    candidates when none of their queues is limited (PostgreSQL: one CTE with ``FOR UPDATE SKIP
    LOCKED``). Without it (SQLite), the claim script takes each candidate with ``claim_run``.

    ``record_step_logs_failures``: ``record_step`` also appends the ``attempt_failed`` event of
    a failed attempt (its ``failed_attempt`` parameter) in the same statement (PostgreSQL: a
    CTE, so the retry path costs no round trip more); without it (SQLite), the script appends
    it with ``insert_event`` in the same transaction.
    """

    attempt: int
    columns: Columns
    claims_in_one_statement: bool
    record_step_logs_failures: bool

    async def one(self, name: str, params: Params) -> Row | None:
        """Execute block ``name``; its first row, or None."""
        ...

    async def all(self, name: str, params: Params) -> Sequence[Row]:
        """Execute block ``name``; every row it returns."""
        ...

    async def run(self, name: str, params: Params) -> int:
        """Execute block ``name``; how many rows it changed (or returned, for a SELECT)."""
        ...

    def atomic(self) -> AbstractAsyncContextManager[Any]:
        """The statements inside commit together (a transaction, or a savepoint inside one)."""
        ...
