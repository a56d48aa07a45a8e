"""Leases on names (a lock in the store): acquiring one (or taking over an expired one, or one
whose holder the caller found dead) in one statement, renewing, releasing and reading it."""

from __future__ import annotations

from datetime import datetime, timedelta

from stepstone.core.model import NamedLease
from stepstone.store.scripts.tx import Tx

__all__ = ["acquire_lease", "get_lease", "release_lease", "renew_lease"]


async def acquire_lease(
    tx: Tx, name: str, holder: str, ttl_s: float, now: datetime, replacing: str | None
) -> NamedLease | None:
    """The lease as it stands after asking for it: held by ``holder`` when it got it, by
    another holder when not (None only if that one released it meanwhile)."""
    params = {
        "name": name,
        "holder": holder,
        "replacing": replacing,
        "now": now,
        "expires_at": now + timedelta(seconds=ttl_s),
    }
    async with tx.atomic():  # PostgreSQL: the read sees the row the upsert found (and locked)
        row = await tx.one("acquire_lease", params)
        if row is None:
            row = await tx.one("get_lease", {"name": name})
    return tx.columns.lease(row) if row is not None else None


async def renew_lease(tx: Tx, name: str, holder: str, ttl_s: float, now: datetime) -> bool:
    params = {"name": name, "holder": holder, "now": now}
    return await tx.run("renew_lease", {**params, "expires_at": now + timedelta(seconds=ttl_s)}) > 0


async def release_lease(tx: Tx, name: str, holder: str) -> bool:
    return await tx.run("release_lease", {"name": name, "holder": holder}) > 0


async def get_lease(tx: Tx, name: str) -> NamedLease | None:
    row = await tx.one("get_lease", {"name": name})
    return tx.columns.lease(row) if row is not None else None
