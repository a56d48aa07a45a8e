"""Structured output of a model call: find the JSON in a reply and check it against a schema.

A reply may be bare JSON, JSON in a fenced block (```json ... ```), JSON inside prose (the first
object or array that parses), or sagaflow's block::

    STRUCTURED_OUTPUT_START
    GREETING|hello alice
    SCORE|0.9
    STRUCTURED_OUTPUT_END

which becomes ``{"GREETING": "hello alice", "SCORE": 0.9}`` (a value is read as JSON unless the
schema says the field is a string). :func:`parse_output` returns the plain JSON value or raises
:class:`OutputProblem` with the JSON path of the first problem; there is no silent default.
"""

from __future__ import annotations

import json
import re
from typing import Any

from stepstone.core.jsonschema import first_problem

__all__ = ["OutputProblem", "extract_json", "parse_output", "repair_prompt"]

_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\n(.*?)```", re.DOTALL)
_BLOCK = re.compile(r"STRUCTURED_OUTPUT_START\s*(.*?)\s*STRUCTURED_OUTPUT_END", re.DOTALL)
_DECODER = json.JSONDecoder()


class OutputProblem(Exception):
    """Why a reply is not the output asked for: ``path`` (``$`` when no JSON was found)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


def extract_json(text: str, schema: dict[str, Any] | None = None) -> Any:
    """The JSON value a reply carries (see the module docstring); OutputProblem when none."""
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    block = _BLOCK.search(text)
    if block is not None:
        return _block_fields(block.group(1), schema)
    for fenced in _FENCE.finditer(text):
        try:
            return json.loads(fenced.group(1))
        except ValueError as exc:
            raise OutputProblem("$", f"the fenced JSON block does not parse: {exc}") from None
    for start, char in enumerate(text):
        if char in "{[":
            try:
                value, _ = _DECODER.raw_decode(text, start)
            except ValueError:
                continue
            return value
    raise OutputProblem("$", "the reply holds no JSON (bare, fenced or in a structured block)")


def _block_fields(body: str, schema: dict[str, Any] | None) -> dict[str, Any]:
    props = (schema or {}).get("properties", {}) if isinstance(schema, dict) else {}
    fields: dict[str, Any] = {}
    for number, line in enumerate(body.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        key, bar, value = line.partition("|")
        if not bar or not key.strip():
            raise OutputProblem("$", f"structured block line {number} is not KEY|value: {line!r}")
        key, value = key.strip(), value.strip()
        wanted = props.get(key, {}).get("type") if isinstance(props.get(key), dict) else None
        if wanted == "string":
            fields[key] = value
            continue
        try:
            fields[key] = json.loads(value)
        except ValueError:
            fields[key] = value
    return fields


def parse_output(text: str, schema: dict[str, Any]) -> Any:
    """The reply's JSON, checked against ``schema``; OutputProblem naming the first bad path."""
    value = extract_json(text, schema)
    problem = first_problem(value, schema)
    if problem is not None:
        path, sep, what = problem.partition(": ")
        if not sep or not path.startswith("$"):
            path, what = "$", problem
        raise OutputProblem(path, what)
    return value


def repair_prompt(problem: OutputProblem, schema: dict[str, Any]) -> str:
    """The one repair turn: the validation error quoted, the schema, and what to answer."""
    return (
        f"Your reply did not match the required JSON Schema: {problem.path}: {problem.problem}\n"
        f"The schema is:\n{json.dumps(schema, sort_keys=True)}\n"
        "Answer again with only the corrected JSON value, nothing else."
    )
