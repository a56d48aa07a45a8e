"""The ``cli`` step's executor: values reach the shell as data, never as code; the command is
waited for on the calling thread (``run_cli``) or on the event loop (``run_cli_async``), and a
timeout or a cancellation kills its whole process group."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stepstone.errors import InvalidArgument, TemplateError, UnsupportedShell
from stepstone.spec.shell import (
    CliResult,
    Ref,
    parse_template,
    prepare_shell,
    render_shell,
    run_argv,
    run_argv_async,
    run_cli,
    run_cli_async,
    value_text,
)

INJECTION = 'x"; echo INJECTED-$(id -u); echo "'
SINGLE_INJECTION = "x'; echo INJECTED-$(id -u); echo '"
MARK = f"INJECTED-{os.getuid()}"


def values(**named: Any) -> Any:
    """An evaluator over plain names (the YAML compiler passes a CEL one)."""
    return lambda expr: named[expr]


def run_cli_on_a_loop(*args: Any, **kwargs: Any) -> CliResult:
    return asyncio.run(run_cli_async(*args, **kwargs))


Run = Callable[..., CliResult]
BOTH = pytest.mark.parametrize("run", [run_cli, run_cli_on_a_loop], ids=["thread", "loop"])
PIDFD_OPEN = os.pidfd_open  # kept: some tests take os.pidfd_open away from the executor


# --- templates -------------------------------------------------------------------------------


def test_parse_template_locates_expressions_with_nested_braces_and_cel_strings() -> None:
    text = 'a ${ inputs.x } b ${ {"k": "}"}["k"] } c ${r"\\"} d'
    template = parse_template(text)
    assert template.parts == (
        "a ",
        Ref("inputs.x", 2),
        " b ",
        Ref('{"k": "}"}["k"]', 18),
        " c ",
        Ref('r"\\"', 41),
        " d",
    )


@pytest.mark.parametrize(
    ("text", "column"),
    [("echo ${inputs.x", 6), ("echo ok ${ {1: 2} ", 9), ("x ${}", 3), ("${'}", 3), ("${'}'", 1)],
)
def test_parse_template_names_the_column_of_a_bad_expression(text: str, column: int) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_template(text)
    assert caught.value.column == column
    assert f"column {column}" in str(caught.value)


def test_value_text_is_plain_text_for_strings_and_compact_json_otherwise() -> None:
    assert value_text("a b") == "a b"
    assert value_text(None) == ""
    assert value_text(True) == "true"
    assert value_text(3) == "3"
    assert value_text(2.5) == "2.5"
    assert value_text({"a": [1, "é"]}) == '{"a":[1,"é"]}'


# --- values as data --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    ["echo ${v}", 'echo "${v}"', "echo '${v}'", "printf '%s\\n' ${v}", 'echo "$(echo "${v}")"'],
    ids=["bare", "double-quoted", "single-quoted", "printf-bare", "in-command-substitution"],
)
@pytest.mark.parametrize("shell", ["sh", "bash"])
@pytest.mark.parametrize("injection", [INJECTION, SINGLE_INJECTION], ids=["dq", "sq"])
@BOTH
def test_an_injection_string_is_printed_never_run(
    run: Run, command: str, shell: str, injection: str
) -> None:
    result = run(command, values(v=injection), shell=shell)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == injection + "\n"
    assert MARK not in result.stdout


def test_the_rendered_text_holds_variable_references_not_values() -> None:
    text, env = render_shell(parse_template("a ${v} \"b ${v}\" 'c ${v}'"), [INJECTION] * 3)
    assert text == 'a "${STEPSTONE_V1}" "b ${STEPSTONE_V2}" \'c \'"${STEPSTONE_V3}"\'\''
    assert env == {f"STEPSTONE_V{n}": INJECTION for n in (1, 2, 3)}


@pytest.mark.parametrize(
    ("command", "value", "printed"),
    [
        ('echo "Hello, ${inputs.name}!"', "World", "Hello, World!"),
        ("""echo '{"project":"${inputs.name}"}'""", "demo", '{"project":"demo"}'),
        ("echo pre-${inputs.name}-post", "mid", "pre-mid-post"),
        ("echo cost: $${inputs.name}", "5", "cost: $5"),
        ('echo "cost: $${inputs.name}"', "5", "cost: $5"),
    ],
)
def test_ordinary_values_print_as_plain_substitution_would(
    command: str, value: str, printed: str
) -> None:
    result = run_cli(command, lambda expr: value)
    assert result.stdout == printed + "\n", result.stderr


@pytest.mark.parametrize(
    "value",
    [
        "two  spaces",
        "line one\nline two",
        'it\'s "quoted"',
        "`id` and $(id) and $HOME and ${HOME}",
        "back\\slash \\n",
        "héllo ✓ 日本",
        "*",
        "-n",
        "",
    ],
)
@pytest.mark.parametrize("quoting", ["bare", "double", "single"])
def test_awkward_values_arrive_exactly(value: str, quoting: str) -> None:
    ref = {"bare": "${v}", "double": '"${v}"', "single": "'${v}'"}[quoting]
    result = run_cli(f"printf '[%s]' {ref}", values(v=value))
    assert result.stdout == f"[{value}]", result.stderr


def test_json_values_arrive_as_compact_json() -> None:
    result = run_cli(
        "echo ${doc}; echo '${n}' \"${flag}\" ${none}",
        values(doc={"a": [1, 2], "b": "x y"}, n=1.5, flag=False, none=None),
    )
    assert result.stdout == '{"a":[1,2],"b":"x y"}\n1.5 false \n'


def test_a_here_document_receives_values_as_text() -> None:
    command = "cat <<EOF\nname: ${v}\nEOF\necho after ${v}"
    result = run_cli(command, values(v=INJECTION))
    assert result.stdout == f"name: {INJECTION}\nafter {INJECTION}\n", result.stderr


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("echo $'a ${v}'", "$'...'"),
        ("echo $(( ${v} + 1 ))", "arithmetic"),
        ("cat <<'EOF'\n${v}\nEOF", "quoted here-document"),
        ("echo \\${v}", "backslash"),
        ("cat <<${v}\nx\n", "delimiter"),
    ],
)
def test_places_where_no_value_is_safe_are_refused_by_column(command: str, problem: str) -> None:
    with pytest.raises(TemplateError) as caught:
        run_cli(command, values(v="x"))
    assert problem in str(caught.value)
    assert caught.value.column == command.index("${v}") + 1


def test_a_nul_in_a_value_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgument, match="NUL"):
        run_cli("echo ${v}", values(v="a\0b"))


# --- running ---------------------------------------------------------------------------------


def test_a_list_command_is_joined_with_and_and_stops_at_the_first_failure() -> None:
    result = run_cli(["echo one ${v}", "false", "echo never"], values(v="a"))
    assert result.stdout == "one a\n"
    assert result.exit_code == 1


@pytest.mark.parametrize("timeout_s", [None, 30.0])
@BOTH
def test_exit_code_and_both_streams_are_kept(run: Run, timeout_s: float | None) -> None:
    # 200 kB on each pipe, interleaved: far past a pipe's buffer, so both must be read at once
    command = (
        "echo out; echo err >&2; for i in 1 2 3 4; do"
        " head -c 50000 /dev/zero | tr '\\0' x; head -c 50000 /dev/zero | tr '\\0' y >&2; done;"
        " exit 7"
    )
    result = run(command, values(), timeout_s=timeout_s)
    assert result.exit_code == 7
    assert result.stdout == "out\n" + "x" * 200000
    assert result.stderr == "err\n" + "y" * 200000
    assert not result.timed_out
    assert result.duration_s >= 0


def test_env_is_added_to_the_inherited_environment() -> None:
    result = run_cli('echo "$EXTRA $PATH"', values(), env={"EXTRA": "yes"})
    assert result.stdout == f"yes {os.environ['PATH']}\n"


@pytest.mark.parametrize("command", ["sleep 30", "sh -c 'sleep 30 & wait'"])
@BOTH
def test_a_timeout_kills_the_whole_process_group(run: Run, command: str) -> None:
    started = time.monotonic()
    result = run(f"echo before; echo oops >&2; {command}", values(), timeout_s=0.3)
    assert result.timed_out
    assert result.exit_code == -9
    assert (result.stdout, result.stderr) == ("before\n", "oops\n")
    # the pipes close only once every process holding them (the grandchild too) is dead
    assert time.monotonic() - started < 5


def test_cwd(tmp_path: Path) -> None:
    assert run_cli("pwd", values(), cwd=str(tmp_path)).stdout == f"{tmp_path}\n"
    with pytest.raises(InvalidArgument, match="missing"):
        run_cli("pwd", values(), cwd=str(tmp_path / "missing"))


def test_argv_runs_without_a_shell() -> None:
    result = run_argv(["printf", "[%s][%s]", "${v}", "a ${v} b"], values(v=INJECTION))
    assert result.stdout == f"[{INJECTION}][a {INJECTION} b]"
    assert run_argv(["no-such-program-xyz"], values()).exit_code == 127


def test_bash_and_sh_differ_where_they_should() -> None:
    probe = 'echo "[$BASH_VERSION]${v}"'
    assert run_cli(probe, values(v="!"), shell="bash").stdout.startswith("[5.")
    assert run_cli(probe, values(v="!"), shell="sh").stdout == "[]!\n"
    assert run_cli(probe, values(v="!"), shell="/bin/bash").stdout != "[]!\n"


@pytest.mark.parametrize("shell", ["fish", "powershell", "pwsh", "cmd"])
def test_unsupported_shells_are_named(shell: str) -> None:
    with pytest.raises(UnsupportedShell, match=shell):
        run_cli("echo hi", values(), shell=shell)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_receives_values_as_data() -> None:
    result = run_cli("echo ${v} \"${v}\" '${v}'", values(v=INJECTION), shell="zsh")
    assert result.stdout == " ".join([INJECTION] * 3) + "\n"


# --- on the event loop -----------------------------------------------------------------------

# The command starts a grandchild, writes its pid to the FIFO ${f}, and waits for it.
GRANDCHILD = """sh -c 'sleep 30 & echo $! > "$1"; wait' sh "${f}"; echo never"""


async def readable(fd: int, timeout_s: float) -> bool:
    """Whether ``fd`` becomes readable within ``timeout_s`` (waited for on the loop)."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await asyncio.wait_for(ready, timeout_s)
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)


async def started_grandchild(fifo: Path, task: asyncio.Future[Any]) -> int:
    """The pid the command wrote to ``fifo`` (opened first, so the command's write waits)."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert await readable(fd, 10), f"the command never wrote its grandchild's pid: {task}"
        return int(os.read(fd, 64))
    finally:
        os.close(fd)


async def ended(pid: int, timeout_s: float = 5) -> bool:
    """Whether process ``pid`` ends within ``timeout_s`` (its pidfd becomes readable)."""
    try:
        pidfd = PIDFD_OPEN(pid)
    except ProcessLookupError:
        return True
    try:
        return await readable(pidfd, timeout_s)
    finally:
        os.close(pidfd)


@pytest.fixture(params=["pidfd", "no-pidfd"])
def pidfd(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with pidfds, and without (a system without them: the wait goes to a thread)."""
    if request.param == "no-pidfd":
        monkeypatch.delattr(os, "pidfd_open")
    return str(request.param)


async def test_cancelling_the_wait_kills_the_whole_process_group(
    tmp_path: Path, pidfd: str
) -> None:
    fifo = tmp_path / "pid"
    os.mkfifo(fifo)
    started = time.monotonic()
    task = asyncio.ensure_future(run_cli_async(GRANDCHILD, values(f=str(fifo)), timeout_s=60))
    grandchild = await started_grandchild(fifo, task)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await ended(grandchild), "the grandchild outlived the cancelled command"
    assert time.monotonic() - started < 10


async def test_on_the_loop_without_pidfds_a_timeout_still_kills_the_group(pidfd: str) -> None:
    command = "echo before; echo oops >&2; sh -c 'sleep 30 & wait'"
    started = time.monotonic()
    result = await run_cli_async(command, values(), timeout_s=0.3)
    assert (result.timed_out, result.exit_code) == (True, -9)
    assert (result.stdout, result.stderr) == ("before\n", "oops\n")
    assert time.monotonic() - started < 5
    done = await run_cli_async("echo ${v}; exit 3", values(v=INJECTION), timeout_s=30)
    assert (done.exit_code, done.stdout, done.timed_out) == (3, INJECTION + "\n", False)


async def test_the_loop_keeps_running_while_a_command_runs() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    ticker = asyncio.ensure_future(tick())
    result = await run_cli_async("sleep 0.2; echo done", values())
    ticker.cancel()
    assert result.stdout == "done\n"
    assert ticks > 10  # the wait did not block the loop


async def test_argv_and_errors_on_the_loop(tmp_path: Path) -> None:
    result = await run_argv_async(["printf", "[%s]", "${v}"], values(v=INJECTION))
    assert result.stdout == f"[{INJECTION}]"
    missing = await run_argv_async(["no-such-program-xyz"], values())
    assert (missing.exit_code, missing.stderr) == (127, "no-such-program-xyz: command not found\n")
    with pytest.raises(InvalidArgument, match="missing"):
        await run_cli_async("pwd", values(), cwd=str(tmp_path / "missing"))
    with pytest.raises(UnsupportedShell, match="fish"):
        await run_cli_async("echo hi", values(), shell="fish")


def test_a_prepared_command_runs_again_with_new_values() -> None:
    prepared = prepare_shell(["echo ${a}", "echo '${b}'"])
    assert prepared.text == "echo \"${STEPSTONE_V1}\" && echo ''\"${STEPSTONE_V2}\"''"
    assert [ref.expr for ref in prepared.refs] == ["a", "b"]
    for a, b in (("1", "2"), (INJECTION, SINGLE_INJECTION)):
        assert run_cli(prepared, values(a=a, b=b)).stdout == f"{a}\n{b}\n"
