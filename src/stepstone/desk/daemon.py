"""The skills worker as a daemon: one per host and skills path, decided by a lease in the store.

The daemon is a :class:`~stepstone.Worker` started with ``exclusive=`` :func:`lease_name`: it
takes that lease in the store when it starts (one statement, so of ten daemons started by ten
racing launches exactly one gets it and the others exit), renews it with its heartbeat and
releases it when it stops. A daemon that dies however it dies (SIGKILL included) leaves a lease
whose holder is gone: the next launch sees that (the holder's pid on this host, from the worker
registry), starts another daemon, and that one takes the lease over at once and the dead one's
runs with it.

Why one per host *and* skills path: a daemon executes the skill code it found in this machine's
folders (``./skills`` of the directory it was started from, ``~/.stepstone/skills``, ...) and
keeps this home's INBOX.md and run folders, so neither a daemon on another host sharing a
PostgreSQL store nor one serving another project's ``./skills`` can stand in for it. The lease
lives in the store the runs are in, so each store gets its own daemon as well.

A worker serving a skills path (the daemon, or ``stepstone worker --skills``) offers the label
``skills=KEY`` (:func:`skills_key`), so a launch can tell from the worker registry that someone
already serves its run. Nothing here reads the environment: the CLI passes the paths.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from stepstone.core.model import NamedLease, WorkerInfo
from stepstone.runtime.exclusive import holder_alive, worker_alive
from stepstone.runtime.identity import HOST

__all__ = [
    "SKILLS_LABEL",
    "daemon_of",
    "fingerprint",
    "lease_name",
    "skills_key",
    "skills_worker",
    "spawn_daemon",
    "stop_daemon",
]

SKILLS_LABEL = "skills"
"""The label a worker serving a skills path offers; its value is the path's :func:`skills_key`."""


def skills_key(folders: Iterable[Path]) -> str:
    """A short digest of the skills path (its folders, resolved, in lookup order)."""
    text = "\0".join(str(Path(f).expanduser().resolve()) for f in folders)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def lease_name(key: str, host: str = HOST) -> str:
    """The store lease of the daemon serving skills path ``key`` on ``host``."""
    return f"skills-daemon:{host}:{key}"


def daemon_of(
    lease: NamedLease | None, workers: Sequence[WorkerInfo], now: datetime
) -> WorkerInfo | None:
    """The live daemon: the registry entry of the lease's holder, if it still runs."""
    if lease is None or not holder_alive(lease, workers, now):
        return None
    return next(w for w in workers if w.worker_id == lease.holder)


def skills_worker(
    workers: Sequence[WorkerInfo], key: str, queue: str, now: datetime
) -> WorkerInfo | None:
    """A live worker serving skills path ``key`` on ``queue`` (the daemon, or a ``worker
    --skills`` of the user's own), or None."""
    for w in workers:
        if (SKILLS_LABEL, key) in w.labels and queue in w.queues and worker_alive(w, now):
            return w
    return None


def spawn_daemon(
    argv: Sequence[str],
    log: Path,
    started: Callable[[], int | None],
    *,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 15.0,
) -> int:
    """Start ``argv`` (a ``stepstone daemon run`` command) detached from this process, in
    ``env`` (default: this process's): its own session, stdin from /dev/null, output appended
    to ``log``. Returns the pid ``started()`` reports once a daemon holds the lease (it may be
    another one, started by a racing launch)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=dict(env) if env is not None else None,
        )
    deadline = time.monotonic() + timeout_s
    while True:
        exited = child.poll() is not None
        pid = started()
        if pid is not None:
            return pid
        if exited:
            raise RuntimeError(
                f"the daemon exited with code {child.returncode} before it started; see {log}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"the daemon did not start within {timeout_s:.0f} s; see {log}")
        time.sleep(0.02)


def stop_daemon(pid: int, gone: Callable[[], bool], *, timeout_s: float = 30.0) -> None:
    """SIGTERM the daemon ``pid`` (it drains: running steps get their grace period, and it
    releases its lease) and wait until ``gone()``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while not gone():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the daemon (pid {pid}) did not stop within {timeout_s:.0f} s")
        time.sleep(0.05)


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
