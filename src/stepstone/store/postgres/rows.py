"""Rows of the PostgreSQL store turned into core values, and core values into query parameters.

Times are aware datetimes both ways (timestamptz, sessions in UTC); labels are a jsonb object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from stepstone.core.model import (
    EventRecord,
    Labels,
    NewRun,
    Routing,
    Run,
    RunState,
    SignalRecord,
    StepKind,
    StepRecord,
    StepStatus,
    WorkerInfo,
)
from stepstone.store.serde import dump_error, dump_waits, load_error, load_waits

__all__ = [
    "dump_labels",
    "event_from",
    "load_labels",
    "run_columns",
    "later",
    "run_from",
    "run_params",
    "signal_from",
    "step_from",
    "step_params",
    "worker_from",
    "worker_params",
]

Row = Mapping[str, Any]


def later(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)


def dump_labels(labels: Labels) -> str | None:
    return json.dumps(dict(labels), separators=(",", ":"), sort_keys=True) if labels else None


def load_labels(value: dict[str, str] | str | None) -> Labels:
    if not value:
        return ()
    data = json.loads(value) if isinstance(value, str) else value
    return tuple(sorted((str(k), str(v)) for k, v in data.items()))


def run_from(row: Row) -> Run:
    return Run(
        run_id=row["run_id"],
        workflow=row["workflow"],
        version=row["version"],
        state=RunState(row["state"]),
        input_json=row["input"],
        queue=row["queue"],
        priority=row["priority"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        output_json=row["output"],
        error=load_error(row["error"]),
        control=row["control"],
        control_reason=row["control_reason"],
        waits=load_waits(row["waits"]),
        wake_at=row["wake_at"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        lease_token=row["lease_token"],
        recoveries=row["recoveries"],
        parent_run_id=row["parent_run_id"],
        parent_seq=row["parent_seq"],
        deadline_at=row["deadline_at"],
        state_json=row["state_data"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        forked_from=row["forked_from"],
        retry_of=row["retry_of"],
        routing=Routing(
            dedup_key=row["dedup_key"],
            concurrency_key=row["concurrency_key"],
            labels=load_labels(row["labels"]),
            target_worker=row["target_worker"],
            pool=row["pool"],
        ),
        assigned_worker=row["assigned_worker"],
    )


def step_from(row: Row) -> StepRecord:
    return StepRecord(
        seq=row["seq"],
        name=row["name"],
        kind=StepKind(row["kind"]),
        status=StepStatus(row["status"]),
        output_json=row["output"],
        error=load_error(row["error"]),
        attempts=row["attempts"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def signal_from(row: Row) -> SignalRecord:
    return SignalRecord(
        row["signal_id"],
        row["run_id"],
        row["name"],
        row["payload"],
        row["created_at"],
        row["consumed_seq"],
        row["consumed_at"],
    )


def event_from(row: Row) -> EventRecord:
    return EventRecord(
        row["event_id"],
        row["run_id"],
        row["kind"],
        row["data"],
        row["created_at"],
        row["source"],
        row["idx"],
    )


def worker_from(row: Row) -> WorkerInfo:
    return WorkerInfo(
        worker_id=row["worker_id"],
        host=row["host"],
        pid=row["pid"],
        queues=tuple(row["queues"]),
        concurrency=row["concurrency"],
        started_at=row["started_at"],
        heartbeat_at=row["heartbeat_at"],
        process_start=row["process_start"],
        version=row["version"],
        labels=load_labels(row["labels"]),
        pool=row["pool"],
        load=row["load"],
        lease_s=row["lease_s"],
    )


def step_params(run_id: str, token: int, record: StepRecord) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "token": token,
        "seq": record.seq,
        "name": record.name,
        "kind": record.kind.value,
        "status": record.status.value,
        "output": record.output_json,
        "error": dump_error(record.error),
        "attempts": record.attempts,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
    }


def run_params(
    run: NewRun,
    now: datetime,
    owner: str | None,
    lease_s: float,
    state_json: str | None,
    assigned_worker: str | None,
) -> dict[str, Any]:
    """Parameters of ``create_run``: pending (due at ``start_at`` or now), or already running
    under ``owner``'s first lease."""
    routing = run.routing
    return {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "version": run.version,
        "state": "running" if owner else "pending",
        "input": run.input_json,
        "queue": run.queue,
        "priority": run.priority,
        "wake_at": None if owner else run.start_at or now,
        "deadline_at": run.deadline_at,
        "parent_run_id": run.parent_run_id,
        "parent_seq": run.parent_seq,
        "forked_from": run.forked_from,
        "now": now,
        "lease_owner": owner,
        "lease_expires_at": later(now, lease_s) if owner else None,
        "lease_token": 1 if owner else 0,
        "started_at": now if owner else None,
        "state_data": state_json,
        "retry_of": run.retry_of,
        "dedup_key": routing.dedup_key,
        "concurrency_key": routing.concurrency_key,
        "labels": dump_labels(routing.labels),
        "target_worker": routing.target_worker,
        "pool": routing.pool,
        "assigned_worker": assigned_worker,
    }


def run_columns(run: Run) -> dict[str, Any]:
    """Every column of a stored run (to copy it into another store as it is)."""
    return {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "version": run.version,
        "state": run.state.value,
        "input": run.input_json,
        "output": run.output_json,
        "error": dump_error(run.error),
        "queue": run.queue,
        "priority": run.priority,
        "control": run.control,
        "control_reason": run.control_reason,
        "waits": dump_waits(run.waits),
        "wake_at": run.wake_at,
        "lease_owner": run.lease_owner,
        "lease_expires_at": run.lease_expires_at,
        "lease_token": run.lease_token,
        "recoveries": run.recoveries,
        "parent_run_id": run.parent_run_id,
        "parent_seq": run.parent_seq,
        "deadline_at": run.deadline_at,
        "state_data": run.state_json,
        "forked_from": run.forked_from,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "dedup_key": run.routing.dedup_key,
        "concurrency_key": run.routing.concurrency_key,
        "labels": dump_labels(run.routing.labels),
        "target_worker": run.routing.target_worker,
        "pool": run.routing.pool,
        "assigned_worker": run.assigned_worker,
        "retry_of": run.retry_of,
    }


def worker_params(worker: WorkerInfo, now: datetime) -> dict[str, Any]:
    return {
        "worker_id": worker.worker_id,
        "host": worker.host,
        "pid": worker.pid,
        "process_start": worker.process_start,
        "queues": list(worker.queues),
        "concurrency": worker.concurrency,
        "version": worker.version,
        "labels": dump_labels(worker.labels),
        "pool": worker.pool,
        "load": worker.load,
        "lease_s": worker.lease_s,
        "now": now,
    }
