"""The SQLite store: the embedded default. WAL, busy timeout, group commit on the caller's loop.

Writes are queued per event loop and committed together on the next loop iteration in one
``BEGIN IMMEDIATE`` transaction (group commit), each in its own savepoint so one failing write
cannot undo the others. The sequential path pays no thread hop: the commit runs on the loop's own
thread. Step checkpoints commit with ``synchronous=NORMAL`` (a power loss can only make a step run
again); writes acknowledged to a caller (a new run, a signal, a cancel) commit with ``FULL``.
Several processes may share one file: SQLite's write lock serialises them, and each process sees
the others' commits through ``PRAGMA data_version``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from stepstone.core.clock import from_timestamp
from stepstone.core.model import (
    TERMINAL_STATES,
    Claim,
    Control,
    EventRecord,
    LeaseStatus,
    NewRun,
    Run,
    RunQuery,
    RunState,
    SignalRecord,
    StepKind,
    StepRecord,
    StepStatus,
    WorkerInfo,
)
from stepstone.core.port import (
    Blocked,
    Cancelled,
    ClaimFilter,
    ClaimOutcome,
    Completed,
    Failed,
    LeaseLost,
    NewEvent,
    Paused,
    Released,
    Suspended,
)
from stepstone.errors import (
    InvalidArgument,
    RunNotFound,
    RunStateError,
    SchemaError,
    StoreCorrupt,
    StoreError,
    StoreReadOnly,
    StoreUnavailable,
)
from stepstone.store.queries import Queries, load_migrations
from stepstone.store.serde import dump_error, dump_waits, load_error, load_waits

__all__ = ["SQLiteStore"]

_FALLBACK_CHECKPOINT_PAGES = 20_000  # ~80 MB of WAL
_CHECKPOINT_EVERY_S = 0.2

T = TypeVar("T")
Q = Queries.for_package("stepstone.store.sqlite")
MIGRATIONS = load_migrations("stepstone.store.sqlite")
LATEST = MIGRATIONS[-1][0]


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _dt(value: float | None) -> datetime | None:
    return from_timestamp(value) if value is not None else None


def _run(row: sqlite3.Row) -> Run:
    return Run(
        run_id=row["run_id"],
        workflow=row["workflow"],
        version=row["version"],
        state=RunState(row["state"]),
        input_json=row["input"],
        queue=row["queue"],
        priority=row["priority"],
        created_at=from_timestamp(row["created_at"]),
        updated_at=from_timestamp(row["updated_at"]),
        output_json=row["output"],
        error=load_error(row["error"]),
        control=row["control"],
        control_reason=row["control_reason"],
        waits=load_waits(row["waits"]),
        wake_at=_dt(row["wake_at"]),
        lease_owner=row["lease_owner"],
        lease_expires_at=_dt(row["lease_expires_at"]),
        lease_token=row["lease_token"],
        recoveries=row["recoveries"],
        parent_run_id=row["parent_run_id"],
        parent_seq=row["parent_seq"],
        deadline_at=_dt(row["deadline_at"]),
        state_json=row["state_data"],
        started_at=_dt(row["started_at"]),
        finished_at=_dt(row["finished_at"]),
        forked_from=row["forked_from"],
    )


def _step(row: sqlite3.Row) -> StepRecord:
    return StepRecord(
        seq=row["seq"],
        name=row["name"],
        kind=StepKind(row["kind"]),
        status=StepStatus(row["status"]),
        output_json=row["output"],
        error=load_error(row["error"]),
        attempts=row["attempts"],
        started_at=_dt(row["started_at"]),
        finished_at=_dt(row["finished_at"]),
    )


def _step_params(run_id: str, token: int, record: StepRecord) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "token": token,
        "seq": record.seq,
        "name": record.name,
        "kind": record.kind.value,
        "status": record.status.value,
        "output": record.output_json,
        "error": dump_error(record.error),
        "attempts": record.attempts,
        "started_at": _ts(record.started_at),
        "finished_at": _ts(record.finished_at),
    }


@dataclass(slots=True)
class _Op:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    full: bool


@dataclass(slots=True)
class _LoopQueue:
    ops: list[_Op] = field(default_factory=list)
    scheduled: bool = False


class SQLiteStore:
    """A stepstone store in one SQLite file (see the module docstring for the guarantees).

    >>> store = SQLiteStore("/var/lib/app/stepstone.db")
    >>> await store.migrate()
    """

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
        self._checkpointer: _Checkpointer | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # --- connection and errors --------------------------------------------------------------

    def _convert(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        low = text.lower()
        if "readonly" in low or "read-only" in low:
            return StoreReadOnly(self.url, f"the database refuses writes ({text})")
        if "not a database" in low or "malformed" in low or "file is encrypted" in low:
            return StoreCorrupt(self.url, f"the file is not a usable SQLite database ({text})")
        if "locked" in low or "busy" in low:
            return StoreUnavailable(
                self.url,
                f"the database stayed locked for more than {self.busy_timeout_s:g}s ({text})",
            )
        if "unable to open" in low or "disk i/o" in low:
            return StoreUnavailable(self.url, f"cannot open the database file ({text})")
        if "no such table" in low or "no such column" in low:
            return SchemaError(
                self.url,
                f"the stepstone schema is missing or damaged ({text}); "
                f"run `stepstone migrate --db {self.url}`",
            )
        return StoreError(self.url, text)

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
            self._checkpointer = _Checkpointer(
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
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(self.url, f"cannot switch the database to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._synchronous = "NORMAL"
            conn.execute("PRAGMA temp_store = MEMORY")
            # Checkpoints run on a background thread (see _Checkpointer); this large automatic
            # one is only the fallback that bounds the WAL if that thread falls behind.
            conn.execute(f"PRAGMA wal_autocheckpoint = {_FALLBACK_CHECKPOINT_PAGES}")
        except sqlite3.Error as exc:
            conn.close()
            raise self._diagnose(exc, path) from exc
        return conn

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
                        for statement in _statements(sql):
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

    def _read(self, sql: str, params: dict[str, Any] | tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            conn = self._connection()
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._convert(exc) from exc

    def _read_one(
        self, sql: str, params: dict[str, Any] | tuple[Any, ...] = ()
    ) -> sqlite3.Row | None:
        rows = self._read(sql, params)
        return rows[0] if rows else None

    async def _write(self, fn: Callable[[sqlite3.Connection], T], *, full: bool = False) -> T:
        """Run ``fn`` in a write transaction and return its result.

        When other tasks are ready to run on this loop, the write is queued and committed with
        theirs on the next iteration (group commit). When none are, nothing could join the batch,
        so it commits at once: the sequential path pays no loop iteration and no future.
        """
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _LoopQueue()
        if not queue.ops and not _others_ready(loop):
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
        for loop, fut in list(self._waiters):
            if not fut.done():
                loop.call_soon_threadsafe(_wake, fut)

    def _data_version(self) -> int:
        row = self._read_one("PRAGMA data_version")
        return int(row[0]) if row is not None else 0

    async def wait_for_change(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        entry = (loop, fut)
        self._waiters.add(entry)
        try:
            version = self._data_version()
            deadline = loop.time() + timeout_s
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                done, _ = await asyncio.wait([fut], timeout=min(remaining, self.poll_s))
                if done or self._data_version() != version:
                    return
        finally:
            self._waiters.discard(entry)
            if not fut.done():
                fut.cancel()

    # --- runs -------------------------------------------------------------------------------

    async def create_run(
        self, run: NewRun, *, now: datetime, claim_for: WorkerInfo | None = None, lease_s: float = 0
    ) -> tuple[Run, bool, Claim | None]:
        def op(conn: sqlite3.Connection) -> tuple[Run, bool, Claim | None]:
            created = _insert_run(conn, run, now, claim_for, lease_s)
            row = conn.execute(Q.get_run, {"run_id": run.run_id}).fetchone()
            stored = _run(row)
            claim = (
                Claim(stored, claim_for.worker_id, stored.lease_token)
                if created and claim_for
                else None
            )
            return stored, created, claim

        # A run started for a worker is acknowledged to the caller: FULL. A run created already
        # claimed by the caller's own process is a checkpoint like its steps.
        return await self._write(op, full=claim_for is None)

    async def get_run(self, run_id: str) -> Run | None:
        row = self._read_one(Q.get_run, {"run_id": run_id})
        return _run(row) if row is not None else None

    async def list_runs(self, query: RunQuery) -> list[Run]:
        if query.limit < 1:
            raise InvalidArgument(f"limit must be >= 1, got {query.limit}")
        params = {
            "states": json.dumps([s.value for s in query.states]) if query.states else None,
            "workflow": query.workflow,
            "queue": query.queue,
            "parent_run_id": query.parent_run_id,
            "before": query.before_run_id,
            "limit": query.limit,
        }
        return [_run(r) for r in self._read(Q.list_runs, params)]

    async def claim_runs(
        self, worker: WorkerInfo, flt: ClaimFilter, *, limit: int, lease_s: float, now: datetime
    ) -> list[Claim]:
        if limit <= 0 or not flt.workflows or not flt.queues:
            return []
        params = {
            "now": now.timestamp(),
            "queues": json.dumps(flt.queues),
            "workflows": json.dumps(flt.workflows),
            "limit": limit,
        }

        def op(conn: sqlite3.Connection) -> list[Claim]:
            found = conn.execute(Q.find_claimable, params).fetchall()
            return [
                claim
                for row in found
                if (claim := _claim(conn, row["run_id"], row["state"], worker, lease_s, now))
                is not None
            ]

        return await self._write(op)

    async def claim_run(
        self, run_id: str, worker: WorkerInfo, *, lease_s: float, now: datetime
    ) -> Claim | None:
        def op(conn: sqlite3.Connection) -> Claim | None:
            row = conn.execute(Q.get_run, {"run_id": run_id}).fetchone()
            if row is None:
                return None
            return _claim(conn, run_id, row["state"], worker, lease_s, now)

        return await self._write(op)

    async def has_claimable(self, flt: ClaimFilter, *, now: datetime) -> bool:
        if not flt.workflows or not flt.queues:
            return False
        params = {
            "now": now.timestamp(),
            "queues": json.dumps(flt.queues),
            "workflows": json.dumps(flt.workflows),
        }
        row = self._read_one(Q.has_claimable, params)
        return bool(row and row[0])

    async def next_wake_at(self, flt: ClaimFilter, *, now: datetime) -> datetime | None:
        if not flt.workflows or not flt.queues:
            return None
        params = {
            "now": now.timestamp(),
            "queues": json.dumps(flt.queues),
            "workflows": json.dumps(flt.workflows),
        }
        row = self._read_one(Q.next_wake_at, params)
        return _dt(row[0]) if row is not None else None

    async def close_claim(
        self, claim: Claim, outcome: ClaimOutcome, *, now: datetime, state_json: str | None = None
    ) -> RunState:
        def op(conn: sqlite3.Connection) -> RunState:
            return _close_claim(conn, claim, outcome, now, state_json)

        return await self._write(op)

    async def request_control(
        self, run_id: str, action: Control | None, *, reason: str | None, now: datetime
    ) -> Run:
        def op(conn: sqlite3.Connection) -> Run:
            row = conn.execute(Q.get_run, {"run_id": run_id}).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            _control(conn, _run(row), action, reason, now)
            return _run(conn.execute(Q.get_run, {"run_id": run_id}).fetchone())

        return await self._write(op, full=True)

    async def retry_run(self, run_id: str, *, now: datetime) -> Run:
        def op(conn: sqlite3.Connection) -> Run:
            row = conn.execute(Q.get_run, {"run_id": run_id}).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            run = _run(row)
            if run.state not in (RunState.FAILED, RunState.BLOCKED):
                raise RunStateError(run_id, run.state.value, "retry", "failed or blocked")
            seqs = list(run.error.step_seqs) if run.error else []
            conn.execute(Q.delete_failed_steps, {"run_id": run_id, "seqs": json.dumps(seqs)})
            conn.execute(
                Q.reset_for_retry,
                {"run_id": run_id, "expected": run.state.value, "now": now.timestamp()},
            )
            _event(conn, run_id, "retried", {"from": run.state.value}, now)
            return _run(conn.execute(Q.get_run, {"run_id": run_id}).fetchone())

        return await self._write(op, full=True)

    async def fork_run(
        self, run_id: str, *, from_seq: int, patch: dict[int, str], new_run_id: str, now: datetime
    ) -> Run:
        def op(conn: sqlite3.Connection) -> Run:
            row = conn.execute(Q.get_run, {"run_id": run_id}).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            source = _run(row)
            if from_seq < 0:
                raise InvalidArgument(f"fork: from_seq must be >= 0, got {from_seq}")
            new = NewRun(
                run_id=new_run_id,
                workflow=source.workflow,
                version=source.version,
                input_json=source.input_json,
                queue=source.queue,
                priority=source.priority,
                forked_from=run_id,
            )
            if not _insert_run(conn, new, now, None, 0, state_json=source.state_json):
                raise InvalidArgument(f"fork: a run with id {new_run_id!r} already exists")
            conn.execute(
                Q.copy_steps, {"run_id": run_id, "new_run_id": new_run_id, "from_seq": from_seq}
            )
            for seq, output in sorted(patch.items()):
                if seq >= from_seq:
                    raise InvalidArgument(
                        f"fork: patched step #{seq} is not before from_seq {from_seq}"
                    )
                changed = conn.execute(
                    Q.patch_step, {"run_id": new_run_id, "seq": seq, "output": output}
                )
                if changed.rowcount != 1:
                    raise InvalidArgument(
                        f"fork: run {run_id} has no recorded step #{seq} to patch"
                    )
            _event(conn, new_run_id, "forked", {"from": run_id, "from_seq": from_seq}, now)
            return _run(conn.execute(Q.get_run, {"run_id": new_run_id}).fetchone())

        return await self._write(op, full=True)

    # --- leases -----------------------------------------------------------------------------

    async def renew_leases(
        self, worker_id: str, *, lease_s: float, now: datetime
    ) -> list[LeaseStatus]:
        def op(conn: sqlite3.Connection) -> list[LeaseStatus]:
            rows = conn.execute(
                Q.renew_leases, {"owner": worker_id, "expires_at": now.timestamp() + lease_s}
            ).fetchall()
            conn.execute(Q.touch_worker, {"worker_id": worker_id, "now": now.timestamp()})
            return [LeaseStatus(r["run_id"], r["lease_token"], r["control"]) for r in rows]

        return await self._write(op)

    # --- steps ------------------------------------------------------------------------------

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        return [_step(r) for r in self._read(Q.load_steps, {"run_id": run_id})]

    async def record_step(
        self, claim: Claim, record: StepRecord, *, now: datetime, state_json: str | None = None
    ) -> Control | None:
        params = _step_params(claim.run_id, claim.lease_token, record)

        def op(conn: sqlite3.Connection) -> Control | None:
            row = conn.execute(Q.record_step, params).fetchone()
            if row is None:
                raise LeaseLost(claim.run_id, claim.lease_token)
            if state_json is not None:
                conn.execute(
                    Q.save_state,
                    {"run_id": claim.run_id, "token": claim.lease_token, "state_data": state_json},
                )
            control: Control | None = row[0]
            return control

        return await self._write(op)

    async def start_child(
        self, claim: Claim, record: StepRecord, child: NewRun, *, now: datetime
    ) -> Run:
        def op(conn: sqlite3.Connection) -> Run:
            _fence(conn, claim)
            _insert_run(conn, child, now, None, 0)
            conn.execute(Q.record_step, _step_params(claim.run_id, claim.lease_token, record))
            return _run(conn.execute(Q.get_run, {"run_id": child.run_id}).fetchone())

        return await self._write(op)

    # --- signals ----------------------------------------------------------------------------

    async def send_signal(
        self, run_id: str, name: str, payload_json: str, *, now: datetime
    ) -> SignalRecord:
        def op(conn: sqlite3.Connection) -> SignalRecord:
            row = conn.execute(Q.get_run, {"run_id": run_id}).fetchone()
            if row is None:
                raise RunNotFound(run_id)
            if row["state"] in TERMINAL_STATES:
                raise RunStateError(
                    run_id, row["state"], f"send signal {name!r} to", "an unfinished run"
                )
            signal_id = conn.execute(
                Q.insert_signal,
                {"run_id": run_id, "name": name, "payload": payload_json, "now": now.timestamp()},
            ).fetchone()[0]
            conn.execute(
                Q.wake_for_signal, {"run_id": run_id, "name": name, "now": now.timestamp()}
            )
            return SignalRecord(signal_id, run_id, name, payload_json, now)

        return await self._write(op, full=True)

    async def take_signal(
        self, claim: Claim, seq: int, name: str, *, until: datetime | None, now: datetime
    ) -> str | None:
        def op(conn: sqlite3.Connection) -> str | None:
            _fence(conn, claim)
            found = conn.execute(Q.next_signal, {"run_id": claim.run_id, "name": name}).fetchone()
            if found is not None:
                conn.execute(
                    Q.consume_signal,
                    {"seq": seq, "now": now.timestamp(), "signal_id": found["signal_id"]},
                )
                payload: str = found["payload"]
                record = StepRecord(
                    seq,
                    name,
                    StepKind.SIGNAL,
                    StepStatus.COMPLETED,
                    output_json=f'{{"payload":{payload}}}',
                    started_at=now,
                    finished_at=now,
                )
                conn.execute(Q.record_step, _step_params(claim.run_id, claim.lease_token, record))
                return payload
            waiting = StepRecord(
                seq,
                name,
                StepKind.SIGNAL,
                StepStatus.WAITING,
                output_json=json.dumps({"until": until.isoformat() if until else None}),
                started_at=now,
            )
            conn.execute(
                Q.record_step_if_absent, _step_params(claim.run_id, claim.lease_token, waiting)
            )
            return None

        return await self._write(op)

    async def list_signals(self, run_id: str) -> list[SignalRecord]:
        return [
            SignalRecord(
                r["signal_id"],
                r["run_id"],
                r["name"],
                r["payload"],
                from_timestamp(r["created_at"]),
                r["consumed_seq"],
                _dt(r["consumed_at"]),
            )
            for r in self._read(Q.list_signals, {"run_id": run_id})
        ]

    # --- events -----------------------------------------------------------------------------

    async def append_events(
        self, claim: Claim, events: Sequence[NewEvent], *, now: datetime
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            _fence(conn, claim)
            for e in events:
                conn.execute(
                    Q.insert_event,
                    {
                        "run_id": claim.run_id,
                        "idx": e.idx,
                        "kind": e.kind,
                        "data": e.data_json,
                        "source": "user",
                        "now": now.timestamp(),
                    },
                )

        await self._write(op)

    async def read_events(
        self, run_id: str, *, after_id: int = 0, limit: int = 1000
    ) -> list[EventRecord]:
        rows = self._read(Q.read_events, {"run_id": run_id, "after_id": after_id, "limit": limit})
        return [
            EventRecord(
                r["event_id"],
                r["run_id"],
                r["kind"],
                r["data"],
                from_timestamp(r["created_at"]),
                r["source"],
            )
            for r in rows
        ]

    # --- workers ----------------------------------------------------------------------------

    async def register_worker(self, worker: WorkerInfo, *, now: datetime) -> None:
        params = {
            "worker_id": worker.worker_id,
            "host": worker.host,
            "pid": worker.pid,
            "process_start": worker.process_start,
            "queues": json.dumps(list(worker.queues)),
            "concurrency": worker.concurrency,
            "version": worker.version,
            "now": now.timestamp(),
        }
        await self._write(lambda conn: conn.execute(Q.upsert_worker, params))

    async def unregister_worker(self, worker_id: str) -> None:
        await self._write(lambda conn: conn.execute(Q.delete_worker, {"worker_id": worker_id}))

    async def list_workers(self) -> list[WorkerInfo]:
        return [
            WorkerInfo(
                worker_id=r["worker_id"],
                host=r["host"],
                pid=r["pid"],
                queues=tuple(json.loads(r["queues"])),
                concurrency=r["concurrency"],
                started_at=from_timestamp(r["started_at"]),
                heartbeat_at=from_timestamp(r["heartbeat_at"]),
                process_start=r["process_start"],
                version=r["version"],
            )
            for r in self._read(Q.list_workers)
        ]

    async def release_worker_runs(self, worker_ids: Sequence[str], *, now: datetime) -> int:
        def op(conn: sqlite3.Connection) -> int:
            released = 0
            for worker_id in worker_ids:
                cur = conn.execute(
                    Q.release_worker_runs, {"worker_id": worker_id, "now": now.timestamp()}
                )
                released += cur.rowcount
                conn.execute(Q.delete_worker, {"worker_id": worker_id})
            return released

        return await self._write(op)


class _Checkpointer:
    """Copies the WAL back into the database on its own thread and connection.

    SQLite's automatic checkpoint runs inside the commit that crosses the threshold and fsyncs,
    which puts a multi-millisecond stall on one step in every few hundred. Here a PASSIVE
    checkpoint (it never blocks writers) runs at most every ``_CHECKPOINT_EVERY_S`` after writes,
    with the GIL released while SQLite works.
    """

    def __init__(self, path: str, busy_timeout_s: float) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._dirty = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(
            target=self._serve, name="stepstone-checkpoint", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        if not self._dirty.is_set():
            self._dirty.set()

    def stop(self) -> None:
        self._stopping = True
        self._dirty.set()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        try:
            conn = sqlite3.connect(
                self._path, timeout=self._busy_timeout_s, check_same_thread=False
            )
        except sqlite3.Error:
            return  # the fallback automatic checkpoint still bounds the WAL
        try:
            while not self._stopping:
                self._dirty.wait()
                if self._stopping:
                    break
                time.sleep(_CHECKPOINT_EVERY_S)
                self._dirty.clear()
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()


# --- helpers that run inside a write transaction ------------------------------------------------


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


def _others_ready(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether other callbacks/tasks are ready on this loop (so a deferred write could batch).
    Loops that do not expose their ready queue always batch."""
    ready = getattr(loop, "_ready", None)
    return ready is None or len(ready) > 0


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (sqlite3 executes one at a time inside a transaction)."""
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        if not buffer and line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def _event(
    conn: sqlite3.Connection, run_id: str, kind: str, data: dict[str, Any] | None, now: datetime
) -> None:
    conn.execute(
        Q.insert_event,
        {
            "run_id": run_id,
            "idx": None,
            "kind": kind,
            "data": json.dumps(data) if data else None,
            "source": "system",
            "now": now.timestamp(),
        },
    )


def _fence(conn: sqlite3.Connection, claim: Claim) -> None:
    row = conn.execute(
        Q.lease_check, {"run_id": claim.run_id, "token": claim.lease_token}
    ).fetchone()
    if row is None:
        raise LeaseLost(claim.run_id, claim.lease_token)


def _insert_run(
    conn: sqlite3.Connection,
    run: NewRun,
    now: datetime,
    claim_for: WorkerInfo | None,
    lease_s: float,
    *,
    state_json: str | None = None,
) -> bool:
    ts = now.timestamp()
    params = {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "version": run.version,
        "state": "running" if claim_for else "pending",
        "input": run.input_json,
        "queue": run.queue,
        "priority": run.priority,
        "wake_at": None if claim_for else _ts(run.start_at) or ts,
        "deadline_at": _ts(run.deadline_at),
        "parent_run_id": run.parent_run_id,
        "parent_seq": run.parent_seq,
        "forked_from": run.forked_from,
        "now": ts,
        "lease_owner": claim_for.worker_id if claim_for else None,
        "lease_expires_at": ts + lease_s if claim_for else None,
        "lease_token": 1 if claim_for else 0,
        "started_at": ts if claim_for else None,
        "state_data": state_json,
    }
    created: bool = conn.execute(Q.create_run, params).rowcount == 1
    return created


def _claim(
    conn: sqlite3.Connection,
    run_id: str,
    state: str,
    worker: WorkerInfo,
    lease_s: float,
    now: datetime,
) -> Claim | None:
    row = conn.execute(
        Q.claim_run,
        {
            "run_id": run_id,
            "owner": worker.worker_id,
            "expires_at": now.timestamp() + lease_s,
            "now": now.timestamp(),
        },
    ).fetchone()
    if row is None:
        return None
    recovered = state == "running"
    _event(conn, run_id, "recovered" if recovered else "claimed", {"worker": worker.worker_id}, now)
    return Claim(_run(row), worker.worker_id, row["lease_token"], recovered=recovered)


def _close_claim(
    conn: sqlite3.Connection,
    claim: Claim,
    outcome: ClaimOutcome,
    now: datetime,
    state_json: str | None,
) -> RunState:
    base = {
        "run_id": claim.run_id,
        "token": claim.lease_token,
        "now": now.timestamp(),
        "state_data": state_json,
    }
    if isinstance(outcome, Completed | Failed | Cancelled):
        if isinstance(outcome, Completed):
            state, output, error = RunState.COMPLETED, outcome.output_json, None
        elif isinstance(outcome, Failed):
            state, output, error = RunState.FAILED, None, dump_error(outcome.error)
        else:
            state, output = RunState.CANCELLED, None
            reason = outcome.reason or _control_reason(conn, claim.run_id) or "cancelled"
            error = json.dumps({"type": "Cancelled", "message": reason})
        cur = conn.execute(
            Q.finish_run, {**base, "state": state.value, "output": output, "error": error}
        )
        if cur.rowcount != 1:
            raise LeaseLost(claim.run_id, claim.lease_token)
        if claim.run.parent_run_id:
            conn.execute(Q.wake_parent, {"run_id": claim.run.parent_run_id, "now": now.timestamp()})
        if isinstance(outcome, Cancelled):
            _cascade_cancel(conn, claim.run_id, reason, now)
        return state  # the row itself records the end (state, finished_at, error)
    waits, wake_at, error = None, None, None
    if isinstance(outcome, Paused):
        state = RunState.PAUSED
    elif isinstance(outcome, Blocked):
        state = RunState.BLOCKED
        error = json.dumps({"type": "NonDeterminismError", "message": outcome.reason})
    elif isinstance(outcome, Released):
        state, wake_at = RunState.PENDING, now.timestamp()
    else:
        assert isinstance(outcome, Suspended)
        state, wake_at, waits = _suspended_state(conn, claim.run_id, outcome, now)
    cur = conn.execute(
        Q.park_run,
        {**base, "state": state.value, "error": error, "waits": waits, "wake_at": wake_at},
    )
    if cur.rowcount != 1:
        raise LeaseLost(claim.run_id, claim.lease_token)
    detail_waits: dict[str, Any] | None = None
    if isinstance(outcome, Suspended):
        detail_waits = {
            "waits": [
                {"kind": w.kind, "name": w.name, "until": w.until.isoformat() if w.until else None}
                for w in outcome.waits
                if w.seq >= 0
            ]
        }
    kind = {RunState.PENDING: "released"}.get(state, state.value)
    _event(conn, claim.run_id, kind, detail_waits, now)
    return state


def _control_reason(conn: sqlite3.Connection, run_id: str) -> str | None:
    row = conn.execute(Q.get_run, {"run_id": run_id}).fetchone()
    return row["control_reason"] if row is not None else None


def _suspended_state(
    conn: sqlite3.Connection, run_id: str, outcome: Suspended, now: datetime
) -> tuple[RunState, float | None, str | None]:
    """Where a suspending run goes: back to pending if a wait is already satisfied, else waiting
    (signal/child) or sleeping (timers only), due at the earliest timer or timeout."""
    waits = outcome.waits
    signals = [w.name for w in waits if w.kind == "signal" and w.name]
    children = [w.name for w in waits if w.kind == "child" and w.name]
    satisfied = bool(
        signals
        and conn.execute(
            Q.signal_waiting, {"run_id": run_id, "names": json.dumps(signals)}
        ).fetchone()[0]
    ) or bool(
        children and conn.execute(Q.child_finished, {"run_ids": json.dumps(children)}).fetchone()[0]
    )
    untils = [w.until for w in waits if w.until is not None]
    wake = min(untils) if untils else None
    if satisfied or not waits or (wake is not None and wake <= now):
        return RunState.PENDING, now.timestamp(), dump_waits(waits)
    state = RunState.WAITING if signals or children else RunState.SLEEPING
    return state, _ts(wake), dump_waits(waits)


def _cascade_cancel(conn: sqlite3.Connection, run_id: str, reason: str, now: datetime) -> None:
    for row in conn.execute(Q.descendants, {"run_id": run_id}).fetchall():
        _control(
            conn,
            _run(conn.execute(Q.get_run, {"run_id": row["run_id"]}).fetchone()),
            "cancel",
            f"parent {run_id} cancelled: {reason}",
            now,
            cascade=False,
        )


def _control(
    conn: sqlite3.Connection,
    run: Run,
    action: Control | None,
    reason: str | None,
    now: datetime,
    *,
    cascade: bool = True,
) -> None:
    """Apply cancel / pause / unpause (None) to a run read in this transaction."""
    ts = now.timestamp()
    state = run.state
    if action == "cancel":
        if state in TERMINAL_STATES:
            raise RunStateError(run.run_id, state.value, "cancel", "an unfinished run")
        text = reason or "cancelled"
        if state is RunState.RUNNING:
            conn.execute(
                Q.set_control,
                {"run_id": run.run_id, "control": "cancel", "reason": text, "now": ts},
            )
            _event(conn, run.run_id, "cancel_requested", {"reason": text}, now)
            return
        error = json.dumps({"type": "Cancelled", "message": text})
        _set_state(conn, run, RunState.CANCELLED, now, error=error, finished=True)
        if run.parent_run_id:
            conn.execute(Q.wake_parent, {"run_id": run.parent_run_id, "now": ts})
        if cascade:
            _cascade_cancel(conn, run.run_id, text, now)
        return
    if action == "pause":
        if state is RunState.RUNNING:
            conn.execute(
                Q.set_control,
                {"run_id": run.run_id, "control": "pause", "reason": reason, "now": ts},
            )
            _event(conn, run.run_id, "pause_requested", None, now)
        elif state in (RunState.PENDING, RunState.SLEEPING, RunState.WAITING):
            _set_state(conn, run, RunState.PAUSED, now)
            _event(conn, run.run_id, "paused", None, now)
        elif state is not RunState.PAUSED:
            raise RunStateError(
                run.run_id, state.value, "pause", "pending, running, sleeping or waiting"
            )
        return
    if state is RunState.PAUSED:
        _set_state(conn, run, RunState.PENDING, now, wake_at=ts)
        _event(conn, run.run_id, "unpaused", None, now)
    elif state is RunState.RUNNING and run.control == "pause":
        conn.execute(
            Q.set_control, {"run_id": run.run_id, "control": None, "reason": None, "now": ts}
        )
        _event(conn, run.run_id, "unpaused", None, now)
    else:
        raise RunStateError(run.run_id, state.value, "unpause", "paused")


def _set_state(
    conn: sqlite3.Connection,
    run: Run,
    state: RunState,
    now: datetime,
    *,
    wake_at: float | None = None,
    error: str | None = None,
    finished: bool = False,
) -> None:
    cur = conn.execute(
        Q.set_state,
        {
            "run_id": run.run_id,
            "expected": run.state.value,
            "state": state.value,
            "wake_at": wake_at,
            "error": error,
            "finished_at": now.timestamp() if finished else None,
            "now": now.timestamp(),
        },
    )
    if cur.rowcount != 1:  # cannot happen inside one transaction; kept as a guard
        raise RunStateError(run.run_id, run.state.value, f"move to {state.value}")
