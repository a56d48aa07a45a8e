"""The async client: the one implementation of every client operation."""

from __future__ import annotations

from stepstone.client.inbox import InboxReading
from stepstone.client.inspecting import Inspecting
from stepstone.client.memories import MemoryReading
from stepstone.client.operating import Operating
from stepstone.client.resuming import Resuming
from stepstone.client.scheduling import Scheduling

__all__ = ["AsyncClient"]


class AsyncClient(Resuming, Operating, Scheduling, Inspecting, InboxReading, MemoryReading):
    """Start and manage durable runs (async). See :class:`Client` for the blocking form.

    >>> client = AsyncClient("sqlite:///app.db", workflows=[checkout])
    >>> receipt = await client.run(checkout, order)            # executes here, durably
    >>> handle = await client.start(checkout, order)           # a worker executes it
    >>> await client.signal(handle.run_id, "approval", {"ok": True})
    >>> run = await client.run_until_wait(approve, doc)     # returns at a signal wait
    >>> run = await client.resume(run.run_id, "approval", {"ok": True})  # exactly once
    """

    async def __aenter__(self) -> AsyncClient:
        return self
