"""Open a store by URL: ``sqlite:///path/to.db`` (embedded) or ``postgresql://...``."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from stepstone.errors import InvalidArgument

if TYPE_CHECKING:
    from stepstone.core.port import Store

__all__ = [
    "DEFAULT_DB_PATH",
    "is_sqlite",
    "open_store",
    "open_store_for_use",
    "redact_url",
    "sqlite_path",
]

DEFAULT_DB_PATH = Path("~/.stepstone/stepstone.db")


def open_store(
    url: str | Path | None = None,
    *,
    durability: Literal["normal", "full"] = "normal",
    auto_migrate: bool | None = None,
) -> Store:
    """Open the store at ``url``; nothing is connected until first use.

    ``sqlite:///relative.db``, ``sqlite:////absolute.db`` and plain paths open SQLite;
    ``postgresql://`` opens PostgreSQL (``pip install 'stepstone[postgres]'``). With no URL the
    embedded default ``~/.stepstone/stepstone.db`` is used, and it migrates itself on first use;
    other stores must be migrated explicitly (``stepstone migrate`` or ``await store.migrate()``)
    unless ``auto_migrate=True``. ``":memory:"`` (or ``sqlite:///:memory:``) is a private
    database of this store object, migrated on open and gone when it closes (tests,
    notebooks). ``durability="full"`` commits every checkpoint with fsync.
    """
    if url is None:
        from stepstone.store.sqlite.store import SQLiteStore

        return SQLiteStore(
            DEFAULT_DB_PATH.expanduser(),
            durability=durability,
            auto_migrate=True if auto_migrate is None else auto_migrate,
        )
    text = str(url)
    if is_sqlite(url):
        from stepstone.store.sqlite.store import SQLiteStore

        path = sqlite_path(text)
        return SQLiteStore(path, durability=durability, auto_migrate=bool(auto_migrate))
    scheme = text.partition("://")[0]
    if scheme in ("postgresql", "postgres"):
        try:
            # imported by name: the adapter and its driver are an optional extra
            adapter = importlib.import_module("stepstone.store.postgres.store")
        except ImportError as exc:
            raise InvalidArgument(
                f"{redact_url(text)}: the PostgreSQL store needs "
                f"`pip install 'stepstone[postgres]'` ({exc})"
            ) from exc
        store: Store = adapter.PostgresStore(
            text, durability=durability, auto_migrate=bool(auto_migrate)
        )
        return store
    raise InvalidArgument(
        f"unknown store URL scheme {scheme!r} in {redact_url(text)!r} (use sqlite:/// or postgresql://)"
    )


def open_store_for_use(
    url: Store | str | Path | None = None, *, auto_migrate: bool | None = None
) -> tuple[Store, bool]:
    """The store a client or worker uses, and whether it opened it (and so must close it).

    A ``Store`` is used as it is. From a URL, ``auto_migrate=None``: an SQLite file (named or
    the default) is created and migrated on first use; PostgreSQL is migrated explicitly
    (``stepstone migrate``), since its schema is shared by a whole fleet."""
    from stepstone.core.port import Store  # imported on use: `import stepstone.store` stays light

    if isinstance(url, Store):
        return url, False
    if auto_migrate is None:
        auto_migrate = is_sqlite(url)
    return open_store(url, auto_migrate=auto_migrate), True


def is_sqlite(url: str | Path | None) -> bool:
    """What :func:`open_store` opens as SQLite: no URL (the default), a path, or sqlite://."""
    if url is None or isinstance(url, Path):
        return True
    text = str(url)
    return "://" not in text or text.startswith("sqlite://")


def sqlite_path(text: str) -> str:
    """The file (or ``:memory:``) an SQLite URL or plain path names."""
    if "://" not in text:
        return text
    rest = text.partition("://")[2]
    if not rest or rest == "/":
        raise InvalidArgument(f"store URL {text!r} names no file (use sqlite:///path/to.db)")
    return rest[1:] if rest.startswith("/") else rest


def redact_url(url: str) -> str:
    """The URL without its password (in the userinfo or a ``password=`` parameter), for
    messages and logs."""
    url = re.sub(r"([?&]password=)[^&]*", r"\1***", url, flags=re.IGNORECASE)
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url
