"""The `stepstone` command on a real terminal (a pty of 80 columns): tables fit, states coloured,
and `start --wait` shows the run id at once and a live status line."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

from tests.test_cli import APP, Cli

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A command running with stdin, stdout and stderr on a pty of ``columns`` columns."""

    def __init__(self, cli: Cli, *args: str, columns: int = 80) -> None:
        self.leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        env = {k: v for k, v in cli.env.items() if k != "NO_COLOR"}
        env.update(TERM="xterm-256color", COLUMNS=str(columns))
        self.proc = subprocess.Popen(
            cli.argv(*args), cwd=cli.cwd, env=env, stdin=follower, stdout=follower, stderr=follower
        )
        os.close(follower)
        self.seen = b""

    @property
    def text(self) -> str:
        return ANSI.sub("", self.seen.decode(errors="replace"))

    def read(self, until: str | None = None, timeout_s: float = 30) -> str:
        """What it printed: up to ``until`` (it goes on running), or everything until it ends."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if until is not None and until in self.text:
                return self.text
            ready, _, _ = select.select([self.leader], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.leader, 65536)
                except OSError:  # the process ended and closed the pty
                    break
                if not chunk:
                    break
                self.seen += chunk
            elif until is None and self.proc.poll() is not None:
                break
        assert until is None or until in self.text, f"{until!r} never shown: {self.text!r}"
        return self.text

    def interrupt(self) -> int:
        """Ctrl-C; returns the exit code (the pty stays open until it has exited)."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=30)
        self.read()
        os.close(self.leader)
        return code


def test_runs_fits_80_columns_with_workflow_and_state(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    cli = Cli(tmp_path)
    cli("migrate")
    cli("start", "approve", "--app", "app", "--arg", "name=bob", "--run-id", "a1")
    cli("run", "pipeline", "--app", "app", "--arg", "n=2")
    term = Terminal(cli, "runs")
    term.read()
    assert term.proc.wait(timeout=30) == 0
    os.close(term.leader)
    assert "\x1b[" in term.seen.decode(), "states are coloured on a terminal"
    lines = term.text.replace("\r", "").splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    header = next(line for line in lines if line.lstrip().startswith("run"))
    assert "workflow" in header and "state" in header and "updated" in header
    assert any("approve" in line and "pending" in line for line in lines)
    assert any("pipeline" in line and "completed" in line for line in lines)


def test_start_wait_prints_the_id_at_once_a_status_line_and_the_id_on_interrupt(
    tmp_path: Path,
) -> None:
    (tmp_path / "app.py").write_text(APP)
    cli = Cli(tmp_path)
    cli("migrate")
    # no worker: the status line says so
    term = Terminal(
        cli, "start", "approve", "--app", "app", "--arg", "name=bob", "--run-id", "w1", "--wait"
    )
    text = term.read(until="no worker has claimed it")
    assert "run w1" in text and "stepstone worker --app app" in text
    assert term.interrupt() == 130
    assert "stepstone result w1" in term.text
    # a run waiting for a signal: the status line names it and gives the exact command
    with cli.worker():
        term = Terminal(
            cli,
            "start",
            "approve",
            "--app",
            "app",
            "--arg",
            "name=ann",
            "--run-id",
            "w2",
            "--wait",
            "--until",
            "finished",
        )
        text = term.read(until="stepstone signal w2 approval --data JSON")
        assert "waiting for signal 'approval'" in text
        assert term.interrupt() == 130
    # piped (not a terminal): the id goes to stderr at once, and again on Ctrl-C
    piped = subprocess.Popen(
        cli.argv(
            "start", "approve", "--app", "app", "--arg", "name=cy", "--run-id", "w3", "--wait"
        ),
        cwd=cli.cwd,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert piped.stderr is not None
    first = piped.stderr.readline()
    assert "w3" in first
    piped.send_signal(signal.SIGINT)
    _, err = piped.communicate(timeout=30)
    assert piped.returncode == 130
    assert "w3" in err and "stepstone result w3" in err
