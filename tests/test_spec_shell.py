"""The ``cli`` step's executor: values reach the shell as data, never as code."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from stepstone.errors import InvalidArgument, TemplateError, UnsupportedShell
from stepstone.spec.shell import (
    Ref,
    parse_template,
    render_shell,
    run_argv,
    run_cli,
    value_text,
)

INJECTION = 'x"; echo INJECTED-$(id -u); echo "'
SINGLE_INJECTION = "x'; echo INJECTED-$(id -u); echo '"
MARK = f"INJECTED-{os.getuid()}"


def values(**named: Any) -> Any:
    """An evaluator over plain names (the YAML compiler passes a CEL one)."""
    return lambda expr: named[expr]


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
def test_an_injection_string_is_printed_never_run(command: str, shell: str, injection: str) -> None:
    result = run_cli(command, values(v=injection), shell=shell)
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
def test_exit_code_and_both_streams_are_kept(timeout_s: float | None) -> None:
    command = "echo out; echo err >&2; head -c 200000 /dev/zero | tr '\\0' x; exit 7"
    result = run_cli(command, values(), timeout_s=timeout_s)
    assert (result.exit_code, result.stderr) == (7, "err\n")
    assert result.stdout == "out\n" + "x" * 200000
    assert not result.timed_out
    assert result.duration_s >= 0


def test_env_is_added_to_the_inherited_environment() -> None:
    result = run_cli('echo "$EXTRA $PATH"', values(), env={"EXTRA": "yes"})
    assert result.stdout == f"yes {os.environ['PATH']}\n"


@pytest.mark.parametrize("command", ["sleep 30", "sh -c 'sleep 30 & wait'"])
def test_a_timeout_kills_the_whole_process_group(command: str) -> None:
    started = time.monotonic()
    result = run_cli(f"echo before; echo oops >&2; {command}", values(), timeout_s=0.3)
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
