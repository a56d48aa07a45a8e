"""The argument parser of ``stepstone``: every command, flag and the environment variable behind it.

Global options (``--db``, ``--json``, ``-v``) are accepted before and after the command name. A
usage mistake raises :class:`UsageError` instead of exiting, so ``main`` reports it like any error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, cast

from stepstone import __version__
from stepstone.cli.agent_parser import (
    add_agent_commands,
    file_option,
    format_option,
    run_arg,
    settle_run_id,
    until_option,
    workflow_args,
)
from stepstone.cli.desk_parser import add_desk_commands
from stepstone.cli.loops import add_loop_commands
from stepstone.cli.memory import add_memory_commands
from stepstone.cli.serve_parser import add_serve_commands
from stepstone.core.bounds import INT_MAX, INT_MIN, MAX_DURATION_S
from stepstone.core.frozen import frozen
from stepstone.errors import InvalidArgument, UsageError

__all__ = ["ENV_APP", "ENV_DB", "BadValue", "build_parser", "check_values"]

ENV_DB = "STEPSTONE_DB"
ENV_APP = "STEPSTONE_APP"

_STATES = (
    "pending",
    "running",
    "sleeping",
    "waiting",
    "paused",
    "blocked",
    "completed",
    "failed",
    "cancelled",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)", self.format_usage())

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse's formatter imports shutil for the terminal width (and shutil imports bz2,
        # lzma and zlib): ~1% of a `stepstone run -f`, which builds a formatter per argument.
        make: Any = self.formatter_class
        formatter: argparse.HelpFormatter = make(prog=self.prog, width=_terminal_width())
        return formatter


def _terminal_width() -> int:
    """What ``shutil.get_terminal_size().columns - 2`` gives argparse, without shutil."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns if columns > 0 else 80) - 2


@frozen
class BadValue:
    """A flag value that parsed but is out of range or malformed: argparse would make it a usage
    error (exit 2); :func:`check_values` turns it into InvalidArgument (exit 4) naming the flag."""

    text: str
    problem: str


def _whole(text: str, lo: int, hi: int) -> int | BadValue:
    try:
        value = int(text)
    except ValueError:
        return BadValue(text, "expected a whole number")
    if not lo <= value <= hi:
        return BadValue(text, f"must be between {lo} and {hi}")
    return value


def _positive_int(text: str) -> int | BadValue:
    return _whole(text, 1, INT_MAX)


def _nonnegative_int(text: str) -> int | BadValue:
    return _whole(text, 0, INT_MAX)


def _priority(text: str) -> int | BadValue:
    return _whole(text, INT_MIN, INT_MAX)


def _seconds(text: str) -> float | BadValue:
    try:
        value = float(text)
    except ValueError:
        return BadValue(text, "expected a number of seconds")
    if not 0 <= value <= MAX_DURATION_S:  # also refuses nan
        return BadValue(text, f"must be between 0 and {MAX_DURATION_S:.0f} seconds (100 years)")
    return value


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration(text: str) -> float | BadValue:
    """A duration: seconds, or a number with a unit (``90s``, ``30m``, ``24h``, ``7d``)."""
    unit = _UNITS.get(text[-1:].lower())
    number = text[:-1] if unit is not None else text
    try:
        value = float(number) * (unit or 1.0)
    except ValueError:
        return BadValue(text, "expected a duration such as 24h, 30m, 7d or seconds")
    if not 0 <= value <= MAX_DURATION_S:
        return BadValue(text, f"must be between 0 and {MAX_DURATION_S:.0f} seconds (100 years)")
    return value


def _nonnegative_float(text: str) -> float | BadValue:
    try:
        value = float(text)
    except ValueError:
        return BadValue(text, "expected a number")
    if not 0 <= value < float("inf"):
        return BadValue(text, "must be a number >= 0")
    return value


def _fraction(text: str) -> float | BadValue:
    try:
        value = float(text)
    except ValueError:
        return BadValue(text, "expected a fraction such as 0.8")
    if not 0 < value <= 1:
        return BadValue(text, "must be a fraction in (0, 1]")
    return value


def check_values(ns: argparse.Namespace) -> None:
    """Raise InvalidArgument for the first flag whose value :class:`BadValue` marked; settle
    ``RUN`` against ``--run-id`` (either names the run, not both)."""
    settle_run_id(ns)
    for dest, value in vars(ns).items():
        if isinstance(value, BadValue):
            flag = _FLAG_OF.get(dest, "--" + dest.replace("_", "-"))
            raise InvalidArgument(f"{flag} {value.text!r}: {value.problem}")


_FLAG_OF: dict[str, str] = {}


def _global_options(parent: bool) -> _Parser:
    """The global options; on subcommands their defaults are suppressed so that a value given
    before the command name is not overwritten by the subcommand's default."""

    def default(value: Any) -> Any:
        return value if parent else argparse.SUPPRESS

    holder = _Parser(add_help=False)
    group = holder.add_argument_group("global options")
    group.add_argument(
        "--db",
        metavar="URL",
        default=default(None),
        help=f"the store: sqlite:///path/to.db, a plain file path, or postgresql://... "
        f"(env: {ENV_DB}; default: the embedded ~/.stepstone/stepstone.db, which migrates itself; "
        "any other store must be migrated with `stepstone migrate`)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help='machine output: exactly one envelope on stdout, {"ok": true, "schema_version": 1, '
        '"data": ...} or {"ok": false, "schema_version": 1, "error": {"type", "message", '
        '"exit_code"}} (`events --follow` prints one '
        "JSON object per line instead)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="log to stderr (-v info, -vv debug) and show tracebacks of errors",
    )
    return holder


def _app_option(parser: argparse.ArgumentParser, *, required: bool) -> None:
    need = (
        "required unless -f FILE is given, where offered"
        if required
        else "optional: decodes results and checks declared signal names and types"
    )
    parser.add_argument(
        "--app",
        metavar="MODULE",
        help=f"the module defining your workflows: a module name importable from the current "
        f"directory or PYTHONPATH, a path to a .py file, module:attribute, or a folder of YAML "
        f"workflows ({need}; env: {ENV_APP})",
    )


def _input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        metavar="JSON|@FILE",
        help="the workflow's arguments as JSON: a list (positional) or an object (keyword); "
        "@FILE reads the JSON from a file",
    )
    parser.add_argument(
        "--arg",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="one keyword argument; VALUE is read as JSON unless the parameter is annotated str "
        "or VALUE is not JSON (repeatable)",
    )


def _label_option(parser: argparse.ArgumentParser, meaning: str) -> None:
    parser.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help=f"{meaning} (repeatable)"
    )


def _run_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workflow", metavar="W", help="only runs of this workflow")
    parser.add_argument("--queue", metavar="Q", help="only runs on this queue")
    parser.add_argument(
        "--limit", type=_positive_int, default=50, help="at most this many (default: 50)"
    )


class _Unbuilt:
    """Stands in for the parser of a command this command line does not run: every call is
    accepted and ignored (building all forty parsers costs ~10 ms of a ~150 ms ``run``)."""

    def __getattr__(self, name: str) -> Callable[..., _Unbuilt]:
        return self._ignore

    def _ignore(self, *args: object, **kwargs: object) -> _Unbuilt:
        return self


def build_parser(epilog: str, *, only: str | None = None) -> argparse.ArgumentParser:
    """The ``stepstone`` parser; ``epilog`` documents the exit codes. With ``only``, the
    subcommand of that name is the only one built (for parsing a command line that names it;
    ``stepstone --help`` and its usage errors need them all)."""
    common = _global_options(parent=False)
    parser = _Parser(
        prog="stepstone",
        description="Durable workflows: start, serve, inspect and steer runs.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options(parent=True)],
    )
    parser.add_argument("--version", action="version", version=f"stepstone {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        if only is not None and name != only:
            return cast(argparse.ArgumentParser, _Unbuilt())
        sub: argparse.ArgumentParser = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common],
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return sub

    p = command("worker", "serve runs of the app's workflows until SIGINT/SIGTERM")
    _app_option(p, required=True)
    p.add_argument(
        "--skills",
        action="store_true",
        help="serve every skill of the skills path (launched runs), with --app or instead of it; "
        "skills that fail to load are reported and skipped. Also keeps ~/.stepstone/INBOX.md "
        "up to date and shows a desktop notification for each new inbox item",
    )
    p.add_argument(
        "--queue",
        action="append",
        metavar="Q",
        help="a queue to serve (repeatable; default: default)",
    )
    p.add_argument(
        "--concurrency", type=_positive_int, default=32, help="runs executed at once (default: 32)"
    )
    p.add_argument("--lease-s", type=_seconds, help="lease length in seconds (default: 30)")
    p.add_argument(
        "--poll-s", type=_seconds, help="longest idle wait before looking for work (default: 1)"
    )
    p.add_argument(
        "--grace-s",
        type=_seconds,
        help="on shutdown, how long running steps may finish (default: 10)",
    )
    p.add_argument(
        "--worker-id", metavar="ID", help="this worker's id (default: generated from host and pid)"
    )
    _label_option(
        p,
        "a label this worker offers; runs requiring labels go only to workers offering all of them",
    )
    p.add_argument(
        "--pool",
        metavar="NAME",
        help="the worker pool it belongs to (a Pool of that name in the app sets the strategy)",
    )
    p.add_argument(
        "--credential",
        action="append",
        default=[],
        metavar="NAME=ENVVAR",
        help="a credential steps read with worker_credentials()[NAME], taken from the "
        "environment variable ENVVAR of this process; never stored or logged (repeatable)",
    )
    p.add_argument(
        "--otel",
        action="store_true",
        help="trace runs and steps and measure claims, step latency and queue depth with "
        "OpenTelemetry (pip install 'stepstone[otel]'); exporters per OTEL_TRACES_EXPORTER "
        "and OTEL_METRICS_EXPORTER (otlp, console, none), unless run under "
        "opentelemetry-instrument",
    )

    p = command("start", "start a run for a worker to execute; prints its id")
    workflow_args(p)
    _app_option(p, required=True)
    _input_options(p)
    p.add_argument(
        "--run-id",
        metavar="ID",
        help="the run's id; an id that exists returns that run (idempotency key)",
    )
    p.add_argument("--queue", metavar="Q", help="the queue (default: the workflow's, else default)")
    p.add_argument(
        "--delay-s", type=_seconds, help="start no earlier than this many seconds from now"
    )
    p.add_argument(
        "--priority",
        type=_priority,
        help="higher is claimed first (default: the workflow's, else 0)",
    )
    p.add_argument(
        "--dedup-key",
        metavar="KEY",
        help="at most one unfinished run per key; a second start returns the first",
    )
    p.add_argument(
        "--on-conflict",
        choices=("return", "raise"),
        default="return",
        help="when the dedup key or run id is taken: return that run (default) or fail (exit 4)",
    )
    p.add_argument("--concurrency-key", metavar="KEY", help="what the queue's per-key limits count")
    _label_option(p, "a label the run requires of its worker")
    p.add_argument("--worker-id", metavar="ID", help="only this worker may execute the run")
    p.add_argument("--pool", metavar="NAME", help="send the run to this worker pool")
    p.add_argument(
        "--wait",
        action="store_true",
        help="wait until the run stops (see --until) and print what `run` prints",
    )
    until_option(p, "with --wait: ")
    p.add_argument(
        "--timeout-s", type=_seconds, help="with --wait: give up waiting after this long (exit 40)"
    )

    p = command(
        "run",
        "execute a run in this process and print its result; a run that waits for a signal "
        "(or a child run that does) is handed back with exit 40 and the command that resumes it",
    )
    workflow_args(p)
    _app_option(p, required=True)
    _input_options(p)
    p.add_argument(
        "--run-id",
        metavar="ID",
        help="the run's id; an existing run is resumed (or its result returned)",
    )
    until_option(p, "")
    format_option(p)

    p = command("graph", "print a workflow's graph as a Mermaid flowchart (a Flow: every task)")
    workflow_args(p)
    _app_option(p, required=True)

    p = command("runs", "list runs, newest first")
    p.add_argument(
        "--state",
        action="append",
        choices=_STATES,
        metavar="STATE",
        help=f"only runs in this state (repeatable): {', '.join(_STATES)}",
    )
    _run_filters(p)
    p.add_argument("--before", metavar="RUN", help="only runs older than this run id (paging)")

    p = command("show", "a run: state, timings, error, waits, signals, children and its steps")
    run_arg(p)

    p = command("timeline", "everything that happened to a run, in time order")
    run_arg(p)

    p = command("events", "a run's progress events (ctx.emit), one line each")
    run_arg(p)
    p.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep printing new events until the run finishes "
        "(with --json: one JSON object per line)",
    )
    p.add_argument(
        "--system",
        action="store_true",
        help="include lifecycle events (claimed, waiting, completed, ...)",
    )

    p = command(
        "signal",
        "send a signal to a run: a NAME it waits for now or (with --app) declares, else exit 4 "
        "with a 'did you mean' unless --buffer; a payload failing the wait's schema is rejected "
        "(exit 4, shown in `timeline`) and the wait goes on",
    )
    run_arg(p)
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--data",
        metavar="JSON|@FILE",
        help="the payload as JSON (default: null); @FILE reads it from a file",
    )
    p.add_argument(
        "--buffer",
        action="store_true",
        help="send NAME although the run neither waits for it now nor declares it (an early "
        "send meant for a later wait): kept until the run waits for it, checked then",
    )
    _app_option(p, required=False)

    def gate_options(p: argparse.ArgumentParser, required: bool) -> None:
        run_arg(p)
        p.add_argument(
            "--gate",
            metavar="G",
            help="the gate (ctx.ask's gate=) to answer"
            + ("" if required else " (default: the only one the run waits at)"),
        )
        p.add_argument(
            "--as",
            dest="as_",
            metavar="WHO",
            help="who answers, recorded with the answer; a gate with approvers= takes only "
            "one of them (default: $USER)",
        )
        p.add_argument("--comment", metavar="TEXT", help="recorded with the answer")

    p = command(
        "approve",
        "approve (or --reject) a run waiting at a ctx.ask approval gate; a name not among the "
        "gate's approvers is exit 4 and the run keeps waiting",
    )
    gate_options(p, required=False)
    p.add_argument("--reject", action="store_true", help="reject instead of approving")

    p = command(
        "answer",
        "answer a run waiting at a ctx.ask gate (text, choice, form): the answer must fit the "
        "gate's schema (else exit 4, naming the path)",
    )
    gate_options(p, required=False)
    p.add_argument(
        "--input",
        metavar="JSON|@FILE|-",
        required=True,
        help="the answer as JSON (a string, an option, the form's object); @FILE reads a "
        "file, - stdin",
    )

    p = command("cancel", "cancel a run (a running run stops at its next step boundary)")
    run_arg(p)
    p.add_argument("--reason", metavar="TEXT", help="recorded with the cancellation")
    format_option(p)

    p = command("pause", "pause a run: it is not claimed until unpaused")
    run_arg(p)

    p = command("unpause", "let a paused run continue")
    run_arg(p)

    p = command("retry", "resume a failed or blocked run, keeping its completed steps")
    run_arg(p)
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start a new run with the same input instead (prints its id)",
    )
    _app_option(p, required=False)

    p = command("fork", "a new run reusing a run's steps before --from-seq; prints the new id")
    run_arg(p)
    p.add_argument(
        "--from-seq",
        type=_nonnegative_int,
        required=True,
        metavar="N",
        help="steps from this number on execute anew",
    )
    p.add_argument(
        "--patch",
        action="append",
        default=[],
        metavar="SEQ=JSON",
        help="replace the recorded output of step SEQ (repeatable; JSON may be @FILE)",
    )
    p.add_argument("--new-run-id", metavar="ID", help="the new run's id (default: generated)")

    p = command("result", "wait for a run's result and print it")
    run_arg(p)
    p.add_argument("--timeout-s", type=_seconds, help="give up waiting after this long (exit 40)")
    _app_option(p, required=False)

    p = command(
        "check",
        "replay unfinished runs against the app's code (executing nothing): can it continue them?",
    )
    _app_option(p, required=True)
    file_option(p)
    p.add_argument(
        "--unblock",
        action="store_true",
        help="make blocked runs that now replay cleanly pending again",
    )

    command("migrate", "create or upgrade the store's schema")

    command("workers", "the worker registry: host, pid, queues, labels, pool, load, heartbeat")

    p = command("queues", "per queue: runs by state, throughput, oldest pending, limits")
    p.add_argument(
        "--window-s",
        type=_seconds,
        default=60.0,
        help="throughput is counted over this window (default: 60)",
    )

    p = command(
        "cost",
        "what model calls (ctx.llm) cost, from the ledger: calls, tokens, USD, latency",
    )
    p.add_argument("run_id", metavar="RUN", nargs="?", help="only this run's calls")
    p.add_argument("--workflow", metavar="W", help="only calls made by runs of this workflow")
    p.add_argument("--queue", metavar="Q", help="only calls made by runs on this queue")
    p.add_argument(
        "--since",
        type=_duration,
        metavar="DURATION",
        help="only calls in the last DURATION (24h, 30m, 7d, or seconds)",
    )
    p.add_argument(
        "--by",
        choices=("model", "workflow", "day"),
        help="one line per model, workflow or UTC day (default: one total)",
    )

    p = command("budget", "model-call budgets of runs, workflows, queues and keys (stored, shared)")
    budget = p.add_subparsers(dest="budget_command", metavar="ACTION", required=True)
    b = budget.add_parser(
        "set",
        help="store a budget; a run paused by a budget goes on once raised and unpaused",
        parents=[common],
    )
    scope = b.add_mutually_exclusive_group(required=True)
    scope.add_argument("--run", metavar="RUN", help="the budget of this run")
    scope.add_argument("--workflow", metavar="W", help="the budget of this workflow's runs")
    scope.add_argument("--queue", metavar="Q", help="the budget of the runs on this queue")
    scope.add_argument(
        "--key",
        metavar="K",
        help="the budget of the runs started with this concurrency key (one customer's tokens "
        "per minute: --key acme --tokens 50000 --period 60 --wait)",
    )
    b.add_argument("--usd", type=_nonnegative_float, help="limit in USD")
    b.add_argument("--tokens", type=_nonnegative_int, help="limit in tokens (in, out, cache)")
    b.add_argument(
        "--alert",
        type=_fraction,
        action="append",
        metavar="FRACTION",
        help="emit a budget_alert event when this fraction is crossed (repeatable; default 0.8)",
    )
    b.add_argument(
        "--downgrade-at",
        type=_fraction,
        metavar="FRACTION",
        help="past this fraction a tier= call gets the next cheaper tier (default 0.8)",
    )
    b.add_argument(
        "--period",
        type=_duration,
        metavar="DURATION",
        help="count only calls of the last DURATION (24h, 7d; default: every call)",
    )
    b.add_argument(
        "--wait",
        action="store_true",
        help="at the limit, sleep for the --period and try again instead of pausing (a rate "
        "limit: --tokens 200000 --period 60 --wait is 200k tokens a minute)",
    )
    b = budget.add_parser("clear", help="remove a budget", parents=[common])
    scope = b.add_mutually_exclusive_group(required=True)
    scope.add_argument("--run", metavar="RUN")
    scope.add_argument("--workflow", metavar="W")
    scope.add_argument("--queue", metavar="Q")
    scope.add_argument("--key", metavar="K")
    b = budget.add_parser(
        "list", help="every budget (with --run RUN: what it has spent)", parents=[common]
    )
    b.add_argument("--run", metavar="RUN", help="the budgets this run counts against, spent")

    p = command("dlq", "dead letters: runs that failed for good")
    dlq = p.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    d = dlq.add_parser("list", help="failed runs, newest first", parents=[common])
    _run_filters(d)
    d = dlq.add_parser("retry", help="retry a dead-lettered run", parents=[common])
    run_arg(d)
    d.add_argument("--fresh", action="store_true", help="start a new run with the same input")
    _app_option(d, required=False)
    d = dlq.add_parser("purge", help="delete old finished runs and their history", parents=[common])
    d.add_argument(
        "--older-than-s",
        type=_seconds,
        required=True,
        help="only runs that finished longer ago than this",
    )
    d.add_argument(
        "--state",
        action="append",
        choices=("completed", "failed", "cancelled"),
        metavar="STATE",
        help="only runs in this state (repeatable; default: failed)",
    )

    p = command("db", "move a store's contents")
    db = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    d = db.add_parser(
        "copy",
        help="copy every run, step, signal, event, ledger row, queue, pool and schedule from SRC "
        "to DST (SQLite to PostgreSQL or back); DST must be migrated; runs and schedules "
        "already there are skipped",
        parents=[common],
    )
    d.add_argument("source", metavar="SRC_URL")
    d.add_argument("target", metavar="DST_URL")
    _schedule_commands(
        command("schedule", "cron schedules that workers fire: " + _SCHEDULES), common
    )
    add_agent_commands(command, _app_option)
    add_desk_commands(command, common, epilog)
    add_memory_commands(command, common)
    add_serve_commands(command, _app_option, common)
    add_loop_commands(command, _app_option)
    return parser


_SCHEDULES = (
    "add, list, pause, resume, delete, trigger, backfill (each tick starts exactly one run, "
    "whatever the number of workers)"
)


def _schedule_commands(p: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=help_text, parents=[common]
        )
        if name != "list":
            sub.add_argument("name", metavar="NAME", help="the schedule's name")
        return sub

    a = action(
        "add",
        "store a schedule: from its next tick on, the workers serving WORKFLOW start one run per "
        "tick; an existing NAME with another definition is exit 4 unless --replace",
    )
    a.add_argument(
        "--cron",
        required=True,
        metavar="EXPR",
        help="when: 5 fields (minute hour day-of-month month day-of-week, e.g. '0 9 * * 1-5') "
        "or 6 with seconds first ('*/10 * * * * *'); local to --tz",
    )
    a.add_argument("--workflow", required=True, metavar="W", help="the workflow each tick starts")
    a.add_argument(
        "--input",
        metavar="JSON|@FILE",
        help="the arguments of every run as JSON: a list (positional) or an object (keyword)",
    )
    a.add_argument(
        "--tz",
        default="UTC",
        metavar="ZONE",
        help="the IANA time zone of the expression (default: UTC); DST gaps and repeats: a "
        "fixed time in a skipped hour runs when the clock jumps, in a repeated hour once",
    )
    a.add_argument(
        "--overlap",
        choices=("skip", "buffer_one", "allow"),
        default="allow",
        help="a tick while the previous run is unfinished: skip it, buffer_one (start it when "
        "that run finishes; one at most), or allow (start it; the default)",
    )
    a.add_argument(
        "--catchup",
        choices=("none", "latest", "all"),
        default="latest",
        help="ticks missed while no worker ran: none, latest (the default: the most recent "
        "one) or all",
    )
    a.add_argument(
        "--jitter-s",
        type=_seconds,
        default=0.0,
        metavar="S",
        help="start each run up to this many seconds after its tick (the same delay for a "
        "tick on every worker; at most 86400)",
    )
    a.add_argument("--queue", metavar="Q", help="the runs' queue (default: the workflow's)")
    a.add_argument(
        "--replace", action="store_true", help="replace a schedule of this name (fires from now)"
    )
    _app_option(a, required=True)
    action("list", "every schedule: workflow, cron, zone, policies, next tick, last run")
    action("pause", "stop firing NAME until resumed")
    action("resume", "fire NAME again from its next tick (the paused ticks are not caught up)")
    action("delete", "forget NAME (the runs it started stay)")
    t = action("trigger", "start a run of NAME now, whatever its ticks and overlap; prints its id")
    _app_option(t, required=True)
    b = action(
        "backfill",
        "start the runs of NAME's ticks from --from to --to (inclusive); ticks that already have "
        "a run start nothing new",
    )
    for flag, dest in (("--from", "start"), ("--to", "end")):
        b.add_argument(
            flag,
            dest=dest,
            required=True,
            metavar="TIME",
            help="ISO 8601 (2026-03-01T09:00, local to the schedule's zone, or with an offset)",
        )
    _app_option(b, required=True)


APP_REQUIRED = frozenset({"worker", "start", "run", "check", "graph", "replay"})
"""Commands that need the workflows' code: ``--app`` (or ``-f FILE`` where it is offered)."""
