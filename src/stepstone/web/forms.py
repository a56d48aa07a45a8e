"""The dashboard's answer forms: a run's signal wait (a ``ctx.ask`` gate or a plain signal) turned
into fields built from the wait's JSON Schema.

The page's script reads the fields back into a JSON payload and sends it as the wait's signal
through the JSON API, which checks it against the same schema (422 naming the path when it does
not fit): the form only helps, the schema decides. What a field cannot show (a nested object, a
type union) is a JSON text box.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from stepstone.client.views import SignalWait

__all__ = ["AnswerForm", "FormField", "form_for"]

Widget = Literal["text", "textarea", "number", "integer", "checkbox", "select", "multi", "json"]


@dataclass(frozen=True, slots=True)
class FormField:
    """One input: where its value goes in the payload (``path``, JSON keys from the root; empty
    for the whole payload) and how it is entered. ``options`` are JSON texts (select, multi,
    suggestions of a text field)."""

    path: tuple[str, ...]
    label: str
    widget: Widget
    required: bool = False
    options: tuple[str, ...] = ()
    description: str | None = None
    default: str | None = None

    @property
    def path_json(self) -> str:
        return json.dumps(list(self.path))

    @property
    def name(self) -> str:
        return ".".join(self.path) or "payload"


@dataclass(frozen=True, slots=True)
class AnswerForm:
    """What the page shows for one signal wait: the run holding it (the run itself or a child it
    waits for), the signal name, the question and the fields. ``kind``: the ``ctx.ask`` kind, or
    ``None`` for a plain signal wait (its payload is the fields' object itself)."""

    run_id: str
    gate: str
    kind: str | None
    question: str | None
    fields: tuple[FormField, ...] = ()
    skippable: bool = False
    approvers: tuple[str, ...] = ()
    summary: str | None = None
    depth: int = 0

    @property
    def approval(self) -> bool:
        return self.kind == "approval"


def form_for(hold: SignalWait) -> AnswerForm:
    """The form answering ``hold``: a ``ctx.ask`` gate's ``answer`` (plus ``by`` and ``comment``),
    or a plain wait's payload, from the schema stored with the wait."""
    wait = hold.wait
    schema = json.loads(wait.schema_json) if wait.schema_json else None
    info = wait.info
    summary = info.summary if info is not None else None
    if info is None or info.ask is None or not isinstance(schema, dict):
        return AnswerForm(
            hold.run_id,
            hold.event,
            None,
            info.prompt if info is not None else None,
            _payload_fields(schema),
            summary=summary,
            depth=hold.depth,
        )
    props = schema.get("properties", {})
    answer, skippable = _unwrap_null(props.get("answer", {}))
    by = props.get("by", {})
    approvers = tuple(str(a) for a in by.get("enum", ())) if isinstance(by, dict) else ()
    fields = () if info.ask == "approval" else _answer_fields(info.ask, answer)
    return AnswerForm(
        hold.run_id,
        hold.event,
        info.ask,
        info.prompt,
        fields,
        skippable=skippable,
        approvers=approvers,
        summary=summary,
        depth=hold.depth,
    )


def _unwrap_null(schema: Any) -> tuple[dict[str, Any], bool]:
    """``anyOf: [S, {"type": "null"}]`` (a skippable gate) is ``S``, skippable."""
    if isinstance(schema, dict) and isinstance(schema.get("anyOf"), list):
        rest = [s for s in schema["anyOf"] if s != {"type": "null"}]
        if len(rest) == 1 and len(schema["anyOf"]) == 2:
            return dict(rest[0]), True
    return (dict(schema) if isinstance(schema, dict) else {}), False


def _answer_fields(kind: str, answer: dict[str, Any]) -> tuple[FormField, ...]:
    if kind == "form" and _is_object(answer):
        return _object_fields(answer, ("answer",))
    return (_field(("answer",), "Answer", answer, required=True, long_text=kind == "text"),)


def _payload_fields(schema: Any) -> tuple[FormField, ...]:
    if isinstance(schema, dict) and _is_object(schema):
        return _object_fields(schema, ())
    return (FormField((), "Payload (JSON)", "json", required=schema is not None),)


def _is_object(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "object" and isinstance(schema.get("properties"), dict)


def _object_fields(schema: dict[str, Any], at: tuple[str, ...]) -> tuple[FormField, ...]:
    required = set(schema.get("required", ()))
    return tuple(
        _field((*at, name), str(sub.get("title") or name), sub, required=name in required)
        for name, sub in schema["properties"].items()
        if isinstance(sub, dict)
    )


def _options(values: Any) -> tuple[str, ...]:
    return tuple(json.dumps(v) for v in values) if isinstance(values, list) else ()


def _field(
    path: tuple[str, ...],
    label: str,
    schema: dict[str, Any],
    *,
    required: bool,
    long_text: bool = False,
) -> FormField:
    """The widget for one value's schema; anything it cannot show is a JSON text box."""
    desc = schema.get("description") if isinstance(schema.get("description"), str) else None
    default = json.dumps(schema["default"]) if "default" in schema else None
    kw: dict[str, Any] = {"required": required, "description": desc, "default": default}
    if "enum" in schema:
        return FormField(path, label, "select", options=_options(schema["enum"]), **kw)
    any_of = schema.get("anyOf")
    if isinstance(any_of, list) and len(any_of) == 2:  # choice with allow_custom: suggestions
        enums = [s for s in any_of if isinstance(s, dict) and "enum" in s]
        if enums and {"type": "string"} in any_of:
            return FormField(path, label, "text", options=_options(enums[0]["enum"]), **kw)
    kind = schema.get("type")
    items = schema.get("items")
    if kind == "array" and isinstance(items, dict) and "enum" in items:
        return FormField(path, label, "multi", options=_options(items["enum"]), **kw)
    if kind == "string":
        return FormField(path, label, "textarea" if long_text else "text", **kw)
    if kind in ("number", "integer"):
        return FormField(path, label, kind, **kw)
    if kind == "boolean":
        return FormField(path, label, "checkbox", **kw)
    return FormField(path, f"{label} (JSON)", "json", **kw)
