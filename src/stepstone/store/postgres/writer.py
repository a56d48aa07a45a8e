"""The write path: group commit on the caller's loop, and retries across connection failures.

When nothing else is ready on the loop, a write runs at once on the writer's connection: in
autocommit when it is one statement (one round trip), else in its own transaction. When other
tasks are ready, writes queue and commit together in one transaction on the next loop iteration;
one batch is in flight per loop while the next accumulates. Writes that may raise after writing
run in a savepoint each, so one failing write cannot undo the others; the rest only raise before
their first write and need none, unless a statement fails (the transaction is then aborted, and
the batch runs again with a savepoint per write).

Every write is retry-aware (it is told its attempt number): after a lost connection whose commit
is unknown, it runs again on a new connection and recognises its own earlier commit (see the
store's module docstring). Retries back off and stop at ``retry_s``; then the caller gets
:class:`~stepstone.errors.StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from stepstone.core.loops import others_ready
from stepstone.errors import StoreError, Unwind
from stepstone.store.postgres.connection import Conn, Link
from stepstone.store.postgres.errors import convert, is_connection_error, is_transient

__all__ = ["Op", "Writer"]

log = logging.getLogger("stepstone.store.postgres")

_BACKOFF_S = (0.02, 1.0)


@dataclass(slots=True, eq=False)
class Op:
    """One write: ``body(conn, attempt)`` runs its statements.

    ``tx``: needs a transaction when it runs alone (several writes that must land together).
    ``safe``: may raise after writing, so it needs a savepoint inside a batch.
    ``notify``: may make work claimable or finish a run: wake this loop's waiters after commit.
    """

    body: Callable[[Conn, int], Awaitable[Any]]
    tx: bool = True
    safe: bool = True
    notify: bool = False
    attempt: int = 0
    deadline: float = 0.0
    future: asyncio.Future[Any] | None = None


class _Aborted(Exception):
    """A statement failed inside a batch without a savepoint: the transaction is lost."""


class _ConnectionLost(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Writer:
    """Queues, batches and commits the writes of one loop (see the module docstring)."""

    def __init__(self, link: Link, retry_s: float) -> None:
        self.link = link
        self.retry_s = retry_s
        self.queue: list[Op] = []
        self.busy = False
        self.batches = 0
        self._task: asyncio.Task[None] | None = None

    async def submit(self, op: Op) -> Any:
        loop = self.link.loop
        op.deadline = loop.time() + self.retry_s
        if not self.queue and not self.busy and not others_ready(loop):
            self.busy = True
            try:
                return await self._alone(op)
            finally:
                self.busy = False
                if self.queue:
                    self._schedule()
        op.future = loop.create_future()
        self.queue.append(op)
        self._schedule()
        return await op.future

    def _schedule(self) -> None:
        if not self.busy and self._task is None:
            self._task = self.link.loop.create_task(self._drain(), name="stepstone-commit")

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait (up to ``timeout_s``) until every write in flight or queued has finished (used
        before closing)."""
        loop = self.link.loop
        deadline = loop.time() + timeout_s
        while (self.busy or self._task is not None or self.queue) and loop.time() < deadline:
            task = self._task
            if task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(task), deadline - loop.time())
            else:
                await asyncio.sleep(0.001)  # a write running alone, in its caller's task

    async def _drain(self) -> None:
        self.busy = True
        try:
            while self.queue:
                ops, self.queue = self.queue, []
                await self._batch(ops)
        finally:
            self.busy = False
            self._task = None
            if self.queue:
                self._schedule()

    # --- one write alone ---------------------------------------------------------------------

    async def _alone(self, op: Op) -> Any:
        while True:
            try:
                conn = await self.link.writer(op.deadline)
                value = await self._run_alone(conn, op)
            except asyncio.CancelledError:
                # interrupted mid-statement: the connection's state is unknown, never reuse it
                await self.link.drop_writer()
                raise
            except BaseException as exc:
                await self._failed(op, exc)  # raises unless the write should run again
                continue
            if op.notify:
                self.link.changes.wake()
            return value

    async def _run_alone(self, conn: Conn, op: Op) -> Any:
        if not op.tx:
            return await op.body(conn, op.attempt)
        async with conn.transaction():
            return await op.body(conn, op.attempt)

    async def _failed(self, op: Op, exc: BaseException) -> None:
        """Decide after a failed attempt: back off and return (run again), or raise."""
        if isinstance(exc, Unwind | StoreError) or not isinstance(exc, Exception):
            raise exc
        if isinstance(exc, psycopg.Error) and is_connection_error(exc):
            await self.link.drop_writer()
            await self.link.check()
        if not is_transient(exc):
            if isinstance(exc, psycopg.Error):
                raise self._convert(exc) from exc
            raise exc
        await self._back_off(op, exc)

    async def _back_off(self, op: Op, exc: BaseException) -> None:
        loop = self.link.loop
        delay = min(_BACKOFF_S[0] * 2**op.attempt, _BACKOFF_S[1])
        if loop.time() + delay > op.deadline:
            raise self._convert(exc) from exc
        op.attempt += 1
        log.info("write failed (%s); attempt %d in %.2fs", _short(exc), op.attempt + 1, delay)
        await asyncio.sleep(delay)

    def _convert(self, exc: BaseException) -> StoreError:
        return convert(exc, self.link.settings.url, self.link.settings.secret)

    # --- a batch -------------------------------------------------------------------------------

    async def _batch(self, ops: list[Op]) -> None:
        self.batches += 1
        try:
            conn = await self.link.writer(min(op.deadline for op in ops))
            try:
                results = await self._commit(conn, ops, savepoints=False)
            except _Aborted:
                results = await self._commit(conn, ops, savepoints=True)
        except asyncio.CancelledError:
            await self.link.drop_writer()
            for op in ops:
                _settle(op, False, asyncio.CancelledError())
            raise
        except BaseException as exc:
            await self._requeue_or_fail(ops, exc.cause if isinstance(exc, _ConnectionLost) else exc)
            return
        woke = False
        again: list[Op] = []
        cause: Exception | None = None
        for op, (ok, value) in zip(ops, results, strict=True):
            if not ok and isinstance(value, Exception) and is_transient(value):
                again.append(op)
                cause = value
                continue
            if ok and op.notify:
                woke = True
            _settle(op, ok, self._convert(value) if isinstance(value, psycopg.Error) else value)
        if woke:
            self.link.changes.wake()
        if again and cause is not None:
            await self._requeue_or_fail(again, cause)

    async def _requeue_or_fail(self, ops: list[Op], exc: BaseException) -> None:
        """These ops failed together: queue again (after one back-off) those that may run again
        and are within their deadline, fail the rest."""
        if isinstance(exc, psycopg.Error) and is_connection_error(exc):
            await self.link.drop_writer()
            await self.link.check()
        if not isinstance(exc, Exception) or isinstance(exc, StoreError) or not is_transient(exc):
            error = self._convert(exc) if isinstance(exc, psycopg.Error) else exc
            for op in ops:
                _settle(op, False, error)
            return
        loop = self.link.loop
        delay = min(_BACKOFF_S[0] * 2 ** max(op.attempt for op in ops), _BACKOFF_S[1])
        again = []
        for op in ops:
            if loop.time() + delay > op.deadline:
                _settle(op, False, self._convert(exc))
            else:
                op.attempt += 1
                again.append(op)
        if again:
            log.info("%d write(s) failed (%s); again in %.2fs", len(again), _short(exc), delay)
            await asyncio.sleep(delay)
            self.queue[:0] = again

    async def _commit(self, conn: Conn, ops: list[Op], *, savepoints: bool) -> list[Any]:
        """Run ``ops`` in one transaction; (ok, value or exception) per op. Raises only when the
        transaction itself is lost (_Aborted: run again with savepoints; connection errors)."""
        if len(ops) == 1:  # nothing to group: exactly as if it ran alone
            try:
                return [(True, await self._run_alone(conn, ops[0]))]
            except (Exception, Unwind) as exc:
                if _lost(conn, exc):
                    raise _ConnectionLost(exc) from exc
                return [(False, exc)]
        results: list[tuple[bool, Any]] = []
        try:
            async with conn.transaction():
                for op in ops:
                    if savepoints or op.safe:
                        try:
                            async with conn.transaction():
                                value = await op.body(conn, op.attempt)
                        except (Exception, Unwind) as exc:
                            if _lost(conn, exc):
                                raise _ConnectionLost(exc) from exc
                            results.append((False, exc))
                        else:
                            results.append((True, value))
                        continue
                    try:
                        value = await op.body(conn, op.attempt)
                    except (Exception, Unwind) as exc:
                        if _lost(conn, exc):
                            raise _ConnectionLost(exc) from exc
                        if conn.info.transaction_status == TransactionStatus.INERROR:
                            raise _Aborted from exc
                        results.append((False, exc))
                    else:
                        results.append((True, value))
        except psycopg.Error as exc:  # the COMMIT itself failed
            if is_connection_error(exc):
                raise _ConnectionLost(exc) from exc
            raise
        return results


def _lost(conn: Conn, exc: BaseException) -> bool:
    return conn.closed or (isinstance(exc, psycopg.Error) and is_connection_error(exc))


def _settle(op: Op, ok: bool, value: Any) -> None:
    fut = op.future
    if fut is None or fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
