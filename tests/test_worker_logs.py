"""What a worker process logs: each claim, completion, wait and failure with its run, and the
run on the log records user code makes inside a step."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.test_cli import Cli

APP = """
import logging

from stepstone import RetryPolicy, WorkflowContext, step, workflow

log = logging.getLogger("shop")
tries = {"n": 0}


@step(retry=RetryPolicy(max_attempts=2, initial_delay_s=0.01))
async def flaky_quote() -> int:
    tries["n"] += 1
    if tries["n"] == 1:
        raise ConnectionError("quote service reset the connection")
    return 7


@step
async def charge(amount: int) -> int:
    log.warning("charging %d", amount)
    if amount < 0:
        raise ValueError("negative amount")
    return amount


@workflow
async def pay(ctx: WorkflowContext, amount: int) -> int:
    if amount > 0:
        await flaky_quote()
    paid = await charge(amount)
    await ctx.wait_for_signal("receipt")
    return paid
"""


def test_worker_logs_claims_outcomes_and_the_run_on_user_records(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    cli = Cli(tmp_path)
    cli("migrate")
    good = cli("start", "pay", "--app", "app", "--arg", "amount=5", "--run-id", "good").stdout
    bad = cli("start", "pay", "--app", "app", "--arg", "amount=-1", "--run-id", "bad").stdout
    assert (good.strip(), bad.strip()) == ("good", "bad")
    proc = subprocess.Popen(
        cli.argv("worker", "--app", "app", "--poll-s", "0.1"),
        cwd=cli.cwd,
        env=cli.env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = StderrLines(proc)
    try:
        cli.wait_state("good", "waiting")
        cli.wait_state("bad", "failed")
        cli("signal", "good", "receipt")
        cli.wait_state("good", "completed")
        lines.wait_for("run good (pay) completed")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    text = lines.text
    assert "run good (pay) claimed" in text
    assert "run good (pay) waiting after" in text and "signal 'receipt'" in text
    assert "run bad (pay) failed after" in text and "ValueError: negative amount" in text
    assert "charging 5 [run=good seq=1 step=charge]" in text
    assert (
        "run good step #0 'flaky_quote' attempt 1 failed (ConnectionError: quote service reset "
        "the connection); retrying in" in text
    )
    assert "charging -1 [run=bad seq=0 step=charge]" in text


class StderrLines:
    """A process's stderr, read line by line on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stderr is not None
        stream = proc.stderr

        def pump() -> None:
            for line in stream:
                self.lines.append(line)

        threading.Thread(target=pump, daemon=True).start()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.text:
            assert time.monotonic() < deadline, f"{text!r} not logged: {self.text}"
            time.sleep(0.02)
