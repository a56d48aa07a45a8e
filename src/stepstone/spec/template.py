"""``${...}`` templates: locate the expressions of a string, and the text a value stands for.

>>> parse_template("echo ${inputs.name}!").parts
('echo ', Ref(expr='inputs.name', offset=5), '!')
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from stepstone.core.frozen import frozen
from stepstone.errors import InvalidArgument, TemplateError

__all__ = ["Ref", "Template", "join_commands", "parse_template", "ref_text", "value_text"]


@frozen
class Ref:
    """One ``${...}`` of a template: the expression text and the offset of its ``$`` in the text."""

    expr: str
    offset: int


@frozen
class Template:
    """A command string with its ``${...}`` expressions located: literal text and :class:`Ref`."""

    text: str
    parts: tuple[str | Ref, ...]

    @property
    def refs(self) -> tuple[Ref, ...]:
        """The expressions, in the order they appear (and are evaluated)."""
        return tuple(part for part in self.parts if isinstance(part, Ref))


def parse_template(text: str) -> Template:
    """Locate every ``${...}`` of ``text``; braces nest, and CEL string literals inside an
    expression may hold ``}``. Raises :class:`TemplateError` naming the column of a ``${``
    that is never closed or is empty."""
    parts: list[str | Ref] = []
    literal_from = 0
    while (start := text.find("${", literal_from)) >= 0:
        end = _expression_end(text, start)
        if start > literal_from:
            parts.append(text[literal_from:start])
        expr = text[start + 2 : end].strip()
        if not expr:
            raise TemplateError(text, start + 1, "empty ${}")
        parts.append(Ref(expr, start))
        literal_from = end + 1
    if literal_from < len(text):
        parts.append(text[literal_from:])
    return Template(text, tuple(parts))


def join_commands(commands: str | Template | Sequence[str | Template]) -> Template:
    """One template for a command or a list of them (joined with `` && ``: the first failure
    stops the rest), each ``Ref.offset`` moved to its place in the joined text."""
    if isinstance(commands, str | Template):
        return commands if isinstance(commands, Template) else parse_template(commands)
    if not commands:
        raise InvalidArgument("command: an empty list has nothing to run")
    texts: list[str] = []
    parts: list[str | Ref] = []
    at = 0
    for i, command in enumerate(commands):
        template = command if isinstance(command, Template) else parse_template(command)
        if i:
            parts.append(" && ")
            at += 4
        parts.extend(
            p if isinstance(p, str) else Ref(p.expr, p.offset + at) for p in template.parts
        )
        texts.append(template.text)
        at += len(template.text)
    return Template(" && ".join(texts), tuple(parts))


def _expression_end(text: str, start: int) -> int:
    """The index of the ``}`` closing the ``${`` at ``start``."""
    depth, i = 1, start + 2
    while i < len(text):
        char = text[i]
        if char in "'\"":
            i = _string_end(text, i, start)
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise TemplateError(text, start + 1, "unclosed ${ (no matching })")


def _string_end(text: str, i: int, expr_start: int) -> int:
    """The index of the last quote of the CEL string literal opening at ``i`` (raw, triple)."""
    prefix_from = i
    while prefix_from > expr_start + 2 and (
        text[prefix_from - 1].isalnum() or text[prefix_from - 1] == "_"
    ):
        prefix_from -= 1
    raw = "r" in text[prefix_from:i].lower() and len(text[prefix_from:i]) <= 2
    quote = text[i] * 3 if text.startswith(text[i] * 3, i) else text[i]
    j = i + len(quote)
    while j < len(text):
        if text.startswith(quote, j):
            return j + len(quote) - 1
        j += 2 if text[j] == "\\" and not raw else 1
    raise TemplateError(text, i + 1, "unclosed string literal inside ${...}")


def value_text(value: Any) -> str:
    """The text a value stands for in a command: strings as they are, ``None`` as nothing,
    booleans as ``true``/``false``, numbers, lists and maps as compact JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | list | dict | tuple):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def ref_text(ref: Ref, value: Any) -> str:
    """:func:`value_text`, refusing a NUL character (no argument or variable can hold one)."""
    text = value_text(value)
    if "\0" in text:
        raise InvalidArgument(
            f"${{{ref.expr}}}: the value holds a NUL character, which no command can receive"
        )
    return text
