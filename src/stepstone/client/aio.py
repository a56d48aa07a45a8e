"""The async client: the one implementation of every client operation."""

from __future__ import annotations

from stepstone.client.inspecting import Inspecting
from stepstone.client.operating import Operating
from stepstone.client.running import Running

__all__ = ["AsyncClient"]


class AsyncClient(Running, Operating, Inspecting):
    """Start and manage durable runs (async). See :class:`Client` for the blocking form.

    >>> client = AsyncClient("sqlite:///app.db", workflows=[checkout])
    >>> receipt = await client.run(checkout, order)            # executes here, durably
    >>> handle = await client.start(checkout, order)           # a worker executes it
    >>> await client.signal(handle.run_id, "approval", {"ok": True})
    """

    async def __aenter__(self) -> AsyncClient:
        return self
