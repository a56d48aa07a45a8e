"""Real worker processes for tests: spawn, wait for log lines, signal, and read side files."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class WorkerProcess:
    """A ``tests.apps.worker_main`` process; its stderr is collected line by line."""

    def __init__(
        self,
        url: str,
        *,
        lease_s: float = 30.0,
        grace_s: float = 10.0,
        env: dict[str, str] | None = None,
        module: str = "tests.apps.worker_main",
    ) -> None:
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, url, str(lease_s), str(grace_s)],
            cwd=ROOT,
            env=full_env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.pid = self.proc.pid
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, pattern: str, timeout: float = 20.0) -> str:
        """Block until a stderr line matches ``pattern`` (a regex); fail with the log if not."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if regex.search(line):
                        return line
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    log = "\n".join(self.lines[-40:])
                    raise AssertionError(
                        f"no line matching {pattern!r} from worker {self.pid}:\n{log}"
                    )
                self._changed.wait(remaining)

    def wait_ready(self) -> None:
        self.wait_for_line(r"serving queues")

    def send(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)


def wait_for_file_line(path: Path, pattern: str, timeout: float = 20.0) -> str:
    """Wait until the side file has a line matching ``pattern`` (polling a file is the event here:
    the step writes and fsyncs it before anything else can happen)."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                if regex.search(line):
                    return line
        time.sleep(0.005)
    text = path.read_text() if path.exists() else "(no file)"
    raise AssertionError(f"{path} never had a line matching {pattern!r}:\n{text}")


def step_counts(path: Path) -> tuple[Counter[int], Counter[int], dict[int, set[int]]]:
    """From a side file: how often each seq started and ended, and in which pids it ended."""
    starts: Counter[int] = Counter()
    ends: Counter[int] = Counter()
    pids: dict[int, set[int]] = {}
    for line in path.read_text().splitlines():
        kind, seq, pid = line.split()
        if kind == "start":
            starts[int(seq)] += 1
        elif kind == "end":
            ends[int(seq)] += 1
            pids.setdefault(int(seq), set()).add(int(pid))
    return starts, ends, pids
