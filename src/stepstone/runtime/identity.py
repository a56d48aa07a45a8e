"""Who holds a lease: this process's host, pid and start time, and whether a local pid is alive."""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["HOST", "process_alive", "process_start", "worker_id_for"]

HOST = socket.gethostname()


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), to tell a dead worker from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces or parentheses: split after its closing ")"
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def process_alive(pid: int, started: str | None) -> bool:
    """Whether the process that registered as (``pid``, ``started``) on this host still runs."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if started is not None:
        now_started = process_start(pid)
        if now_started is not None and now_started != started:
            return False  # the pid was reused by another process
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :].split()[:1] != ["Z"]


def worker_id_for(kind: str) -> str:
    """A new worker id: kind, host, pid and a random suffix (unique across restarts)."""
    return f"{kind}-{HOST}-{os.getpid()}-{os.urandom(3).hex()}"
