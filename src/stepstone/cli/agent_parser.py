"""The agent-facing part of the ``stepstone`` parser: ``RUN``/``--run-id``, ``-f FILE``,
``--until``, ``--format cpf``, and the commands resume, status, inspect, logs, delete, flows,
init, guide and validate (checkpointflow's command-line contract)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from stepstone.errors import UsageError

__all__ = [
    "FORMATS",
    "add_agent_commands",
    "file_option",
    "format_option",
    "run_arg",
    "settle_run_id",
    "until_option",
    "workflow_args",
]

FORMATS = ("stepstone", "cpf")

Command = Callable[[str, str], argparse.ArgumentParser]


def run_arg(parser: argparse.ArgumentParser) -> None:
    """The run a command acts on: ``RUN`` or, as checkpointflow spells it, ``--run-id RUN``."""
    parser.add_argument("run_id", metavar="RUN", nargs="?", help="the run's id (or --run-id)")
    parser.add_argument(
        "--run-id",
        dest="run_id_flag",
        metavar="RUN",
        help="the run's id, as a flag (the same as RUN)",
    )


def settle_run_id(ns: argparse.Namespace) -> None:
    """``ns.run_id`` from ``RUN`` or ``--run-id`` (one of them, or both the same)."""
    if not hasattr(ns, "run_id_flag"):
        return
    positional, flag = ns.run_id, ns.run_id_flag
    if positional is not None and flag is not None and positional != flag:
        raise UsageError(f"RUN {positional!r} and --run-id {flag!r} name different runs")
    if positional is None and flag is None:
        raise UsageError(
            f"the run is required: RUN or --run-id RUN (see `stepstone {ns.command} --help`)"
        )
    ns.run_id = positional if positional is not None else flag


def file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--file",
        metavar="FILE",
        help="a YAML workflow file (stepstone/v1 or checkpointflow/v1) instead of --app: the "
        "workflow is the file's workflow.id",
    )


def workflow_args(parser: argparse.ArgumentParser) -> None:
    """``WORKFLOW`` (with ``--app``) or ``-f FILE``."""
    parser.add_argument(
        "workflow",
        metavar="WORKFLOW",
        nargs="?",
        help="the workflow's name in the app (not with -f: the file names it)",
    )
    file_option(parser)


def until_option(parser: argparse.ArgumentParser, prefix: str) -> None:
    parser.add_argument(
        "--until",
        choices=("wait", "finished"),
        default="wait",
        help=f"{prefix}stop when the run waits for a signal, itself or through a child run "
        "(wait, the default: exit 40 with what it waits for and the resume command; sleeps "
        "and timers are waited through) or only when it finishes (finished)",
    )


def format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="stepstone",
        help="cpf: print checkpointflow's run envelope (schema_version checkpointflow-run/v1) "
        "and exit with checkpointflow's codes: 0 ok, 10 validation, 20 runtime, 30 step "
        "failed, 40 waiting, 50 cancelled, 60 persistence, 70 concurrency, 90 internal",
    )


def _input_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        metavar="JSON|@FILE|-",
        help="the event's payload as JSON; @FILE reads it from a file, - from stdin (default: "
        "null)",
    )


def add_agent_commands(command: Command, app_option: Callable[..., None]) -> None:
    """Add the agent-facing commands through the parser's ``command(name, help)`` factory."""
    p = command(
        "resume",
        "answer the signal wait a run stopped at (its own or a child run's) and continue it "
        "here to its next wait or its end; exits like `run` (0, 7, 40). The payload is checked "
        "against the wait's schema first (exit 4, nothing stored); of concurrent resumes of "
        "one wait exactly one continues the run, the others exit 70 (already resumed). A YAML "
        "run finds its file by itself; a Python workflow's run needs --app",
    )
    run_arg(p)
    p.add_argument("--event", metavar="NAME", required=True, help="the event (signal) name")
    _input_flag(p)
    app_option(p, required=False)
    file_option(p)
    until_option(p, "")
    format_option(p)

    p = command(
        "status",
        "a run's state in one line; the exit code is the run's: 0 completed, 40 not finished "
        "(waiting, or still pending/running/sleeping/paused), 7 failed, cancelled or blocked",
    )
    run_arg(p)
    format_option(p)

    p = command(
        "inspect",
        "everything about a run: the run, each step with its output and error, its signals, "
        "events, children and what it waits for (exit code as for status)",
    )
    run_arg(p)
    format_option(p)

    p = command(
        "logs",
        "a run's steps with their outcomes; for YAML cli steps also their stdout and stderr",
    )
    run_arg(p)

    p = command(
        "delete",
        "delete a finished run (completed, failed or cancelled) with its steps, signals and "
        "events; a run not finished is refused (exit 4)",
    )
    run_arg(p)

    p = command(
        "flows",
        "list the YAML workflows in ./.stepstone/flows and ~/.stepstone/flows, one id per line",
    )
    p.add_argument(
        "--detail",
        metavar="ID",
        help="show one workflow: id, name, version, description and path",
    )

    p = command("init", "write a small valid stepstone/v1 workflow file to start from")
    p.add_argument(
        "--file", metavar="PATH", default="workflow.yaml", help="where (default: workflow.yaml)"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing file")

    command("guide", "print the guide to stepstone's command line and YAML workflows")

    p = command("validate", "check a YAML workflow file without running it")
    p.add_argument("-f", "--file", metavar="FILE", required=True, help="the YAML workflow file")
    format_option(p)
