"""The skills worker as a daemon: one per machine and home, found through a lock file.

The daemon holds an exclusive ``flock`` on its lock file for as long as it lives and writes its
pid into it; the operating system drops the lock when the process ends however it ends
(SIGKILL included), so "is a daemon alive?" is "is the lock held?", and of any number of
daemons started at once (ten racing launches) exactly one gets the lock: the others exit at
once. Nothing here reads the environment: the CLI passes the paths.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from stepstone.core.frozen import frozen

__all__ = ["DaemonFiles", "DaemonLock", "daemon_pid", "fingerprint", "spawn_daemon", "stop_daemon"]


@frozen
class DaemonFiles:
    """Where the daemon's lock (with its pid) and its log live (``~/.stepstone/...``)."""

    lock: Path
    log: Path


class DaemonLock:
    """The lock a daemon holds for its life (released when the process ends)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        """Take the lock and write this process's pid; False if another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


def daemon_pid(files: DaemonFiles) -> int | None:
    """The pid of the live daemon, or None when the lock is free."""
    try:
        f = files.lock.open("r")
    except FileNotFoundError:
        return None
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # held: a daemon lives
            text = f.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return None


def spawn_daemon(argv: Sequence[str], files: DaemonFiles, *, timeout_s: float = 15.0) -> int:
    """Start ``argv`` (a ``stepstone daemon run`` command) detached from this process: its own
    session, stdin from /dev/null, output appended to the log. Returns the pid of the daemon
    holding the lock once one does (it may be another one, started by a racing launch)."""
    files.log.parent.mkdir(parents=True, exist_ok=True)
    with files.log.open("ab") as log:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + timeout_s
    while True:
        pid = daemon_pid(files)
        if pid is not None and pid > 0:
            return pid
        if child.poll() is not None and daemon_pid(files) is None:
            raise RuntimeError(
                f"the daemon exited with code {child.returncode} before it started; see {files.log}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the daemon did not start within {timeout_s:.0f} s; see {files.log}"
            )
        time.sleep(0.02)


def stop_daemon(files: DaemonFiles, *, timeout_s: float = 30.0) -> int | None:
    """SIGTERM the daemon (it drains: running steps get their grace period) and wait until its
    lock is free; the pid stopped, or None when none ran."""
    pid = daemon_pid(files)
    if pid is None or pid <= 0:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while daemon_pid(files) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the daemon (pid {pid}) did not stop within {timeout_s:.0f} s")
        time.sleep(0.05)
    return pid


def fingerprint(folders: Iterable[Path]) -> str:
    """A digest of the skill files under ``folders`` (names, sizes, modification times): it
    changes when a skill is edited, added or removed."""
    digest = hashlib.sha256()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix in (".py", ".md", ".toml") and "__pycache__" not in path.parts:
                with contextlib.suppress(OSError):
                    st = path.stat()
                    digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
