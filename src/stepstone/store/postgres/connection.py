"""The connections of one store on one event loop: a pool, the writer's connection, a few kept
read connections, and the listening connection that turns NOTIFY into wake-ups.

Pool connections are autocommit (a one-statement write is one round trip) and run in UTC with
``synchronous_commit`` forced on (a recorded step is durable before the call returns). The pool
replaces broken connections with backoff; a connection found broken is handed back to it, never
reused. The listener is a dedicated autocommit connection, re-established with backoff when it is
lost; while it is down, waiting falls back to polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from stepstone.core.frozen import frozen
from stepstone.errors import StoreError
from stepstone.store.postgres.sql import Q

__all__ = ["Changes", "Conn", "Link", "LinkSettings"]

log = logging.getLogger("stepstone.store.postgres")

Conn = psycopg.AsyncConnection[DictRow]

_KEEP_READERS = 4  # read connections kept out of the pool (a pool checkout costs ~60 µs)
_LISTEN_BACKOFF_S = (0.05, 2.0)
_POLL_WITHOUT_LISTENER_S = 0.1
_FIRST_LISTEN_S = 2.0  # how long a first token or wait waits for the listener to connect


@frozen
class LinkSettings:
    """How to connect: the libpq conninfo (with stepstone's session options), the redacted URL
    for messages, and the password to keep out of them."""

    conninfo: str
    url: str
    secret: str | None
    pool_size: int
    synchronous_commit: str

    @classmethod
    def from_url(
        cls, url: str, redacted: str, *, pool_size: int, synchronous_commit: str
    ) -> LinkSettings:
        params = conninfo_to_dict(url)
        options = str(params.get("options") or "")
        # Every statement is one of a fixed set (queries.sql), prepared on first use: a generic
        # plan saves the planning (0.3-1 ms for the claim statements) on every execution. Each
        # of them has an index path; a sequential scan is only ever chosen from statistics taken
        # while a table was small, and a generic plan keeps it until the next ANALYZE, so the
        # step fence scanned every run on each step of a table that had grown since (measured:
        # 0.02 ms -> 0.6 ms per step write with 10,000 runs). Index paths are always taken.
        # For the same reason a bitmap scan is not: it reads every match before the sort and
        # LIMIT of a claim (a claim of 64 read all 1,446 due runs of a backlog), where an index
        # scan walks runs_due in claim order and stops. No statement gains from parallel
        # workers, which a generic plan of a 1M-row table started to find nothing (8 ms).
        session = (
            f"-c TimeZone=UTC -c synchronous_commit={synchronous_commit} "
            "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off "
            "-c enable_bitmapscan=off -c max_parallel_workers_per_gather=0"
        )
        params["options"] = f"{options} {session}".strip()
        params.setdefault("application_name", "stepstone")
        params.setdefault("connect_timeout", "10")
        secret = params.get("password")
        conninfo = psycopg.conninfo.make_conninfo("", **params)
        password = str(secret) if secret else None
        if password:  # e.g. ?password=... which redact_url does not know about
            redacted = redacted.replace(password, "***")
        return cls(conninfo, redacted, password, pool_size, synchronous_commit)


def healthy(conn: Conn) -> bool:
    return not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE


async def connect(conninfo: str, **extra: Any) -> Conn:
    conn: Conn = await psycopg.AsyncConnection.connect(
        conninfo, autocommit=True, row_factory=dict_row, **extra
    )
    return conn


class Link:
    """One store's connections on the running event loop (see the module docstring)."""

    def __init__(self, settings: LinkSettings) -> None:
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        self.pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            settings.conninfo,
            kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": 0},
            min_size=1,
            max_size=max(settings.pool_size, 2),
            open=False,
            name="stepstone",
        )
        self.changes = Changes(settings.conninfo)
        self._writer: Conn | None = None
        self._idle: list[Conn] = []
        self._opened = False
        self.closed = False

    async def open(self) -> None:
        if not self._opened:
            await self.pool.open(wait=False)
            self._opened = True

    async def _getconn(self, deadline: float) -> Conn:
        if self.closed:
            raise StoreError(self.settings.url, "the store is closed")
        timeout = max(deadline - self.loop.time(), 0.05)
        conn: Conn = await self.pool.getconn(timeout=timeout)
        return conn

    async def writer(self, deadline: float) -> Conn:
        """The connection writes go through (held: one batch is in flight per loop)."""
        conn = self._writer
        if conn is not None:
            if healthy(conn):
                return conn
            await self.discard(conn)
        conn = self._writer = await self._getconn(deadline)
        return conn

    async def drop_writer(self) -> None:
        """The writer's connection failed or was interrupted: never use it again."""
        conn, self._writer = self._writer, None
        if conn is not None:
            await self.discard(conn)

    async def reader(self, deadline: float) -> Conn:
        while self._idle:
            conn = self._idle.pop()
            if healthy(conn):
                return conn
            await self.discard(conn)
        return await self._getconn(deadline)

    async def release(self, conn: Conn) -> None:
        if healthy(conn) and len(self._idle) < _KEEP_READERS:
            self._idle.append(conn)
        else:
            await self.discard(conn)

    async def discard(self, conn: Conn) -> None:
        """Give a connection back to the pool, which closes and replaces it if it is broken or
        was interrupted mid-statement (and rolls back one left in a transaction)."""
        with contextlib.suppress(Exception):
            await self.pool.putconn(conn)

    async def check(self) -> None:
        """After a connection failure (often all of them: a restart, a failover): hand the kept
        read connections back and let the pool test every idle one now, not one failed statement
        at a time."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await self.discard(conn)
        with contextlib.suppress(Exception):
            await self.pool.check()

    async def close(self) -> None:
        self.closed = True
        await self.changes.close()
        await self.drop_writer()
        idle, self._idle = self._idle, []
        for conn in idle:
            await self.discard(conn)
        if self._opened:
            await self.pool.close(timeout=5)

    def abandon(self) -> None:
        """Forget the connections of a loop that is gone (they cannot be closed from here)."""
        for conn in [*self._idle, *([self._writer] if self._writer else [])]:
            with contextlib.suppress(Exception):
                conn.pgconn.finish()
        self.changes.abandon()


class Changes:
    """Wake-ups on this loop: local commits and NOTIFY from any process wake every waiter.

    ``count`` numbers the changes heard of; a caller takes it as a token *before* reading what
    it will wait on, and a wait returns at once if anything was heard since.
    """

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._waiters: set[asyncio.Future[None]] = set()
        self.count = 0
        self.listening = False
        self._tried = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: Conn | None = None

    def wake(self) -> None:
        self.count += 1
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)

    async def token(self) -> int:
        await self._start(_FIRST_LISTEN_S)
        return self.count

    async def _start(self, timeout_s: float) -> None:
        """Start listening (once); wait up to ``timeout_s`` for the first attempt to finish."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._listen(), name="stepstone-listen"
            )
        if not self._tried.is_set() and timeout_s > 0:
            # asyncio.wait, not wait_for: on Python 3.11 wait_for loses a cancellation that
            # lands as the awaited event fires, and the caller's loop would never stop
            tried = asyncio.ensure_future(self._tried.wait())
            try:
                await asyncio.wait([tried], timeout=timeout_s)
            finally:
                tried.cancel()

    async def wait(self, timeout_s: float, since: object = None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        await self._start(min(timeout_s, _FIRST_LISTEN_S))
        if isinstance(since, int) and since != self.count:
            return
        remaining = deadline - loop.time()
        if not self.listening:
            remaining = min(remaining, _POLL_WITHOUT_LISTENER_S)
        if remaining <= 0:
            return
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.add(fut)
        try:
            await asyncio.wait([fut], timeout=remaining)
        finally:
            self._waiters.discard(fut)
            if not fut.done():
                fut.cancel()

    async def _listen(self) -> None:
        delay = _LISTEN_BACKOFF_S[0]
        while True:
            try:
                # keepalives: a server that vanished without closing the socket is noticed
                conn = self._conn = await connect(
                    self._conninfo, keepalives_idle=10, keepalives_interval=5, keepalives_count=3
                )
                async with conn:
                    await conn.execute(Q.listen)
                    self.listening = True
                    self._tried.set()
                    delay = _LISTEN_BACKOFF_S[0]
                    self.wake()  # changes made while nobody listened are not replayed
                    async for _ in conn.notifies():
                        self.wake()
            except psycopg.Error as exc:
                if self.listening:
                    log.warning("lost the LISTEN connection (%s); reconnecting", exc)
            finally:
                self.listening = False
                self._conn = None
            self._tried.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _LISTEN_BACKOFF_S[1])

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.wake()

    def abandon(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.pgconn.finish()
