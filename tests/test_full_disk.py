"""A full disk under a real worker process: it backs off for real and recovers (issue 8, #3).

The store lives on a 2 MiB tmpfs; a filler file takes the free space, the worker's claims fail
with "database or disk is full", and it must neither spin nor flood its log; once the filler is
deleted it claims again and the runs complete.
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
    env = {**os.environ, "HOME": str(tmp_path)}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stepstone", "worker", "--app", "app", "--db", url, "-v"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_line(log, "database or disk is full")
        cpu_before = _cpu_s(proc.pid)
        time.sleep(3.0)  # a measurement window: a spinning loop would burn ~3 s of CPU here
        assert proc.poll() is None, log.read_text()
        assert _cpu_s(proc.pid) - cpu_before < 0.5, "the claim loop spins on the full disk"
        assert log.read_text().count("claiming failed") <= 2, log.read_text()
        disk.free_up()
        with Client(url, auto_migrate=False) as client:
            for run_id in ids:
                assert client.result(run_id, timeout_s=30) in (0, 1, 2)
        assert "claiming works again" in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
