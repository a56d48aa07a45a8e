"""Where the blocking runner functions run: a client on a private loop thread, over a store
given by URL, object or backend (a store kept open across calls)."""

from __future__ import annotations

import contextlib
import shutil
import weakref
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from stepstone.client.aio import AsyncClient
from stepstone.client.portal import Portal
from stepstone.core.port import Store
from stepstone.errors import InvalidArgument
from stepstone.store import open_store

__all__ = ["Backend", "InMemoryBackend", "PostgresBackend", "Session", "StoreLike", "using"]

T = TypeVar("T")


class Session:
    """An :class:`AsyncClient` on a private loop thread, for the blocking functions."""

    def __init__(self, store: Store | str | Path, *, tempdir: str | None = None) -> None:
        self._owns = not isinstance(store, Store)
        self.store = store if isinstance(store, Store) else open_store(store, auto_migrate=True)
        self.client = AsyncClient(self.store)
        self._portal = Portal("stepstone-flow")
        self._tempdir = tempdir

    def call(self, fn: Callable[..., Coroutine[Any, Any, T]], /, *args: Any, **kw: Any) -> T:
        """Run ``fn(*args, **kw)`` on the session's loop and wait for it."""
        return self._portal.call(fn, *args, **kw)

    async def _close(self) -> None:
        await self.client.close()
        if self._owns:
            await self.store.close()

    def close(self) -> None:
        """Close the client, the store if the session opened it, and a temporary folder."""
        try:
            self._portal.call(self._close)
        finally:
            self._portal.close()
            if self._tempdir is not None:
                shutil.rmtree(self._tempdir, ignore_errors=True)


class Backend:
    """A store kept open across calls, by URL (``backend=`` in sayiir's functions): pass it
    to several runner calls and they share one connection instead of opening the store each
    time. Close it when done (or use it as a context manager)."""

    def __init__(self, url: str, *, tempdir: str | None = None) -> None:
        self.url = url
        self._tempdir = tempdir
        self._session: Session | None = None
        if tempdir is not None:  # the files go when the backend does, even if never closed
            self._finalizer = weakref.finalize(self, shutil.rmtree, tempdir, True)

    def session(self) -> Session:
        """The open client on this backend's store."""
        if self._session is None:
            self._session = Session(self.url)
        return self._session

    def close(self) -> None:
        """Close the store (and delete an in-memory backend's files)."""
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._tempdir is not None:
            self._finalizer()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InMemoryBackend(Backend):
    """A store that lives as long as this object: an in-memory SQLite database (no file).
    Nothing outlives the process."""

    def __init__(self) -> None:
        super().__init__(":memory:")


class PostgresBackend(Backend):
    """A PostgreSQL store by URL; its schema is created or migrated on first use."""

    def __init__(self, url: str) -> None:
        if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
            raise InvalidArgument(f"PostgresBackend needs a postgresql:// URL, got {url!r}")
        super().__init__(url)


StoreLike = Backend | Store | str | Path | None


@contextlib.contextmanager
def using(store: StoreLike, backend: StoreLike = None) -> Iterator[Session]:
    """A session on ``store`` (or sayiir's ``backend=``); None is an in-memory store."""
    if store is not None and backend is not None:
        raise InvalidArgument("pass store= or backend=, not both")
    target = store if store is not None else backend
    if isinstance(target, Backend):
        yield target.session()
        return
    session = Session(":memory:" if target is None else target)
    try:
        yield session
    finally:
        session.close()
