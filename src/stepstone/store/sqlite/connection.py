"""How the SQLite store connects to its file: opening it (creating it, private to its owner,
only when migrating), WAL mode and the session's pragmas, and saying clearly why an open
failed. ``:memory:`` is one private database per connection, without WAL (the store keeps a
single connection)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from stepstone.core.frozen import frozen
from stepstone.errors import SchemaError, StoreError, StoreReadOnly, StoreUnavailable
from stepstone.store.sqlite.checkpoint import FALLBACK_CHECKPOINT_PAGES
from stepstone.store.sqlite.errors import convert, is_busy

__all__ = ["DatabaseFile", "open_connection"]


@frozen
class DatabaseFile:
    """Which file (``path``, or ``url`` in messages) and how long to wait for its lock."""

    path: str
    url: str
    busy_timeout_s: float

    def error(self, exc: sqlite3.Error) -> StoreError:
        """The stepstone error for ``exc``, with ``exc`` as its cause (see :mod:`.errors`)."""
        error = convert(exc, self.url, self.busy_timeout_s)
        error.__cause__ = exc  # also when it is handed to a waiting caller, not raised here
        return error


def open_connection(db: DatabaseFile, *, create: bool) -> sqlite3.Connection:
    """Connect; only a migrating open (``create``) may create the file and its folder, so a
    typo in a read-only command reports "no database" instead of leaving an empty file."""
    path = Path(db.path).expanduser()
    if db.path == ":memory:":
        target, uri = ":memory:", False
    elif create:
        _create_private(db, path)
        target, uri = str(path), False
    elif not path.exists():
        raise SchemaError(
            db.url,
            f"there is no database at {path}; run `stepstone migrate --db {db.url}` to create one",
        )
    else:
        target, uri = f"{path.resolve().as_uri()}?mode=rw", True
    try:
        conn = sqlite3.connect(
            target,
            isolation_level=None,
            check_same_thread=False,
            timeout=db.busy_timeout_s,
            uri=uri,
        )
    except sqlite3.Error as exc:
        raise _diagnose(db, exc, path) from exc
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(db.busy_timeout_s * 1000)}")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA temp_store = MEMORY")
        if db.path != ":memory:":
            _ensure_wal(db, conn)
            # Checkpoints run on a background thread (see Checkpointer); this large automatic
            # one is only the fallback that bounds the WAL if that thread falls behind.
            conn.execute(f"PRAGMA wal_autocheckpoint = {FALLBACK_CHECKPOINT_PAGES}")
    except sqlite3.Error as exc:
        conn.close()
        raise _diagnose(db, exc, path) from exc
    return conn


def _create_private(db: DatabaseFile, path: Path) -> None:
    """Create the database's folder (0700) and the empty file (0600) unless they exist: runs'
    inputs and outputs are private, and SQLite gives the -wal and -shm files the database
    file's mode."""
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(db.url, f"cannot create folder {path.parent}: {exc}") from exc
    # an existing file is kept as it is; any other failure is SQLite's to report (_diagnose)
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _ensure_wal(db: DatabaseFile, conn: sqlite3.Connection) -> None:
    """Switch to WAL unless already there. Switching needs an exclusive lock and SQLite
    reports "locked" at once, without its busy handler, when another connection is creating
    the same new database: retry for up to the busy timeout."""
    deadline = time.monotonic() + db.busy_timeout_s
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
            raise StoreError(db.url, f"cannot switch the database to WAL mode (got {mode})")
        return


def _diagnose(db: DatabaseFile, exc: sqlite3.Error, path: Path) -> StoreError:
    """An open that failed: say whether the file or its folder is read-only (SQLite's own
    message, "unable to open database file", does not)."""
    error = db.error(exc)
    if not isinstance(error, StoreUnavailable):
        return error
    if path.exists():
        try:
            with open(path, "r+b"):
                pass
        except OSError as os_error:
            return StoreReadOnly(db.url, f"the database file cannot be written ({os_error})")
    try:
        probe = path.parent / f".stepstone-probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as os_error:
        return StoreReadOnly(
            db.url,
            f"the folder {path.parent} cannot be written ({os_error}); SQLite (WAL mode) needs "
            "to create the -wal and -shm files next to the database",
        )
    return error
