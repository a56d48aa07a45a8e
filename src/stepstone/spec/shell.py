"""The ``cli`` step's executor: run a ``${...}`` command with its values kept out of shell code.

Each ``${expr}`` of a command becomes a reference to an environment variable ``STEPSTONE_V<n>`` set
for that one process, written for the quoting context it stands in (``"${V}"`` bare, ``${V}`` inside
double quotes, ``'"${V}"'`` inside single quotes), so the shell prints exactly the value and never
parses it: ``$(...)``, backticks and quotes inside a value are only characters.

>>> result = run_cli('echo "Hello, ${inputs.name}!"', lambda expr: "it's $(me)")
>>> result.stdout
"Hello, it's $(me)!\\n"

This module knows nothing of the engine: the YAML compiler calls it inside a checkpointed step.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stepstone.errors import InvalidArgument, UnsupportedShell
from stepstone.spec.shell_quoting import render_shell
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
    "Evaluate",
    "Ref",
    "Template",
    "join_commands",
    "parse_template",
    "render_argv",
    "render_shell",
    "run_argv",
    "run_cli",
    "value_text",
]

Evaluate = Callable[[str], Any]
"""Turns the text of one ``${...}`` expression (without ``${`` and ``}``) into its value."""

_SHELLS = {"sh": "/bin/sh", "bash": "bash", "zsh": "zsh"}
_REFUSED_SHELLS = ("powershell", "pwsh", "cmd")
_DRAIN_S = 2.0  # after a timeout kill: how long to wait for the pipes to close


@dataclass(frozen=True, slots=True)
class CliResult:
    """What a command did. ``exit_code`` is negative when a signal ended it (-9: killed)."""

    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool


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
    command: str | Template | Sequence[str | Template],
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
    executable = _shell_executable(shell)
    template = join_commands(command)
    text, variables = render_shell(template, [evaluate(ref.expr) for ref in template.refs])
    try:
        return _spawn([executable, "-c", text], cwd, timeout_s, {**(env or {}), **variables})
    except OSError as e:
        _raise_for_cwd(e, cwd)
        raise UnsupportedShell(shell or "sh", f"cannot run {executable}: {e.strerror}") from e


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
    args = render_argv(argv, evaluate)
    if not args or not args[0]:
        raise InvalidArgument("argv: the first element (the program) is empty")
    started = time.monotonic()
    try:
        return _spawn(args, cwd, timeout_s, dict(env or {}))
    except (FileNotFoundError, PermissionError, NotADirectoryError) as e:
        _raise_for_cwd(e, cwd)
        code = 127 if isinstance(e, FileNotFoundError) else 126
        why = "command not found" if code == 127 else e.strerror
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


def _spawn(
    args: list[str], cwd: str | None, timeout_s: float | None, extra: dict[str, str]
) -> CliResult:
    started = time.monotonic()
    child_env = {**os.environ, **extra} if extra else None
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=child_env,
        start_new_session=True,  # its own process group: a timeout kills grandchildren too
    )
    with proc:
        try:
            out, err, timed_out = _collect(proc, timeout_s)
        except BaseException:
            _kill_group(proc.pid)
            raise
    return CliResult(
        exit_code=proc.wait(),
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        duration_s=time.monotonic() - started,
        timed_out=timed_out,
    )


def _collect(proc: subprocess.Popen[bytes], timeout_s: float | None) -> tuple[bytes, bytes, bool]:
    """Both outputs, once the child has exited and its pipes are closed; past ``timeout_s`` its
    process group is killed first (the third value says so)."""
    if timeout_s is None:
        out, err = proc.communicate()
        return out, err, False
    try:
        # Waiting on a pidfd beside the pipes: communicate(timeout=) would poll for the exit
        # with sleeps, a millisecond more per step.
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = -1
    if pidfd < 0:
        try:
            out, err = proc.communicate(timeout=timeout_s)
            return out, err, False
        except subprocess.TimeoutExpired:
            return (*_kill_and_drain(proc), True)
    assert proc.stdout is not None
    assert proc.stderr is not None
    chunks: dict[int, list[bytes]] = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        for fd in (pidfd, *chunks):
            selector.register(fd, selectors.EVENT_READ)
        try:
            while selector.get_map() and (remaining := deadline - time.monotonic()) > 0:
                for key, _ in selector.select(remaining):
                    data = b"" if key.fd == pidfd else os.read(key.fd, 65536)
                    if data:
                        chunks[key.fd].append(data)
                    else:
                        selector.unregister(key.fd)
            timed_out = bool(selector.get_map())
        finally:
            os.close(pidfd)
    out, err = (b"".join(part) for part in chunks.values())
    if not timed_out:
        proc.wait()
        return out, err, False
    rest_out, rest_err = _kill_and_drain(proc)
    return out + rest_out, err + rest_err, True


def _kill_and_drain(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    _kill_group(proc.pid)
    try:
        return proc.communicate(timeout=_DRAIN_S)
    except subprocess.TimeoutExpired:  # something left the group and holds the pipes
        proc.kill()
        proc.wait()
        return b"", b""


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
