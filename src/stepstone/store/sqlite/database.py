"""One SQLite file as the store uses it: its connection, reads, group-committed writes and
change detection (connecting is :mod:`.connection`, the schema :mod:`.schema`).

Writes are queued per event loop and committed together on the next loop iteration in one
``BEGIN IMMEDIATE`` transaction (group commit), each in its own savepoint so one failing write
cannot undo the others; when no other task is ready to run, a write commits at once, so the
sequential path pays neither a loop iteration nor a thread hop. Checkpoints commit with
``synchronous=NORMAL`` (a power loss can only make a step run again); writes acknowledged to a
caller (a new run, a signal, a cancel) commit with ``FULL``. Several processes may share the file:
SQLite's write lock serialises them, and each process sees the others' commits through
``PRAGMA data_version``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from stepstone.core.loops import others_ready
from stepstone.errors import InvalidArgument, StoreError
from stepstone.store.sqlite import schema
from stepstone.store.sqlite.checkpoint import Checkpointer
from stepstone.store.sqlite.connection import DatabaseFile, open_connection

__all__ = ["Database"]

T = TypeVar("T")


class _Op:
    """A write waiting for the next group commit (plain classes: a dataclass costs ~0.5 ms of
    every command's start-up)."""

    __slots__ = ("fn", "full", "future")

    def __init__(
        self, fn: Callable[[sqlite3.Connection], Any], future: asyncio.Future[Any], full: bool
    ) -> None:
        self.fn = fn
        self.future = future
        self.full = full


class _LoopQueue:
    """One loop's writes waiting for the next group commit."""

    __slots__ = ("ops", "scheduled")

    def __init__(self) -> None:
        self.ops: list[_Op] = []
        self.scheduled = False


class Database:
    """One SQLite file: its connection, schema, group-committed writes and change detection."""

    def __init__(
        self,
        path: str | Path,
        *,
        durability: Literal["normal", "full"] = "normal",
        auto_migrate: bool = False,
        busy_timeout_s: float = 10.0,
        poll_s: float = 0.01,
    ) -> None:
        if durability not in ("normal", "full"):
            raise InvalidArgument(f"durability must be 'normal' or 'full', got {durability!r}")
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        self.durability = durability
        # an in-memory database starts empty and dies with the store: it is always migrated
        self.memory = self.path == ":memory:"
        self.auto_migrate = auto_migrate or self.memory
        self.busy_timeout_s = busy_timeout_s
        self.poll_s = poll_s
        self.file = DatabaseFile(self.path, self.url, busy_timeout_s)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._queues: dict[asyncio.AbstractEventLoop, _LoopQueue] = {}
        self._synchronous = ""
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        self._checkpointer: Checkpointer | None = None
        self._local_commits = 0
        self._closed = False

    # --- connection and errors --------------------------------------------------------------

    def _convert(self, exc: sqlite3.Error) -> StoreError:
        return self.file.error(exc)

    def _connection(self, *, check_schema: bool = True) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if self._closed:
            raise StoreError(self.url, "the store is closed")
        conn = open_connection(self.file, create=self.auto_migrate or not check_schema)
        self._synchronous = "NORMAL"
        try:
            if check_schema:
                schema.check_schema(self.file, conn, auto_migrate=self.auto_migrate)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        if not self.memory:
            self._checkpointer = Checkpointer(
                str(Path(self.path).expanduser()), self.busy_timeout_s
            )
            self._checkpointer.start()
        return conn

    async def migrate(self) -> list[str]:
        with self._lock:
            return schema.apply_migrations(self.file, self._connection(check_schema=False))

    async def schema_status(self) -> tuple[int, int]:
        if self.memory:  # only the store's own connection sees its database
            with self._lock:
                return schema.schema_version(self.file, self._connection()), schema.LATEST
        return schema.schema_version(self.file), schema.LATEST

    async def close(self) -> None:
        await self._drain()
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    async def _drain(self) -> None:
        """Flush this loop's queued writes (used before closing)."""
        queue = self._queues.get(asyncio.get_running_loop())
        if queue is not None and queue.ops:
            self._flush(queue)

    # --- reads and writes -------------------------------------------------------------------

    def read(self, sql: str, params: dict[str, Any] | tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            conn = self._connection()
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._convert(exc) from exc

    def read_one(
        self, sql: str, params: dict[str, Any] | tuple[Any, ...] = ()
    ) -> sqlite3.Row | None:
        rows = self.read(sql, params)
        return rows[0] if rows else None

    async def write(self, fn: Callable[[sqlite3.Connection], T], *, full: bool = False) -> T:
        """Run ``fn`` in a write transaction and return its result.

        When other tasks are ready to run on this loop, the write is queued and committed with
        theirs on the next iteration (group commit). When none are, nothing could join the batch,
        so it commits at once: the sequential path pays no loop iteration and no future.
        """
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _LoopQueue()
        if not queue.ops and not others_ready(loop):
            [(ok, value)] = self._commit([(fn, full)])
            self._notify()
            if self._checkpointer is not None:
                self._checkpointer.wake()
            if ok:
                result: T = value
                return result
            raise value
        future: asyncio.Future[T] = loop.create_future()
        queue.ops.append(_Op(fn, future, full))
        if not queue.scheduled:
            queue.scheduled = True
            loop.call_soon(self._flush, queue)
        return await future

    def _flush(self, queue: _LoopQueue) -> None:
        ops, queue.ops, queue.scheduled = queue.ops, [], False
        if not ops:
            return
        results = self._commit([(op.fn, op.full) for op in ops])
        for op, (ok, value) in zip(ops, results, strict=True):
            _settle(op.future, ok, value)
        self._notify()
        if self._checkpointer is not None:
            self._checkpointer.wake()

    def _commit(
        self, ops: list[tuple[Callable[[sqlite3.Connection], Any], bool]]
    ) -> list[tuple[bool, Any]]:
        """Run ``ops`` in one BEGIN IMMEDIATE transaction, each in a savepoint when there are
        several; returns (ok, result or exception) per op. Never raises."""
        full = self.durability == "full" or any(f for _, f in ops)
        single = len(ops) == 1
        with self._lock:
            try:
                conn = self._connection()
                level = "FULL" if full else "NORMAL"
                if self._synchronous != level:
                    conn.execute(f"PRAGMA synchronous = {level}")
                    self._synchronous = level
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                error: BaseException = self._convert(exc)
                return [(False, error)] * len(ops)
            except StoreError as exc:
                return [(False, exc)] * len(ops)
            results: list[tuple[bool, Any]] = []
            try:
                for fn, _ in ops:
                    if single:
                        try:
                            results.append((True, fn(conn)))
                        except BaseException as exc:
                            results.append((False, exc))
                        continue
                    conn.execute("SAVEPOINT op")
                    try:
                        value = fn(conn)
                    except BaseException as exc:
                        conn.execute("ROLLBACK TO op")
                        conn.execute("RELEASE op")
                        results.append((False, exc))
                    else:
                        conn.execute("RELEASE op")
                        results.append((True, value))
                if single and not results[0][0]:
                    conn.execute("ROLLBACK")
                else:
                    conn.execute("COMMIT")
                if self._checkpointer is not None and self._checkpointer.settle():
                    # between transactions: copy back what the background checkpoint missed,
                    # so the next transaction starts the WAL over (see Checkpointer)
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:
                error = self._convert(exc)
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                return [(False, error)] * len(ops)
        return [
            (False, self._convert(value))
            if not ok and isinstance(value, sqlite3.Error)
            else (ok, value)
            for ok, value in results
        ]

    # --- change notification ----------------------------------------------------------------

    def _notify(self) -> None:
        self._local_commits += 1
        for loop, fut in list(self._waiters):
            if not fut.done():
                loop.call_soon_threadsafe(_wake, fut)

    def change_token(self) -> tuple[int, int]:
        """What has been committed so far: this process's commits, and ``data_version``, which
        moves when another connection commits. Take it *before* reading what you wait on."""
        row = self.read_one("PRAGMA data_version")
        return self._local_commits, int(row[0]) if row is not None else 0

    async def wait_for_change(self, timeout_s: float, since: object = None) -> None:
        """Return when anything was committed after ``since`` (a :meth:`change_token`; default:
        now), or after ``timeout_s``. Other processes' commits are seen within ``poll_s``."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        entry = (loop, fut)
        self._waiters.add(entry)
        try:
            baseline = since if since is not None else self.change_token()
            deadline = loop.time() + timeout_s
            while True:
                if self.change_token() != baseline:
                    return
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                done, _ = await asyncio.wait([fut], timeout=min(remaining, self.poll_s))
                if done:
                    return
        finally:
            self._waiters.discard(entry)
            if not fut.done():
                fut.cancel()


# --- helpers --------------------------------------------------------------------------------------


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    loop = future.get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    setter = future.set_result if ok else future.set_exception
    if running is loop:
        setter(value)
    else:
        loop.call_soon_threadsafe(lambda: None if future.done() else setter(value))


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
