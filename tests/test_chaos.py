"""Chaos: worker processes SIGKILLed and restarted at random while thousands of runs execute.

Checked from the side file every step writes (which process ran which step, when) and the store:
every run completes; a step runs again only if the process running it was killed while it was
in flight (so a step one crash interrupted runs at most twice), and each execution starts after
the previous one's process died, so no two workers ever execute the same step of the same run
at the same time.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from stepstone import Client
from tests.apps import chaos_app
from tests.workers import WorkerProcess

pytestmark = [pytest.mark.crash, pytest.mark.slow]

MODULE = "tests.apps.chaos_worker"


@dataclass
class Attempt:
    pid: int
    started: float
    ended: float | None = None


def read_attempts(log: Path) -> dict[tuple[str, int], list[Attempt]]:
    attempts: dict[tuple[str, int], list[Attempt]] = defaultdict(list)
    open_by_pid: dict[tuple[str, int, int], Attempt] = {}
    for line in log.read_text().splitlines():
        kind, run_id, seq, pid, at = line.split()
        key = (run_id, int(seq))
        if kind == "start":
            attempt = Attempt(int(pid), float(at))
            attempts[key].append(attempt)
            open_by_pid[(run_id, int(seq), int(pid))] = attempt
        else:
            open_by_pid[(run_id, int(seq), int(pid))].ended = float(at)
    return attempts


def test_random_sigkills_while_thousands_of_runs_execute(store_url: str, tmp_path: Path) -> None:
    postgres = store_url.startswith("postgres")
    n_runs, n_workers = (2000, 4) if postgres else (600, 3)
    log = tmp_path / "chaos.log"
    env = {"CHAOS_LOG": str(log)}
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "7")))
    with Client(store_url, workflows=chaos_app) as client:
        client._portal.call(client.store.migrate)
        handles = [client.start(chaos_app.five) for _ in range(n_runs)]
        workers = [WorkerProcess(store_url, env=env, module=MODULE) for _ in range(n_workers)]
        killed: dict[int, float] = {}
        started = time.monotonic()
        try:
            for w in workers:
                w.wait_ready()
            while True:
                stats = client.queue_stats()
                active = sum(s.pending + s.running + s.waiting + s.sleeping for s in stats)
                if active == 0:
                    break
                assert time.monotonic() - started < 240, f"runs still active: {stats}"
                if len(killed) < 12:
                    # the chaos schedule: a random worker dies at a random moment
                    time.sleep(rng.uniform(0.05, 0.4))
                    victim = rng.randrange(len(workers))
                    pid = workers[victim].pid
                    workers[victim].send(signal.SIGKILL)
                    killed[pid] = time.monotonic()
                    workers[victim].proc.wait(timeout=10)
                    workers[victim] = WorkerProcess(store_url, env=env, module=MODULE)
                else:
                    time.sleep(0.05)
        finally:
            for w in workers:
                w.stop()
        results = [h.result(timeout_s=30) for h in handles]
        recoveries = sum(r.recoveries for r in client.list(limit=n_runs))

    assert results == [10] * n_runs, "every run completed with every step's output"
    attempts = read_attempts(log)
    assert len(attempts) == n_runs * 5
    rerun = 0
    for (run_id, seq), tries in attempts.items():
        assert any(t.ended is not None for t in tries), f"{run_id} #{seq} never finished"
        tries.sort(key=lambda t: t.started)
        # Each execution after the first is explained by a crash that hit the one before it
        # while in flight, and starts after that process died: no two ran at the same time.
        # One crash makes an in-flight step run at most twice; a step that a second crash also
        # caught in flight (a restarted worker picks up interrupted steps first) runs once more.
        for before, after in itertools.pairwise(tries):
            assert before.pid in killed, f"{run_id} #{seq} ran again though {before.pid} lived"
            died = killed[before.pid]
            assert before.started < died, f"{run_id} #{seq} not in flight when {before.pid} died"
            assert after.started > died, f"{run_id} #{seq} ran twice at the same time"
        assert len({t.pid for t in tries}) == len(tries), "one execution per process at most"
        rerun += len(tries) - 1
    assert rerun <= len(killed) * 16, "each kill re-ran at most the 16 steps it caught in flight"
    assert killed, "the chaos killed workers"
    assert recoveries >= 1, "killed workers' runs were recovered"
