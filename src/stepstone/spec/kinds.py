"""The per-kind checks of a YAML step's fields, and the :class:`StepSpec` built from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stepstone.core.retry import NO_RETRY
from stepstone.spec.document import StepSpec
from stepstone.spec.graph import check_graph
from stepstone.spec.source import JsonPath

if TYPE_CHECKING:
    from stepstone.spec.shell_quoting import ShellCommand
    from stepstone.spec.template import Template
    from stepstone.spec.validate import Checker

__all__ = ["build_step"]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_UNTIMED = {  # composite steps: a timeout is refused rather than silently not enforced
    "foreach": "put timeout_seconds on the steps of its body",
    "parallel": "put timeout_seconds on the steps of its branches",
    "workflow": "put timeout_seconds on the sub-workflow's steps",
}
SHELLS = ("sh", "bash", "zsh")


def build_step(
    c: Checker,
    raw: dict[str, Any],
    step_id: str,
    kind: str,
    path: JsonPath,
    defaults: Mapping[str, Any],
) -> StepSpec:
    src = c.source
    extra: dict[str, Any] = {}
    for key in ("name", "description"):
        if key in raw:
            c.string(raw[key], (*path, key), empty=True)
    if "tags" in raw:
        c.strings(raw["tags"], (*path, "tags"))
    if "risk_level" in raw and raw["risk_level"] not in ("low", "medium", "high"):
        raise src.error(
            (*path, "risk_level"), f"expected low, medium or high, got {raw['risk_level']!r}"
        )
    when = c.expr(raw["if"], (*path, "if")) if "if" in raw else None
    nxt = c.string(raw["next"], (*path, "next")) if "next" in raw else None
    retry = c.retry(raw["retry"], (*path, "retry")) if "retry" in raw else NO_RETRY
    timeout = None
    if "timeout_seconds" in raw:
        timeout = (
            c.number(raw["timeout_seconds"], (*path, "timeout_seconds"), integer=c.words) or None
        )
    if timeout is not None and kind in _UNTIMED:
        raise src.error(
            (*path, "timeout_seconds"),
            f"a {kind} step has no timeout of its own here: {_UNTIMED[kind]}",
        )
    outputs = c.schema(raw["outputs"], (*path, "outputs")) if "outputs" in raw else None
    values: dict[str, Any] = {}
    if "inputs" in raw:
        values["inputs"] = c.values(c.mapping(raw["inputs"], (*path, "inputs")), (*path, "inputs"))
    if "success" in raw:
        success = c.mapping(raw["success"], (*path, "success"))
        c.keys(success, (*path, "success"), ("exit_codes", "status_codes"))
        for key, low, high in (("exit_codes", -(2**31), 2**31), ("status_codes", 100, 599)):
            if key in success:
                codes = success[key]
                if not isinstance(codes, list) or not all(
                    isinstance(x, int) and not isinstance(x, bool) and low <= x <= high
                    for x in codes
                ):
                    raise src.error(
                        (*path, "success", key), f"expected a list of integers in [{low}, {high}]"
                    )
    if kind == "cli":
        if ("command" in raw) == ("argv" in raw):
            raise src.error(path, f"cli step {step_id!r} needs exactly one of 'command' or 'argv'")
        if "command" in raw:
            cmd = raw["command"]
            if isinstance(cmd, list):
                c.strings(cmd, (*path, "command"))
            else:
                c.string(cmd, (*path, "command"))
            values["command"] = c.values(cmd, (*path, "command"))
            extra["command"] = _prepare_shell(c, cmd, (*path, "command"))
        else:
            c.strings(raw["argv"], (*path, "argv"))
            values["argv"] = c.values(raw["argv"], (*path, "argv"))
            extra["command"] = _prepare_argv(c, raw["argv"], (*path, "argv"))
        if "cwd" in raw:
            values["cwd"] = c.values(c.string(raw["cwd"], (*path, "cwd")), (*path, "cwd"))
        shell = raw.get("shell", defaults.get("shell"))
        if shell is not None and c.string(shell, (*path, "shell")).rsplit("/", 1)[-1] not in SHELLS:
            where = (*path, "shell") if "shell" in raw else ("workflow", "defaults", "shell")
            raise src.error(
                where, f"shell {shell!r}: cli steps run with sh, bash or zsh (or argv:)"
            )
        if "env" in raw:
            env = c.mapping(raw["env"], (*path, "env"))
            for key, val in env.items():
                c.string(val, (*path, "env", key), empty=True)
            values["env"] = c.values(env, (*path, "env"))
    elif kind == "api":
        if raw["method"] not in METHODS:
            raise src.error(
                (*path, "method"), f"expected one of {', '.join(METHODS)}, got {raw['method']!r}"
            )
        values["url"] = c.values(c.string(raw["url"], (*path, "url")), (*path, "url"))
        if "headers" in raw:
            values["headers"] = c.values(
                c.mapping(raw["headers"], (*path, "headers")), (*path, "headers")
            )
        if "body" in raw:
            values["body"] = c.values(raw["body"], (*path, "body"))
        if "allow_hosts" in raw:
            c.strings(raw["allow_hosts"], (*path, "allow_hosts"))
    elif kind == "await_event":
        if raw["audience"] not in ("user", "agent", "system"):
            raise src.error(
                (*path, "audience"), f"expected user, agent or system, got {raw['audience']!r}"
            )
        c.string(raw["event_name"], (*path, "event_name"))
        c.schema(raw["input_schema"], (*path, "input_schema"))
        for key in ("prompt", "summary"):
            if key in raw:
                values[key] = c.values(c.string(raw[key], (*path, key), empty=True), (*path, key))
        if "transitions" in raw:
            extra["cases"] = c.cases(raw["transitions"], (*path, "transitions"))
        if "on_timeout" in raw:
            on = c.mapping(raw["on_timeout"], (*path, "on_timeout"))
            c.keys(on, (*path, "on_timeout"), ("next",))
            if "next" in on:
                extra["on_timeout"] = c.string(on["next"], (*path, "on_timeout", "next"))
    elif kind == "end":
        if "result" in raw:
            values["result"] = c.values(raw["result"], (*path, "result"))
    elif kind == "switch":
        extra["cases"] = c.cases(raw["cases"], (*path, "cases"))
        if not extra["cases"]:
            raise src.error((*path, "cases"), "a switch needs at least one case")
        if "default" in raw:
            extra["default"] = c.string(raw["default"], (*path, "default"))
    elif kind == "foreach":
        extra["items"] = c.expr(raw["items"], (*path, "items"))
        if ("body" in raw) == ("workflow_ref" in raw):
            raise src.error(
                path, f"foreach step {step_id!r} needs exactly one of 'body' or 'workflow_ref'"
            )
        if "body" in raw:
            extra["body"] = c.steps(raw["body"], (*path, "body"), defaults)
            check_graph(src, extra["body"], (*path, "body"))
        else:
            ref = c.string(raw["workflow_ref"], (*path, "workflow_ref"))
            extra["sub"] = c.load_sub(ref, (*path, "workflow_ref"))
        if "max_concurrency" in raw:
            extra["max_concurrency"] = int(
                c.number(raw["max_concurrency"], (*path, "max_concurrency"), integer=True, low=1)
            )
    elif kind == "parallel":
        extra["branches"] = c.branches(raw["branches"], (*path, "branches"), defaults)
        for i, branch in enumerate(extra["branches"]):
            if branch.steps:
                check_graph(src, branch.steps, (*path, "branches", i, "steps"))
    elif kind == "workflow":
        ref = c.string(raw["workflow_ref"], (*path, "workflow_ref"))
        extra["sub"] = c.load_sub(ref, (*path, "workflow_ref"))
    elif kind == "python":
        text = c.string(raw["function"], (*path, "function"))
        extra["function"] = c.import_function(text, (*path, "function"))
    return StepSpec(
        id=step_id,
        kind=kind,
        fields=raw,
        when=when,
        next=nxt,
        retry=retry,
        timeout_s=timeout,
        outputs_schema=outputs,
        values=values,
        **extra,
    )


def _prepare_shell(c: Checker, command: str | list[str], path: JsonPath) -> ShellCommand:
    """The command quoted once for every run; refuse, at load, a ``${...}`` standing where no
    value can be passed safely."""
    from stepstone.errors import TemplateError
    from stepstone.spec.shell import prepare_shell

    try:
        return prepare_shell(command)
    except TemplateError as exc:
        if isinstance(command, str):
            raise c.source.error_at(path, exc.column - 1, exc.problem) from None
        raise c.source.error(path, exc.problem) from None


def _prepare_argv(c: Checker, argv: list[str], path: JsonPath) -> tuple[Template, ...]:
    """Each argument with its ``${...}`` located once for every run."""
    from stepstone.errors import TemplateError
    from stepstone.spec.shell import parse_template

    templates = []
    for i, arg in enumerate(argv):
        try:
            templates.append(parse_template(arg))
        except TemplateError as exc:
            raise c.source.error_at((*path, i), exc.column - 1, exc.problem) from None
    return tuple(templates)
