"""Crashes with real processes: SIGKILL mid-run, a SIGSTOPped zombie, restarts, at-most-once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from stepstone import Client, RunFailed
from stepstone.core.model import RunState
from tests.apps import crash_app
from tests.workers import WorkerProcess, step_counts, wait_for_file_line

pytestmark = [pytest.mark.crash, pytest.mark.slow]


@pytest.fixture
def client(store_url: str) -> Client:
    c = Client(store_url, workflows=crash_app)
    c._portal.call(c.store.migrate)
    yield c  # type: ignore[misc]
    c.close()


def test_sigkill_mid_run_new_worker_finishes_each_step_once(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    handle = client.start(crash_app.ten_steps, str(side), run_id="crash-1")
    with WorkerProcess(store_url, env={"CRASH_HOLD": "5"}) as first:
        wait_for_file_line(side, r"^start 5 ")
        first.kill()
    with WorkerProcess(store_url) as second:
        assert handle.result(timeout_s=30) == list(range(10))
        second.stop()
    starts, ends, pids = step_counts(side)
    for seq in range(10):
        assert ends[seq] == 1, f"step {seq} completed {ends[seq]} times"
        if seq != 5:
            assert starts[seq] == 1, f"completed step {seq} ran {starts[seq]} times"
    assert starts[5] == 2, "the in-flight step ran at most twice (here: exactly twice)"
    assert pids[0] == {first.pid} and pids[9] == {second.pid}
    run = client.get("crash-1")
    assert run.recoveries == 1
    kinds = [e.kind for e in client.timeline("crash-1")]
    assert "recovered" in kinds


def test_dead_worker_on_this_host_is_taken_over_without_waiting_for_the_lease(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    handle = client.start(crash_app.ten_steps, str(side))
    with WorkerProcess(store_url, lease_s=600, env={"CRASH_HOLD": "2"}) as first:
        wait_for_file_line(side, r"^start 2 ")
        first.kill()
    started = time.monotonic()
    with WorkerProcess(store_url, lease_s=600) as second:
        assert handle.result(timeout_s=30) == list(range(10))
        second.stop()
    assert time.monotonic() - started < 20, "did not wait for the 600 s lease to expire"


def test_zombie_worker_after_sigstop_changes_nothing(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    handle = client.start(crash_app.ten_steps, str(side), run_id="zombie-1")
    env = {"CRASH_HOLD": "3", "CRASH_HOLD_S": "1.5"}
    with WorkerProcess(store_url, lease_s=1.0, env=env) as zombie:
        wait_for_file_line(side, rf"^start 3 {zombie.pid}$")
        zombie.send(signal.SIGSTOP)
        with WorkerProcess(store_url, lease_s=1.0) as rescuer:
            assert handle.result(timeout_s=30) == list(range(10))
            rescuer.stop()
        before = client.describe("zombie-1")
        zombie.send(signal.SIGCONT)
        zombie.wait_for_line(r"lease on run zombie-1 .* lost")
        after = client.describe("zombie-1")
        zombie.stop()
    assert after.run == before.run, "the zombie wrote nothing to the run"
    assert after.steps == before.steps, "nor to its journal"
    starts, ends, pids = step_counts(side)
    assert all(zombie.pid not in pids.get(seq, set()) for seq in range(4, 10)), "zombie went on"
    assert all(ends[seq] >= 1 for seq in range(10))
    assert [s for s in range(10) if s != 3 and starts[s] != 1] == []


def test_durable_sleep_across_a_worker_restart(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    handle = client.start(crash_app.sleepy, str(side), 1.5)
    with WorkerProcess(store_url) as first:
        wait_for_file_line(side, r"^end 0 ")
        deadline = time.monotonic() + 10
        while client.status(handle.run_id) is not RunState.SLEEPING:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert first.stop() == 0
    assert client.status(handle.run_id) is RunState.SLEEPING
    with WorkerProcess(store_url) as second:
        assert handle.result(timeout_s=30) == "woke"
        second.stop()
    _, ends, pids = step_counts(side)
    assert ends[0] == 1 and ends[1] == 1 and pids[1] == {second.pid}


def test_at_most_once_step_is_not_repeated_after_a_crash(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    handle = client.start(crash_app.pay, str(side), run_id="pay-1")
    with WorkerProcess(store_url, env={"CRASH_IN_PAYMENT": "1"}) as first:
        wait_for_file_line(side, r"^payment ")
        first.proc.wait(timeout=10)
    with WorkerProcess(store_url) as second:
        with pytest.raises(RunFailed) as info:
            handle.result(timeout_s=30)
        second.stop()
    assert info.value.error_type == "OutcomeUnknown"
    assert "send_payment" in info.value.message and "#1" in info.value.message
    assert side.read_text().count("payment") == 1, "the payment was sent exactly once"
    # an operator who checked with the payment provider may decide to send it again
    client.retry("pay-1")
    with WorkerProcess(store_url) as third:
        assert client.result("pay-1", timeout_s=30) == "paid"
        third.stop()
    assert side.read_text().count("payment") == 2 and side.read_text().count("end 0 ") == 1


def test_graceful_shutdown_hands_unfinished_runs_back(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    handle = client.start(crash_app.ten_steps, str(side), run_id="grace-1")
    env = {"CRASH_HOLD": "4", "CRASH_HOLD_S": "0.5"}
    with WorkerProcess(store_url, grace_s=10, env=env) as first:
        wait_for_file_line(side, r"^start 4 ")
        first.send(signal.SIGTERM)
        assert first.proc.wait(timeout=20) == 0
    run = client.get("grace-1")
    assert run.state is RunState.PENDING and run.lease_owner is None
    starts, ends, _ = step_counts(side)
    assert ends[4] == 1 and starts[5] == 0, "the running step finished, nothing new started"
    with WorkerProcess(store_url) as second:
        assert handle.result(timeout_s=30) == list(range(10))
        second.stop()
    assert client.get("grace-1").recoveries == 0, "a hand-back is not a recovery"


def test_a_run_that_keeps_killing_its_workers_fails_after_max_recoveries(
    client: Client, store_url: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    handle = client.start(crash_app.kills_its_workers, str(side), run_id="poison-1")
    deaths = 0
    while client.status(handle.run_id) is not RunState.FAILED:
        assert deaths <= 5, "the run should have been given up on"
        with WorkerProcess(store_url) as worker:
            # a new worker either dies on the poison step or gives the run up and goes on
            deadline = time.monotonic() + 30
            while (
                worker.proc.poll() is None and client.status(handle.run_id) is not RunState.FAILED
            ):
                assert time.monotonic() < deadline, "neither died nor gave up"
                time.sleep(0.02)
            if worker.proc.returncode == -signal.SIGKILL:
                deaths += 1
            else:
                assert worker.stop() == 0
    with pytest.raises(RunFailed) as info:
        handle.result(timeout_s=10)
    assert info.value.error_type == "MaxRecoveriesExceeded"
    assert "max_recoveries=2" in info.value.message
    assert deaths == 3, "first run + 2 recoveries, then it is given up"
    assert side.read_text().count("poison") == 3
    assert side.read_text().count("end 0 ") == 1, "the completed step never ran again"
