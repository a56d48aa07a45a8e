"""The client's inbox operations: mark a run as launched, read and dismiss its outcomes."""

from __future__ import annotations

from stepstone.client.base import ClientBase
from stepstone.core.model import InboxItem, Launch

__all__ = ["InboxReading"]


class InboxReading(ClientBase):
    async def record_launch(self, launch: Launch) -> None:
        """Mark ``launch.run_id`` as launched before starting it: its outcomes (done, failed,
        cancelled, waiting for a signal) each land in the inbox exactly once."""
        await self.store.record_launch(launch, now=self.clock.now())

    async def inbox(self, *, include_read: bool = False, limit: int = 1000) -> list[InboxItem]:
        """Unread inbox items, oldest first (``include_read``: then the read ones)."""
        return await self.store.list_inbox(include_read=include_read, limit=limit)

    async def count_unread(self) -> int:
        """How many inbox items are unread."""
        return await self.store.count_unread()

    async def dismiss(self, run_id: str | None = None) -> int:
        """Mark the unread items of ``run_id`` (None: all) read; how many were."""
        return await self.store.dismiss_inbox(run_id, now=self.clock.now())
