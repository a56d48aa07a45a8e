"""The bodies of the checkpointed YAML steps (``cli``, ``api``, ``python``) and their logs.

Each body runs inside one ``ctx.step`` and returns what the journal records. A ``cli`` step
records ``{"outputs", "stdout", "stderr", "exit_code"}`` so its output stays with the run
(:func:`step_logs` reads it back for ``stepstone logs``); ``api`` and ``python`` steps record
``{"outputs": ...}``. A failure raises :class:`~stepstone.errors.SpecStepError` naming the step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from stepstone.core.frozen import frozen
from stepstone.errors import SpecStepError
from stepstone.spec.document import StepSpec, render_value
from stepstone.spec.expr import ExprProblem, compile_expr, to_text

if TYPE_CHECKING:
    from stepstone.core.model import StepRecord

__all__ = [
    "StepLog",
    "api_body",
    "check_outputs",
    "cli_body",
    "python_async_body",
    "python_body",
    "step_logs",
]

_TAIL = 400  # characters of stderr quoted in a failure


@frozen
class StepLog:
    """What one ``cli`` step printed, as recorded with the run."""

    step_id: str
    stdout: str
    stderr: str
    exit_code: int


def step_logs(steps: Sequence[StepRecord]) -> list[StepLog]:
    """The output of every recorded ``cli`` step of a run, in journal order (failed attempts
    are not recorded: a failed step's stderr tail is in its error)."""
    logs = []
    for record in steps:
        if not record.output_json:
            continue
        try:
            value = json.loads(record.output_json)
        except ValueError:
            continue
        if isinstance(value, dict) and {"stdout", "stderr", "exit_code"} <= value.keys():
            logs.append(
                StepLog(record.name, value["stdout"], value["stderr"], int(value["exit_code"]))
            )
    return logs


def evaluator(spec: StepSpec, scope: Mapping[str, Any], words: bool) -> Callable[[str], Any]:
    """``evaluate(expr_text)`` for the executors: the value of one ``${...}`` in ``scope``."""

    def evaluate(text: str) -> Any:
        try:
            return compile_expr(text, words=words).eval(scope)
        except ExprProblem as exc:
            raise SpecStepError(spec.id, exc.message, "ERR_EXPRESSION") from None

    return evaluate


def render(spec: StepSpec, field: str, scope: Mapping[str, Any], default: Any = None) -> Any:
    """The step's value template ``field`` rendered in ``scope``."""
    if field not in spec.values:
        return default
    try:
        return render_value(spec.values[field], scope)
    except ExprProblem as exc:
        raise SpecStepError(spec.id, f"{field}: {exc.message}", "ERR_EXPRESSION") from None


def check_outputs(spec: StepSpec, outputs: Any) -> None:
    """Raise ``ERR_STEP_OUTPUT_INVALID`` unless ``outputs`` matches the step's ``outputs``."""
    if spec.outputs_schema is None:
        return
    from stepstone.core.jsonschema import first_problem

    problem = first_problem(outputs, dict(spec.outputs_schema))
    if problem:
        raise SpecStepError(
            spec.id, f"outputs do not match the step's schema: {problem}", "ERR_STEP_OUTPUT_INVALID"
        )


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _TAIL else "..." + text[-_TAIL:]


async def cli_body(
    spec: StepSpec, scope: Mapping[str, Any], words: bool, defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """Run a ``cli`` step's command, waited for on the event loop (cancelling the step kills
    its process group); stdout is parsed as JSON (required when ``outputs`` is declared, else
    kept when it parses)."""
    from stepstone.spec.shell import run_argv_async, run_cli_async

    evaluate = evaluator(spec, scope, words)
    fields = spec.fields
    cwd = render(spec, "cwd", scope, fields.get("cwd"))
    env = {k: to_text(v) for k, v in (render(spec, "env", scope) or {}).items()}
    timeout = spec.timeout_s
    if "argv" in fields:
        argv = spec.command if isinstance(spec.command, tuple) else fields["argv"]
        result = await run_argv_async(argv, evaluate, cwd=cwd, timeout_s=timeout, env=env)
    else:
        shell = fields.get("shell", defaults.get("shell"))
        command = spec.command if spec.command is not None else fields["command"]
        assert not isinstance(command, tuple)
        result = await run_cli_async(
            command, evaluate, shell=shell, cwd=cwd, timeout_s=timeout, env=env
        )
    if result.timed_out:
        raise SpecStepError(
            spec.id, f"timed out after {timeout:g}s (the command was killed)", "ERR_TIMEOUT"
        )
    codes = fields.get("success", {}).get("exit_codes", [0])
    if result.exit_code not in codes:
        tail = _tail(result.stderr)
        raise SpecStepError(
            spec.id,
            f"exited with code {result.exit_code}" + (f": {tail}" if tail else ""),
            "ERR_STEP_FAILED",
        )
    outputs: Any = None
    try:
        outputs = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError as exc:
        if spec.outputs_schema is not None:
            raise SpecStepError(
                spec.id,
                f"stdout is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
                f"{_tail(result.stdout)}",
                "ERR_STEP_OUTPUT_INVALID",
            ) from None
    check_outputs(spec, outputs)
    return {
        "outputs": outputs,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "exit_code": result.exit_code,
    }


def api_body(
    spec: StepSpec, scope: Mapping[str, Any], allow_hosts: Sequence[str] | None
) -> dict[str, Any]:
    """Make an ``api`` step's request; outputs are the JSON response or ``{"body": text}``."""
    from stepstone.spec.http import call_api

    fields = spec.fields
    response = call_api(
        fields["method"],
        render(spec, "url", scope, fields["url"]),
        headers={k: to_text(v) for k, v in (render(spec, "headers", scope) or {}).items()},
        body=render(spec, "body", scope),
        timeout_s=spec.timeout_s or 30.0,
        allow_hosts=allow_hosts or (),
    )
    codes = fields.get("success", {}).get("status_codes", [200, 201, 204])
    if response.status not in codes:
        raise SpecStepError(
            spec.id,
            f"HTTP {response.status} (success is {codes}): {_tail(response.body_text)}",
            "ERR_STEP_FAILED",
        )
    outputs = response.json if response.json is not None else {"body": response.body_text}
    check_outputs(spec, outputs)
    return {"outputs": outputs, "status": response.status}


def python_body(spec: StepSpec, scope: Mapping[str, Any]) -> dict[str, Any]:
    """Call a ``python`` step's plain function with its rendered ``inputs`` as keyword
    arguments (a sync step body: the engine runs it on its step thread pool)."""
    fn = spec.function
    assert fn is not None
    outputs = fn(**(render(spec, "inputs", scope, {}) or {}))
    check_outputs(spec, outputs)
    return {"outputs": outputs}


async def python_async_body(spec: StepSpec, scope: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`python_body` for an ``async def`` function (awaited on the loop)."""
    fn = spec.function
    assert fn is not None
    outputs = await fn(**(render(spec, "inputs", scope, {}) or {}))
    check_outputs(spec, outputs)
    return {"outputs": outputs}
