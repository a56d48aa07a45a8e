"""``stepstone daemon run|start|status|stop|restart|logs``: the skills worker as a daemon.

``start`` (and a ``launch`` that finds none) spawns ``daemon run`` detached, logging to
``~/.stepstone/worker.log``; the daemon holds ``~/.stepstone/daemon.lock`` for its life, so
racing starts leave exactly one (see :mod:`stepstone.desk.daemon`). It serves every skill of
the skills path (and the queues they name), keeps INBOX.md up to date, and when a skill file
changes on disk it stops gracefully (running steps finish or are handed back) and starts
again on the new code, so an edit is picked up without losing a run. A daemon that died (even
SIGKILLed) left its lock free: the next launch starts another, which takes over its runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections import deque
from pathlib import Path

from stepstone.cli.desk import inbox_mirror, serve_skills, skill_queues, skills_roots
from stepstone.cli.output import Output
from stepstone.cli.render import Screen
from stepstone.cli.session import Session
from stepstone.core.settings import Settings
from stepstone.desk.daemon import (
    DaemonFiles,
    DaemonLock,
    daemon_pid,
    fingerprint,
    spawn_daemon,
    stop_daemon,
)

__all__ = ["cmd_daemon", "daemon_files", "ensure_daemon"]

WATCH_S = 1.0
"""How often the daemon looks for changed skill files."""


def daemon_files(session: Session) -> DaemonFiles:
    home = session.env.get("HOME")
    base = (Path(home) if home else Path.home()) / ".stepstone"
    return DaemonFiles(base / "daemon.lock", base / "worker.log")


def _run_argv(session: Session) -> list[str]:
    argv = [sys.executable, "-m", "stepstone", "daemon", "run"]
    return argv + (["--db", session.db] if session.db else [])


def ensure_daemon(session: Session) -> int:
    """The live daemon's pid, starting one when none runs."""
    files = daemon_files(session)
    pid = daemon_pid(files)
    if pid is not None and pid > 0:
        return pid
    return spawn_daemon(_run_argv(session), files)


def cmd_daemon(ns: argparse.Namespace, session: Session) -> Output:
    files = daemon_files(session)
    action = ns.daemon_command
    if action == "run":
        return _run(session, files)
    if action == "logs":
        return _logs(files, ns.lines)
    if action in ("stop", "restart"):
        stopped = stop_daemon(files)
        if action == "stop":
            text = f"stopped the daemon (pid {stopped})" if stopped else "no daemon was running"
            return Output({"stopped": stopped}, lambda s: s.line(text))
    if action in ("start", "restart"):
        pid = ensure_daemon(session)
        data = {"pid": pid, "log": str(files.log)}
        return Output(data, lambda s: s.line(f"daemon running (pid {pid}); log: {files.log}"))
    return _status(files)


def _status(files: DaemonFiles) -> Output:
    pid = daemon_pid(files)
    data = {"running": pid is not None, "pid": pid, "lock": str(files.lock), "log": str(files.log)}

    def human(screen: Screen) -> None:
        if pid is None:
            screen.line(
                "no daemon is running (`stepstone daemon start`, or any launch, starts one)"
            )
        else:
            screen.line(f"daemon running (pid {pid}); log: {files.log}")

    return Output(data, human)


def _logs(files: DaemonFiles, lines: int) -> Output:
    try:
        with files.log.open(encoding="utf-8", errors="replace") as f:
            tail = list(deque(f, maxlen=lines))
    except FileNotFoundError:
        tail = []
    text = "".join(tail)
    return Output({"log": str(files.log), "lines": tail}, lambda s: s.line(text.rstrip("\n")))


def _run(session: Session, files: DaemonFiles) -> Output:
    """Serve in the foreground, holding the lock; on a skill change, start again (exec)."""
    from stepstone.worker import Worker

    lock = DaemonLock(files.lock)
    if not lock.acquire():
        pid = daemon_pid(files)
        session.screen.note(f"a daemon already runs (pid {pid}); this one exits")
        return Output({"started": False, "pid": pid})
    folders = [r.path for r in skills_roots(session)]
    seen = fingerprint(folders)
    workflows = serve_skills(session)
    queues = skill_queues(workflows)
    worker = Worker(
        session.db,
        workflows=workflows,
        queue=queues,
        settings=Settings(poll_s=0.2),
    )
    changed = threading.Event()
    stopping = threading.Event()

    def watch() -> None:
        while not stopping.wait(WATCH_S):
            if fingerprint(folders) != seen:
                session.screen.note("skills changed on disk: draining, then serving the new code")
                changed.set()
                worker.stop()
                return

    mirror = inbox_mirror(session)
    mirror.start()
    threading.Thread(target=watch, name="stepstone-skills-watch", daemon=True).start()
    session.screen.note(
        f"daemon {os.getpid()} serving skills [{', '.join(wf.name for wf in workflows)}] "
        f"on queues [{', '.join(queues)}]"
    )
    try:
        worker.run()
    finally:
        stopping.set()
        mirror.stop()
        lock.release()
    if changed.is_set():
        argv = _run_argv(session)
        os.execv(argv[0], argv)  # the new code, in a fresh interpreter
    return Output({"stopped": True}, lambda s: s.note(f"daemon {os.getpid()} stopped"))
