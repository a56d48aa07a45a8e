"""``stepstone schedule``: add, list, pause, resume, delete, trigger and backfill cron schedules.

Workers fire the schedules of the workflows they serve; these commands only change the store.
``add``, ``trigger`` and ``backfill`` load the app (``--app``) to check the workflow and its
input, and to stamp runs with its code version. Every check happens before anything is written.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from stepstone.cli.app import load_app
from stepstone.cli.inputs import parse_workflow_input
from stepstone.cli.output import Output
from stepstone.cli.render import Screen, fmt_time
from stepstone.cli.session import Session
from stepstone.client.shapes import schedule_json
from stepstone.core.definitions import Registry
from stepstone.core.schedules import FiredTick, Schedule
from stepstone.errors import InvalidArgument, UsageError

__all__ = ["cmd_schedule"]


def _fired_json(f: FiredTick) -> dict[str, Any]:
    return {"tick": f.tick.isoformat(), "outcome": f.outcome, "run_id": f.run_id}


def cmd_schedule(ns: argparse.Namespace, session: Session) -> Output:
    action = ns.schedule_command
    if action in ("add", "trigger", "backfill"):
        if not ns.app:
            raise UsageError(
                f"--app MODULE is required (or set STEPSTONE_APP) "
                f"(see `stepstone schedule {action} --help`)"
            )
        registry = load_app(ns.app)
        if action == "add":
            return _add(ns, session, registry)
        if action == "trigger":
            return _trigger(ns, session, registry)
        return _backfill(ns, session, registry)
    if action == "list":
        return _list(session)
    with session.client() as client:
        if action == "delete":
            client.delete_schedule(ns.name)
            return Output(
                {"name": ns.name, "deleted": True},
                lambda screen: screen.line(f"schedule {ns.name} deleted"),
            )
        info = (
            client.pause_schedule(ns.name) if action == "pause" else client.resume_schedule(ns.name)
        )
    word = "paused" if info.paused else f"resumed; next tick {fmt_time(info.next_fire_at)}"
    return Output(schedule_json(info), lambda screen: screen.line(f"schedule {ns.name} {word}"))


def _add(ns: argparse.Namespace, session: Session, registry: Registry) -> Output:
    wf = registry.get(ns.workflow)  # WorkflowNotFound (exit 3) before anything is stored
    args, kwargs = parse_workflow_input(wf, ns.input, [])
    schedule = Schedule(
        ns.name,
        wf,
        ns.cron,
        timezone=ns.tz,
        args=args,
        kwargs=kwargs,
        overlap=ns.overlap,
        catchup=ns.catchup,
        jitter_s=ns.jitter_s,
        queue=ns.queue,
    )
    with session.client(registry, create=True) as client:
        info = client.add_schedule(schedule, replace=ns.replace)

    def human(screen: Screen) -> None:
        s = info.spec
        screen.line(
            f"schedule {s.name}: {s.workflow} at {s.cron!r} ({s.timezone}); "
            f"next tick {fmt_time(info.next_fire_at)}"
        )

    return Output(schedule_json(info), human)


def _list(session: Session) -> Output:
    with session.client() as client:
        schedules = client.schedules()

    def human(screen: Screen) -> None:
        if not schedules:
            screen.line("no schedules")
            return
        rows = [
            (
                i.name,
                i.spec.workflow,
                i.spec.cron,
                i.spec.timezone,
                f"{i.spec.overlap}/{i.spec.catchup}",
                "paused" if i.paused else fmt_time(i.next_fire_at),
                i.last_run_id or "",
            )
            for i in schedules
        ]
        columns = ("schedule", "workflow", "cron", "zone", "overlap/catchup", "next", "last run")
        screen.table(columns, rows, no_wrap=("schedule", "next", "last run"))

    return Output([schedule_json(i) for i in schedules], human)


def _trigger(ns: argparse.Namespace, session: Session, registry: Registry) -> Output:
    with session.client(registry) as client:
        run_id = client.trigger_schedule(ns.name)
    return Output({"name": ns.name, "run_id": run_id}, lambda screen: screen.line(run_id))


def _backfill(ns: argparse.Namespace, session: Session, registry: Registry) -> Output:
    with session.client(registry) as client:
        info = client.get_schedule(ns.name)
        start = _when("--from", ns.start, info.spec.timezone)
        end = _when("--to", ns.end, info.spec.timezone)
        fired = client.backfill_schedule(ns.name, start, end)
    started = sum(1 for f in fired if f.outcome == "started")

    def human(screen: Screen) -> None:
        for f in fired:
            screen.line(f"{f.tick.isoformat()} {f.outcome} {f.run_id}")
        screen.line(f"{started} run(s) started, {len(fired) - started} tick(s) already had one")

    return Output({"name": ns.name, "ticks": [_fired_json(f) for f in fired]}, human)


def _when(flag: str, text: str, zone: str) -> datetime:
    """An ISO 8601 time; without an offset it is a local time of the schedule's zone."""
    from zoneinfo import ZoneInfo

    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(
            f"{flag} {text!r}: expected an ISO 8601 time such as 2026-03-01T09:00 or "
            "2026-03-01T09:00+01:00"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo(zone))
