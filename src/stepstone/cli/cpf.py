"""``--format cpf``: checkpointflow's run envelope (``checkpointflow-run/v1``) and its exit codes.

checkpointflow is a published command-line contract for agents driving workflows; stepstone
speaks it on request so that an agent (or a script) written for it drives stepstone unchanged.
Its exit codes: 0 ok, 10 validation, 20 runtime, 30 step failed, 40 waiting, 50 cancelled,
60 persistence, 70 concurrency or lock, 80 unsupported, 90 internal.
"""

from __future__ import annotations

import json
from typing import Any

from stepstone.client.shapes import db_flag, shell_quote
from stepstone.client.views import SignalWait
from stepstone.core.model import Run, RunState
from stepstone.errors import (
    AlreadyResumed,
    AppNotFound,
    InvalidArgument,
    RunFailed,
    RunNotFound,
    RunStateError,
    SignalPayloadError,
    SpecError,
    StoreError,
    UnknownSignal,
    UsageError,
    WaitTimeout,
    WorkflowNotFound,
)

__all__ = ["SCHEMA_VERSION", "error_envelope", "exit_for_state", "run_envelope"]

SCHEMA_VERSION = "checkpointflow-run/v1"

OK, VALIDATION, RUNTIME, STEP_FAILED, WAITING, CANCELLED = 0, 10, 20, 30, 40, 50
PERSISTENCE, CONCURRENCY, INTERNAL = 60, 70, 90

INSTRUCTIONS = [
    "Ask the intended audience for input using the prompt.",
    "Collect JSON that matches input_schema.",
    "Resume with the provided run_id and event_name.",
]


def _status(run: Run, holds: list[SignalWait]) -> str:
    """checkpointflow's status word for a run."""
    state = run.state
    if state is RunState.COMPLETED:
        return "completed"
    if state is RunState.CANCELLED:
        return "cancelled"
    if state in (RunState.FAILED, RunState.BLOCKED):
        return "failed"
    if holds:
        return "waiting"
    if state is RunState.PENDING and run.started_at is None:
        return "created"
    return "running"


def exit_for_state(status: str) -> int:
    """checkpointflow's exit code for a run in this status."""
    return {"completed": OK, "waiting": WAITING, "failed": STEP_FAILED, "cancelled": CANCELLED}.get(
        status, OK
    )


def _resume(run_id: str, event: str, db: str | None, flags: tuple[str, ...]) -> str:
    parts = ["stepstone", "resume", "--run-id", shell_quote(run_id), "--event", shell_quote(event)]
    parts += ["--input", "@response.json", *(shell_quote(f) for f in flags)]
    return " ".join([*parts, *db_flag(db)])


def _wait(run: Run, held: SignalWait, db: str | None, flags: tuple[str, ...]) -> dict[str, Any]:
    info = held.wait.info
    wait: dict[str, Any] = {
        "kind": "external_event",
        "audience": (info.audience if info is not None else None) or "user",
        "event_name": held.event,
        "input_schema": json.loads(held.wait.schema_json) if held.wait.schema_json else {},
        "instructions": INSTRUCTIONS,
        "resume": {"command": _resume(run.run_id, held.event, db, flags)},
    }
    if info is not None:
        for key in ("prompt", "summary", "risk_level"):
            value = getattr(info, key)
            if value is not None:
                wait[key] = value
    if held.wait.until is not None:
        wait["timeout_at"] = held.wait.until.isoformat()
    return wait


def run_envelope(
    command: str,
    run: Run,
    holds: list[SignalWait],
    db: str | None,
    flags: tuple[str, ...] = (),
    *,
    query: bool = False,
    result: Any = None,
) -> dict[str, Any]:
    """The envelope for ``run`` after ``command``. ``query`` (status, inspect, cancel): the
    command itself succeeded whatever the run's state, so ``ok`` stays true."""
    status = _status(run, holds)
    code = exit_for_state(status)
    if command == "cancel" and status == "cancelled":
        code = OK
    failed = status in ("failed", "cancelled") and not query and command != "cancel"
    envelope: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "ok": not failed,
        "command": command,
        "status": status,
        "exit_code": code,
        "run_id": run.run_id,
        "workflow_id": run.workflow,
    }
    if run.version:
        envelope["workflow_version"] = run.version
    if run.started_at is not None:
        envelope["started_at"] = run.started_at.isoformat()
    envelope["updated_at"] = run.updated_at.isoformat()
    if holds:
        held = holds[0]
        info = held.wait.info
        envelope["current_step_id"] = (info.step if info is not None else None) or held.event
        envelope["wait"] = _wait(run, held, db, flags)
    if status == "completed":
        envelope["result"] = result if result is not None else json.loads(run.output_json or "null")
    if status in ("failed", "cancelled"):
        error = run.error
        envelope["error"] = {
            "code": "ERR_STEP_FAILED" if status == "failed" else "ERR_CANCELLED",
            "message": f"{error.type}: {error.message}" if error else status,
        }
    return envelope


def _error_code(exc: BaseException) -> tuple[str, int]:
    """checkpointflow's error code and exit code for an error."""
    if isinstance(exc, AlreadyResumed):
        return "ERR_RUN_NOT_WAITING", CONCURRENCY
    if isinstance(exc, SignalPayloadError):
        return "ERR_VALIDATION_EVENT_INPUT", VALIDATION
    if isinstance(exc, UnknownSignal):
        return "ERR_RESUME_EVENT_MISMATCH", VALIDATION
    if isinstance(exc, RunNotFound):
        return "ERR_RUN_NOT_FOUND", VALIDATION
    if isinstance(exc, RunStateError):
        if exc.state == "waiting":
            return "ERR_RESUME_EVENT_MISMATCH", RUNTIME
        return "ERR_RUN_NOT_WAITING", RUNTIME
    if isinstance(exc, RunFailed):
        if exc.state == "cancelled":
            return "ERR_CANCELLED", CANCELLED
        return "ERR_STEP_FAILED", STEP_FAILED
    if isinstance(exc, WaitTimeout):
        return "ERR_TIMEOUT", WAITING
    if isinstance(exc, SpecError):
        if exc.path.startswith("inputs"):
            return "ERR_VALIDATION_INPUT", VALIDATION
        return "ERR_VALIDATION_WORKFLOW", VALIDATION
    if isinstance(exc, UsageError | InvalidArgument | WorkflowNotFound | AppNotFound):
        return "ERR_VALIDATION_INPUT", VALIDATION
    if isinstance(exc, StoreError):
        return "ERR_PERSISTENCE", PERSISTENCE
    if isinstance(exc, KeyboardInterrupt):
        return "ERR_INTERRUPTED", 130
    return "ERR_INTERNAL", INTERNAL


def error_envelope(command: str, exc: BaseException, message: str) -> dict[str, Any]:
    """The envelope for a command that failed with ``exc`` (``message``: its one line)."""
    code, exit_code = _error_code(exc)
    status = "cancelled" if exit_code == CANCELLED else "failed"
    if isinstance(exc, AlreadyResumed):
        status = "running"
    envelope: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "ok": False,
        "command": command,
        "status": status,
        "exit_code": exit_code,
        "error": {"code": code, "message": message},
    }
    run_id = getattr(exc, "run_id", None)
    if isinstance(run_id, str):
        envelope["run_id"] = run_id
    return envelope
