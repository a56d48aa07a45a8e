"""Commands for agents driving runs one wait at a time: resume, status, inspect, logs, delete."""

from __future__ import annotations

import argparse
import json
from typing import Any

from stepstone.cli import cpf, specs
from stepstone.cli.app import load_registry
from stepstone.cli.inputs import parse_json_flag
from stepstone.cli.output import Output
from stepstone.cli.parser import ENV_APP
from stepstone.cli.render import Screen
from stepstone.cli.session import Session
from stepstone.cli.stops import WAITING, stop_output, wait_json
from stepstone.cli.stops import resume_command as resume_line
from stepstone.client import Client
from stepstone.client.shapes import description_json, event_json, step_json
from stepstone.core.model import TERMINAL_STATES, Run, RunState
from stepstone.errors import UsageError

__all__ = ["cmd_delete", "cmd_inspect", "cmd_logs", "cmd_resume", "cmd_status", "state_exit_code"]

FAILED = 7


def state_exit_code(run: Run) -> int:
    """``status``/``inspect``'s exit code: the run's own: 0 completed, 7 failed, cancelled or
    blocked, 40 not finished (waiting, pending, running, sleeping or paused)."""
    if run.state is RunState.COMPLETED:
        return 0
    if run.state in TERMINAL_STATES or run.state is RunState.BLOCKED:
        return FAILED
    return WAITING


def _flags(ns: argparse.Namespace) -> tuple[str, ...]:
    if getattr(ns, "file", None):
        return ("-f", ns.file)
    return ("--app", ns.app) if getattr(ns, "app", None) else ()


def cmd_resume(ns: argparse.Namespace, session: Session) -> Output:
    """Deliver the event exactly once, then continue the run here to its next stop."""
    payload = parse_json_flag("--input", ns.input) if ns.input is not None else None
    registry = load_registry(None if ns.file else ns.app, ns.file)
    if registry is None:  # a YAML run knows its file; a Python workflow needs --app
        with session.client() as reader:
            registry = specs.source_registry(reader.get(ns.run_id), reader.get)
        if registry is None:
            raise UsageError(
                f"run {ns.run_id} runs a Python workflow: give --app MODULE (or set "
                f"{ENV_APP}) so it can continue here"
            )
    with session.client(registry) as client:
        run = client.resume(ns.run_id, ns.event, payload)
        if ns.until == "finished" and not run.is_finished:
            client.run(run.workflow, run_id=run.run_id)  # on through later waits, to the end
            run = client.get(ns.run_id)
        return stop_output(client, run, session, _flags(ns))


def _waits(client: Client, run: Run, session: Session) -> list[dict[str, Any]]:
    """The run's signal waits; their resume commands lack the ``--app``/``-f`` that loads
    the workflow (this command does not know it)."""
    return [
        wait_json(h, resume_line(run.run_id, h.event, db=session.db))
        for h in client.signal_waits(run)
    ]


def cmd_status(ns: argparse.Namespace, session: Session) -> Output:
    with session.client() as client:
        run = client.get(ns.run_id)
        holds = client.signal_waits(run)
        waits = _waits(client, run, session)
    data = {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "state": run.state.value,
        "waits": waits,
        "error": f"{run.error.type}: {run.error.message}" if run.error else None,
    }

    def human(screen: Screen) -> None:
        line = f"{run.run_id} {run.workflow} {run.state.value}"
        if waits:
            line += " for " + ", ".join(f"event {w['event']!r}" for w in waits)
        if run.error is not None:
            line += f": {run.error.type}: {run.error.message}"
        screen.line(line)

    envelope = cpf.run_envelope("status", run, holds, session.db, query=True)
    return Output(data, human, exit_code=state_exit_code(run), cpf=envelope)


def cmd_inspect(ns: argparse.Namespace, session: Session) -> Output:
    """The run, its steps, signals, failures, children, waits and every event (system too)."""
    with session.client() as client:
        desc = client.describe(ns.run_id)
        holds = client.signal_waits(desc.run)
        events = list(client.events(ns.run_id, include_system=True))
        data = {
            **description_json(desc, session.db),
            "signal_waits": _waits(client, desc.run, session),
            "events": [event_json(e) for e in events],
        }
    envelope = cpf.run_envelope("inspect", desc.run, holds, session.db, query=True)
    envelope["result"] = data  # checkpointflow leaves the shape of inspect's detail open
    if desc.run.state is not RunState.COMPLETED:
        envelope.pop("result")
    return Output(
        data,
        lambda screen: screen.json(data),
        exit_code=state_exit_code(desc.run),
        cpf=envelope,
    )


def cmd_logs(ns: argparse.Namespace, session: Session) -> Output:
    """Each YAML cli step's stdout/stderr, else every step with its outcome."""
    with session.client() as client:
        desc = client.describe(ns.run_id)
    run, records = desc.run, list(desc.steps)
    logs = specs.step_logs(records)
    if logs:
        data: dict[str, Any] = {
            "run_id": run.run_id,
            "steps": [
                {
                    "step_id": log.step_id,
                    "stdout": log.stdout,
                    "stderr": log.stderr,
                    "exit_code": log.exit_code,
                }
                for log in logs
            ],
        }

        def human(screen: Screen) -> None:
            for log in logs:
                screen.line(f"== {log.step_id} (exit {log.exit_code})")
                if log.stdout:
                    screen.line(log.stdout.rstrip("\n"))
                if log.stderr:
                    screen.line("-- stderr")
                    screen.line(log.stderr.rstrip("\n"))

        return Output(data, human)
    shown = [step_json(s) for s in records]
    data = {"run_id": run.run_id, "steps": shown}

    def plain(screen: Screen) -> None:
        if not shown:
            screen.line(f"run {run.run_id} has no recorded steps")
        for s in shown:
            outcome = s["error"]["message"] if s["error"] else json.dumps(s["output"])
            screen.line(f"#{s['seq']} {s['name']} {s['status']}: {outcome}")

    return Output(data, plain)


def cmd_delete(ns: argparse.Namespace, session: Session) -> Output:
    with session.client() as client:
        client.delete(ns.run_id)
    data = {"run_id": ns.run_id, "deleted": True}
    return Output(data, lambda screen: screen.line(f"deleted run {ns.run_id}"))
