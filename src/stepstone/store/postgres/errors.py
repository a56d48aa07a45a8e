"""psycopg errors, judged (may the operation be retried?) and converted into stepstone's tree.

This is the adapter's edge: every driver error that leaves the PostgreSQL store passes through
:func:`convert` once, which keeps the original in ``__cause__`` (the caller raises ``from``) and
never lets a password into a message.
"""

from __future__ import annotations

import psycopg

from stepstone.errors import (
    SchemaError,
    StoreError,
    StoreReadOnly,
    StoreUnavailable,
    Transient,
)

__all__ = ["convert", "is_connection_error", "is_transient", "scrub"]

# Connection exceptions (class 08), the server shutting down or starting (57P01-57P03), and too
# many connections right now (53300): the connection is gone or never came; a new one may work.
_CONNECTION_STATES = ("57P01", "57P02", "57P03", "53300")
# Rolled back because of other transactions (deadlock, serialization, lock not available): the
# same work may simply be done again.
_CONFLICT_STATES = ("40P01", "40001", "55P03")
_SCHEMA_STATES = ("42P01", "3F000", "42703", "42883")


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def is_connection_error(exc: BaseException) -> bool:
    """The connection failed, was refused or was closed by the server (its work is lost)."""
    if isinstance(exc, psycopg.InterfaceError):
        return True  # e.g. "the connection is closed"
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    if state is None:  # raised by libpq itself: connection refused, reset, closed unexpectedly
        return True
    return state.startswith("08") or state in _CONNECTION_STATES


def is_transient(exc: BaseException) -> bool:
    """Whether doing the same operation again may succeed."""
    if isinstance(exc, Transient) or is_connection_error(exc):
        return True
    return isinstance(exc, psycopg.Error) and exc.sqlstate in _CONFLICT_STATES


def convert(exc: BaseException, url: str, secret: str | None = None) -> StoreError:
    """The stepstone error for a driver error (``url`` is already redacted)."""
    if isinstance(exc, StoreError):
        return exc
    text = scrub(str(exc).strip() or type(exc).__name__, secret)
    text = " ".join(text.split())
    state = exc.sqlstate if isinstance(exc, psycopg.Error) else None
    migrate = f"run `stepstone migrate --db {url}` (or `await store.migrate()`)"
    if state in _SCHEMA_STATES:
        return SchemaError(url, f"the stepstone schema is missing or damaged ({text}); {migrate}")
    if state == "25006":
        return StoreReadOnly(url, f"the server refuses writes ({text})")
    if state == "3D000":
        return StoreUnavailable(url, f"the database does not exist ({text}); create it first")
    if state is not None and state.startswith("28"):
        return StoreUnavailable(url, f"PostgreSQL refused the login ({text})")
    if isinstance(exc, psycopg.Error) and (is_transient(exc) or state == "53100"):
        return StoreUnavailable(url, f"PostgreSQL is unavailable ({text})")
    if isinstance(exc, Transient):
        return StoreUnavailable(url, f"the run kept changing under this write ({text})")
    if state == "42501":
        return StoreError(url, f"permission denied ({text})")
    return StoreError(url, text)
