"""``ctx.ask``: a question to a human, as a named gate that only an allowed approver answers.

A gate is a signal wait whose JSON Schema is built here and stored with the wait, so every
process that delivers an answer (``stepstone approve``, ``stepstone answer``, ``client.signal``,
the HTTP API) checks it before it reaches the run, without the workflow's code. The payload is
always ``{"answer": ..., "by": WHO, "comment": ...}``:

- ``approval``: ``answer`` is true (approve) or false (reject);
- ``text``: a string; ``choice``: one of ``options`` (a list of them when ``multiple``);
- ``form``: an object valid against the ``schema`` given.

With ``approvers``, ``by`` is required and must be one of them, so no other caller can satisfy
the gate; the answer records who gave it either way. Each gate has its own name (its signal):
two gates need two answers, each given by name (``--gate``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from stepstone.core.frozen import frozen
from stepstone.errors import InvalidArgument

__all__ = ["ASK_KINDS", "Answer", "AskKind", "AskPlan", "plan_ask"]

AskKind = Literal["approval", "text", "choice", "form"]
ASK_KINDS: tuple[str, ...] = ("approval", "text", "choice", "form")


@frozen
class Answer:
    """A human's answer to ``ctx.ask``: ``value`` (bool for an approval, the text, the option
    chosen, the form's object), who gave it and their comment."""

    gate: str
    kind: str
    value: Any
    by: str | None = None
    comment: str | None = None

    @property
    def approved(self) -> bool:
        """An approval's verdict (any other kind of answer counts as approved)."""
        return self.value is not False


@frozen
class AskPlan:
    """A checked ``ctx.ask``: the gate (signal) name and the JSON Schema of its payload."""

    gate: str
    kind: str
    schema: dict[str, Any]

    def answer(self, payload: Mapping[str, Any]) -> Answer:
        return Answer(
            self.gate,
            self.kind,
            payload.get("answer"),
            payload.get("by"),
            payload.get("comment"),
        )


def plan_ask(
    question: object,
    kind: object,
    *,
    gate: object = None,
    options: Sequence[Any] | None = None,
    schema: Mapping[str, Any] | None = None,
    approvers: Sequence[str] | None = None,
    multiple: bool = False,
    allow_custom: bool = False,
    skippable: bool = False,
) -> AskPlan:
    """Check a ``ctx.ask``'s arguments (:class:`InvalidArgument` names the bad one) and build its
    gate's payload schema."""
    if not isinstance(question, str) or not question.strip():
        raise InvalidArgument(f"ctx.ask needs a question (a non-empty string), got {question!r}")
    if kind not in ASK_KINDS:
        raise InvalidArgument(f"ctx.ask kind= must be one of {', '.join(ASK_KINDS)}, got {kind!r}")
    name = "approval" if gate is None and kind == "approval" else gate
    if name is None:
        name = "answer"
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"ctx.ask gate= must be a non-empty string, got {gate!r}")
    answer = _answer_schema(str(kind), options, schema, multiple, allow_custom)
    if skippable:
        answer = {"anyOf": [answer, {"type": "null"}]}
    by: dict[str, Any] = {"type": "string", "minLength": 1}
    required = ["answer"]
    if approvers is not None:
        if isinstance(approvers, str) or not approvers:
            raise InvalidArgument("ctx.ask approvers= must be a non-empty list of names")
        if not all(isinstance(a, str) and a for a in approvers):
            raise InvalidArgument(f"ctx.ask approvers= must be names, got {list(approvers)!r}")
        by = {"enum": list(approvers)}
        required.append("by")
    return AskPlan(
        name,
        str(kind),
        {
            "type": "object",
            "properties": {"answer": answer, "by": by, "comment": {"type": "string"}},
            "required": required,
            "additionalProperties": False,
        },
    )


def _answer_schema(
    kind: str,
    options: Sequence[Any] | None,
    schema: Mapping[str, Any] | None,
    multiple: bool,
    allow_custom: bool,
) -> dict[str, Any]:
    if kind != "choice" and (options is not None or multiple or allow_custom):
        raise InvalidArgument(f"ctx.ask options= are for kind='choice', not {kind!r}")
    if kind != "form" and schema is not None:
        raise InvalidArgument(f"ctx.ask schema= is for kind='form', not {kind!r}")
    if kind == "approval":
        return {"type": "boolean"}
    if kind == "text":
        return {"type": "string"}
    if kind == "form":
        if not isinstance(schema, Mapping) or not schema:
            raise InvalidArgument("ctx.ask kind='form' needs schema= (a JSON Schema object)")
        from stepstone.core.jsonschema import check_schema

        check_schema(dict(schema))
        return dict(schema)
    if isinstance(options, str) or not options:
        raise InvalidArgument("ctx.ask kind='choice' needs options= (a non-empty list)")
    one: dict[str, Any] = {"enum": list(options)}
    if allow_custom:
        one = {"anyOf": [one, {"type": "string"}]}
    return {"type": "array", "items": one, "minItems": 1} if multiple else one
