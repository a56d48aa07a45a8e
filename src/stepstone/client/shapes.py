"""The JSON shapes of runs, steps, signals, events, timeline entries and check results.

Stored JSON payloads (input, output, ``ctx.state``, signal payloads, event data) are embedded as
values, not strings; times are ISO 8601 in UTC; durations are ``*_s`` in seconds.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from stepstone.client.views import RunDescription, TimelineEntry, describe_wait
from stepstone.core.executor import CheckResult
from stepstone.core.model import (
    ErrorInfo,
    EventRecord,
    QueueSpec,
    QueueStats,
    Run,
    SignalRecord,
    StepRecord,
    Wait,
    WorkerInfo,
)
from stepstone.core.schedules import ScheduleInfo
from stepstone.store import redact_url

__all__ = [
    "answer_command",
    "check_json",
    "db_flag",
    "description_json",
    "error_json",
    "event_json",
    "queue_json",
    "run_json",
    "schedule_json",
    "signal_command",
    "shell_quote",
    "signal_json",
    "step_duration_s",
    "step_json",
    "timeline_json",
    "waiting_for",
    "waits_json",
    "worker_json",
]


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _value(text: str | None) -> Any:
    return json.loads(text) if text else None


def waiting_for(run: Run) -> list[str]:
    """What the run waits for, one phrase each (the run deadline is shown separately)."""
    return [describe_wait(w) for w in run.waits if w.seq >= 0]


def shell_quote(text: str) -> str:
    """``shlex.quote(text)``; shlex is imported on first use (a run that never stops to wait
    prints no command)."""
    import shlex

    return shlex.quote(text)


def db_flag(db: str | None) -> list[str]:
    """``--db URL`` for a printed command (none without ``db``); a URL holding a password is not
    written out: ``"$STEPSTONE_DB"`` stands in for it."""
    if db is None:
        return []
    return ["--db", '"$STEPSTONE_DB"' if redact_url(db) != db else shell_quote(db)]


def signal_command(run_id: str, name: str, db: str | None = None) -> str:
    """The exact shell command that answers a signal wait (``JSON`` is the payload to fill in).
    A ``db`` holding a password is not written out: ``$STEPSTONE_DB`` stands in for it."""
    parts = ["stepstone", "signal", shell_quote(run_id), shell_quote(name), "--data", "JSON"]
    return " ".join([*parts, *db_flag(db)])


def answer_command(run_id: str, gate: str, kind: str, db: str | None = None) -> str:
    """The exact shell command that answers a ``ctx.ask`` gate: ``stepstone approve`` for an
    approval (add ``--reject`` to reject), else ``stepstone answer ... --input JSON``."""
    parts = ["stepstone", "approve" if kind == "approval" else "answer", shell_quote(run_id)]
    parts += ["--gate", shell_quote(gate)]
    if kind != "approval":
        parts += ["--input", "JSON"]
    return " ".join([*parts, *db_flag(db)])


def _answer_command(run_id: str, wait: Wait, db: str | None) -> str | None:
    ask = wait.info.ask if wait.info is not None else None
    if ask is None or wait.name is None:
        return None
    return answer_command(run_id, wait.name, ask, db)


def waits_json(run: Run, db: str | None = None) -> list[dict[str, Any]]:
    """What the run waits for, structured: kind, name, until, the payload's JSON Schema, and
    the command that resumes it (signal waits; timers and children resume by themselves)."""
    return [
        {
            "kind": w.kind,
            "name": w.name,
            "seq": w.seq,
            "until": _iso(w.until),
            "schema": _value(w.schema_json),
            "resume_command": (
                signal_command(run.run_id, w.name, db) if w.kind == "signal" and w.name else None
            ),
            "question": w.info.prompt if w.info is not None and w.info.ask else None,
            "ask": w.info.ask if w.info is not None else None,
            "answer_command": _answer_command(run.run_id, w, db),
        }
        for w in run.waits
        if w.seq >= 0
    ]


def error_json(error: ErrorInfo | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "type": error.type,
        "message": error.message,
        "traceback": error.traceback,
        "step_seqs": list(error.step_seqs),
    }


def run_json(run: Run, db: str | None = None) -> dict[str, Any]:
    """A run as JSON; ``db`` (the ``--db`` in use) goes into the resume commands of its waits."""
    return {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "version": run.version,
        "state": run.state.value,
        "queue": run.queue,
        "priority": run.priority,
        "input": _value(run.input_json),
        "output": _value(run.output_json),
        "error": error_json(run.error),
        "control": run.control,
        "control_reason": run.control_reason,
        "waiting_for": waiting_for(run),
        "waits": waits_json(run, db),
        "wake_at": _iso(run.wake_at),
        "deadline_at": _iso(run.deadline_at),
        "lease_owner": run.lease_owner,
        "lease_expires_at": _iso(run.lease_expires_at),
        "recoveries": run.recoveries,
        "parent_run_id": run.parent_run_id,
        "parent_seq": run.parent_seq,
        "forked_from": run.forked_from,
        "retry_of": run.retry_of,
        "dedup_key": run.routing.dedup_key,
        "concurrency_key": run.routing.concurrency_key,
        "labels": dict(run.routing.labels),
        "target_worker": run.routing.target_worker,
        "pool": run.routing.pool,
        "assigned_worker": run.assigned_worker,
        "created_at": _iso(run.created_at),
        "updated_at": _iso(run.updated_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
    }


def step_duration_s(step: StepRecord) -> float | None:
    if step.started_at is None or step.finished_at is None:
        return None
    return (step.finished_at - step.started_at).total_seconds()


def step_json(step: StepRecord) -> dict[str, Any]:
    return {
        "seq": step.seq,
        "kind": step.kind.value,
        "name": step.name,
        "status": step.status.value,
        "attempts": step.attempts,
        "output": _value(step.output_json),
        "error": error_json(step.error),
        "started_at": _iso(step.started_at),
        "finished_at": _iso(step.finished_at),
        "duration_s": step_duration_s(step),
    }


def signal_json(signal: SignalRecord) -> dict[str, Any]:
    return {
        "signal_id": signal.signal_id,
        "name": signal.name,
        "payload": _value(signal.payload_json),
        "created_at": _iso(signal.created_at),
        "consumed_seq": signal.consumed_seq,
        "consumed_at": _iso(signal.consumed_at),
        "rejected": signal.rejected,
        "problem": signal.problem,
    }


def description_json(desc: RunDescription, db: str | None = None) -> dict[str, Any]:
    return {
        **run_json(desc.run, db),
        "state_data": desc.state,
        "steps": [step_json(s) for s in desc.steps],
        "signals": [signal_json(s) for s in desc.signals],
        "pending_signals": [s.signal_id for s in desc.pending_signals],
        "failures": [
            {
                "at": _iso(f.at),
                "seq": f.seq,
                "step": f.step,
                "attempt": f.attempt,
                "error": error_json(f.error),
            }
            for f in desc.failures
        ],
        "rejected_signals": [s.signal_id for s in desc.rejected_signals],
        "children": [
            {"run_id": c.run_id, "workflow": c.workflow, "state": c.state.value}
            for c in desc.children
        ],
    }


def event_json(event: EventRecord) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "run_id": event.run_id,
        "kind": event.kind,
        "source": event.source,
        "data": _value(event.data_json),
        "created_at": _iso(event.created_at),
    }


def timeline_json(entry: TimelineEntry) -> dict[str, Any]:
    return {
        "at": _iso(entry.at),
        "kind": entry.kind,
        "detail": entry.detail,
        "seq": entry.seq,
        "duration_s": entry.duration_s,
    }


def check_json(result: CheckResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "workflow": result.workflow,
        "ok": result.ok,
        "replayed": result.replayed,
        "problem": result.problem,
    }


def worker_json(worker: WorkerInfo, now: datetime) -> dict[str, Any]:
    return {
        "worker_id": worker.worker_id,
        "host": worker.host,
        "pid": worker.pid,
        "queues": list(worker.queues),
        "labels": dict(worker.labels),
        "pool": worker.pool,
        "capacity": worker.concurrency,
        "load": worker.load,
        "version": worker.version,
        "started_at": _iso(worker.started_at),
        "heartbeat_at": _iso(worker.heartbeat_at),
        "alive": worker.alive_at(now),
    }


def queue_json(name: str, stats: QueueStats | None, spec: QueueSpec | None) -> dict[str, Any]:
    data: dict[str, Any] = {"queue": name}
    if stats is not None:
        data.update(
            pending=stats.pending,
            running=stats.running,
            waiting=stats.waiting,
            sleeping=stats.sleeping,
            paused=stats.paused,
            completed_recently=stats.completed_recently,
            failed_recently=stats.failed_recently,
            window_s=stats.window_s,
            throughput_per_s=stats.throughput_per_s,
            oldest_pending_age_s=stats.oldest_pending_age_s,
        )
    if spec is not None:
        data["limits"] = {
            "concurrency": spec.concurrency,
            "per_key_concurrency": spec.per_key_concurrency,
            "rate_limit": spec.rate_limit,
            "rate_period_s": spec.rate_period_s,
            "rate_limit_per_key": spec.rate_limit_per_key,
        }
    return data


def schedule_json(info: ScheduleInfo) -> dict[str, Any]:
    s = info.spec

    return {
        **{k: v for k, v in dataclasses.asdict(s).items() if k != "input_json"},
        "input": s.input_json,
        "paused": info.paused,
        "next_fire_at": _iso(info.next_fire_at),
        "last_tick_at": _iso(info.last_tick_at),
        "last_run_id": info.last_run_id,
        "buffered_at": _iso(info.buffered_at),
    }
