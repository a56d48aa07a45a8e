"""A real worker and a real `stepstone serve` (processes) on tests/apps/dash_app.py, and Debian's
Chromium under Playwright: shared by the dashboard's browser test and bench/screenshots.py."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "tests" / "apps" / "dash_app.py")
CHROMIUM = Path("/usr/bin/chromium")
START_TIMEOUT_S = 30.0


def missing_browser() -> str | None:
    """What is missing to drive a browser (None: Playwright and Chromium are both here)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} (apt-get install chromium)"
    return None


def launch_chromium(pw: Any) -> Any:
    """Debian's Chromium, headless; no sandbox, as the tests run as root."""
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])


def _env(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPSTONE_")}
    env.update(HOME=str(cwd), PYTHONUNBUFFERED="1", NO_COLOR="1", PYTHONPATH=str(ROOT))
    return env


def _stepstone(*args: str, db: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stepstone", *args, "--db", db],
        cwd=cwd,
        env=_env(cwd),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(proc: subprocess.Popen[str], pattern: str, log: list[str]) -> re.Match[str]:
    """Read the process's stderr until a line matches (it keeps being drained afterwards)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    regex = re.compile(pattern)
    while True:
        try:
            line = lines.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            raise AssertionError(
                f"no {pattern!r} in {START_TIMEOUT_S} s:\n{''.join(log)}"
            ) from None
        if line is None:
            raise AssertionError(f"exited {proc.wait()} before {pattern!r}:\n{''.join(log)}")
        found = regex.search(line)
        if found:
            return found


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def dashboard(db: str, cwd: Path) -> Iterator[str]:
    """A worker and ``stepstone serve --port 0`` on ``db`` (migrated first); yields the URL."""
    subprocess.run(
        [sys.executable, "-m", "stepstone", "migrate", "--db", db],
        cwd=cwd,
        env=_env(cwd),
        check=True,
        capture_output=True,
        timeout=START_TIMEOUT_S,
    )
    worker_log: list[str] = []
    serve_log: list[str] = []
    worker = _stepstone("worker", "--app", APP, db=db, cwd=cwd)
    serve = _stepstone("serve", "--app", APP, "--port", "0", db=db, cwd=cwd)
    try:
        _wait_for(worker, r"ready", worker_log)
        found = _wait_for(serve, r"serving on (http://\S+)", serve_log)
        yield found.group(1)
    finally:
        _stop(serve)
        _stop(worker)
