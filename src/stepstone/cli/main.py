"""The ``stepstone`` command: parse, dispatch, print the output, map errors to exit codes.

Exit codes (the one table is ``EXIT_CODES`` below; ``stepstone --help`` prints it too):

    0    ok
    1    unexpected internal error (run with -v for the traceback)
    2    usage error: unknown command or flag, missing argument; `serve` on a non-loopback
         --host without --token (or STEPSTONE_TOKEN), or without the web extra installed
    3    not found: no such run, no such schedule or webhook, no such workflow in the app, the
         app module cannot be imported
    4    invalid input: bad JSON in --input/--data/--patch (the message names the flag, line and
         column, or the JSON path), a flag value out of range or malformed (named), a bad cron
         expression or time zone, a schedule name taken (without --replace), an unknown --arg
         name, a signal or event payload that does not match its schema, a signal name
         the run neither waits for nor declares (without --buffer; the message says "did you
         mean"), a value that cannot be encoded or decoded, a bad YAML workflow file (file,
         line, column), an operation the run's state does not allow (resume of a run waiting
         for another event, delete of an unfinished run), init over an existing file
    5    store unavailable, locked, corrupt, read-only, or otherwise failing
    6    schema missing or outdated: run `stepstone migrate`
    7    the run failed, was cancelled or is blocked (result, start --wait, run, resume; status
         and inspect of such a run), or paused itself before a model call that would pass its
         budget (start --wait, run, resume: raise the budget, then unpause it)
    8    check found runs that the code now loaded cannot continue
    9    doctor found a failing check (printed with the command that fixes it)
    11   replay found where the code now loaded leaves the run's journal (step, seq, expected, got)
    40   waiting / still waiting (checkpointflow's code): run, resume and start --wait handed the
         run back at a signal wait (its own or a child run's; the output says what it waits for
         and the resume command), --timeout-s ran out before the run finished, or status and
         inspect of a run not finished
    70   already resumed: another resume (or signal) answered the wait first (checkpointflow's
         concurrency code); nothing was stored by this one
    130  interrupted (Ctrl-C)

``status`` and ``inspect`` exit with the run's state code (0 completed, 7 failed, cancelled or
blocked, 40 not finished), not the query's, as checkpointflow does.

Errors print one line to stderr, ``stepstone: <message>`` (with ``-v`` also the traceback). With
``--json`` stdout carries exactly one envelope, ``{"ok": true, "schema_version": 1, "data": ...}``
or ``{"ok": false, "schema_version": 1, "error": {"type": ..., "message": ..., "exit_code": N}}``
(``schema_version`` changes only when a field is removed or changes meaning; a run handed back
waiting is ``ok: true`` with exit code 40); the one exception is ``events --follow --json``,
which prints one JSON object per event as it happens (an error ends the stream with an error
envelope line).

``--format cpf`` (run, resume, status, inspect, cancel, validate) prints checkpointflow's run
envelope instead (``schema_version: checkpointflow-run/v1``, errors too) and exits with
checkpointflow's codes: 0 ok, 10 validation, 20 runtime, 30 step failed, 40 waiting, 50
cancelled, 60 persistence, 70 concurrency, 90 internal (see ``stepstone.cli.cpf``).

Only this package reads the environment: ``STEPSTONE_DB`` (``--db``), ``STEPSTONE_APP``
(``--app``), ``STEPSTONE_SKILLS_PATH`` (skills), ``STEPSTONE_TOKEN`` (``serve --token``),
``STEPSTONE_WEBHOOKS`` (the webhook bindings file) and the secret variables the bindings name,
``HOME`` (``flows`` looks in ``~/.stepstone/flows``; skills in ``~/.stepstone/skills`` and
``~/.claude/skills``, their runs' files in ``~/.stepstone/runs``, the inbox file is
``~/.stepstone/INBOX.md``; ``~/.stepstone/config.toml`` configures models) and the model
settings ``STEPSTONE_LLM_*``, ``STEPSTONE_OPENAI_*``, ``ANTHROPIC_API_KEY`` (see
:mod:`stepstone.models.config`), read by commands that execute runs; ``worker --otel`` reads
``OTEL_TRACES_EXPORTER``, ``OTEL_METRICS_EXPORTER`` and ``OTEL_SERVICE_NAME`` (see
:mod:`stepstone.cli.tracing`).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from stepstone.cli.deferred_ssl import import_asyncio
from stepstone.cli.desk_parser import ENV_SKILLS_PATH
from stepstone.cli.output import Output
from stepstone.cli.parser import APP_REQUIRED, ENV_APP, ENV_DB, build_parser, check_values
from stepstone.cli.render import Screen
from stepstone.cli.session import Session
from stepstone.errors import (
    AlreadyResumed,
    AppNotFound,
    ChecksFailed,
    DecodeError,
    DuplicateRun,
    EncodeError,
    InvalidArgument,
    MemoryNotFound,
    ReplayDiverged,
    RunFailed,
    RunNotFound,
    RunsNotCopied,
    RunStateError,
    ScheduleNotFound,
    SchemaError,
    SignalPayloadError,
    SkillNotFound,
    StoreCorrupt,
    StoreError,
    StoreReadOnly,
    StoreUnavailable,
    UnknownSignal,
    UsageError,
    WaitTimeout,
    WebhookNotFound,
    WorkflowNotFound,
)

__all__ = ["EXIT_CODES", "SCHEMA_VERSION", "exit_code_for", "main"]

OK = 0
INTERNAL = 1
SCHEMA_VERSION = 1
"""The version of the ``--json`` shapes: bumped only when a field is removed or changes meaning."""

# The one table from error to exit code. Order matters: the first class an error is an instance
# of wins, so subclasses come before their bases (SchemaError is a StoreError).
EXIT_CODES: dict[type[BaseException], int] = {
    UsageError: 2,
    AlreadyResumed: 70,
    RunNotFound: 3,
    MemoryNotFound: 3,
    ScheduleNotFound: 3,
    SkillNotFound: 3,
    WebhookNotFound: 3,
    WorkflowNotFound: 3,
    AppNotFound: 3,
    SchemaError: 6,
    StoreUnavailable: 5,
    StoreCorrupt: 5,
    StoreReadOnly: 5,
    StoreError: 5,
    RunFailed: 7,
    DuplicateRun: 4,
    ChecksFailed: 8,
    ReplayDiverged: 11,
    RunsNotCopied: 4,
    WaitTimeout: 40,
    InvalidArgument: 4,
    SignalPayloadError: 4,
    UnknownSignal: 4,
    EncodeError: 4,
    DecodeError: 4,
    RunStateError: 4,
    KeyboardInterrupt: 130,
}

MEANINGS: dict[int, str] = {
    0: "ok",
    1: "unexpected internal error (run with -v for the traceback)",
    2: "usage error (serve: a non-loopback --host without a token, or no web extra)",
    3: "not found: run, schedule, webhook, workflow, app module, skill or memory document",
    4: "invalid input: bad JSON or value in a flag, bad payload, unknown signal name, or a "
    "state that forbids it",
    5: "store unavailable, locked, corrupt or read-only",
    6: "schema missing or outdated: run `stepstone migrate`",
    7: "the run failed, was cancelled, is blocked or paused by a budget",
    8: "check found runs the code now loaded cannot continue",
    9: "doctor found a failing check (each is printed with the command that fixes it)",
    11: "replay found where the code now loaded leaves the run's journal",
    40: "waiting / still waiting: handed back at a signal wait (with the resume command), "
    "--timeout-s ran out, or (status, inspect) the run is not finished",
    70: "already resumed: another resume or signal answered the wait first",
    130: "interrupted",
}

_COMMANDS: dict[str, str] = {
    "worker": "admin:cmd_worker",
    "check": "admin:cmd_check",
    "migrate": "admin:cmd_migrate",
    "start": "operate:cmd_start",
    "run": "operate:cmd_run",
    "result": "operate:cmd_result",
    "signal": "operate:cmd_signal",
    "inject": "loops:cmd_inject",
    "replay": "loops:cmd_replay",
    "approve": "gates:cmd_approve",
    "answer": "gates:cmd_answer",
    "cancel": "operate:cmd_cancel",
    "pause": "operate:cmd_pause",
    "unpause": "operate:cmd_unpause",
    "retry": "operate:cmd_retry",
    "fork": "operate:cmd_fork",
    "runs": "observe:cmd_runs",
    "show": "observe:cmd_show",
    "timeline": "observe:cmd_timeline",
    "events": "observe:cmd_events",
    "workers": "fleet:cmd_workers",
    "queues": "fleet:cmd_queues",
    "dlq": "fleet:cmd_dlq",
    "cost": "costs:cmd_cost",
    "budget": "costs:cmd_budget",
    "memory": "memory:cmd_memory",
    "db": "fleet:cmd_db",
    "schedule": "schedules:cmd_schedule",
    "graph": "graph:cmd_graph",
    "resume": "agent:cmd_resume",
    "status": "agent:cmd_status",
    "inspect": "agent:cmd_inspect",
    "logs": "agent:cmd_logs",
    "delete": "agent:cmd_delete",
    "flows": "scaffold:cmd_flows",
    "init": "scaffold:cmd_init",
    "guide": "scaffold:cmd_guide",
    "validate": "scaffold:cmd_validate",
    "launch": "desk:cmd_launch",
    "skills": "desk:cmd_skills",
    "skill": "desk:cmd_skill",
    "inbox": "desk:cmd_inbox",
    "dismiss": "desk:cmd_dismiss",
    "hook": "hook:cmd_hook",
    "doctor": "doctor:cmd_doctor",
    "daemon": "daemon:cmd_daemon",
    "serve": "serve:cmd_serve",
    "webhook": "serve:cmd_webhook",
}


def exit_code_for(exc: BaseException) -> int:
    """The exit code for ``exc``: the first matching row of ``EXIT_CODES``, else 1."""
    for cls, code in EXIT_CODES.items():
        if isinstance(exc, cls):
            return code
    return INTERNAL


def exit_codes_epilog() -> str:
    """The exit-code table as shown by ``--help``, generated from ``EXIT_CODES``."""
    classes: dict[int, list[str]] = {}
    for cls, code in EXIT_CODES.items():
        if issubclass(cls, Exception):
            classes.setdefault(code, []).append(cls.__name__)
    lines = ["exit codes:"]
    for code, meaning in MEANINGS.items():
        lines.append(f"  {code:<4} {meaning}")
        if code in classes:
            lines.append(f"       ({', '.join(classes[code])})")
    lines.append("")
    lines.append(
        "--json prints one envelope on stdout; `events --follow --json` prints one JSON object per "
        "event."
    )
    lines.append(
        "status and inspect exit with the run's code: 0 completed, 7 failed/cancelled/blocked, "
        "40 not finished."
    )
    lines.append(
        "--format cpf prints checkpointflow's run envelope and exits with its codes (0 ok, 10 "
        "validation, 20 runtime, 30 step failed, 40 waiting, 50 cancelled, 60 persistence, 70 "
        "concurrency, 90 internal)."
    )
    lines.append(
        f"environment: {ENV_DB} (--db), {ENV_APP} (--app), {ENV_SKILLS_PATH} (skills), "
        "HOME (flows, skills, runs' files, INBOX.md, ~/.stepstone/config.toml), "
        "STEPSTONE_LLM_PROVIDER/_MODEL/_SCRIPT/_TIER_*, STEPSTONE_OPENAI_BASE_URL/_API_KEY, "
        "ANTHROPIC_API_KEY (models for ctx.llm)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None, *, env: Mapping[str, str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit code.

    Called without ``argv`` (as the ``stepstone`` command is), it owns the process: the objects
    made while starting up (modules, classes, the parser) are moved out of the garbage
    collector's way with :func:`gc.freeze` before the command runs. They live as long as the
    process anyway, and collections that traverse them again and again were 7% of a short
    ``stepstone run -f`` (a worker's collections get cheaper for good too)."""
    owns_process = argv is None and gc.isenabled()
    env = os.environ if env is None else env
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["hook", "session-start"]:  # on every Claude Code session start: keep it lean
        from stepstone.cli.hook import session_start_fast

        fast = session_start_fast(argv[2:], env)
        if fast is not None:
            return fast
    screen = Screen()
    session = Session(db=None, json="--json" in argv, screen=screen, env=env)
    if owns_process:
        gc.disable()
    try:
        session.format = "cpf" if _wants_cpf(argv) else "stepstone"
        session.command = next((a for a in argv if a in _COMMANDS), "")
        ns = _parse(argv, session.command)
        session.command = ns.command
        session.format = getattr(ns, "format", "stepstone")
        check_values(ns)
        session.json, session.verbose = ns.json, ns.verbose
        session.db = ns.db or env.get(ENV_DB) or None
        if hasattr(ns, "app") and not ns.app:
            ns.app = env.get(ENV_APP) or None
            given = getattr(ns, "file", None) or getattr(ns, "skills", False)
            if ns.app is None and ns.command in APP_REQUIRED and not given:
                either = " or -f FILE" if hasattr(ns, "file") else ""
                raise UsageError(
                    f"--app MODULE{either} is required (or set {ENV_APP}) "
                    f"(see `stepstone {ns.command} --help`)"
                )
        _configure_logging(session.verbose, ns.command)
        command = _command(ns.command)
        if owns_process:
            gc.freeze()
            gc.enable()
        output = command(ns, session)
    except SystemExit as exc:  # --help and --version print and exit 0
        return exc.code if isinstance(exc.code, int) else OK
    except BrokenPipeError:
        return _reader_went_away()
    except (Exception, KeyboardInterrupt) as exc:
        return _report(exc, session)
    finally:
        if owns_process:
            gc.enable()
    try:
        _print(output, session)
    except BrokenPipeError:
        return _reader_went_away()
    if session.format == "cpf" and output.cpf is not None:
        code: int = output.cpf["exit_code"]
        return code
    return output.exit_code


def _parse(argv: list[str], command: str) -> argparse.Namespace:
    """Parse with the parser of ``command`` alone when the command line names one; a usage
    error (or a guess fooled by an option value that spells a command) parses again with every
    command, so errors and ``--help`` read as the full parser has them."""
    before = argv[: argv.index(command)] if command else argv
    if command and not {"-h", "--help", "--version"} & set(before):
        try:
            return build_parser(exit_codes_epilog(), only=command).parse_args(argv)
        except UsageError:
            pass
    return build_parser(exit_codes_epilog()).parse_args(argv)


def _wants_cpf(argv: list[str]) -> bool:
    """``--format cpf`` is on the command line (read before parsing, so that a usage error is
    reported as a cpf envelope too)."""
    for i, arg in enumerate(argv):
        if arg == "--format=cpf" or (arg == "--format" and argv[i + 1 : i + 2] == ["cpf"]):
            return True
    return False


def _reader_went_away() -> int:
    """stdout was closed early (``stepstone events -f | head``): not an error of the command.
    Point stdout at /dev/null so the interpreter's final flush does not complain."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return OK


# Commands whose module does not need asyncio (the rest import it, ssl deferred: deferred_ssl).
_WITHOUT_ASYNCIO = frozenset({"scaffold"})


def _command(name: str) -> Callable[[argparse.Namespace, Session], Output]:
    # Commands are imported on use so that `--help` and light commands stay fast.
    module, _, function = _COMMANDS[name].partition(":")
    if module not in _WITHOUT_ASYNCIO:
        import_asyncio()
    loaded = importlib.import_module(f"stepstone.cli.{module}")
    command: Callable[[argparse.Namespace, Session], Output] = getattr(loaded, function)
    return command


def _configure_logging(verbose: int, command: str) -> None:
    """Log to stderr: warnings by default, ``-v`` info, ``-vv`` debug; a worker (a service)
    logs at info by default: each claim, completion, wait, retry and failure, with its run."""
    from stepstone.runtime.logs import RunContextFormatter

    level = logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    if command == "worker":
        level = min(level, logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RunContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def _print(output: Output, session: Session) -> None:
    if output.streamed:
        return
    if session.format == "cpf" and output.cpf is not None:
        session.screen.line(json.dumps(output.cpf, ensure_ascii=False))
    elif session.json:
        envelope = {"ok": True, "schema_version": SCHEMA_VERSION, "data": output.data}
        session.screen.line(json.dumps(envelope, ensure_ascii=False))
    elif output.human is not None:
        output.human(session.screen)
    elif output.data is not None:
        session.screen.json(output.data)


def _details(exc: BaseException) -> dict[str, Any]:
    """Data an error carries that a script may want, for the JSON envelope."""
    details: dict[str, Any] = {}
    for attr in ("run_id", "state", "doing", "name", "url", "app"):
        value = getattr(exc, attr, None)
        if isinstance(value, str | int | float | bool):
            details[attr] = value
    if isinstance(exc, RunFailed):
        details.update(
            error_type=exc.error_type, error_message=exc.message, traceback=exc.traceback
        )
    return details


def _report(exc: BaseException, session: Session) -> int:
    code = exit_code_for(exc)
    message = str(exc) or type(exc).__name__
    if isinstance(exc, KeyboardInterrupt):
        message = "interrupted"
    elif code == INTERNAL:
        message = f"internal error: {type(exc).__name__}: {message}"
        if not session.verbose:
            message += " (run with -v for the traceback)"
    output: Output | None = getattr(exc, "output", None)
    if session.format == "cpf":
        from stepstone.cli import cpf

        cpf_envelope = cpf.error_envelope(session.command or "stepstone", exc, message)
        session.screen.line(json.dumps(cpf_envelope, ensure_ascii=False))
        print(f"stepstone: {message}", file=sys.stderr, flush=True)
        return int(cpf_envelope["exit_code"])
    if session.json:
        error = {"type": type(exc).__name__, "message": message, "exit_code": code}
        envelope: dict[str, Any] = {
            "ok": False,
            "schema_version": SCHEMA_VERSION,
            "error": {**error, **_details(exc)},
        }
        if output is not None:
            envelope["data"] = output.data
        session.screen.line(json.dumps(envelope, ensure_ascii=False))
    elif output is not None and output.human is not None:
        output.human(session.screen)
    if session.verbose and isinstance(exc, RunFailed):
        if exc.traceback:  # where the run failed, not where the CLI noticed
            print(f"the run's recorded traceback:\n{exc.traceback.rstrip()}", file=sys.stderr)
    elif session.verbose and not isinstance(exc, UsageError | KeyboardInterrupt):
        traceback.print_exception(exc, file=sys.stderr)
    print(f"stepstone: {message}", file=sys.stderr, flush=True)
    return code
