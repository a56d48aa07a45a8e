"""The step graph of a YAML workflow: ids, jump targets, what follows what, reachability.

Steps run in order; ``next``, transitions, switch cases/default and ``on_timeout`` jump. Two
rules decide what *falls through* (follows a step that did not jump):

* a step run as a ``parallel`` branch (``start_at``) belongs to that parallel step: it runs once,
  inside it, and the sequence passes over it (checkpointflow 1.10 runs such steps a second time
  after the parallel step; stepstone runs each step once);
* an ``end`` step that some step jumps to is reached only by that jump: falling into it completes
  the run as if the steps ended there (so the README's ``apply`` -> ``rejected`` order does not
  end an approved run as rejected).
"""

from __future__ import annotations

from collections.abc import Iterator

from stepstone.core.frozen import frozen
from stepstone.spec.document import StepSpec
from stepstone.spec.source import JsonPath, Source, did_you_mean

__all__ = ["Sequence_", "check_graph"]

BRANCH_KINDS = ("cli", "api", "python", "end", "workflow")


@frozen
class Sequence_:
    """One list of steps (the workflow's, a foreach body's, an inline branch's) and its rules."""

    steps: tuple[StepSpec, ...]
    index: dict[str, int]
    owned: frozenset[str]
    end_targets: frozenset[str]

    @classmethod
    def of(cls, steps: tuple[StepSpec, ...]) -> Sequence_:
        index = {s.id: i for i, s in enumerate(steps)}
        owned = frozenset(b.start_at for s in steps for b in s.branches if b.start_at)
        targets = {t for s in steps for t in _jumps(s)}
        ends = frozenset(t for t in targets if t in index and steps[index[t]].kind == "end")
        return cls(steps, index, owned, ends)

    def after(self, i: int) -> int | None:
        """The index of the step that follows step ``i`` when it does not jump, or None when
        the run completes there."""
        j = i + 1
        while j < len(self.steps) and self.steps[j].id in self.owned:
            j += 1
        if j >= len(self.steps) or self.steps[j].id in self.end_targets:
            return None
        return j


def _jumps(spec: StepSpec) -> Iterator[str]:
    if spec.next:
        yield spec.next
    for case in spec.cases:
        yield case.next
    if spec.default:
        yield spec.default
    if spec.on_timeout:
        yield spec.on_timeout


def _successors(seq: Sequence_, i: int) -> Iterator[int]:
    spec = seq.steps[i]
    for target in _jumps(spec):
        yield seq.index[target]
    for branch in spec.branches:
        if branch.start_at:
            yield seq.index[branch.start_at]
    if (spec.kind == "end" and spec.when is None) or spec.next:
        return
    falls = spec.when is not None or not (
        (spec.kind == "await_event" and spec.cases) or (spec.kind == "switch" and spec.default)
    )
    if falls and spec.id not in seq.owned:
        j = seq.after(i)
        if j is not None:
            yield j


def check_graph(source: Source, steps: tuple[StepSpec, ...], path: JsonPath) -> frozenset[str]:
    """Check ids, references and reachability of one list of steps; return the ids of the
    steps that run as parallel branches."""
    seen: dict[str, int] = {}
    for i, spec in enumerate(steps):
        if spec.id in seen:
            raise source.error(
                (*path, i, "id"), f"duplicate step id {spec.id!r} (also step {seen[spec.id]})"
            )
        seen[spec.id] = i
    seq = Sequence_.of(steps)
    for i in range(len(steps)):
        _check_refs(source, seq, i, (*path, i))
    reached = {0}
    todo = [0]
    while todo:
        for j in _successors(seq, todo.pop()):
            if j not in reached:
                reached.add(j)
                todo.append(j)
    for i, spec in enumerate(steps):
        if i not in reached:
            raise source.error(
                (*path, i),
                f"step {spec.id!r} is unreachable: no step jumps to it and the step before it "
                "does not continue to it",
            )
    return seq.owned


def _check_refs(source: Source, seq: Sequence_, i: int, at: JsonPath) -> None:
    spec = seq.steps[i]
    known = seq.index

    def check(target: str, where: JsonPath) -> None:
        if target not in known:
            hint = did_you_mean(target, known)
            raise source.error(where, f"no step {target!r}{hint}")

    if spec.next:
        check(spec.next, (*at, "next"))
    rules = "transitions" if spec.kind == "await_event" else "cases"
    for n, case in enumerate(spec.cases):
        check(case.next, (*at, rules, n, "next"))
    if spec.default:
        check(spec.default, (*at, "default"))
    if spec.on_timeout:
        check(spec.on_timeout, (*at, "on_timeout", "next"))
    for n, branch in enumerate(spec.branches):
        if branch.start_at is None:
            continue
        where = (*at, "branches", n, "start_at")
        check(branch.start_at, where)
        target = seq.steps[known[branch.start_at]]
        if target is spec:
            raise source.error(where, "a parallel step cannot run itself as a branch")
        if target.kind not in BRANCH_KINDS or target.next or target.when is not None:
            raise source.error(
                where,
                f"branch step {target.id!r} must be a {', '.join(BRANCH_KINDS)} step without "
                "'if' or 'next' (run longer branches as inline 'steps' in stepstone/v1)",
            )
    if spec.kind == "end" and spec.next:
        raise source.error((*at, "next"), "an end step has no next step")
