"""The client's memory operations: the documents runs share through ``ctx.memory``."""

from __future__ import annotations

import builtins
from typing import Any

from stepstone.client.base import ClientBase
from stepstone.core import codec
from stepstone.core.memory import MemoryDoc, check_address

__all__ = ["MemoryReading"]


class MemoryReading(ClientBase):
    async def memory_get(
        self, scope: str, key: str, *, owner: str | None = None
    ) -> MemoryDoc | None:
        """The memory document at ``(scope, owner, key)`` (its ``.value`` and ``.version``), or
        None."""
        scope, owner, key = check_address(scope, key, owner)
        return await self.store.get_memory(scope, owner, key)

    async def memory_set(
        self, scope: str, key: str, value: Any, *, owner: str | None = None
    ) -> int:
        """Write a memory document from outside any run (replacing what is there); returns its
        new version. A run that read the old version and writes after this gets a conflict
        (``Memory.update`` then runs again on this value)."""
        scope, owner, key = check_address(scope, key, owner)
        value_json = codec.encode(value, f"memory {scope}/{key}")
        return await self.store.put_memory(scope, owner, key, value_json, now=self.clock.now())

    async def memory_delete(self, scope: str, key: str, *, owner: str | None = None) -> bool:
        """Delete a memory document; whether there was one."""
        scope, owner, key = check_address(scope, key, owner)
        return await self.store.delete_memory(scope, owner, key)

    async def memory_list(
        self, scope: str | None = None, *, owner: str | None = None, limit: int = 1000
    ) -> builtins.list[MemoryDoc]:
        """Memory documents by scope, owner and key (each filter optional)."""
        return await self.store.list_memory(scope=scope, owner=owner, limit=limit)
