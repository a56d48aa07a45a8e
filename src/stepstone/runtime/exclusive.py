"""One worker per name: a store lease taken when the worker starts, renewed with its heartbeat
and released when it stops; a holder found dead is replaced at once, not after its lease expires.

The holder of the lease is the worker's id. A worker registers before it takes the lease and
unregisters after it gave it up, so a holder missing from the worker registry has died (and its
row was cleaned up by another worker); one on this host whose process is gone (SIGKILL) has died
too. Either is replaced in the statement that takes the lease (``replacing=``), so two
replacements racing still leave one holder.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from stepstone.core.clock import Clock
from stepstone.core.model import NamedLease, WorkerInfo
from stepstone.core.port import Store
from stepstone.errors import LeaseHeld
from stepstone.runtime.identity import HOST, process_alive

__all__ = ["ExclusiveLease", "holder_alive", "worker_alive"]


def worker_alive(worker: WorkerInfo, now: datetime) -> bool:
    """Whether a registered worker still runs: on this host, its process (pid and start time);
    elsewhere, a heartbeat within its lease."""
    if worker.host == HOST:
        return process_alive(worker.pid, worker.process_start)
    return worker.alive_at(now)


def holder_alive(lease: NamedLease, workers: Sequence[WorkerInfo], now: datetime) -> bool:
    """Whether ``lease`` is held at ``now`` by a worker that still runs."""
    if not lease.held_at(now):
        return False
    return any(w.worker_id == lease.holder and worker_alive(w, now) for w in workers)


class ExclusiveLease:
    """The lease ``name`` held by ``holder`` (a worker's id) for ``ttl_s`` at a time."""

    def __init__(self, store: Store, name: str, holder: str, ttl_s: float, clock: Clock) -> None:
        self.store, self.name, self.holder, self.ttl_s, self.clock = (
            store,
            name,
            holder,
            ttl_s,
            clock,
        )

    async def take(self) -> None:
        """Take the lease, replacing a dead holder; :class:`LeaseHeld` when a live one has it."""
        replacing: str | None = None
        lease: NamedLease | None = None
        for _ in range(3):  # a holder releasing or dying meanwhile is looked at again
            now = self.clock.now()
            lease = await self.store.acquire_lease(
                self.name, self.holder, ttl_s=self.ttl_s, now=now, replacing=replacing
            )
            if lease is not None and lease.holder == self.holder:
                return
            if lease is None:
                continue
            if holder_alive(lease, await self.store.list_workers(), now):
                break
            replacing = lease.holder
        raise LeaseHeld(self.name, lease.holder if lease is not None else "another worker")

    async def renew(self) -> bool:
        """Extend the lease; False when it was lost (it expired and another worker took it)."""
        now = self.clock.now()
        return await self.store.renew_lease(self.name, self.holder, ttl_s=self.ttl_s, now=now)

    async def release(self) -> None:
        await self.store.release_lease(self.name, self.holder)
