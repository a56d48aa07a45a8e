"""The skills daemon with real processes: racing launches start exactly one (the store lease
decides), a SIGKILLed one is replaced by the next launch (each completed step runs once), an
edited skill is picked up, and stop / status / logs. The racing and SIGKILL tests run on SQLite
and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ADAPTERS
from tests.test_cli import READY_TIMEOUT_S, Cli

pytestmark = [pytest.mark.slow, pytest.mark.crash]

STEPS = """
import os, time
from stepstone import WorkflowContext, step
from stepstone.desk import skill

SIDE = os.path.join(os.path.dirname(__file__), "side.txt")
FLAG = os.path.join(os.path.dirname(__file__), "go")


@step
def mark(seq: int, hold: bool) -> int:
    with open(SIDE, "a") as f:
        f.write(f"start {seq} {os.getpid()}\\n")
    deadline = time.monotonic() + 60
    while hold and not os.path.exists(FLAG) and time.monotonic() < deadline:
        time.sleep(0.02)  # held until the test lets it go (or the process is killed)
    with open(SIDE, "a") as f:
        f.write(f"end {seq} {os.getpid()}\\n")
    return seq


@skill
async def steps(ctx: WorkflowContext, hold_at: int = -1) -> list[int]:
    return [await mark(i, i == hold_at) for i in range(5)]
"""


@pytest.fixture
def desk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    """A home and project with the scaffolded `hello` skill and `steps`; SQLite unless the test
    is parametrized with ``desk="postgres"`` (indirect)."""
    cli = Cli(tmp_path)
    if getattr(request, "param", "sqlite") == "postgres":
        cli.db = request.getfixturevalue("pg_url")
    cli("skill", "new", "hello", db=False)
    (tmp_path / "skills" / "steps").mkdir()
    (tmp_path / "skills" / "steps" / "skill.py").write_text(STEPS)
    yield cli
    with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
        cli("daemon", "stop")
    for pid in daemons(cli):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def daemons(cli: Cli) -> list[int]:
    """Live `daemon run` processes of this test's store (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"daemon" in argv and b"run" in argv and cli.db.encode() in argv:
            found.append(int(entry.name))
    return found


def status(cli: Cli) -> dict[str, object]:
    data: dict[str, object] = cli.data("daemon", "status")
    return data


def log_text(cli: Cli) -> str:
    return (cli.cwd / ".stepstone" / "worker.log").read_text()


def wait_for(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("desk", ADAPTERS, indirect=True)
def test_ten_racing_launches_start_one_daemon(desk: Cli) -> None:
    procs = [
        subprocess.Popen(
            desk.argv("launch", "hello", f"n{i}", "--run-id", f"r{i}"),
            cwd=desk.cwd,
            env=desk.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(10)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    for i in range(10):
        assert desk("result", f"r{i}", "--timeout-s", "60").stdout.strip() == f'"Hello, n{i}!"'
    now = status(desk)
    assert daemons(desk) == [now["pid"]]
    assert f"-{now['pid']}-" in str(now["holder"])  # the holder is the daemon's worker id
    # every daemon a launch started either served (one) or found the lease held and exited
    log = log_text(desk)
    assert log.count("serving skills") == 1, log
    assert log.count("serving skills") + log.count("this one exits") >= 1
    assert len(desk.data("inbox")) == 10
    assert desk.data("daemon", "stop")["stopped"] == now["pid"]
    wait_for(lambda: not daemons(desk), "the daemon to exit")
    after = status(desk)
    assert not after["running"] and after["holder"] is None  # a graceful stop releases it


@pytest.mark.parametrize("desk", ADAPTERS, indirect=True)
def test_a_sigkilled_daemon_is_replaced_by_the_next_launch(desk: Cli) -> None:
    side = desk.cwd / "skills" / "steps" / "side.txt"
    desk("launch", "steps", "--arg", "hold_at=2", "--run-id", "held")
    wait_for(lambda: side.exists() and "start 2 " in side.read_text(), "step 2 to start")
    first = status(desk)
    assert first["running"] and daemons(desk) == [first["pid"]]
    os.kill(int(str(first["pid"])), signal.SIGKILL)
    wait_for(lambda: not daemons(desk), "the daemon to die")
    dead = status(desk)  # its lease has not expired, but its holder is gone
    assert not dead["running"] and dead["holder"] == first["holder"]
    (desk.cwd / "skills" / "steps" / "go").touch()
    desk("launch", "hello", "next")  # finds no live daemon: starts one, which takes the run over
    assert json.loads(desk("result", "held", "--timeout-s", "60").stdout) == [0, 1, 2, 3, 4]
    lines = side.read_text().splitlines()
    for seq in (0, 1, 3, 4):
        assert sum(line.startswith(f"end {seq} ") for line in lines) == 1
        assert sum(line.startswith(f"start {seq} ") for line in lines) == 1
    assert sum(line.startswith("start 2 ") for line in lines) == 2  # the step in flight, again
    second = status(desk)
    assert second["running"] and second["pid"] != first["pid"]
    assert second["holder"] != first["holder"] and daemons(desk) == [second["pid"]]
    assert [i["outcome"] for i in desk.data("inbox") if i["run_id"] == "held"] == ["done"]


def test_a_skills_worker_of_ones_own_serves_launches_without_a_daemon(desk: Cli) -> None:
    with desk.worker("--skills", "--app", "", workflows="") as worker:
        assert worker
        run_id = desk("launch", "hello", "own").stdout.strip()
        assert desk("result", run_id, "--timeout-s", "60").stdout.strip() == '"Hello, own!"'
        assert daemons(desk) == []
        assert not status(desk)["running"]


def test_an_edited_skill_is_served_after_the_daemon_restarts_itself(desk: Cli) -> None:
    assert desk.data("daemon", "start")["pid"]
    prompt = desk.cwd / "skills" / "hello" / "skill.py"
    prompt.write_text(prompt.read_text().replace("return greeting", "return greeting + '!!'"))
    wait_for(lambda: "serving the new code" in log_text(desk), "the daemon to see the edit")
    wait_for(lambda: log_text(desk).count("serving skills") >= 2, "the daemon to restart")
    run_id = desk("launch", "hello", "zoe").stdout.strip()
    assert desk("result", run_id, "--timeout-s", "60").stdout.strip() == '"Hello, zoe!!!"'
    now = status(desk)
    assert now["running"] and daemons(desk) == [now["pid"]]
    assert 0 <= float(str(now["heartbeat_age_s"])) < 30
    doctor = {c["check"]: c for c in desk.data("doctor", code=9, ok=True)}  # no hook installed
    assert doctor["worker"]["status"] == "ok"
    assert doctor["worker"]["detail"].startswith(f"daemon pid {now['pid']}; 1 live worker")
    assert "daemon's lease renewed" in doctor["worker"]["detail"]
    assert "serving skills" in "".join(desk.data("daemon", "logs", "--lines", "50")["lines"])
