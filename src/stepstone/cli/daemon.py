"""``stepstone daemon run|start|status|stop|restart|logs``: the skills worker as a daemon.

``start`` (and a ``launch`` that finds nothing serving its run) spawns ``daemon run`` detached,
logging to ``~/.stepstone/worker.log``. The daemon holds a lease in the store, one per host and
skills path, so racing starts leave exactly one, and a dead daemon's lease is taken over by the
next (see :mod:`stepstone.desk.daemon`). It serves every skill of the skills path (and the
queues they name), keeps INBOX.md up to date, and when a skill file changes on disk it stops
gracefully (running steps finish or are handed back) and starts again on the new code, so an
edit is picked up without losing a run.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stepstone.cli.desk import inbox_mirror, serve_skills, skill_queues, skills_roots
from stepstone.cli.output import Output
from stepstone.cli.render import Screen
from stepstone.cli.session import Session
from stepstone.client import Client
from stepstone.core.model import NamedLease, WorkerInfo
from stepstone.core.settings import Settings
from stepstone.desk.daemon import (
    SKILLS_LABEL,
    daemon_of,
    fingerprint,
    lease_name,
    skills_key,
    skills_worker,
    spawn_daemon,
    stop_daemon,
)
from stepstone.errors import LeaseHeld

__all__ = ["cmd_daemon", "daemon_lease", "daemon_log", "ensure_daemon", "skills_label"]

WATCH_S = 1.0
"""How often the daemon looks for changed skill files."""


def daemon_log(session: Session) -> Path:
    home = session.env.get("HOME")
    return (Path(home) if home else Path.home()) / ".stepstone" / "worker.log"


def skills_label(session: Session) -> tuple[str, str]:
    """The label a worker serving this skills path offers (``skills=KEY``)."""
    return SKILLS_LABEL, skills_key(r.path for r in skills_roots(session))


def daemon_lease(session: Session) -> str:
    """The name of the store lease the daemon of this host and skills path holds."""
    return lease_name(skills_label(session)[1])


def _run_argv(session: Session) -> list[str]:
    argv = [sys.executable, "-m", "stepstone", "daemon", "run"]
    return argv + (["--db", session.db] if session.db else [])


def _live_daemon(client: Client, name: str) -> tuple[NamedLease | None, WorkerInfo | None]:
    lease = client.lease(name)
    if lease is None:
        return None, None
    return lease, daemon_of(lease, client.workers(), datetime.now(UTC))


def ensure_daemon(session: Session, client: Client, queue: str = "default") -> int:
    """The pid of the daemon (or of a ``worker --skills``) serving ``queue`` of this skills
    path, starting a daemon when none does."""
    label = skills_label(session)
    name = lease_name(label[1])
    _, daemon = _live_daemon(client, name)
    if daemon is None:
        daemon = skills_worker(client.workers(), label[1], queue, datetime.now(UTC))
    if daemon is not None:
        return daemon.pid

    def started() -> int | None:
        live = _live_daemon(client, name)[1]
        return live.pid if live is not None else None

    return spawn_daemon(_run_argv(session), daemon_log(session), started, env=session.env)


def cmd_daemon(ns: argparse.Namespace, session: Session) -> Output:
    action = ns.daemon_command
    if action == "run":
        return _run(session)
    if action == "logs":
        return _logs(daemon_log(session), ns.lines)
    with session.client(create=action in ("start", "restart")) as client:
        name = daemon_lease(session)
        if action in ("stop", "restart"):
            stopped = _stop(client, name)
            if action == "stop":
                text = f"stopped the daemon (pid {stopped})" if stopped else "no daemon was running"
                return Output({"stopped": stopped}, lambda s: s.line(text))
        if action in ("start", "restart"):
            pid = ensure_daemon(session, client)
            log = daemon_log(session)
            data = {"pid": pid, "log": str(log)}
            return Output(data, lambda s: s.line(f"daemon running (pid {pid}); log: {log}"))
        return _status(session, *_live_daemon(client, name))


def _stop(client: Client, name: str) -> int | None:
    daemon = _live_daemon(client, name)[1]
    if daemon is None:
        return None
    stop_daemon(daemon.pid, lambda: _live_daemon(client, name)[1] is None)
    return daemon.pid


def _status(session: Session, lease: NamedLease | None, daemon: WorkerInfo | None) -> Output:
    now = datetime.now(UTC)
    log = daemon_log(session)
    age = (now - lease.renewed_at).total_seconds() if lease is not None else None
    data: dict[str, Any] = {
        "running": daemon is not None,
        "pid": daemon.pid if daemon is not None else None,
        "lease": daemon_lease(session),
        "holder": lease.holder if lease is not None else None,
        "heartbeat_age_s": age,
        "lease_expires_in_s": (lease.expires_at - now).total_seconds() if lease else None,
        "log": str(log),
    }

    def human(screen: Screen) -> None:
        if daemon is None:
            screen.line(
                "no daemon is running (`stepstone daemon start`, or any launch, starts one)"
            )
        else:
            screen.line(f"daemon running (pid {daemon.pid}); log: {log}")
        if lease is not None:
            dead = "" if daemon is not None else " (its holder is gone: the next daemon takes it)"
            screen.line(
                f"lease {data['lease']}: held by {lease.holder}, renewed {age:.1f} s ago{dead}"
            )

    return Output(data, human)


def _logs(log: Path, lines: int) -> Output:
    try:
        with log.open(encoding="utf-8", errors="replace") as f:
            tail = list(deque(f, maxlen=lines))
    except FileNotFoundError:
        tail = []
    text = "".join(tail)
    return Output({"log": str(log), "lines": tail}, lambda s: s.line(text.rstrip("\n")))


def _run(session: Session) -> Output:
    """Serve in the foreground holding the lease; on a skill change, start again (exec)."""
    from stepstone.worker import Worker

    folders = [r.path for r in skills_roots(session)]
    seen = fingerprint(folders)
    workflows = serve_skills(session)
    queues = skill_queues(workflows)
    label = skills_label(session)
    worker = Worker(
        session.db,
        workflows=workflows,
        queue=queues,
        labels=dict([label]),
        settings=Settings(poll_s=0.2),
        models=session.models(),
        exclusive=lease_name(label[1]),
    )
    changed = threading.Event()
    stopping = threading.Event()
    mirror, mirroring = inbox_mirror(session), threading.Event()

    def serving() -> None:  # once the lease is held: before that this may be a losing racer
        worker.ready.wait()
        if stopping.is_set():
            return
        mirror.start()
        mirroring.set()
        session.screen.note(
            f"daemon {os.getpid()} serving skills [{', '.join(wf.name for wf in workflows)}] "
            f"on queues [{', '.join(queues)}] as {worker.worker_id}"
        )
        while not stopping.wait(WATCH_S):
            if fingerprint(folders) != seen:
                session.screen.note("skills changed on disk: draining, then serving the new code")
                changed.set()
                worker.stop()
                return

    threading.Thread(target=serving, name="stepstone-daemon", daemon=True).start()
    try:
        worker.run()
    except LeaseHeld as held:
        session.screen.note(f"daemon {os.getpid()}: {held}, which serves; this one exits")
        return Output({"started": False, "holder": held.holder}, lambda s: None)
    finally:
        stopping.set()
        worker.ready.set()  # ends the thread's wait when the lease was never held
        if mirroring.is_set():
            mirror.stop()
    if changed.is_set():
        argv = _run_argv(session)
        os.execv(argv[0], argv)  # the new code, in a fresh interpreter
    return Output({"stopped": True}, lambda s: s.note(f"daemon {os.getpid()} stopped"))
