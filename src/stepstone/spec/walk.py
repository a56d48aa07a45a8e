"""Run a YAML document inside one run: each step kind as the engine's own calls.

``cli``/``api``/``python`` steps are ``ctx.step`` calls named by the step id; ``await_event``
is ``ctx.wait_for_signal`` (its ``input_schema`` checked at delivery); ``workflow`` is a child
run of the sub-workflow; ``foreach`` items and ``parallel`` branches that are one step are steps
in ``ctx.parallel`` batches, longer ones child runs of this same workflow (``spec_branch``), so
their steps are numbered within their own run and replays stay deterministic. What a step
produced is in ``steps.<id>`` of the scope, rebuilt identically on replay from the journal.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any

from stepstone.errors import SpecStepError, WaitTimeout
from stepstone.spec.document import StepSpec
from stepstone.spec.expr import Expr, ExprProblem
from stepstone.spec.steps import (
    api_body,
    check_outputs,
    cli_body,
    python_async_body,
    python_body,
    render,
)

if TYPE_CHECKING:
    from stepstone.core.context import WorkflowContext
    from stepstone.spec.workflow import SpecWorkflow

__all__ = ["Walk"]

MAX_STEPS = 10_000  # steps one sequence may run: a jump loop that never ends fails the run


class _Ended(Exception):
    """An ``end`` step was reached; carries the run's result."""

    def __init__(self, step_id: str, result: Any) -> None:
        super().__init__("end")
        self.step_id, self.result = step_id, result


class Walk:
    """One execution of a document (or of one of its branches) inside one run."""

    __slots__ = ("ctx", "scope", "wf")

    def __init__(
        self,
        ctx: WorkflowContext,
        wf: SpecWorkflow,
        inputs: Mapping[str, Any],
        scope: Mapping[str, Any] | None,
    ) -> None:
        self.ctx, self.wf = ctx, wf
        base = dict(scope or {})
        self.scope: dict[str, Any] = {
            "inputs": dict(inputs),
            "steps": dict(base.get("steps") or {}),
            "item": base.get("item"),
            "item_index": base.get("item_index"),
        }

    @property
    def words(self) -> bool:
        return self.wf.doc.words

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        """The scope as a step body sees it (a copy: later steps do not change it)."""
        return {**self.scope, "steps": dict(self.scope["steps"]), **extra}

    # --- sequences ---

    async def run(self, branch: str | None) -> Any:
        doc = self.wf.doc
        if branch is not None:
            return await self.branch(branch)
        try:
            await self.sequence(doc.steps)
        except _Ended as end:
            return end.result
        if not doc.outputs_from:
            return None
        result = {}
        for name, expr in doc.outputs_from.items():
            try:
                result[name] = expr.eval(self.scope)
            except ExprProblem:
                continue  # the step it names did not run on this path
        _check_result(doc.outputs_schema, result)
        return result

    async def sequence(self, steps: tuple[StepSpec, ...]) -> Any:
        """Run ``steps`` from the first; return the outputs of the last step run."""
        seq = self.wf.sequence(steps)
        at: int | None = 0
        count = 0
        last: Any = None
        while at is not None:
            spec = steps[at]
            count += 1
            if count > MAX_STEPS:
                raise SpecStepError(spec.id, f"more than {MAX_STEPS} steps ran: a loop?")
            if spec.when is not None and not self.truth(spec, spec.when, "if", self.scope):
                self.scope["steps"][spec.id] = {"outputs": None, "skipped": True}
                at = seq.after(at)
                continue
            if spec.kind == "end":
                raise _Ended(spec.id, render(spec, "result", self.scope))
            target = await self.execute(spec)
            last = self.scope["steps"].get(spec.id, {}).get("outputs")
            target = spec.next or target
            at = seq.index[target] if target else seq.after(at)
        return last

    async def branch(self, ref: str) -> Any:
        """A child run of one foreach item or inline parallel branch (``step_id`` or
        ``step_id#n``)."""
        step_id, _, n = ref.partition("#")
        spec = self.wf.steps_by_id.get(step_id)
        if spec is None:
            raise SpecStepError(step_id, "this workflow has no such step (the file changed?)")
        if n:
            steps = spec.branches[int(n)].steps
            before = set(self.scope["steps"])
            ended: dict[str, Any] = {}
            try:
                await self.sequence(steps)
            except _Ended as end:
                ended[end.step_id] = {"outputs": end.result}
            new = {k: v for k, v in self.scope["steps"].items() if k not in before}
            return {**new, **ended}
        try:
            return await self.sequence(spec.body)
        except _Ended as end:
            return end.result

    def truth(self, spec: StepSpec, expr: Expr, what: str, scope: Mapping[str, Any]) -> bool:
        value = self.value(spec, expr, what, scope)
        if not isinstance(value, bool):
            raise SpecStepError(
                spec.id,
                f"{what} ${{{expr.text}}} gave {value!r}, not true or false",
                "ERR_EXPRESSION",
            )
        return value

    def value(self, spec: StepSpec, expr: Expr, what: str, scope: Mapping[str, Any]) -> Any:
        try:
            return expr.eval(scope)
        except ExprProblem as exc:
            raise SpecStepError(spec.id, f"{what}: {exc.message}", "ERR_EXPRESSION") from None

    # --- steps ---

    def call(
        self, spec: StepSpec, scope: dict[str, Any], name: str | None = None
    ) -> Awaitable[Any]:
        """The checkpointed call of a cli/api/python step (its journal position taken now)."""
        name = name or spec.id
        doc = self.wf.doc
        if spec.kind == "cli":
            body = functools.partial(cli_body, spec, scope, doc.words, doc.defaults)
            return self.ctx.step(name, body, retry=spec.retry)
        if spec.kind == "api":
            hosts = [*doc.defaults.get("allow_hosts", ()), *spec.fields.get("allow_hosts", ())]
            api = functools.partial(api_body, spec, scope, hosts or None)
            return self.ctx.step(name, api, retry=spec.retry)
        run = python_async_body if inspect.iscoroutinefunction(spec.function) else python_body
        return self.ctx.step(name, run, spec, scope, retry=spec.retry, timeout_s=spec.timeout_s)

    async def execute(self, spec: StepSpec) -> str | None:
        """Run one step; return the id it jumps to, if any."""
        steps = self.scope["steps"]
        kind = spec.kind
        if kind in ("cli", "api", "python"):
            steps[spec.id] = await self.call(spec, self.snapshot())
        elif kind == "await_event":
            return await self.await_event(spec)
        elif kind == "switch":
            for case in spec.cases:
                if self.truth(spec, case.when, "when", self.scope):
                    return case.next
            return spec.default
        elif kind == "workflow":
            assert spec.sub is not None
            out = await self.ctx.child(spec.sub, render(spec, "inputs", self.scope, {}))
            check_outputs(spec, out)
            steps[spec.id] = {"outputs": out}
        elif kind == "foreach":
            steps[spec.id] = {"outputs": await self.foreach(spec)}
        elif kind == "parallel":
            steps[spec.id] = {"outputs": await self.parallel(spec)}
        return None

    async def await_event(self, spec: StepSpec) -> str | None:
        fields = spec.fields
        try:
            event = await self.ctx.wait_for_signal(
                fields["event_name"],
                schema=fields["input_schema"],
                timeout_s=spec.timeout_s,
                prompt=render(spec, "prompt", self.scope),
                summary=render(spec, "summary", self.scope),
                audience=fields["audience"],
                risk_level=fields.get("risk_level"),
                step=spec.id,
            )
        except WaitTimeout:
            if spec.on_timeout is None:
                raise
            self.scope["steps"][spec.id] = {"outputs": None, "timed_out": True}
            return spec.on_timeout
        self.scope["steps"][spec.id] = {"outputs": event}
        if not spec.cases:
            return None
        scope = {**self.scope, "event": event}
        for case in spec.cases:
            if self.truth(spec, case.when, "when", scope):
                return case.next
        raise SpecStepError(
            spec.id,
            f"no transition matches the event {fields['event_name']!r} ({event!r})",
            "ERR_NO_TRANSITION",
        )

    async def foreach(self, spec: StepSpec) -> list[Any]:
        assert spec.items is not None
        items = self.value(spec, spec.items, "items", self.scope)
        if not isinstance(items, list):
            raise SpecStepError(spec.id, f"items gave {items!r}, not a list", "ERR_EXPRESSION")
        body = spec.body[0] if len(spec.body) == 1 else None
        outputs: list[Any] = []
        for start in range(0, len(items), spec.max_concurrency):
            calls: list[Awaitable[Any]] = []
            kinds: list[str] = []
            for i in range(start, min(start + spec.max_concurrency, len(items))):
                scope = self.snapshot(item=items[i], item_index=i)
                if spec.sub is not None:
                    inputs = render(spec, "inputs", scope, None)
                    if inputs is None:
                        inputs = {"item": items[i], "item_index": i}
                    calls.append(self.ctx.child(spec.sub, inputs))
                    kinds.append("child")
                elif body is not None and body.is_single_call:
                    if body.when is not None and not self.truth(body, body.when, "if", scope):
                        kinds.append("skipped")
                        continue
                    calls.append(self.call(body, scope, f"{body.id}[{i}]"))
                    kinds.append("step")
                else:
                    branch_scope = {"steps": scope["steps"], "item": items[i], "item_index": i}
                    calls.append(
                        self.ctx.child(
                            self.wf,
                            self.scope["inputs"],
                            spec_branch=spec.id,
                            spec_scope=branch_scope,
                        )
                    )
                    kinds.append("child")
            results = iter(await self.ctx.parallel(*calls))
            for kind in kinds:
                if kind == "skipped":
                    outputs.append(None)
                elif kind == "step":
                    outputs.append(next(results)["outputs"])
                else:
                    outputs.append(next(results))
        return outputs

    async def parallel(self, spec: StepSpec) -> dict[str, Any]:
        calls: list[Awaitable[Any]] = []
        plan: list[tuple[str, StepSpec | None]] = []  # (how, step) per call
        merged: dict[str, Any] = {}
        for n, branch in enumerate(spec.branches):
            target = self.wf.steps_by_id[branch.start_at] if branch.start_at else None
            if target is None and len(branch.steps) == 1 and branch.steps[0].is_single_call:
                target = branch.steps[0] if branch.steps[0].when is None else None
            if target is not None and target.kind == "end":
                merged[target.id] = render(target, "result", self.scope)
            elif target is not None and target.kind == "workflow":
                assert target.sub is not None
                calls.append(self.ctx.child(target.sub, render(target, "inputs", self.scope, {})))
                plan.append(("child", target))
            elif target is not None:
                calls.append(self.call(target, self.snapshot()))
                plan.append(("step", target))
            else:
                branch_scope = {"steps": dict(self.scope["steps"])}
                calls.append(
                    self.ctx.child(
                        self.wf,
                        self.scope["inputs"],
                        spec_branch=f"{spec.id}#{n}",
                        spec_scope=branch_scope,
                    )
                )
                plan.append(("branch", None))
        results = await self.ctx.parallel(*calls)
        for (how, target), result in zip(plan, results, strict=True):
            if how == "branch":
                for step_id, record in result.items():
                    self.scope["steps"][step_id] = record
                    merged[step_id] = record.get("outputs") if isinstance(record, dict) else record
                continue
            assert target is not None
            record = result if how == "step" else {"outputs": result}
            self.scope["steps"][target.id] = record
            merged[target.id] = record["outputs"]
        return merged


def _check_result(schema: Mapping[str, Any] | None, result: dict[str, Any]) -> None:
    """The result built from ``workflow.outputs`` must match that schema (kept without its
    ``from:`` keys by the loader)."""
    if schema is None:
        return
    from stepstone.core.jsonschema import first_problem

    problem = first_problem(result, dict(schema))
    if problem:
        raise SpecStepError(
            "outputs",
            f"the run's result does not match workflow.outputs: {problem}",
            "ERR_STEP_OUTPUT_INVALID",
        )
