"""Commands that look at runs without changing them: runs, show, timeline, events."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from stepstone.cli.output import Output
from stepstone.cli.render import Screen, fmt_ms, fmt_time, one_line, state_cell
from stepstone.cli.session import Session
from stepstone.client.shapes import (
    description_json,
    event_json,
    run_json,
    step_duration_s,
    timeline_json,
    waiting_for,
    waits_json,
)
from stepstone.client.views import RunDescription, TimelineEntry, describe_wait
from stepstone.core.model import ErrorInfo, EventRecord, Run, RunState

__all__ = ["cmd_events", "cmd_runs", "cmd_show", "cmd_timeline"]


def _error_line(error: ErrorInfo | None, limit: int = 80) -> str:
    return one_line(f"{error.type}: {error.message}", limit) if error is not None else ""


def _situation(run: Run) -> str:
    """The runs-table summary: what a run waits for, why it stopped, or a pending control."""
    if run.control is not None and not run.is_finished:
        return f"{run.control} requested"
    if run.state in (RunState.WAITING, RunState.SLEEPING):
        return ", ".join(waiting_for(run))
    if run.state in (RunState.FAILED, RunState.BLOCKED, RunState.CANCELLED):
        return _error_line(run.error, 60) or (run.control_reason or "")
    if run.state is RunState.RUNNING and run.lease_owner:
        return f"on {run.lease_owner}"
    return ""


def cmd_runs(ns: argparse.Namespace, session: Session) -> Output:
    with session.client() as client:
        runs = client.list(
            state=ns.state or None,
            workflow=ns.workflow,
            queue=ns.queue,
            limit=ns.limit,
            before_run_id=ns.before,
        )

    def human(screen: Screen) -> None:
        if not runs:
            screen.line("no runs")
            return
        # one time column (the last change), so the table fits 80 columns with every column
        rows = [
            (r.run_id, r.workflow, state_cell(r.state.value), fmt_time(r.updated_at), _situation(r))
            for r in runs
        ]
        columns = ("run", "workflow", "state", "updated", "waiting for / error")
        screen.table(columns, rows, no_wrap=("run", "state", "updated"), min_width={"workflow": 10})

    return Output([run_json(r, session.db) for r in runs], human)


def _wait_lines(run: Run, db: str | None) -> str:
    """Each wait on its own line: what, until when, the payload schema and how to answer."""
    lines = []
    for w in waits_json(run, db):
        line = describe_wait(next(x for x in run.waits if x.seq == w["seq"]))
        if w["schema"] is not None:
            line += f"\n  schema: {json.dumps(w['schema'], ensure_ascii=False)}"
        if w["resume_command"]:
            line += f"\n  answer: {w['resume_command']}"
        lines.append(line)
    return "\n".join(lines)


def _show(screen: Screen, desc: RunDescription, db: str | None = None) -> None:
    run = desc.run
    took = (
        fmt_ms((run.finished_at - run.started_at).total_seconds())
        if run.finished_at and run.started_at
        else ""
    )
    lease = f"{run.lease_owner} until {fmt_time(run.lease_expires_at)}" if run.lease_owner else ""
    control = f"{run.control} requested" if run.control and not run.is_finished else ""
    if control and run.control_reason:
        control += f" ({run.control_reason})"
    parent = f"{run.parent_run_id} (step #{run.parent_seq})" if run.parent_run_id else ""
    pending = ", ".join(
        f"{s.name!r} (#{s.signal_id}, received {fmt_time(s.created_at)})"
        for s in desc.pending_signals
    )
    rejected = "; ".join(
        f"{s.name!r} (#{s.signal_id}, received {fmt_time(s.created_at)}): {s.problem}"
        for s in desc.rejected_signals
    )
    error = f"{run.error.type}: {run.error.message}" if run.error else ""
    screen.fields(
        [
            ("run", run.run_id),
            ("workflow", f"{run.workflow} (version {run.version})"),
            ("state", run.state.value),
            ("queue", f"{run.queue} (priority {run.priority})"),
            ("created", fmt_time(run.created_at)),
            ("started", fmt_time(run.started_at)),
            ("updated", fmt_time(run.updated_at)),
            ("finished", fmt_time(run.finished_at)),
            ("took", took),
            ("not before", fmt_time(run.wake_at) if _delayed(run) else ""),
            ("deadline", fmt_time(run.deadline_at)),
            ("recoveries", str(run.recoveries) if run.recoveries else ""),
            ("lease", lease),
            ("control", control),
            ("forked from", run.forked_from or ""),
            ("parent", parent),
            ("waiting for", _wait_lines(run, db)),
            ("pending signals", pending),
            ("rejected signals", rejected),
            ("input", run.input_json),
            ("output", run.output_json or ""),
            ("ctx.state", json.dumps(desc.state, ensure_ascii=False) if desc.state else ""),
            ("error", error),
            ("traceback", (run.error.traceback or "").rstrip() if run.error else ""),
        ]
    )
    if desc.children:
        screen.line()
        screen.table(
            ("child run", "workflow", "state"),
            [(c.run_id, c.workflow, c.state.value) for c in desc.children],
            no_wrap=("child run",),
        )
    if desc.failures:
        screen.line()
        screen.table(
            ("failed at", "seq", "step", "attempt", "error"),
            [
                (
                    fmt_time(f.at),
                    "" if f.seq is None else str(f.seq),
                    f.step or "(the run)",
                    "" if f.attempt is None else str(f.attempt),
                    _error_line(f.error),
                )
                for f in desc.failures
            ],
            no_wrap=("failed at", "seq"),
        )
    screen.line()
    if not desc.steps:
        screen.line("no steps recorded")
        return
    rows = [
        (
            str(s.seq),
            s.kind.value,
            s.name,
            s.status.value,
            str(s.attempts),
            fmt_ms(step_duration_s(s)),
            _error_line(s.error),
        )
        for s in desc.steps
    ]
    columns = ("seq", "kind", "name", "status", "attempts", "duration", "error")
    screen.table(columns, rows, no_wrap=("seq", "duration"))


def _delayed(run: Run) -> bool:
    """A pending run whose start (or retry) lies in the future."""
    return (
        run.state is RunState.PENDING
        and run.wake_at is not None
        and run.wake_at > datetime.now(UTC)
    )


def cmd_show(ns: argparse.Namespace, session: Session) -> Output:
    with session.client() as client:
        desc = client.describe(ns.run_id)
    return Output(
        description_json(desc, session.db), lambda screen: _show(screen, desc, session.db)
    )


def cmd_timeline(ns: argparse.Namespace, session: Session) -> Output:
    with session.client() as client:
        entries = client.timeline(ns.run_id)

    def human(screen: Screen) -> None:
        rows = [_timeline_row(e) for e in entries]
        screen.table(("at", "what", "seq", "detail", "duration"), rows, no_wrap=("at",))

    return Output([timeline_json(e) for e in entries], human)


def _timeline_row(entry: TimelineEntry) -> tuple[str, str, str, str, str]:
    seq = str(entry.seq) if entry.seq is not None else ""
    return (fmt_time(entry.at), entry.kind, seq, entry.detail, fmt_ms(entry.duration_s))


def _event_line(event: EventRecord) -> str:
    return f"{fmt_time(event.created_at)}  {event.kind}  {event.data_json or ''}".rstrip()


def cmd_events(ns: argparse.Namespace, session: Session) -> Output:
    """Progress events, one line each. With ``--follow --json`` every event is printed at once as
    its own JSON line (no envelope), since the stream may never end."""
    screen = session.screen
    with session.client() as client:
        events = client.events(ns.run_id, follow=ns.follow, include_system=ns.system)
        if ns.follow:
            for event in events:
                if session.json:
                    screen.line(json.dumps(event_json(event), ensure_ascii=False))
                else:
                    screen.line(_event_line(event))
            return Output(streamed=True)
        collected = list(events)

    def human(screen: Screen) -> None:
        for event in collected:
            screen.line(_event_line(event))

    return Output([event_json(e) for e in collected], human)
