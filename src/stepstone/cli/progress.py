"""While a command waits for a run (``run``, ``start --wait``): the run id on stderr at once, a
live status line on a terminal, and the id again if the wait is interrupted.

Waiting for a run that nothing executes used to look like a hung command, and Ctrl-C lost the
run id. The status line says what the run is doing — pending (and whether any worker could take
it), running step N, waiting for a signal with the exact ``stepstone signal`` command, sleeping
until when — redrawn in place a few times a second, on stderr only (stdout keeps the result).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from types import TracebackType

from stepstone.cli.render import fmt_time
from stepstone.cli.session import Session
from stepstone.client import Client
from stepstone.client.shapes import signal_command
from stepstone.core.model import RunState

__all__ = ["RunWatch", "status_line"]

_REFRESH_S = 0.25


def status_line(client: Client, run_id: str, *, db: str | None, app: str | None) -> str:
    """One line saying what the run is doing now."""
    desc = client.describe(run_id)
    run = desc.run
    state = run.state
    if state is RunState.PENDING:
        if run.wake_at is not None and run.wake_at > datetime.now(UTC):
            return f"pending: starts at {fmt_time(run.wake_at)}"
        serving = [w for w in client.workers() if run.queue in w.queues]
        if not serving:
            start = f"stepstone worker --app {app}" if app else "stepstone worker --app MODULE"
            return (
                f"pending: no worker has claimed it yet (none serves queue {run.queue!r}; "
                f"start one: {start})"
            )
        return f"pending: queued on {run.queue!r}"
    if state is RunState.RUNNING:
        steps = desc.executed_steps
        if not steps:
            return "running: starting"
        last = steps[-1]
        return f"running step {last.seq + 1} ({last.name}, {last.status.value})"
    if state in (RunState.WAITING, RunState.SLEEPING):
        parts = []
        for wait in run.waits:
            if wait.seq < 0:
                continue
            until = f" until {fmt_time(wait.until)}" if wait.until else ""
            if wait.kind == "signal" and wait.name:
                command = signal_command(run_id, wait.name, db)
                parts.append(f"waiting for signal {wait.name!r}{until}: {command}")
            elif wait.kind == "child":
                parts.append(f"waiting for child run {wait.name}")
            else:
                parts.append(f"sleeping{until}")
        return "; ".join(parts) or state.value
    if state is RunState.PAUSED:
        return f"paused: stepstone unpause {run_id}"
    return state.value


class RunWatch:
    """Context manager around a blocking wait for ``run_id``."""

    def __init__(
        self,
        session: Session,
        client: Client,
        run_id: str,
        *,
        app: str | None,
        here: bool = False,
    ) -> None:
        self._session, self._client, self.run_id, self._app = session, client, run_id, app
        self._here = here  # the run executes in this process (`run`), not on a worker
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._width = 0
        self._told = False

    def __enter__(self) -> RunWatch:
        screen = self._session.screen
        if self._here:
            screen.note(f"run {self.run_id}: running here (Ctrl-C stops it; it can go on later)")
        else:
            screen.note(
                f"run {self.run_id}: waiting for its result (Ctrl-C stops waiting; the run goes on)"
            )
        if not self._session.json and screen.err.isatty():
            self._thread = threading.Thread(
                target=self._refresh, name="stepstone-status", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._draw("")
        if exc_type is KeyboardInterrupt:
            self.interrupted()

    def interrupted(self) -> None:
        """Say (once) that the wait stopped and how to get the result later. Callers also call
        it from an ``except KeyboardInterrupt`` around the ``with``: a Ctrl-C that lands between
        ``__enter__`` and the body skips ``__exit__``."""
        if self._told:
            return
        self._told = True
        if self._here:
            self._session.screen.note(
                f"stopped running run {self.run_id} here; a worker, or `stepstone run --run-id "
                f"{self.run_id}` with the same workflow, continues it from its last step"
            )
            return
        self._session.screen.note(
            f"stopped waiting; run {self.run_id} goes on. Its result later: "
            f"stepstone result {self.run_id}"
        )

    def _refresh(self) -> None:
        while not self._stop.is_set():
            try:
                line = status_line(self._client, self.run_id, db=self._session.db, app=self._app)
            except Exception as exc:  # a status line must never break the wait itself
                line = f"(status unavailable: {exc})"
            if self._stop.is_set():
                return
            self._draw(f"run {self.run_id} {line}")
            self._stop.wait(_REFRESH_S)

    def _draw(self, text: str) -> None:
        err = self._session.screen.err
        pad = max(self._width - len(text), 0)
        try:
            err.write("\r" + text + " " * pad + ("\r" if not text else ""))
            err.flush()
        except OSError:  # the terminal went away: nothing to draw on, keep waiting
            self._stop.set()
        self._width = len(text)
