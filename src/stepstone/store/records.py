"""Rows to core records and records to query parameters, the same for every dialect.

Both stores name their columns alike; they differ only in how a time is stored (SQLite: REAL
epoch seconds; PostgreSQL: timestamptz) and how a list of names is (SQLite: JSON text;
PostgreSQL: text[]). A dialect describes that in a :class:`Columns`, and gets every mapping.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from stepstone.core.frozen import frozen
from stepstone.core.ledger import LedgerEntry, MeteredCall
from stepstone.core.memory import MemoryDoc
from stepstone.core.model import (
    EventRecord,
    InboxItem,
    Labels,
    Launch,
    NamedLease,
    NewRun,
    PoolSpec,
    QueueSpec,
    QueueStats,
    Routing,
    Run,
    RunExport,
    RunState,
    SignalRecord,
    StepKind,
    StepRecord,
    StepStatus,
    WorkerInfo,
)
from stepstone.core.schedules import ScheduleInfo, ScheduleSpec
from stepstone.store.serde import dump_error, dump_waits, load_error, load_waits

__all__ = ["Columns", "Row", "dump_labels", "exports", "load_labels"]


class Row(Protocol):
    """A result row read by column name (``sqlite3.Row``, a psycopg dict row)."""

    def __getitem__(self, key: str, /) -> Any: ...


def dump_labels(labels: Labels) -> str | None:
    """Labels as a JSON object (SQLite stores the text, PostgreSQL casts it to jsonb)."""
    return json.dumps(dict(labels), separators=(",", ":"), sort_keys=True) if labels else None


def load_labels(value: Mapping[str, Any] | str | None) -> Labels:
    if not value:
        return ()
    data = json.loads(value) if isinstance(value, str) else value
    return tuple(sorted((str(k), str(v)) for k, v in data.items()))


_T = TypeVar("_T")


def exports(
    runs: Iterable[Run],
    steps: Iterable[tuple[str, StepRecord]],
    signals: Iterable[tuple[str, SignalRecord]],
    events: Iterable[tuple[str, EventRecord]],
    ledger: Iterable[LedgerEntry] = (),
    launches: Iterable[Launch] = (),
    inbox: Iterable[InboxItem] = (),
) -> list[RunExport]:
    """Each run with its own steps, signals, events, ledger rows, launch mark and inbox items
    (given as ``(run_id, record)`` or carrying their run id, in the order they were read), for
    :meth:`Store.export_runs`."""
    steps_of, signals_of, events_of = _by_run(steps), _by_run(signals), _by_run(events)
    ledger_of = _by_run((e.run_id, e) for e in ledger)
    launch_of = {launch.run_id: launch for launch in launches}
    inbox_of = _by_run((item.run_id, item) for item in inbox)
    return [
        RunExport(
            run,
            tuple(steps_of.get(run.run_id, ())),
            tuple(signals_of.get(run.run_id, ())),
            tuple(events_of.get(run.run_id, ())),
            tuple(ledger_of.get(run.run_id, ())),
            launch_of.get(run.run_id),
            tuple(inbox_of.get(run.run_id, ())),
        )
        for run in runs
    ]


def _by_run(pairs: Iterable[tuple[str, _T]]) -> dict[str, list[_T]]:
    grouped: dict[str, list[_T]] = {}
    for run_id, record in pairs:
        grouped.setdefault(run_id, []).append(record)
    return grouped


@frozen
class Columns:
    """How one dialect stores times and lists of names; the mappings built on that."""

    time_in: Callable[[Any], datetime | None]
    time_out: Callable[[datetime | None], Any]
    names_in: Callable[[Any], tuple[str, ...]]
    names_out: Callable[[tuple[str, ...]], Any]

    # --- rows to records ---------------------------------------------------------------------

    def _time(self, value: Any) -> datetime:
        at = self.time_in(value)
        assert at is not None  # a NOT NULL column
        return at

    def run(self, row: Row) -> Run:
        t = self.time_in
        return Run(
            run_id=row["run_id"],
            workflow=row["workflow"],
            version=row["version"],
            state=RunState(row["state"]),
            input_json=row["input"],
            queue=row["queue"],
            priority=row["priority"],
            created_at=self._time(row["created_at"]),
            updated_at=self._time(row["updated_at"]),
            output_json=row["output"],
            error=load_error(row["error"]),
            control=row["control"],
            control_reason=row["control_reason"],
            waits=load_waits(row["waits"]),
            wake_at=t(row["wake_at"]),
            lease_owner=row["lease_owner"],
            lease_expires_at=t(row["lease_expires_at"]),
            lease_token=row["lease_token"],
            recoveries=row["recoveries"],
            parent_run_id=row["parent_run_id"],
            parent_seq=row["parent_seq"],
            deadline_at=t(row["deadline_at"]),
            state_json=row["state_data"],
            started_at=t(row["started_at"]),
            finished_at=t(row["finished_at"]),
            forked_from=row["forked_from"],
            retry_of=row["retry_of"],
            trace_context=row["trace_context"],
            routing=Routing(
                dedup_key=row["dedup_key"],
                concurrency_key=row["concurrency_key"],
                labels=load_labels(row["labels"]),
                target_worker=row["target_worker"],
                pool=row["pool"],
            ),
            assigned_worker=row["assigned_worker"],
        )

    def step(self, row: Row) -> StepRecord:
        return StepRecord(
            seq=row["seq"],
            name=row["name"],
            kind=StepKind(row["kind"]),
            status=StepStatus(row["status"]),
            output_json=row["output"],
            error=load_error(row["error"]),
            attempts=row["attempts"],
            started_at=self.time_in(row["started_at"]),
            finished_at=self.time_in(row["finished_at"]),
        )

    def signal(self, row: Row) -> SignalRecord:
        return SignalRecord(
            row["signal_id"],
            row["run_id"],
            row["name"],
            row["payload"],
            self._time(row["created_at"]),
            row["consumed_seq"],
            self.time_in(row["consumed_at"]),
            row["problem"],
        )

    def event(self, row: Row) -> EventRecord:
        return EventRecord(
            row["event_id"],
            row["run_id"],
            row["kind"],
            row["data"],
            self._time(row["created_at"]),
            row["source"],
            row["idx"],
        )

    def ledger(self, row: Row) -> LedgerEntry:
        call = MeteredCall(
            model=row["model"],
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cache_read_tokens=row["cache_read_tokens"],
            cache_write_tokens=row["cache_write_tokens"],
            cost_usd=float(row["cost_usd"]),
            latency_s=float(row["latency_s"]),
        )
        return LedgerEntry(
            row["run_id"],
            row["seq"],
            row["step"],
            row["workflow"],
            row["queue"],
            call,
            self._time(row["created_at"]),
            row["concurrency_key"],
        )

    def worker(self, row: Row) -> WorkerInfo:
        return WorkerInfo(
            worker_id=row["worker_id"],
            host=row["host"],
            pid=row["pid"],
            queues=self.names_in(row["queues"]),
            concurrency=row["concurrency"],
            started_at=self.time_in(row["started_at"]),
            heartbeat_at=self.time_in(row["heartbeat_at"]),
            process_start=row["process_start"],
            version=row["version"],
            labels=load_labels(row["labels"]),
            pool=row["pool"],
            load=row["load"],
            lease_s=row["lease_s"],
        )

    def memory_doc(self, row: Row) -> MemoryDoc:
        return MemoryDoc(
            scope=row["scope"],
            owner=row["owner"],
            key=row["key"],
            value_json=row["value"],
            version=row["version"],
            run_id=row["run_id"],
            seq=row["seq"],
            updated_at=self._time(row["updated_at"]),
        )

    def inbox_item(self, row: Row) -> InboxItem:
        return InboxItem(
            row["item_id"],
            row["run_id"],
            row["skill"],
            row["outcome"],
            row["level"],
            row["summary"],
            self._time(row["created_at"]),
            self.time_in(row["read_at"]),
            mark=row["mark"],
            notified=row["notify_event_id"] is not None,
        )

    def launch(self, row: Row) -> Launch:
        return Launch(
            row["run_id"],
            row["skill"],
            row["budget_usd"],
            row["via"],
            self.time_in(row["launched_at"]),
        )

    def lease(self, row: Row) -> NamedLease:
        return NamedLease(
            name=row["name"],
            holder=row["holder"],
            acquired_at=self._time(row["acquired_at"]),
            renewed_at=self._time(row["renewed_at"]),
            expires_at=self._time(row["expires_at"]),
        )

    @staticmethod
    def queue(row: Row) -> QueueSpec:
        return QueueSpec(
            row["name"],
            row["concurrency"],
            row["per_key_concurrency"],
            row["rate_limit"],
            row["rate_period_s"],
            bool(row["rate_limit_per_key"]),
        )

    @staticmethod
    def pool(row: Row) -> PoolSpec:
        return PoolSpec(row["name"], row["strategy"], row["threshold"])

    def schedule(self, row: Row) -> ScheduleInfo:
        t = self.time_in
        spec = ScheduleSpec(
            name=row["name"],
            workflow=row["workflow"],
            cron=row["cron"],
            timezone=row["timezone"],
            input_json=row["input"],
            overlap=row["overlap"],
            catchup=row["catchup"],
            jitter_s=float(row["jitter_s"]),
            queue=row["queue"],
        )
        return ScheduleInfo(
            spec,
            paused=bool(row["paused"]),
            next_fire_at=t(row["next_fire_at"]),
            last_tick_at=t(row["last_tick_at"]),
            last_run_id=row["last_run_id"],
            buffered_at=t(row["buffered_at"]),
            created_at=t(row["created_at"]),
            updated_at=t(row["updated_at"]),
        )

    def schedule_params(self, info: ScheduleInfo) -> dict[str, Any]:
        """Every column of a schedule, for ``insert_schedule`` and ``redefine_schedule``."""
        o, s = self.time_out, info.spec
        return {
            "name": s.name,
            "workflow": s.workflow,
            "cron": s.cron,
            "timezone": s.timezone,
            "input": s.input_json,
            "overlap": s.overlap,
            "catchup": s.catchup,
            "jitter_s": float(s.jitter_s),
            "queue": s.queue,
            "paused": info.paused,
            "next_fire_at": o(info.next_fire_at),
            "last_tick_at": o(info.last_tick_at),
            "last_run_id": info.last_run_id,
            "buffered_at": o(info.buffered_at),
            "created_at": o(info.created_at),
            "updated_at": o(info.updated_at),
        }

    def queue_stats(self, rows: Iterable[Row], now: datetime, window_s: float) -> list[QueueStats]:
        """Assemble ``queue_stats`` rows (queue, state, n, oldest_due) into one record per queue;
        ``state`` is ``finished_<state>`` for runs finished within the window."""
        counts: dict[str, dict[str, int]] = {}
        oldest: dict[str, datetime] = {}
        for r in rows:
            counts.setdefault(r["queue"], {})[r["state"]] = r["n"]
            due = self.time_in(r["oldest_due"])
            if due is not None:
                oldest[r["queue"]] = due
        stats = []
        for queue in sorted(counts):
            c, due = counts[queue], oldest.get(queue)
            stats.append(
                QueueStats(
                    queue=queue,
                    pending=c.get("pending", 0),
                    running=c.get("running", 0),
                    waiting=c.get("waiting", 0),
                    sleeping=c.get("sleeping", 0),
                    paused=c.get("paused", 0),
                    completed_recently=c.get("finished_completed", 0),
                    failed_recently=c.get("finished_failed", 0),
                    window_s=window_s,
                    oldest_pending_age_s=(now - due).total_seconds() if due is not None else None,
                )
            )
        return stats

    # --- records to parameters ---------------------------------------------------------------

    def new_run(
        self,
        run: NewRun,
        now: datetime,
        *,
        owner: str | None,
        lease_s: float,
        state_json: str | None,
        assigned_worker: str | None,
    ) -> dict[str, Any]:
        """Parameters of ``create_run``: pending (due at ``start_at`` or now), or already running
        under ``owner``'s first lease."""
        t, routing = self.time_out, run.routing
        return {
            "run_id": run.run_id,
            "workflow": run.workflow,
            "version": run.version,
            "state": "running" if owner else "pending",
            "input": run.input_json,
            "queue": run.queue,
            "priority": run.priority,
            "wake_at": None if owner else t(run.start_at or now),
            "deadline_at": t(run.deadline_at),
            "parent_run_id": run.parent_run_id,
            "parent_seq": run.parent_seq,
            "forked_from": run.forked_from,
            "retry_of": run.retry_of,
            "trace_context": run.trace_context,
            "now": t(now),
            "lease_owner": owner,
            "lease_expires_at": t(now + timedelta(seconds=lease_s)) if owner else None,
            "lease_token": 1 if owner else 0,
            "started_at": t(now) if owner else None,
            "state_data": state_json,
            "dedup_key": routing.dedup_key,
            "concurrency_key": routing.concurrency_key,
            "labels": dump_labels(routing.labels),
            "target_worker": routing.target_worker,
            "pool": routing.pool,
            "assigned_worker": assigned_worker,
        }

    def run_columns(self, run: Run) -> dict[str, Any]:
        """Every column of a stored run (to copy it into another store as it is)."""
        t = self.time_out
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
            "wake_at": t(run.wake_at),
            "lease_owner": run.lease_owner,
            "lease_expires_at": t(run.lease_expires_at),
            "lease_token": run.lease_token,
            "recoveries": run.recoveries,
            "parent_run_id": run.parent_run_id,
            "parent_seq": run.parent_seq,
            "deadline_at": t(run.deadline_at),
            "state_data": run.state_json,
            "forked_from": run.forked_from,
            "created_at": t(run.created_at),
            "updated_at": t(run.updated_at),
            "started_at": t(run.started_at),
            "finished_at": t(run.finished_at),
            "dedup_key": run.routing.dedup_key,
            "concurrency_key": run.routing.concurrency_key,
            "labels": dump_labels(run.routing.labels),
            "target_worker": run.routing.target_worker,
            "pool": run.routing.pool,
            "assigned_worker": run.assigned_worker,
            "retry_of": run.retry_of,
            "trace_context": run.trace_context,
        }

    def step_params(self, run_id: str, token: int, record: StepRecord) -> dict[str, Any]:
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
            "started_at": self.time_out(record.started_at),
            "finished_at": self.time_out(record.finished_at),
            "failed_attempt": None,  # record_step's event of a failed attempt (scripts.steps)
        }

    def worker_params(self, worker: WorkerInfo, now: datetime) -> dict[str, Any]:
        return {
            "worker_id": worker.worker_id,
            "host": worker.host,
            "pid": worker.pid,
            "process_start": worker.process_start,
            "queues": self.names_out(worker.queues),
            "concurrency": worker.concurrency,
            "version": worker.version,
            "labels": dump_labels(worker.labels),
            "pool": worker.pool,
            "load": worker.load,
            "lease_s": worker.lease_s,
            "now": self.time_out(now),
        }
