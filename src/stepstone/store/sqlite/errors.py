"""sqlite3 errors, converted into stepstone's tree by their SQLite result code.

This is the adapter's edge (as :mod:`stepstone.store.postgres.errors` is PostgreSQL's): every
driver error that leaves the SQLite store passes through :func:`convert` once, and the caller
raises the result ``from`` the original. Errors are judged by ``sqlite_errorcode`` (its primary
code, the low byte), never by their message, except a missing table or column: SQLite reports
those as the generic ``SQLITE_ERROR``, so only the message tells them apart.
"""

from __future__ import annotations

import sqlite3

from stepstone.errors import (
    SchemaError,
    StoreCorrupt,
    StoreError,
    StoreReadOnly,
    StoreUnavailable,
)

__all__ = ["convert", "is_busy"]

# Primary result codes (https://sqlite.org/rescode.html); extended codes keep them in the low byte.
_BUSY, _LOCKED, _READONLY = sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY
_CORRUPT, _NOTADB, _FULL = sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_FULL
_CANTOPEN, _IOERR, _PERM = sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_PERM
_ERROR = sqlite3.SQLITE_ERROR


def _primary(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_busy(exc: sqlite3.Error) -> bool:
    """Another connection holds the lock this one needs (SQLITE_BUSY or SQLITE_LOCKED)."""
    return _primary(exc) in (_BUSY, _LOCKED)


def convert(exc: sqlite3.Error, url: str, busy_timeout_s: float) -> StoreError:
    """The stepstone error for a sqlite3 error (the caller raises it ``from exc``)."""
    text = str(exc)
    code = _primary(exc)
    if code == _READONLY:
        return StoreReadOnly(url, f"the database refuses writes ({text})")
    if code in (_NOTADB, _CORRUPT):
        return StoreCorrupt(url, f"the file is not a usable SQLite database ({text})")
    if code in (_BUSY, _LOCKED):
        return StoreUnavailable(
            url, f"the database stayed locked for more than {busy_timeout_s:g}s ({text})"
        )
    if code in (_CANTOPEN, _IOERR, _PERM):
        return StoreUnavailable(url, f"cannot open the database file ({text})")
    if code == _FULL:
        return StoreUnavailable(url, f"the disk is full ({text})")
    if code == _ERROR and ("no such table" in text or "no such column" in text):
        return SchemaError(
            url,
            f"the stepstone schema is missing or damaged ({text}); "
            f"run `stepstone migrate --db {url}`",
        )
    return StoreError(url, text)
