"""The store's plumbing on each event loop: opening (schema check, pool), reads that retry
while the database is unreachable, store scripts run through the group-commit writer, and
wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import psycopg

from stepstone.errors import InvalidArgument, StoreError
from stepstone.store import redact_url
from stepstone.store.postgres.connection import Conn, Link, LinkSettings
from stepstone.store.postgres.errors import convert, is_connection_error, is_transient, scrub
from stepstone.store.postgres.schema import LATEST, apply_migrations, check_schema, schema_version
from stepstone.store.postgres.tx import PostgresReads, PostgresTx
from stepstone.store.postgres.writer import Op, Writer
from stepstone.store.scripts.tx import Tx

__all__ = ["StoreBase"]

T = TypeVar("T")
Script = Callable[..., Coroutine[Any, Any, T]]
_READ_BACKOFF_S = (0.02, 1.0)


@dataclass(eq=False)
class _Loop:
    """The store on one event loop: its connections and its writer."""

    link: Link
    writer: Writer
    opening: asyncio.Task[None] | None = None
    ready: bool = False


class StoreBase:
    """Connections, reads and writes of a PostgreSQL store; the port lives in its subclasses."""

    def __init__(
        self,
        url: str,
        *,
        durability: Literal["normal", "full"] = "normal",
        auto_migrate: bool = False,
        pool_size: int = 10,
        retry_s: float = 30.0,
    ) -> None:
        if durability not in ("normal", "full"):
            raise InvalidArgument(f"durability must be 'normal' or 'full', got {durability!r}")
        if pool_size < 1 or retry_s < 0:
            raise InvalidArgument("pool_size must be >= 1 and retry_s >= 0")
        self.durability = durability
        self.auto_migrate = auto_migrate
        self.retry_s = retry_s
        try:
            self._settings = LinkSettings.from_url(
                url,
                redact_url(url),
                pool_size=pool_size,
                synchronous_commit="on" if durability == "normal" else "remote_apply",
            )
        except psycopg.Error as exc:
            redacted = redact_url(url)
            problem = scrub(str(exc), _password_in(url))
            raise InvalidArgument(f"{redacted}: not a valid PostgreSQL URL ({problem})") from None
        self.url = self._settings.url  # never with its password
        self._loops: dict[asyncio.AbstractEventLoop, _Loop] = {}
        self._schema_ok = False
        self._closed = False
        self._reads = PostgresReads(self._rows)

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    # --- lifecycle -----------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        applied = await apply_migrations(self._settings)
        self._schema_ok = True
        return applied

    async def schema_status(self) -> tuple[int, int]:
        return await schema_version(self._settings), LATEST

    async def close(self) -> None:
        self._closed = True
        loops, self._loops = self._loops, {}
        current = asyncio.get_running_loop()
        for loop, state in loops.items():
            if loop is current:
                with contextlib.suppress(Exception):
                    await state.writer.drain()
                await state.link.close()
            elif loop.is_running():
                asyncio.run_coroutine_threadsafe(state.link.close(), loop)
            else:
                state.link.abandon()

    async def _state(self) -> _Loop:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is not None and state.ready:
            return state
        if self._closed:
            raise StoreError(self.url, "the store is closed")
        if state is None:
            link = Link(self._settings)
            state = self._loops[loop] = _Loop(link, Writer(link, self.retry_s))
            state.opening = loop.create_task(self._open(state))
        assert state.opening is not None
        try:
            await asyncio.shield(state.opening)
        except BaseException:
            if self._loops.get(loop) is state and state.opening.done():
                del self._loops[loop]
                await state.link.close()
            raise
        return state

    async def _open(self, state: _Loop) -> None:
        if not self._schema_ok:
            await check_schema(self._settings, auto_migrate=self.auto_migrate)
            self._schema_ok = True
        await state.link.open()
        state.ready = True

    async def change_token(self) -> object:
        """How many changes this loop has heard of (local commits that may wake someone, and
        notifications); the listener is up before the token is handed out, so every commit
        after it is counted."""
        try:
            state = await self._state()
        except StoreError:
            return None  # nothing to compare with: the next wait waits from then on
        return await state.link.changes.token()

    async def wait_for_change(self, timeout_s: float, *, since: object = None) -> None:
        state = await self._state()
        await state.link.changes.wait(timeout_s, since)

    # --- reads and writes ----------------------------------------------------------------------

    async def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run one read on a pooled connection, retrying while the database is unreachable."""
        state = await self._state()
        link = state.link
        deadline = link.loop.time() + self.retry_s
        attempt = 0
        while True:
            conn: Conn | None = None
            try:
                conn = await link.reader(deadline)
                cur = await conn.execute(sql, params)
                rows = await cur.fetchall() if cur.description is not None else []
            except asyncio.CancelledError:
                if conn is not None:
                    await asyncio.shield(link.discard(conn))
                raise
            except psycopg.Error as exc:
                if conn is not None:
                    await link.discard(conn)
                if is_connection_error(exc):
                    await link.check()
                delay = min(_READ_BACKOFF_S[0] * 2**attempt, _READ_BACKOFF_S[1])
                if not is_transient(exc) or link.loop.time() + delay > deadline:
                    raise convert(exc, self.url, self._settings.secret) from exc
                attempt += 1
                await asyncio.sleep(delay)
                continue
            await link.release(conn)
            return rows

    async def _read(self, script: Script[T], *args: Any) -> T:
        """Run the read-only ``script(tx, *args)``, each statement retried on its own."""
        reads: Tx = self._reads
        return await script(reads, *args)

    async def _write(
        self,
        script: Script[T],
        *args: Any,
        tx: bool = True,
        safe: bool = True,
        notify: bool = False,
    ) -> T:
        """Run ``script(tx, *args)`` through this loop's writer (see :class:`Op` for the flags),
        again after a lost connection with the attempt number in ``tx.attempt``."""
        state = await self._state()

        async def body(conn: Conn, attempt: int) -> T:
            tx: Tx = PostgresTx(conn, attempt)
            return await script(tx, *args)

        result: T = await state.writer.submit(Op(body, tx=tx, safe=safe, notify=notify))
        return result


def _password_in(url: str) -> str | None:
    """The password of ``scheme://user:password@host...`` (to keep it out of a parse error)."""
    _, sep, rest = url.partition("://")
    creds, at, _ = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return None
    return creds.split(":", 1)[1] or None
