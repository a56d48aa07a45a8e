"""Rows to core values and back: timestamps as REAL epoch seconds, labels as a JSON object."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from stepstone.core.clock import from_timestamp
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
    "dt",
    "dump_labels",
    "event_from_row",
    "load_labels",
    "new_run_params",
    "run_from_row",
    "run_params",
    "signal_from_row",
    "step_from_row",
    "step_params",
    "ts",
    "worker_from_row",
]


def ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def dt(value: float | None) -> datetime | None:
    return from_timestamp(value) if value is not None else None


def dump_labels(labels: Labels) -> str | None:
    return json.dumps(dict(labels), separators=(",", ":"), sort_keys=True) if labels else None


def load_labels(text: str | None) -> Labels:
    return tuple(sorted(json.loads(text).items())) if text else ()


def run_from_row(row: sqlite3.Row) -> Run:
    return Run(
        run_id=row["run_id"],
        workflow=row["workflow"],
        version=row["version"],
        state=RunState(row["state"]),
        input_json=row["input"],
        queue=row["queue"],
        priority=row["priority"],
        created_at=from_timestamp(row["created_at"]),
        updated_at=from_timestamp(row["updated_at"]),
        output_json=row["output"],
        error=load_error(row["error"]),
        control=row["control"],
        control_reason=row["control_reason"],
        waits=load_waits(row["waits"]),
        wake_at=dt(row["wake_at"]),
        lease_owner=row["lease_owner"],
        lease_expires_at=dt(row["lease_expires_at"]),
        lease_token=row["lease_token"],
        recoveries=row["recoveries"],
        parent_run_id=row["parent_run_id"],
        parent_seq=row["parent_seq"],
        deadline_at=dt(row["deadline_at"]),
        state_json=row["state_data"],
        started_at=dt(row["started_at"]),
        finished_at=dt(row["finished_at"]),
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


def run_params(run: Run) -> dict[str, Any]:
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
        "wake_at": ts(run.wake_at),
        "lease_owner": run.lease_owner,
        "lease_expires_at": ts(run.lease_expires_at),
        "lease_token": run.lease_token,
        "recoveries": run.recoveries,
        "parent_run_id": run.parent_run_id,
        "parent_seq": run.parent_seq,
        "deadline_at": ts(run.deadline_at),
        "state_data": run.state_json,
        "forked_from": run.forked_from,
        "created_at": ts(run.created_at),
        "updated_at": ts(run.updated_at),
        "started_at": ts(run.started_at),
        "finished_at": ts(run.finished_at),
        "dedup_key": run.routing.dedup_key,
        "concurrency_key": run.routing.concurrency_key,
        "labels": dump_labels(run.routing.labels),
        "target_worker": run.routing.target_worker,
        "pool": run.routing.pool,
        "assigned_worker": run.assigned_worker,
        "retry_of": run.retry_of,
    }


def new_run_params(run: NewRun) -> dict[str, Any]:
    """The columns of a new run that come from the caller."""
    return {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "version": run.version,
        "input": run.input_json,
        "queue": run.queue,
        "priority": run.priority,
        "deadline_at": ts(run.deadline_at),
        "parent_run_id": run.parent_run_id,
        "parent_seq": run.parent_seq,
        "forked_from": run.forked_from,
        "retry_of": run.retry_of,
        "dedup_key": run.routing.dedup_key,
        "concurrency_key": run.routing.concurrency_key,
        "labels": dump_labels(run.routing.labels),
        "target_worker": run.routing.target_worker,
        "pool": run.routing.pool,
    }


def step_from_row(row: sqlite3.Row) -> StepRecord:
    return StepRecord(
        seq=row["seq"],
        name=row["name"],
        kind=StepKind(row["kind"]),
        status=StepStatus(row["status"]),
        output_json=row["output"],
        error=load_error(row["error"]),
        attempts=row["attempts"],
        started_at=dt(row["started_at"]),
        finished_at=dt(row["finished_at"]),
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
        "started_at": ts(record.started_at),
        "finished_at": ts(record.finished_at),
    }


def signal_from_row(row: sqlite3.Row) -> SignalRecord:
    return SignalRecord(
        row["signal_id"],
        row["run_id"],
        row["name"],
        row["payload"],
        from_timestamp(row["created_at"]),
        row["consumed_seq"],
        dt(row["consumed_at"]),
    )


def event_from_row(row: sqlite3.Row) -> EventRecord:
    return EventRecord(
        row["event_id"],
        row["run_id"],
        row["kind"],
        row["data"],
        from_timestamp(row["created_at"]),
        row["source"],
        row["idx"],
    )


def worker_from_row(row: sqlite3.Row) -> WorkerInfo:
    return WorkerInfo(
        worker_id=row["worker_id"],
        host=row["host"],
        pid=row["pid"],
        queues=tuple(json.loads(row["queues"])),
        concurrency=row["concurrency"],
        started_at=from_timestamp(row["started_at"]),
        heartbeat_at=from_timestamp(row["heartbeat_at"]),
        process_start=row["process_start"],
        version=row["version"],
        labels=load_labels(row["labels"]),
        pool=row["pool"],
        load=row["load"],
        lease_s=row["lease_s"],
    )
