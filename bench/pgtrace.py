"""Counting what stepstone sends to PostgreSQL: round trips and statements (by the name of their
``queries.sql`` block), by patching psycopg's async connection and cursor in this process only.

Used by ``bench/profile_postgres.py`` in-process, and by worker processes of
``bench/stepstone_pg_bench.py`` when ``BENCH_TRACE_FILE`` names a file to write their counts to.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from stepstone.store.postgres.sql import Q

BLOCK_NAMES = {body: name for name, body in Q.blocks.items()}


class Tracer:
    """Counts round trips and statements by patching psycopg's async connection and cursor."""

    def __init__(self) -> None:
        self.round_trips: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()
        self._saved: tuple[Any, Any] | None = None

    def __enter__(self) -> Tracer:
        wait, execute = psycopg.AsyncConnection.wait, psycopg.AsyncCursor.execute
        self._saved = (wait, execute)
        trips, statements = self.round_trips, self.statements

        async def traced_wait(conn: Any, gen: Any, *args: Any, **kwargs: Any) -> Any:
            kind = getattr(gen, "__qualname__", "?")
            if kind != "notifies":  # the listener's wait for NOTIFY is not a round trip
                trips[kind] += 1
            return await wait(conn, gen, *args, **kwargs)

        async def traced_execute(cur: Any, query: Any, params: Any = None, **kw: Any) -> Any:
            text = str(query)
            statements[BLOCK_NAMES.get(text, " ".join(text.split())[:50])] += 1
            return await execute(cur, query, params, **kw)

        psycopg.AsyncConnection.wait = traced_wait  # type: ignore[method-assign]
        psycopg.AsyncCursor.execute = traced_execute  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._saved is not None
        psycopg.AsyncConnection.wait, psycopg.AsyncCursor.execute = self._saved  # type: ignore[method-assign]

    def clear(self) -> None:
        self.round_trips.clear()
        self.statements.clear()


def trace_to_file_on_exit() -> Tracer | None:
    """With ``BENCH_TRACE_FILE`` set, start counting now; :func:`dump` writes the counts to that
    file, and each SIGUSR1 writes the counts so far to ``<file>.<k>`` (k = 1, 2, ...)."""
    if not os.environ.get("BENCH_TRACE_FILE"):
        return None
    tracer = Tracer().__enter__()
    snapshots = iter(range(1, 1_000_000))

    def snapshot(signum: int, frame: object) -> None:
        dump(tracer, f".{next(snapshots)}")

    signal.signal(signal.SIGUSR1, snapshot)
    return tracer


def dump(tracer: Tracer | None, suffix: str = "") -> None:
    if tracer is None:
        return
    counts = {"round_trips": tracer.round_trips, "statements": tracer.statements}
    path = Path(os.environ["BENCH_TRACE_FILE"] + suffix)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(counts))
    tmp.replace(path)
