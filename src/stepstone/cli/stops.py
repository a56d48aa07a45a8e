"""What ``run``, ``resume`` and ``start --wait`` print when a run stops: its result (exit 0),
its failure (exit 7), or — waiting for a signal, itself or through a child run — everything
whoever answers needs and the exact ``stepstone resume`` command (exit 40)."""

from __future__ import annotations

import json
from typing import Any

from stepstone.cli import cpf
from stepstone.cli.output import Output
from stepstone.cli.render import Screen
from stepstone.cli.session import Session
from stepstone.client import Client
from stepstone.client.base import raise_for
from stepstone.client.shapes import answer_command, db_flag, shell_quote
from stepstone.client.views import SignalWait
from stepstone.core.model import Run, RunState

__all__ = ["WAITING", "resume_command", "stop_output", "wait_json"]

WAITING = 40
"""The exit code of a run handed back at a signal wait (checkpointflow's)."""

RESPONSE = "@response.json"


def resume_command(
    run_id: str,
    event: str,
    *,
    db: str | None,
    flags: tuple[str, ...] = (),
    cpf_form: bool = False,
) -> str:
    """The shell command that answers ``event`` and continues the run here: ``flags`` load the
    workflows again (``--app M`` or ``-f FILE``); a ``db`` holding a password is not written
    out (``$STEPSTONE_DB`` stands in for it)."""
    run = ["--run-id", shell_quote(run_id)] if cpf_form else [shell_quote(run_id)]
    parts = ["stepstone", "resume", *run, "--event", shell_quote(event), "--input", RESPONSE]
    parts += [shell_quote(f) for f in flags]
    return " ".join([*parts, *db_flag(db)])


def wait_json(held: SignalWait, command: str, db: str | None = None) -> dict[str, Any]:
    """One signal wait as the waiting envelope shows it (a ``ctx.ask`` gate: with its kind and
    the ``stepstone approve``/``answer`` command)."""
    wait, info = held.wait, held.wait.info
    ask = info.ask if info is not None else None
    return {
        "run_id": held.run_id,
        "step": (info.step if info is not None else None) or held.event,
        "event": held.event,
        "prompt": info.prompt if info is not None else None,
        "summary": info.summary if info is not None else None,
        "audience": info.audience if info is not None else None,
        "risk_level": info.risk_level if info is not None else None,
        "input_schema": json.loads(wait.schema_json) if wait.schema_json else None,
        "timeout_at": wait.until.isoformat() if wait.until is not None else None,
        "resume_command": command,
        "ask": ask,
        "answer_command": (
            answer_command(held.run_id, held.event, ask, db) if ask is not None else None
        ),
    }


def _waiting(run: Run, holds: list[SignalWait], session: Session, flags: tuple[str, ...]) -> Output:
    waits = [
        wait_json(h, resume_command(run.run_id, h.event, db=session.db, flags=flags), session.db)
        for h in holds
    ]
    first = waits[0]
    data = {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "state": run.state.value,
        "status": "waiting",
        **{k: v for k, v in first.items() if k != "run_id"},
        "waiting_run_id": first["run_id"],
        "waits": waits,
    }

    def human(screen: Screen) -> None:
        for w in waits:
            through = f" (through child run {w['run_id']})" if w["run_id"] != run.run_id else ""
            screen.line(
                f"run {run.run_id} is waiting for event {w['event']!r} at step "
                f"{w['step']!r}{through}"
            )
            for label in ("prompt", "summary", "audience", "risk_level", "timeout_at"):
                if w[label] is not None:
                    screen.line(f"  {label.replace('_', ' ')}: {w[label]}")
            if w["input_schema"] is not None:
                schema = json.dumps(w["input_schema"], ensure_ascii=False)
                screen.line(f"  input schema: {schema}")
            if w["answer_command"] is not None:
                screen.line(f"answer it with: {w['answer_command']}")
            screen.line("resume it with (response.json holds the answer):")
            screen.line(f"  {w['resume_command']}")

    envelope = cpf.run_envelope(session.command, run, holds, session.db, flags)
    return Output(data, human, exit_code=WAITING, cpf=envelope)


def stop_output(client: Client, run: Run, session: Session, flags: tuple[str, ...]) -> Output:
    """The output for a run that stopped (see :meth:`Client.run_until_wait`): its result, a
    RunFailed (failed, cancelled, blocked; exit 7), or the waiting envelope (exit 40)."""
    if run.state is RunState.COMPLETED:
        value = json.loads(run.output_json) if run.output_json else None
        data = {
            "run_id": run.run_id,
            "state": run.state.value,
            "status": "completed",
            "result": value,
        }
        envelope = cpf.run_envelope(session.command, run, [], session.db, flags)
        return Output(data, lambda screen: screen.json(value), cpf=envelope)
    holds = client.signal_waits(run) if run.state is RunState.WAITING else []
    if holds:
        return _waiting(run, holds, session, flags)
    raise_for(run)
    raise AssertionError("unreachable")  # pragma: no cover
