"""One SQLite file: connection, schema check and migrations, group commit, change detection.

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
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from stepstone.errors import (
    InvalidArgument,
    SchemaError,
    StoreCorrupt,
    StoreError,
    StoreReadOnly,
    StoreUnavailable,
)
from stepstone.store.loops import others_ready
from stepstone.store.sqlite.checkpoint import FALLBACK_CHECKPOINT_PAGES, Checkpointer
from stepstone.store.sqlite.errors import convert, is_busy
from stepstone.store.sqlite.sql import LATEST, MIGRATIONS, Q, statements

__all__ = ["Database"]

T = TypeVar("T")


@dataclass(slots=True)
class _Op:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    full: bool


@dataclass(slots=True)
class _LoopQueue:
    ops: list[_Op] = field(default_factory=list)
    scheduled: bool = False


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
        self.auto_migrate = auto_migrate
        self.busy_timeout_s = busy_timeout_s
        self.poll_s = poll_s
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
        error = convert(exc, self.url, self.busy_timeout_s)
        error.__cause__ = exc  # also when it is handed to a waiting caller, not raised here
        return error

    def _connection(self, *, check_schema: bool = True) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if self._closed:
            raise StoreError(self.url, "the store is closed")
        conn = self._open(create=self.auto_migrate or not check_schema)
        try:
            if check_schema:
                self._check_schema(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        if self.path != ":memory:":
            self._checkpointer = Checkpointer(
                str(Path(self.path).expanduser()), self.busy_timeout_s
            )
            self._checkpointer.start()
        return conn

    def _open(self, *, create: bool) -> sqlite3.Connection:
        """Connect; only a migrating open (``create``) may create the file and its folder, so a
        typo in a read-only command reports "no database" instead of leaving an empty file."""
        path = Path(self.path).expanduser()
        if self.path == ":memory:":
            target, uri = ":memory:", False
        elif create:
            if not path.parent.exists():
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreUnavailable(
                        self.url, f"cannot create folder {path.parent}: {exc}"
                    ) from exc
            target, uri = str(path), False
        elif not path.exists():
            raise SchemaError(
                self.url,
                f"there is no database at {path}; run `stepstone migrate --db "
                f"{self.url}` to create one",
            )
        else:
            target, uri = f"{path.resolve().as_uri()}?mode=rw", True
        try:
            conn = sqlite3.connect(
                target,
                isolation_level=None,
                check_same_thread=False,
                timeout=self.busy_timeout_s,
                uri=uri,
            )
        except sqlite3.Error as exc:
            raise self._diagnose(exc, path) from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            self._ensure_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            self._synchronous = "NORMAL"
            conn.execute("PRAGMA temp_store = MEMORY")
            # Checkpoints run on a background thread (see Checkpointer); this large automatic
            # one is only the fallback that bounds the WAL if that thread falls behind.
            conn.execute(f"PRAGMA wal_autocheckpoint = {FALLBACK_CHECKPOINT_PAGES}")
        except sqlite3.Error as exc:
            conn.close()
            raise self._diagnose(exc, path) from exc
        return conn

    def _ensure_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL unless already there. Switching needs an exclusive lock and SQLite
        reports "locked" at once, without its busy handler, when another connection is creating
        the same new database: retry for up to the busy timeout."""
        deadline = time.monotonic() + self.busy_timeout_s
        delay = 0.001
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
                continue
            if str(mode).lower() != "wal":
                raise StoreError(self.url, f"cannot switch the database to WAL mode (got {mode})")
            return

    def _diagnose(self, exc: sqlite3.Error, path: Path) -> StoreError:
        """An open that failed: say whether the file or its folder is read-only (SQLite's own
        message, "unable to open database file", does not)."""
        error = self._convert(exc)
        if not isinstance(error, StoreUnavailable):
            return error
        if path.exists():
            try:
                with open(path, "r+b"):
                    pass
            except OSError as os_error:
                return StoreReadOnly(self.url, f"the database file cannot be written ({os_error})")
        try:
            probe = path.parent / f".stepstone-probe-{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as os_error:
            return StoreReadOnly(
                self.url,
                f"the folder {path.parent} cannot be written ({os_error}); SQLite (WAL mode) needs "
                "to create the -wal and -shm files next to the database",
            )
        return error

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        try:
            has_table = conn.execute(Q.has_schema_table).fetchone()[0]
            version = conn.execute(Q.schema_version).fetchone()[0] if has_table else 0
            tables = conn.execute(Q.count_tables).fetchone()[0]
        except sqlite3.Error as exc:
            raise self._convert(exc) from exc
        if version == LATEST:
            return
        if version > LATEST:
            raise SchemaError(
                self.url,
                f"schema version {version} is newer than this stepstone knows ({LATEST}); "
                "upgrade stepstone",
            )
        if self.auto_migrate:
            self._apply_migrations(conn)
            return
        if not has_table and tables:
            raise StoreCorrupt(
                self.url, "this SQLite database has tables but is not a stepstone store"
            )
        what = (
            "has no stepstone schema"
            if version == 0
            else f"has schema version {version}, behind {LATEST}"
        )
        raise SchemaError(
            self.url,
            f"the database {what}; run `stepstone migrate --db {self.url}` "
            "(or `await store.migrate()`)",
        )

    def _apply_migrations(self, conn: sqlite3.Connection) -> list[str]:
        applied: list[str] = []
        with self._lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    has_table = conn.execute(Q.has_schema_table).fetchone()[0]
                    tables = conn.execute(Q.count_tables).fetchone()[0]
                    if not has_table and tables:
                        raise StoreCorrupt(
                            self.url, "this SQLite database has tables but is not a stepstone store"
                        )
                    conn.execute(Q.create_schema_table)
                    current = conn.execute(Q.schema_version).fetchone()[0]
                    now = time.time()
                    for version, name, sql in MIGRATIONS:
                        if version <= current:
                            continue
                        for statement in statements(sql):
                            conn.execute(statement)
                        conn.execute(
                            Q.record_migration, {"version": version, "name": name, "now": now}
                        )
                        applied.append(f"{version:04d}_{name}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._convert(exc) from exc
        return applied

    async def migrate(self) -> list[str]:
        with self._lock:
            return self._apply_migrations(self._connection(check_schema=False))

    async def schema_status(self) -> tuple[int, int]:
        if self.path != ":memory:" and not Path(self.path).expanduser().exists():
            return 0, LATEST
        try:
            conn = sqlite3.connect(str(Path(self.path).expanduser()), timeout=self.busy_timeout_s)
            try:
                has_table = conn.execute(Q.has_schema_table).fetchone()[0]
                version = conn.execute(Q.schema_version).fetchone()[0] if has_table else 0
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise self._convert(exc) from exc
        return int(version), LATEST

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
