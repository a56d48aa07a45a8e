"""Commands that start and steer runs: start, run, result, signal, cancel, pause, unpause, retry,
fork. Each goes through the client and returns an :class:`Output`."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from stepstone.cli import cpf, specs
from stepstone.cli.app import Target, load_app, load_target
from stepstone.cli.inputs import (
    parse_json_flag,
    parse_labels,
    parse_patches,
    parse_workflow_input,
)
from stepstone.cli.output import Output
from stepstone.cli.progress import RunWatch
from stepstone.cli.render import Screen, fmt_time
from stepstone.cli.session import Session
from stepstone.cli.stops import stop_output
from stepstone.client import Client, RunHandle
from stepstone.client.shapes import run_json, waiting_for
from stepstone.core.definitions import Workflow
from stepstone.core.ids import new_run_id
from stepstone.core.model import Run, RunState
from stepstone.errors import InvalidArgument, StillWaiting, WaitTimeout

__all__ = [
    "cmd_cancel",
    "cmd_fork",
    "cmd_pause",
    "cmd_result",
    "cmd_retry",
    "cmd_run",
    "cmd_signal",
    "cmd_start",
    "cmd_unpause",
]


def _result_output(client: Client, run_id: str, timeout_s: float | None) -> Output:
    """Wait for the run's result; RunFailed / WaitTimeout propagate to the exit-code table."""
    try:
        client.result(run_id, timeout_s=timeout_s)
    except WaitTimeout:
        run = client.get(run_id)
        raise StillWaiting(run_id, run.state.value, _doing(run), timeout_s) from None
    run = client.get(run_id)
    value = json.loads(run.output_json) if run.output_json else None
    data = {"run_id": run_id, "state": run.state.value, "result": value}
    return Output(data, lambda screen: screen.json(value))


def _doing(run: Run) -> str:
    """What an unfinished run is up to, for a timed-out wait."""
    if run.state is RunState.RUNNING:
        return f"executing on {run.lease_owner}" if run.lease_owner else "executing"
    if run.state is RunState.PENDING:
        if run.wake_at is not None and run.wake_at > datetime.now(UTC):
            return f"starts at {fmt_time(run.wake_at)}"
        return f"no worker has claimed it yet (queue {run.queue})"
    if run.state is RunState.PAUSED:
        return "unpause it to continue"
    return ", ".join(waiting_for(run)) or (run.error.message if run.error else run.state.value)


def _workflow_input(
    wf: Workflow[Any, Any], input_text: str | None, arg_texts: list[str]
) -> tuple[list[Any], dict[str, Any]]:
    """The arguments of a run: a YAML workflow takes the ``--input`` object as its one
    ``inputs`` argument; a Python workflow takes ``--input``/``--arg`` as its parameters."""
    if not specs.is_spec_workflow(wf):
        return parse_workflow_input(wf, input_text, arg_texts)
    if arg_texts:
        raise InvalidArgument("--arg: a YAML workflow takes its inputs as one --input object")
    value = parse_json_flag("--input", input_text) if input_text is not None else None
    if value is not None and not isinstance(value, dict):
        raise InvalidArgument(f"--input: expected a JSON object, got {type(value).__name__}")
    return [], {"inputs": value}


def cmd_start(ns: argparse.Namespace, session: Session) -> Output:
    target = load_target(ns.app, ns.file, ns.workflow, "start")
    wf = target.workflow
    args, kwargs = _workflow_input(wf, ns.input, ns.arg)
    with session.client(target.registry, create=True) as client:
        handle: RunHandle[Any] = client.start(
            wf.name,
            *args,
            run_id=ns.run_id,
            queue=ns.queue,
            delay_s=ns.delay_s,
            priority=ns.priority,
            dedup_key=ns.dedup_key,
            on_conflict=ns.on_conflict,
            concurrency_key=ns.concurrency_key,
            labels=parse_labels("--label", ns.label) or None,
            worker_id=ns.worker_id,
            pool=ns.pool,
            **kwargs,
        )
        if ns.wait:
            watch = RunWatch(session, client, handle.run_id, app=ns.app)
            try:
                with watch:
                    if ns.until == "finished":
                        return _result_output(client, handle.run_id, ns.timeout_s)
                    return _next_stop(client, handle.run_id, ns.timeout_s, session, target)
            except KeyboardInterrupt:
                watch.interrupted()
                raise
        run = client.get(handle.run_id)
    return Output(run_json(run), lambda screen: screen.line(run.run_id))


def _next_stop(
    client: Client, run_id: str, timeout_s: float | None, session: Session, target: Target
) -> Output:
    try:
        run = client.next_stop(run_id, timeout_s=timeout_s)
    except WaitTimeout:
        run = client.get(run_id)
        raise StillWaiting(run_id, run.state.value, _doing(run), timeout_s) from None
    return stop_output(client, run, session, target.flags)


def cmd_run(ns: argparse.Namespace, session: Session) -> Output:
    """Execute here; ``--run-id`` of an existing run resumes it (its stored input is used).
    By default it stops at the run's first signal wait (exit 40, the waiting envelope)."""
    target = load_target(ns.app, ns.file, ns.workflow, "run")
    wf = target.workflow
    args, kwargs = _workflow_input(wf, ns.input, ns.arg)
    run_id = ns.run_id or new_run_id()
    with session.client(target.registry, create=True) as client:
        watch = RunWatch(session, client, run_id, app=ns.app, here=True)
        try:
            with watch:
                if ns.until == "finished":
                    client.run(wf.name, *args, run_id=run_id, **kwargs)
                else:
                    run = client.run_until_wait(wf.name, *args, run_id=run_id, **kwargs)
                    return stop_output(client, run, session, target.flags)
        except KeyboardInterrupt:
            watch.interrupted()
            raise
        return _result_output(client, run_id, None)


def cmd_result(ns: argparse.Namespace, session: Session) -> Output:
    registry = load_app(ns.app) if ns.app else None
    with session.client(registry) as client:
        return _result_output(client, ns.run_id, ns.timeout_s)


def cmd_signal(ns: argparse.Namespace, session: Session) -> Output:
    payload = parse_json_flag("--data", ns.data) if ns.data is not None else None
    registry = load_app(ns.app) if ns.app else None
    with session.client(registry) as client:
        client.signal(ns.run_id, ns.name, payload, buffer=ns.buffer)
    data = {"run_id": ns.run_id, "name": ns.name, "payload": payload, "buffered": ns.buffer}
    return Output(data, lambda s: s.line(f"sent signal {ns.name!r} to run {ns.run_id}"))


def _changed(run: Run, done: str) -> Output:
    def human(screen: Screen) -> None:
        if run.control is not None and not run.is_finished:
            screen.line(
                f"run {run.run_id}: {run.control} requested; it takes effect at the run's next "
                f"step boundary (now {run.state.value})"
            )
        else:
            screen.line(f"run {run.run_id} {done}: now {run.state.value}")

    return Output(run_json(run), human)


def cmd_cancel(ns: argparse.Namespace, session: Session) -> Output:
    with session.client() as client:
        run = client.cancel(ns.run_id, ns.reason)
    changed = _changed(run, "cancelled")
    envelope = cpf.run_envelope("cancel", run, [], session.db, query=True)
    return Output(changed.data, changed.human, cpf=envelope)


def cmd_pause(ns: argparse.Namespace, session: Session) -> Output:
    with session.client() as client:
        return _changed(client.pause(ns.run_id), "paused")


def cmd_unpause(ns: argparse.Namespace, session: Session) -> Output:
    with session.client() as client:
        return _changed(client.unpause(ns.run_id), "unpaused")


def cmd_retry(ns: argparse.Namespace, session: Session) -> Output:
    """Continue a failed run keeping its steps, or (``--fresh``) start it anew; prints the id of
    the run that will execute."""
    registry = load_app(ns.app) if getattr(ns, "app", None) else None
    with session.client(registry) as client:
        if ns.fresh:
            run = client.retry(ns.run_id, fresh=True)
            return Output(run_json(run), lambda screen: screen.line(run.run_id))
        return _changed(client.retry(ns.run_id), "retried (completed steps are kept)")


def cmd_fork(ns: argparse.Namespace, session: Session) -> Output:
    patch: dict[int, Any] = parse_patches(ns.patch)
    with session.client() as client:
        run = client.fork(ns.run_id, ns.from_seq, patch=patch, new_run_id=ns.new_run_id)
    return Output(run_json(run), lambda screen: screen.line(run.run_id))
