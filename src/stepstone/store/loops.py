"""What the write paths of both adapters ask of the running event loop."""

from __future__ import annotations

import asyncio

__all__ = ["others_ready"]


def others_ready(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether other callbacks or tasks are ready to run on ``loop``, so a write deferred to
    the next iteration could be committed together with theirs (group commit).

    Cancelled handles do not count: removing a reader cancels its handle where it may already
    sit in the ready queue (psycopg does so after each statement), and counting it sent half
    of a sequential workflow's step writes on PostgreSQL through the batch path (a future, a
    task and extra loop iterations for a batch of one). Loops that do not expose their ready
    queue always batch.
    """
    ready = getattr(loop, "_ready", None)
    if ready is None:
        return True
    return any(not handle.cancelled() for handle in ready)
