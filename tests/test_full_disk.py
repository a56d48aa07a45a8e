"""A full disk under a real worker process: it backs off for real and recovers (issue 8, #2, #3).

The store lives on a 2 MiB tmpfs; a filler file takes the free space, the worker's claims fail
with "database or disk is full", and it must neither spin nor flood its log; once the filler is
deleted it claims again and the runs complete. Filled in the middle of a run, the step's record
fails: the run is handed back (not failed), and once there is room it goes on from its last
checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepstone import Client
from stepstone.core.model import RunState
from tests.fulldisk import Disk, small_disk

APP = """
from stepstone import WorkflowContext, step, workflow

@step
async def echo(x: int) -> int:
    return x

@workflow
async def wf(ctx: WorkflowContext, x: int) -> int:
    return await echo(x)
"""


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    yield from small_disk(tmp_path)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_worker(tmp_path: Path, app: str, url: str) -> subprocess.Popen[bytes]:
    """``stepstone worker --app APP`` in tmp_path, logging to tmp_path/worker.log."""
    with (tmp_path / "worker.log").open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "stepstone", "worker", "--app", app, "--db", url, "-v"],
            cwd=tmp_path,
            env={**os.environ, "HOME": str(tmp_path)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _cpu_while_full(proc: subprocess.Popen[bytes], log: Path) -> float:
    """CPU seconds the process burns in a 3 s window (a spinning loop would burn about 3)."""
    cpu_before = _cpu_s(proc.pid)
    time.sleep(3.0)  # the measurement window itself
    assert proc.poll() is None, log.read_text()
    return _cpu_s(proc.pid) - cpu_before


def _wait_for_line(path: Path, text: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text():
        assert time.monotonic() < deadline, f"{text!r} not logged: {path.read_text()}"
        time.sleep(0.05)


@pytest.mark.slow
def test_worker_backs_off_on_a_full_disk_and_recovers(tmp_path: Path, disk: Disk) -> None:
    (tmp_path / "app.py").write_text(APP)
    url = f"sqlite:///{disk.path / 't.db'}"
    sys.path.insert(0, str(tmp_path))
    try:
        import app  # type: ignore[import-not-found]

        with Client(url, workflows=app) as client:
            ids = [client.start(app.wf, i).run_id for i in range(3)]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("app", None)
    disk.fill(leave=48 * 1024)  # room for the -shm file, none for the WAL to grow
    log = tmp_path / "worker.log"
    proc = _start_worker(tmp_path, "app", url)
    try:
        _wait_for_line(log, "database or disk is full")
        assert _cpu_while_full(proc, log) < 0.5, "the claim loop spins on the full disk"
        assert log.read_text().count("claiming failed") <= 2, log.read_text()
        disk.free_up()
        with Client(url, auto_migrate=False) as client:
            for run_id in ids:
                assert client.result(run_id, timeout_s=30) in (0, 1, 2)
        assert "claiming works again" in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


CHECKPOINT_APP = """
import time
from pathlib import Path

from stepstone import WorkflowContext, step, workflow

LOG = Path(__file__).parent / "steps.log"  # outside the small disk
GATE = Path(__file__).parent / "gate"  # the test creates it once the disk is full


def note(line: str) -> None:
    with LOG.open("a") as f:
        f.write(line + "\\n")


@step
def work(n: int) -> str:
    note(f"step {n}")
    if n == 2:
        while not GATE.exists():
            time.sleep(0.01)
    return str(n) * (96 * 1024 * n)  # sizeable: the disk cannot take its record while full


@workflow
async def chain(ctx: WorkflowContext) -> int:
    total = 0
    for n in range(1, 6):
        try:
            total += len(await work(n))
        except Exception as exc:  # must never see a checkpoint error
            note(f"caught {type(exc).__name__}: {exc}")
            raise
    return total
"""


@pytest.mark.slow
def test_a_full_disk_mid_run_hands_the_run_back_and_it_resumes(tmp_path: Path, disk: Disk) -> None:
    """Issue 8, #2: the store fills up while step 2 runs. The run is not failed, workflow code
    never sees the checkpoint error, the worker neither spins nor renews the lease for ever, and
    once the disk has room the run goes on from its last checkpoint: every recorded step ran
    once (step 2, whose record failed, may run again), and nothing counts as a crash."""
    (tmp_path / "ckpt_app.py").write_text(CHECKPOINT_APP)
    steps_log, gate = tmp_path / "steps.log", tmp_path / "gate"
    steps_log.touch()
    url = f"sqlite:///{disk.path / 't.db'}"
    sys.path.insert(0, str(tmp_path))
    try:
        import ckpt_app  # type: ignore[import-not-found]

        with Client(url, workflows=ckpt_app) as client:
            run_id = client.start(ckpt_app.chain).run_id
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("ckpt_app", None)
    log = tmp_path / "worker.log"
    proc = _start_worker(tmp_path, "ckpt_app", url)
    try:
        _wait_for_line(steps_log, "step 2")
        disk.fill(leave=0)
        gate.touch()
        _wait_for_line(log, "disk is full")
        assert _cpu_while_full(proc, log) < 0.5, "the worker spins on the full disk"
        with Client(url, auto_migrate=False) as client:
            assert client.status(run_id) is RunState.RUNNING, log.read_text()
        assert "step 3" not in steps_log.read_text()
        disk.free_up()
        with Client(url, auto_migrate=False) as client:
            assert client.result(run_id, timeout_s=60) == sum(96 * 1024 * n for n in range(1, 6))
            run = client.get(run_id)
            timeline = client.timeline(run_id)
        released = [e.detail for e in timeline if e.kind == "released"]
        lines = steps_log.read_text().splitlines()
        assert not [line for line in lines if line.startswith("caught")], lines
        counts = {n: lines.count(f"step {n}") for n in range(1, 6)}
        assert counts[2] >= 1 and {n: c for n, c in counts.items() if n != 2} == {
            1: 1,
            3: 1,
            4: 1,
            5: 1,
        }, lines
        assert run.recoveries == 0, "a store outage is not a crash"
        assert released and "disk is full" in released[0], released
        assert "failed" not in {e.kind for e in timeline}
    finally:
        disk.free_up()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
