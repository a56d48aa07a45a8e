"""``stepstone inject`` (steer a live ``ctx.agent`` loop) and ``stepstone replay`` (re-execute a
run's code against its journal, writing nothing, and report the first divergence)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable

from stepstone.cli.agent_parser import Command, run_arg
from stepstone.cli.app import load_app
from stepstone.cli.output import Output
from stepstone.cli.render import Screen
from stepstone.cli.session import Session
from stepstone.errors import ReplayDiverged

__all__ = ["add_loop_commands", "cmd_inject", "cmd_replay"]


def add_loop_commands(command: Command, app_option: Callable[..., None]) -> None:
    """Add ``inject`` and ``replay`` through the parser's ``command(name, help)`` factory."""
    p = command(
        "inject",
        "steer a run's ctx.agent loop: NOTE joins its conversation at the next model turn "
        "(recorded, so a replay sees it at the same turn)",
    )
    run_arg(p)
    p.add_argument("note", metavar="NOTE", help="the text the model reads (as a user message)")
    p = command(
        "replay",
        "re-execute a run's workflow code against its journal (recorded model replies are the "
        "cassette; nothing is written) and report the first divergence: exit 0 when it "
        "matches, 11 with the step, seq, expected and got when it does not",
    )
    run_arg(p)
    p.add_argument(
        "--from-seq",
        type=int,
        metavar="N",
        help="also run the ordinary steps from seq N on again (never model calls) and compare "
        "their results with the recorded ones",
    )
    app_option(p, required=True)


def cmd_inject(ns: argparse.Namespace, session: Session) -> Output:
    with session.client() as client:
        client.inject(ns.run_id, ns.note)
    data = {"run_id": ns.run_id, "note": ns.note}
    return Output(data, lambda s: s.line(f"note queued for run {ns.run_id}'s next model turn"))


def cmd_replay(ns: argparse.Namespace, session: Session) -> Output:
    with session.client(load_app(ns.app)) as client:
        report = client.replay(ns.run_id, from_seq=ns.from_seq)
    data = dataclasses.asdict(report)
    again = f", {report.reexecuted} step(s) run again" if ns.from_seq is not None else ""

    def human(screen: Screen) -> None:
        screen.line(f"run {report.run_id}: {report.replayed} journal entries replayed{again}")
        if report.ok:
            screen.line("the code matches the journal")

    output = Output(data, human)
    diverged = report.divergence
    if diverged is not None:
        raise ReplayDiverged(
            report.run_id, diverged.seq, diverged.step, diverged.expected, diverged.got, output
        )
    return output
