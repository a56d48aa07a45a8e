"""Leases on names in the store contract (SQLite and PostgreSQL): one holder at a time, taken
over once expired or from a holder found dead, renewed and released only by their holder; and
the worker that holds one (``Worker(exclusive=...)``)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest

from stepstone import Client, Worker, WorkflowContext, workflow
from stepstone.core.port import Store
from stepstone.errors import LeaseHeld
from tests.test_store_contract import at


async def test_one_holder_until_it_expires(store: Store) -> None:
    got = await store.acquire_lease("d", "a", ttl_s=10, now=at(0))
    assert got is not None and (got.holder, got.expires_at) == ("a", at(10))
    other = await store.acquire_lease("d", "b", ttl_s=10, now=at(5))
    assert other is not None and other.holder == "a"  # who holds it, not taken
    again = await store.acquire_lease("d", "a", ttl_s=10, now=at(6))  # a retry is a renewal
    assert again is not None and (again.holder, again.acquired_at) == ("a", at(0))
    assert again.expires_at == at(16)
    taken = await store.acquire_lease("d", "b", ttl_s=10, now=at(16))  # expired: taken over
    assert taken is not None and (taken.holder, taken.acquired_at) == ("b", at(16))
    assert not await store.renew_lease("d", "a", ttl_s=10, now=at(17))  # a lost it
    assert await store.renew_lease("d", "b", ttl_s=10, now=at(17))
    lease = await store.get_lease("d")
    assert lease is not None and (lease.renewed_at, lease.expires_at) == (at(17), at(27))
    assert lease.held_at(at(26)) and not lease.held_at(at(27))


async def test_a_dead_holder_is_replaced_before_its_lease_expires(store: Store) -> None:
    await store.acquire_lease("d", "dead", ttl_s=30, now=at(0))
    wrong = await store.acquire_lease("d", "b", ttl_s=30, now=at(1), replacing="someone else")
    assert wrong is not None and wrong.holder == "dead"
    got = await store.acquire_lease("d", "b", ttl_s=30, now=at(1), replacing="dead")
    assert got is not None and got.holder == "b"
    late = await store.acquire_lease("d", "c", ttl_s=30, now=at(2), replacing="dead")
    assert late is not None and late.holder == "b"  # only one replaces it


async def test_release_only_by_the_holder(store: Store) -> None:
    await store.acquire_lease("d", "a", ttl_s=10, now=at(0))
    assert not await store.release_lease("d", "b")
    assert await store.release_lease("d", "a")
    assert await store.get_lease("d") is None
    assert not await store.renew_lease("d", "a", ttl_s=10, now=at(1))  # released: not revived
    got = await store.acquire_lease("d", "b", ttl_s=10, now=at(1))
    assert got is not None and got.holder == "b"
    assert await store.get_lease("other") is None


async def test_racing_acquirers_one_wins(store: Store) -> None:
    results = await asyncio.gather(
        *(store.acquire_lease("d", f"h{i}", ttl_s=10, now=at(0)) for i in range(10))
    )
    holders = {r.holder for r in results if r is not None}
    assert (
        len(holders) == 1
        and sum(r is not None and r.holder == f"h{i}" for i, r in enumerate(results)) == 1
    )


@workflow
async def noop(ctx: WorkflowContext) -> int:
    return 1


def test_an_exclusive_worker_holds_its_lease_and_a_second_one_is_refused(
    store_url: str,
) -> None:
    first = Worker(store_url, [noop], exclusive="one", worker_id="first")
    thread = threading.Thread(target=first.run)
    thread.start()
    try:
        assert first.ready.wait(30)
        second = Worker(store_url, [noop], exclusive="one", worker_id="second")
        with pytest.raises(LeaseHeld, match="'one' is held by first"):
            second.run()
        with Client(store_url) as client:
            lease = client.lease("one")
            assert lease is not None and lease.holder == "first"
            assert [w.worker_id for w in client.workers()] == ["first"]  # second unregistered
    finally:
        first.stop()
        thread.join(30)
    with Client(store_url) as client:
        assert client.lease("one") is None  # released at a graceful stop


async def test_a_worker_that_loses_its_lease_stops(store_url: str) -> None:
    from stepstone.core.settings import Settings
    from stepstone.store import open_store

    worker = Worker(
        store_url,
        [noop],
        exclusive="one",
        worker_id="first",
        settings=Settings(lease_s=5, heartbeat_s=0.05),
    )
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert await asyncio.to_thread(worker.ready.wait, 30)
        other = open_store(store_url)
        try:  # what a takeover after a stall looks like to the holder: its lease is another's
            assert await other.release_lease("one", "first")
            taken = await other.acquire_lease("one", "intruder", ttl_s=60, now=datetime.now(UTC))
            assert taken is not None and taken.holder == "intruder"
            await asyncio.to_thread(thread.join, 30)
            assert not thread.is_alive()  # it stopped on its own
            lease = await other.get_lease("one")
            assert lease is not None and lease.holder == "intruder"  # and left it alone
        finally:
            await other.close()
    finally:
        worker.stop()
        thread.join(30)
