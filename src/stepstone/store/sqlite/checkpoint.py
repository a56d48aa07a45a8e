"""WAL checkpoints on a background thread, so that no commit pays for one."""

from __future__ import annotations

import contextlib
import sqlite3
import threading

__all__ = ["FALLBACK_CHECKPOINT_PAGES", "Checkpointer"]

FALLBACK_CHECKPOINT_PAGES = 20_000  # ~80 MB of WAL
CHECKPOINT_EVERY_S = 0.2


class Checkpointer:
    """Copies the WAL back into the database on its own thread and connection.

    SQLite's automatic checkpoint runs inside the commit that crosses the threshold and fsyncs,
    which puts a multi-millisecond stall on one step in every few hundred. Here a PASSIVE
    checkpoint (it never blocks writers) runs at most every ``CHECKPOINT_EVERY_S`` after writes,
    with the GIL released while SQLite works.
    """

    def __init__(self, path: str, busy_timeout_s: float) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, name="stepstone-checkpoint", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        if not self._dirty.is_set():
            self._dirty.set()

    def stop(self) -> None:
        self._stop.set()
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
            while not self._stop.is_set():
                self._dirty.wait()
                if self._stop.wait(CHECKPOINT_EVERY_S):  # let writes accumulate; wake to stop
                    break
                self._dirty.clear()
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()
