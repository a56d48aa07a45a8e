"""The ``cli`` step's executor: run a ``${...}`` command with its values kept out of shell code.

Each ``${expr}`` of a command becomes a reference to an environment variable ``STEPSTONE_V<n>`` set
for that one process, written for the quoting context it stands in (``"${V}"`` bare, ``${V}`` inside
double quotes, ``'"${V}"'`` inside single quotes), so the shell prints exactly the value and never
parses it: ``$(...)``, backticks and quotes inside a value are only characters.

>>> result = run_cli('echo "Hello, ${inputs.name}!"', lambda expr: "it's $(me)")
>>> result.stdout
"Hello, it's $(me)!\\n"

This module knows nothing of the engine: the YAML compiler calls it inside a checkpointed step
(:func:`run_cli_async` there: the child is waited for on the event loop, not on a thread).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stepstone.errors import InvalidArgument, StepstoneError, UnsupportedShell
from stepstone.spec.process import CliResult, run_process, run_process_async
from stepstone.spec.shell_quoting import ShellCommand, quote_shell, render_shell
from stepstone.spec.template import (
    Ref,
    Template,
    join_commands,
    parse_template,
    ref_text,
    value_text,
)

__all__ = [
    "CliResult",
    "Command",
    "Evaluate",
    "Ref",
    "ShellCommand",
    "Template",
    "join_commands",
    "parse_template",
    "prepare_shell",
    "render_argv",
    "render_shell",
    "run_argv",
    "run_argv_async",
    "run_cli",
    "run_cli_async",
    "value_text",
]

Evaluate = Callable[[str], Any]
"""Turns the text of one ``${...}`` expression (without ``${`` and ``}``) into its value."""

Command = str | Template | ShellCommand | Sequence[str | Template]
"""A ``cli`` command: one string, a list of them (joined with `` && ``), or already prepared."""

_SHELLS = {"sh": "/bin/sh", "bash": "bash", "zsh": "zsh"}
_REFUSED_SHELLS = ("powershell", "pwsh", "cmd")


def prepare_shell(command: Command) -> ShellCommand:
    """``command`` located, joined and quoted, ready to run many times (a YAML step's command
    is prepared once, at load). Raises :class:`TemplateError` where no value can stand safely."""
    if isinstance(command, ShellCommand):
        return command
    return quote_shell(join_commands(command))


def render_argv(argv: Sequence[str | Template], evaluate: Evaluate) -> list[str]:
    """Plain substitution, no shell: each ``${...}`` is replaced by its value's text."""
    rendered = []
    for arg in argv:
        template = arg if isinstance(arg, Template) else parse_template(arg)
        pieces = [
            p if isinstance(p, str) else ref_text(p, evaluate(p.expr)) for p in template.parts
        ]
        rendered.append("".join(pieces))
    return rendered


# --- running ---------------------------------------------------------------------------------


def run_cli(
    command: Command,
    evaluate: Evaluate,
    *,
    shell: str | None = None,
    cwd: str | None = None,
    timeout_s: float | None = None,
    env: Mapping[str, str] | None = None,
) -> CliResult:
    """Run ``command`` (a list is joined with `` && ``) with ``shell -c`` (``sh``, ``bash``
    or ``zsh``; default ``/bin/sh``), each ``${expr}`` valued by ``evaluate(expr)`` and passed
    through an environment variable (see :func:`render_shell`).

    The child inherits this process's environment plus ``env`` and the ``STEPSTONE_V<n>``
    variables, reads nothing (stdin is ``/dev/null``), runs in ``cwd`` (already rendered) in a
    session of its own: past ``timeout_s`` the whole process group is killed (``timed_out``).
    Raises :class:`UnsupportedShell`, :class:`TemplateError` or :class:`InvalidArgument` (a
    missing ``cwd``) before anything runs.
    """
    args, extra = _shell_args(command, evaluate, shell, env)
    try:
        return run_process(args, cwd=cwd, timeout_s=timeout_s, env=extra)
    except OSError as e:
        raise _not_started(e, shell, args[0], cwd) from e


async def run_cli_async(
    command: Command,
    evaluate: Evaluate,
    *,
    shell: str | None = None,
    cwd: str | None = None,
    timeout_s: float | None = None,
    env: Mapping[str, str] | None = None,
) -> CliResult:
    """:func:`run_cli`, awaited on the event loop (no thread); cancelling it kills the
    command's process group."""
    args, extra = _shell_args(command, evaluate, shell, env)
    try:
        return await run_process_async(args, cwd=cwd, timeout_s=timeout_s, env=extra)
    except OSError as e:
        raise _not_started(e, shell, args[0], cwd) from e


def run_argv(
    argv: Sequence[str | Template],
    evaluate: Evaluate,
    *,
    cwd: str | None = None,
    timeout_s: float | None = None,
    env: Mapping[str, str] | None = None,
) -> CliResult:
    """Run ``argv`` without any shell, each element rendered by plain substitution
    (:func:`render_argv`). A program that cannot be found or run ends like it would in a
    shell: exit code 127 or 126 with the reason on stderr. Otherwise as :func:`run_cli`."""
    args = _argv_args(argv, evaluate)
    started = time.monotonic()
    try:
        return run_process(args, cwd=cwd, timeout_s=timeout_s, env=env)
    except (FileNotFoundError, PermissionError, NotADirectoryError) as e:
        return _not_found(e, args, cwd, started)


async def run_argv_async(
    argv: Sequence[str | Template],
    evaluate: Evaluate,
    *,
    cwd: str | None = None,
    timeout_s: float | None = None,
    env: Mapping[str, str] | None = None,
) -> CliResult:
    """:func:`run_argv`, awaited on the event loop (no thread); cancelling it kills the
    program's process group."""
    args = _argv_args(argv, evaluate)
    started = time.monotonic()
    try:
        return await run_process_async(args, cwd=cwd, timeout_s=timeout_s, env=env)
    except (FileNotFoundError, PermissionError, NotADirectoryError) as e:
        return _not_found(e, args, cwd, started)


def _shell_args(
    command: Command, evaluate: Evaluate, shell: str | None, env: Mapping[str, str] | None
) -> tuple[list[str], dict[str, str]]:
    """``[shell, "-c", text]`` and the child's extra variables (``env`` and the values)."""
    executable = _shell_executable(shell)
    prepared = prepare_shell(command)
    variables = prepared.variables([evaluate(ref.expr) for ref in prepared.refs])
    return [executable, "-c", prepared.text], {**(env or {}), **variables}


def _argv_args(argv: Sequence[str | Template], evaluate: Evaluate) -> list[str]:
    args = render_argv(argv, evaluate)
    if not args or not args[0]:
        raise InvalidArgument("argv: the first element (the program) is empty")
    return args


def _not_started(
    error: OSError, shell: str | None, executable: str, cwd: str | None
) -> StepstoneError:
    _raise_for_cwd(error, cwd)
    return UnsupportedShell(shell or "sh", f"cannot run {executable}: {error.strerror}")


def _not_found(error: OSError, args: list[str], cwd: str | None, started: float) -> CliResult:
    _raise_for_cwd(error, cwd)
    code = 127 if isinstance(error, FileNotFoundError) else 126
    why = "command not found" if code == 127 else error.strerror
    return CliResult(code, "", f"{args[0]}: {why}\n", time.monotonic() - started, False)


def _raise_for_cwd(error: OSError, cwd: str | None) -> None:
    if cwd is not None and error.filename == cwd:
        raise InvalidArgument(f"cwd {cwd!r}: {error.strerror}") from error


def _shell_executable(shell: str | None) -> str:
    name = os.path.basename(shell) if shell else "sh"
    if name in _SHELLS:
        return shell if shell and os.path.isabs(shell) else _SHELLS[name]
    if name.lower().removesuffix(".exe") in _REFUSED_SHELLS:
        raise UnsupportedShell(
            name, "stepstone runs cli steps with sh, bash or zsh only; use one of them, or argv:"
        )
    raise UnsupportedShell(name, "unknown shell (use sh, bash or zsh)")
