"""Check a YAML workflow document's structure and compile its parts, before anything runs.

Every problem raises :class:`~stepstone.errors.SpecError` at its ``file:line:column`` with the
JSON path: unknown keys and step kinds (with a did-you-mean), wrong types, expressions CEL does
not compile, JSON Schemas that are not Draft 2020-12. References between steps and reachability
are checked by :mod:`stepstone.spec.graph`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from stepstone.core.retry import RetryPolicy
from stepstone.errors import InvalidArgument
from stepstone.spec.document import (
    CHECKPOINTFLOW,
    STEPSTONE,
    VERSIONS,
    Branch,
    Case,
    Document,
    StepSpec,
)
from stepstone.spec.expr import Expr, ExprProblem, compile_condition, compile_template
from stepstone.spec.graph import check_graph
from stepstone.spec.source import JsonPath, Source, did_you_mean

if TYPE_CHECKING:
    from stepstone.spec.workflow import SpecWorkflow

__all__ = ["STEP_FIELDS", "check_document"]

LoadSub = Callable[[str, JsonPath], "SpecWorkflow"]
ImportFunction = Callable[[str, JsonPath], Callable[..., Any]]

COMMON = frozenset(
    {"id", "kind", "name", "description", "if", "timeout_seconds", "risk_level", "retry"}
    | {"outputs", "inputs", "tags", "next"}
)
STEP_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # kind: (required, optional) besides the common fields
    "cli": (frozenset(), frozenset({"command", "shell", "cwd", "success", "argv", "env"})),
    "api": (
        frozenset({"method", "url"}),
        frozenset({"headers", "body", "success", "allow_hosts"}),
    ),
    "await_event": (
        frozenset({"audience", "event_name", "input_schema"}),
        frozenset({"prompt", "summary", "transitions", "on_timeout"}),
    ),
    "end": (frozenset(), frozenset({"result"})),
    "switch": (frozenset({"cases"}), frozenset({"default"})),
    "foreach": (frozenset({"items"}), frozenset({"body", "workflow_ref", "max_concurrency"})),
    "parallel": (frozenset({"branches"}), frozenset()),
    "workflow": (frozenset({"workflow_ref"}), frozenset()),
    "python": (frozenset({"function"}), frozenset()),
}
EXTRAS = {("cli", "argv"), ("cli", "env"), ("api", "allow_hosts"), ("python", "function")}
EXTRA_KINDS = frozenset({"python"})
WORKFLOW_FIELDS = frozenset(
    {"id", "name", "description", "version", "defaults", "inputs", "steps", "outputs"}
)


def check_document(source: Source, load_sub: LoadSub, import_function: ImportFunction) -> Document:
    """The checked :class:`Document` of ``source``; raises SpecError at the first problem."""
    return Checker(source, load_sub, import_function).document()


class Checker:
    __slots__ = ("import_function", "load_sub", "source", "version")

    def __init__(self, source: Source, load_sub: LoadSub, import_function: ImportFunction) -> None:
        self.source, self.load_sub, self.import_function = source, load_sub, import_function
        self.version = CHECKPOINTFLOW

    @property
    def words(self) -> bool:
        return self.version == CHECKPOINTFLOW

    # --- shapes ---

    def mapping(self, value: Any, path: JsonPath, what: str = "a mapping") -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.source.error(path, f"expected {what}, got {_kind(value)}")
        return value

    def keys(self, value: dict[str, Any], path: JsonPath, allowed: Iterable[str]) -> None:
        allowed = set(allowed)
        for key in value:
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                raise self.source.error((*path, key), f"unknown key {key!r}{hint}", key=True)

    def string(self, value: Any, path: JsonPath, *, empty: bool = False) -> str:
        if not isinstance(value, str) or (not empty and not value):
            got = "an empty string" if value == "" else _kind(value)
            if isinstance(value, bool | int | float) or value is None:
                # `command: true`, `version: 1.0`: YAML read a bare word or number as a value
                got += f' (YAML reads it unquoted: write "{_yaml_word(value)}" for the text)'
            raise self.source.error(path, f"expected a non-empty string, got {got}")
        return value

    def number(self, value: Any, path: JsonPath, *, integer: bool = False, low: float = 0) -> float:
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if not ok or isinstance(value, bool) or value < low:
            what = "an integer" if integer else "a number"
            raise self.source.error(path, f"expected {what} >= {low:g}, got {value!r}")
        return float(value)

    def strings(self, value: Any, path: JsonPath) -> list[str]:
        if not isinstance(value, list):
            raise self.source.error(path, f"expected a list of strings, got {_kind(value)}")
        return [self.string(v, (*path, i), empty=True) for i, v in enumerate(value)]

    def schema(self, value: Any, path: JsonPath) -> dict[str, Any]:
        schema = self.mapping(value, path, "a JSON Schema (a mapping)")
        from stepstone.core.jsonschema import check_schema

        try:
            check_schema(schema)
        except InvalidArgument as exc:
            raise self.source.error(path, str(exc)) from None
        return schema

    def expr(self, value: Any, path: JsonPath) -> Expr:
        text = self.string(value, path)
        try:
            return compile_condition(text, words=self.words)
        except ExprProblem as exc:
            raise self.source.error_at(path, exc.offset, exc.message) from None

    def values(self, value: Any, path: JsonPath) -> Any:
        """``value`` with each string holding ``${...}`` compiled into a Template."""
        if isinstance(value, str):
            if "${" not in value:
                return value
            try:
                return compile_template(value, words=self.words)
            except ExprProblem as exc:
                raise self.source.error_at(path, exc.offset, exc.message) from None
        if isinstance(value, dict):
            return {k: self.values(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.values(v, (*path, i)) for i, v in enumerate(value)]
        return value

    # --- the document ---

    def document(self) -> Document:
        src = self.source
        root = self.mapping(src.data, (), "a mapping with schema_version and workflow")
        version = root.get("schema_version")
        if version not in VERSIONS:
            where: JsonPath = ("schema_version",) if "schema_version" in root else ()
            said = f"{version!r} is not supported" if version is not None else "missing"
            raise src.error(where, f"schema_version {said} (use {' or '.join(VERSIONS)})")
        self.version = version
        self.keys(root, (), ("schema_version", "workflow"))
        if "workflow" not in root:
            raise src.error((), "missing required key 'workflow'")
        wf = self.mapping(root["workflow"], ("workflow",))
        at: JsonPath = ("workflow",)
        self.keys(wf, at, WORKFLOW_FIELDS)
        for key in ("id", "steps"):
            if key not in wf:
                raise src.error(at, f"missing required key {key!r}")
        wf_id = self.string(wf["id"], (*at, "id"))
        for key in ("name", "description", "version"):
            if key in wf:
                self.string(wf[key], (*at, key), empty=True)
        defaults = self.defaults(wf.get("defaults", {}), (*at, "defaults"))
        inputs = self.schema(wf["inputs"], (*at, "inputs")) if "inputs" in wf else None
        outputs, outputs_from = None, {}
        if "outputs" in wf:
            outputs = self.schema(wf["outputs"], (*at, "outputs"))
            outputs_from = self.outputs_from(outputs, (*at, "outputs"))
            outputs = _without_from(outputs)
        steps = self.steps(wf["steps"], (*at, "steps"), defaults)
        owned = check_graph(src, steps, (*at, "steps"))
        return Document(
            file=src.file,
            schema_version=version,
            id=wf_id,
            data=root,
            steps=steps,
            inputs_schema=inputs,
            outputs_schema=outputs,
            outputs_from=outputs_from,
            defaults=defaults,
            owned=owned,
        )

    def defaults(self, value: Any, path: JsonPath) -> dict[str, Any]:
        defaults = self.mapping(value, path)
        if self.version == STEPSTONE:
            self.keys(defaults, path, ("shell", "allow_hosts"))
        if "shell" in defaults:
            self.string(defaults["shell"], (*path, "shell"))
        if "allow_hosts" in defaults:
            self.strings(defaults["allow_hosts"], (*path, "allow_hosts"))
        return defaults

    def outputs_from(self, schema: dict[str, Any], path: JsonPath) -> dict[str, Expr]:
        props = schema.get("properties")
        out: dict[str, Expr] = {}
        if isinstance(props, dict):
            for name, prop in props.items():
                if isinstance(prop, dict) and "from" in prop:
                    out[name] = self.expr(prop["from"], (*path, "properties", name, "from"))
        return out

    def steps(
        self, value: Any, path: JsonPath, defaults: Mapping[str, Any]
    ) -> tuple[StepSpec, ...]:
        if not isinstance(value, list) or not value:
            raise self.source.error(path, f"expected a non-empty list of steps, got {value!r}")
        return tuple(self.step(v, (*path, i), defaults) for i, v in enumerate(value))

    def step(self, value: Any, path: JsonPath, defaults: Mapping[str, Any]) -> StepSpec:
        src = self.source
        raw = self.mapping(value, path, "a step (a mapping with id and kind)")
        for key in ("id", "kind"):
            if key not in raw:
                raise src.error(path, f"missing required key {key!r}")
        step_id = self.string(raw["id"], (*path, "id"))
        kind = self.string(raw["kind"], (*path, "kind"))
        if kind not in STEP_FIELDS:
            hint = did_you_mean(kind, STEP_FIELDS)
            raise src.error((*path, "kind"), f"unknown step kind {kind!r}{hint}")
        if kind in EXTRA_KINDS and self.version != STEPSTONE:
            raise src.error((*path, "kind"), f"kind {kind!r} needs schema_version: {STEPSTONE}")
        required, optional = STEP_FIELDS[kind]
        self.keys(raw, path, COMMON | required | optional)
        for key in sorted(required):
            if key not in raw:
                raise src.error(path, f"{kind} step {step_id!r} needs {key!r}")
        for key in raw:
            if (kind, key) in EXTRAS and self.version != STEPSTONE:
                raise src.error(
                    (*path, key), f"{key!r} needs schema_version: {STEPSTONE}", key=True
                )
        from stepstone.spec.kinds import build_step

        return build_step(self, raw, step_id, kind, path, defaults)

    def retry(self, value: Any, path: JsonPath) -> RetryPolicy:
        retry = self.mapping(value, path)
        self.keys(retry, path, ("max_attempts", "backoff_seconds", "strategy"))
        attempts = int(
            self.number(retry.get("max_attempts", 1), (*path, "max_attempts"), integer=True, low=1)
        )
        delay = self.number(retry.get("backoff_seconds", 1), (*path, "backoff_seconds"))
        strategy = retry.get("strategy", "fixed")
        if strategy not in ("fixed", "exponential"):
            raise self.source.error(
                (*path, "strategy"), f"expected 'fixed' or 'exponential', got {strategy!r}"
            )
        return RetryPolicy(
            max_attempts=attempts,
            initial_delay_s=delay,
            backoff=2.0 if strategy == "exponential" else 1.0,
            max_delay_s=max(60.0, delay),
            jitter=False,
        )

    def cases(self, value: Any, path: JsonPath) -> tuple[Case, ...]:
        if not isinstance(value, list):
            raise self.source.error(path, f"expected a list of {{when, next}}, got {_kind(value)}")
        out = []
        for i, item in enumerate(value):
            at = (*path, i)
            rule = self.mapping(item, at, "a {when, next} mapping")
            self.keys(rule, at, ("when", "next"))
            for key in ("when", "next"):
                if key not in rule:
                    raise self.source.error(at, f"missing required key {key!r}")
            out.append(
                Case(
                    self.expr(rule["when"], (*at, "when")), self.string(rule["next"], (*at, "next"))
                )
            )
        return tuple(out)

    def branches(
        self, value: Any, path: JsonPath, defaults: Mapping[str, Any]
    ) -> tuple[Branch, ...]:
        if not isinstance(value, list) or not value:
            raise self.source.error(path, f"expected a non-empty list of branches, got {value!r}")
        out = []
        for i, item in enumerate(value):
            at = (*path, i)
            branch = self.mapping(item, at, "a branch ({start_at: step id})")
            allowed = ("start_at", "steps") if self.version == STEPSTONE else ("start_at",)
            self.keys(branch, at, allowed)
            if ("start_at" in branch) == ("steps" in branch):
                need = "'start_at' or 'steps'" if self.version == STEPSTONE else "'start_at'"
                raise self.source.error(at, f"a branch needs exactly one of {need}")
            if "start_at" in branch:
                out.append(Branch(self.string(branch["start_at"], (*at, "start_at"))))
            else:
                out.append(Branch(None, self.steps(branch["steps"], (*at, "steps"), defaults)))
        return tuple(out)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{type(value).__name__} {value!r}"


def _yaml_word(value: object) -> str:
    """How a scalar YAML read as a non-string looks as text (``true``, ``1.5``, ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _without_from(schema: dict[str, Any]) -> dict[str, Any]:
    """``workflow.outputs`` as plain JSON Schema: the ``from:`` of each property says where the
    value comes from (read into ``outputs_from``) and is left out of the schema the result is
    checked against."""
    props = schema.get("properties")
    if not isinstance(props, dict):
        return schema
    plain = {
        k: {kk: vv for kk, vv in v.items() if kk != "from"} if isinstance(v, dict) else v
        for k, v in props.items()
    }
    return {**schema, "properties": plain}
