"""The daemon thread pool that runs sync steps: results, errors, cancellation, a closed loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from stepstone.runtime.threads import DaemonThreadPool


@pytest.fixture
def pool() -> DaemonThreadPool:
    return DaemonThreadPool(2, "test")


async def test_run_returns_the_result_from_a_pool_thread(pool: DaemonThreadPool) -> None:
    loop = asyncio.get_running_loop()
    name = await pool.run(loop, lambda: threading.current_thread().name)
    assert name.startswith("test-")
    assert name != threading.current_thread().name


async def test_run_raises_the_calls_exception(pool: DaemonThreadPool) -> None:
    def boom() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError, match="k"):
        await pool.run(asyncio.get_running_loop(), boom)


async def test_stop_iteration_becomes_a_runtime_error(pool: DaemonThreadPool) -> None:
    def stop() -> None:
        raise StopIteration

    with pytest.raises(RuntimeError, match="StopIteration"):
        await pool.run(asyncio.get_running_loop(), stop)


async def test_a_call_cancelled_before_it_starts_never_runs() -> None:
    pool = DaemonThreadPool(1, "one")
    loop = asyncio.get_running_loop()
    release, started = threading.Event(), threading.Event()
    ran: list[str] = []

    def blocker() -> None:
        started.set()
        release.wait(10)

    first = pool.run(loop, blocker)
    await asyncio.to_thread(started.wait, 10)
    second = pool.run(loop, lambda: ran.append("second"))
    second.cancel()
    release.set()
    await first
    await pool.run(loop, lambda: ran.append("third"))
    assert ran == ["third"]


async def test_a_timed_out_call_finishes_and_its_result_is_dropped(pool: DaemonThreadPool) -> None:
    loop = asyncio.get_running_loop()
    release, done = threading.Event(), threading.Event()

    def slow() -> str:
        release.wait(10)
        done.set()
        return "late"

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pool.run(loop, slow), 0.05)
    release.set()
    assert await asyncio.to_thread(done.wait, 10)
    assert await pool.run(loop, lambda: "next") == "next"


def test_a_result_for_a_closed_loop_is_dropped_and_the_thread_serves_on() -> None:
    pool = DaemonThreadPool(1, "closed")
    loop = asyncio.new_event_loop()
    release = threading.Event()
    pool.run(loop, lambda: release.wait(10))
    loop.close()
    release.set()
    other = asyncio.new_event_loop()
    try:
        assert other.run_until_complete(pool.run(other, lambda: 7)) == 7
    finally:
        other.close()


async def test_a_quick_call_on_an_idle_loop_is_settled_in_place() -> None:
    pool = DaemonThreadPool(1, "quick", wait_s=5.0)
    loop = asyncio.get_running_loop()
    future = pool.run(loop, lambda: threading.current_thread().name)
    assert future.done()  # the loop's thread waited for it: no loop iteration in between
    assert future.result().startswith("quick-")


async def test_no_wait_in_place_while_other_work_is_ready() -> None:
    pool = DaemonThreadPool(1, "busy", wait_s=5.0)
    loop = asyncio.get_running_loop()
    other = loop.create_future()
    loop.call_soon(other.set_result, "other")
    future = pool.run(loop, lambda: "mine")
    assert not future.done()  # delivered through the loop, after the ready callback
    assert await future == "mine"
    assert other.result() == "other"


async def test_a_call_longer_than_the_wait_is_delivered_through_the_loop() -> None:
    pool = DaemonThreadPool(1, "slow", wait_s=0.001)
    loop = asyncio.get_running_loop()
    release = threading.Event()
    future = pool.run(loop, lambda: release.wait(10) and "late")
    assert not future.done()
    ticks = 0
    while ticks < 3:  # the loop runs on while the call does
        await asyncio.sleep(0)
        ticks += 1
    release.set()
    assert await future == "late"


async def test_results_cross_the_wait_boundary_exactly_once() -> None:
    # calls about as long as the wait, so hand-overs race the loop's giving up
    pool = DaemonThreadPool(2, "race", wait_s=0.00005)
    loop = asyncio.get_running_loop()

    def work(i: int) -> int:
        if i % 3 == 0:
            raise ValueError(i)
        total = 0
        for k in range(i % 7 * 300):
            total += k
        return i

    for i in range(1500):
        future = pool.run(loop, lambda i=i: work(i))
        if i % 3 == 0:
            with pytest.raises(ValueError, match=f"^{i}$"):
                await future
        else:
            assert await future == i


async def test_a_call_queued_behind_another_is_delivered() -> None:
    # no free thread: the loop does not wait for it in place, and its result still arrives
    pool = DaemonThreadPool(1, "queued", wait_s=0.05)
    loop = asyncio.get_running_loop()
    release = threading.Event()
    first = pool.run(loop, lambda: release.wait(10) and "first")
    second = pool.run(loop, lambda: "second")
    assert not second.done()
    release.set()
    assert await asyncio.wait_for(asyncio.gather(first, second), 10) == ["first", "second"]
