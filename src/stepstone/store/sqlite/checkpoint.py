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

    A checkpoint that runs while commits go on never catches up with the last of them, and SQLite
    only starts the WAL over from its beginning when a write transaction begins with every frame
    copied back. Without that the WAL is only ever appended to, and appending costs each
    synchronous=FULL commit a file-size update in its fsync: measured here 280 µs per commit
    against 140 µs when the WAL is overwritten. So after each background checkpoint the writer
    is asked (:meth:`settle`) to copy back the few frames committed meanwhile, between two of its
    own transactions; its next transaction then restarts the WAL.
    """

    def __init__(self, path: str, busy_timeout_s: float) -> None:
        self._path = path
        self._busy_timeout_s = busy_timeout_s
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._settle = threading.Event()
        self._commits = 0
        self.ran = threading.Event()
        """Set after each background checkpoint (tests wait on it)."""
        self._thread = threading.Thread(
            target=self._serve, name="stepstone-checkpoint", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Called after each commit."""
        self._commits += 1
        if not self._dirty.is_set():
            self._dirty.set()

    def settle(self) -> bool:
        """True once after each background checkpoint: the writer should now run a (short)
        checkpoint of its own between transactions."""
        if not self._settle.is_set():
            return False
        self._settle.clear()
        return True

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
                commits = self._commits
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    # No commit meanwhile (as after an idle moment): every frame is copied
                    # back and the next transaction starts the log over by itself; a settle
                    # would only put a checkpoint's fsyncs on that commit (10 ms here).
                    if self._commits != commits:
                        self._settle.set()
                self.ran.set()
        finally:
            conn.close()
