"""What the store adapters' write paths and the step thread pool ask of the running event loop."""

from __future__ import annotations

import asyncio

__all__ = ["others_ready"]


def others_ready(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether other callbacks or tasks are ready to run on ``loop``: a write deferred to the
    next iteration could be committed together with theirs (group commit), and the step thread
    pool must not hold the loop to wait for a sync step in place (``runtime.threads``).

    Cancelled handles do not count: removing a reader cancels its handle where it may already
    sit in the ready queue (psycopg does so after each statement), and counting it sent half
    of a sequential workflow's step writes on PostgreSQL through the batch path (a future, a
    task and extra loop iterations for a batch of one). Loops that do not expose their ready
    queue always batch (and never wait in place).
    """
    ready = getattr(loop, "_ready", None)
    if ready is None:
        return True
    return any(not handle.cancelled() for handle in ready)
