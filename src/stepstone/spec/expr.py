"""Expressions and ``${...}`` templates of YAML workflows, evaluated with CEL.

An expression reads ``inputs.x``, ``steps.<id>.outputs.x``, ``event.x``, ``item`` and
``item_index``. In a ``checkpointflow/v1`` document the words ``and``, ``or`` and ``not``
(outside string literals) mean CEL's ``&&``, ``||`` and ``!``; ``stepstone/v1`` is plain CEL.
A string that is exactly one ``${expr}`` keeps the JSON type of the value; any other string
with ``${...}`` parts is interpolated text. CEL is imported at the first expression compiled,
and each expression text is compiled once per process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from stepstone.core.frozen import frozen

__all__ = [
    "Expr",
    "ExprProblem",
    "Template",
    "compile_condition",
    "compile_expr",
    "compile_template",
    "split_template",
]

VARIABLES = ("inputs", "steps", "event", "item", "item_index")


class ExprProblem(Exception):
    """An expression does not compile or does not evaluate; ``offset`` is the character of the
    source text it points at, when known."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message, self.offset = message, offset


@lru_cache(maxsize=1)
def _env() -> Any:
    from cel_expr_python import cel

    return cel.NewEnv(variables={name: cel.Type.DYN for name in VARIABLES})


@lru_cache(maxsize=1)
def _error_type() -> Any:
    from cel_expr_python import cel

    return cel.Type.ERROR


_WORDS = re.compile(r"(?<![\w.])(and|or|not)(?![\w])")
_CEL_AT = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*?)(?:\n|$)")


def translate_words(text: str) -> str:
    """checkpointflow's ``and``/``or``/``not`` as CEL operators, outside string literals."""
    out: list[str] = []
    i, n = 0, len(text)
    start = 0
    while i < n:
        ch = text[i]
        if ch in "\"'":
            out.append(_WORDS.sub(_word, text[start:i]))
            end = _string_end(text, i)
            out.append(text[i:end])
            i = start = end
            continue
        i += 1
    out.append(_WORDS.sub(_word, text[start:]))
    return "".join(out)


def _word(match: re.Match[str]) -> str:
    return {"and": "&&", "or": "||", "not": "!"}[match.group(1)]


def _string_end(text: str, i: int) -> int:
    """The index just past the string literal opened at ``text[i]``."""
    quote = text[i]
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == quote:
            return j + 1
        j += 1
    return len(text)


@frozen
class Expr:
    """One compiled expression; ``text`` is the source as written."""

    text: str
    program: Any

    def eval(self, scope: Mapping[str, Any]) -> Any:
        """The value as plain JSON; raises :class:`ExprProblem` when it cannot be evaluated
        (a missing key, a type mismatch ...)."""
        data = {name: scope.get(name) for name in VARIABLES}
        value = self.program.eval(data=data)
        if value.type() == _error_type():
            raise ExprProblem(f"${{{self.text}}} cannot be evaluated: {value.value()}")
        return _plain(value.plain_value())


def _plain(value: Any) -> Any:
    """CEL's Python values as JSON values (a float that is whole stays a float)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def compile_expr(text: str, *, words: bool) -> Expr:
    """Compile ``text`` (no ``${}``); ``words`` translates checkpointflow's and/or/not.
    Raises :class:`ExprProblem` naming the character where CEL stopped."""
    return _compile(text.strip(), words)


@lru_cache(maxsize=4096)
def _compile(text: str, words: bool) -> Expr:
    if not text:
        raise ExprProblem("empty expression")
    source = translate_words(text) if words else text
    try:
        program = _env().compile(source)
    except RuntimeError as exc:
        raise _problem(str(exc), text, source) from None
    return Expr(text, program)


def _problem(message: str, text: str, source: str) -> ExprProblem:
    found = _CEL_AT.search(message)
    if not found:
        return ExprProblem(f"bad expression {text!r}: {message.splitlines()[0]}")
    column = int(found.group(2)) - 1
    # the translation changes lengths: point at the same token count from the start
    offset = min(column, len(text)) if source == text else _map_offset(text, source, column)
    reason = found.group(3).strip().split(" expecting {", 1)[0]
    return ExprProblem(f"bad expression {text!r}: {reason}", offset)


def _map_offset(text: str, source: str, column: int) -> int:
    shift = len(source) - len(text)
    return max(0, min(len(text), column - shift))


# --- templates ---------------------------------------------------------------------------------


def split_template(text: str) -> list[tuple[bool, int, str]]:
    """The parts of ``text`` as ``(is_expression, offset, text)``.
    Raises :class:`ExprProblem` for a ``${`` that is never closed."""
    parts: list[tuple[bool, int, str]] = []
    i = start = 0
    n = len(text)
    while i < n:
        if text.startswith("${", i):
            if i > start:
                parts.append((False, start, text[start:i]))
            end = _closing_brace(text, i + 2)
            if end < 0:
                raise ExprProblem("'${' is never closed by '}'", i)
            parts.append((True, i + 2, text[i + 2 : end]))
            i = start = end + 1
            continue
        i += 1
    if start < n:
        parts.append((False, start, text[start:]))
    return parts


def _closing_brace(text: str, i: int) -> int:
    depth = 0
    while i < len(text):
        ch = text[i]
        if ch in "\"'":
            i = _string_end(text, i)
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


@frozen
class Template:
    """A string with ``${...}`` parts: rendering an exact ``${x}`` keeps the value's type."""

    text: str
    parts: tuple[str | Expr, ...]

    @property
    def is_exact(self) -> bool:
        return len(self.parts) == 1 and isinstance(self.parts[0], Expr)

    @property
    def expressions(self) -> tuple[Expr, ...]:
        return tuple(p for p in self.parts if isinstance(p, Expr))

    def render(self, scope: Mapping[str, Any]) -> Any:
        if self.is_exact:
            first = self.parts[0]
            assert isinstance(first, Expr)
            return first.eval(scope)
        return "".join(p if isinstance(p, str) else to_text(p.eval(scope)) for p in self.parts)


def to_text(value: Any) -> str:
    """How a value reads inside interpolated text (as in a command): strings as they are,
    ``null`` as nothing, the rest as compact JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def compile_template(text: str, *, words: bool) -> Template:
    """Compile every ``${...}`` of ``text``; raises :class:`ExprProblem` with the offset."""
    parts: list[str | Expr] = []
    for is_expr, offset, source in split_template(text):
        if not is_expr:
            parts.append(source)
            continue
        try:
            parts.append(compile_expr(source, words=words))
        except ExprProblem as exc:
            raise ExprProblem(exc.message, offset + exc.offset) from None
    return Template(text, tuple(parts))


def compile_condition(text: str, *, words: bool) -> Expr:
    """An ``if``/``when``/``items`` expression, written with or without ``${...}``."""
    stripped = text.strip()
    if stripped.startswith("${") and stripped.endswith("}"):
        inner = split_template(stripped)
        if len(inner) == 1 and inner[0][0]:
            lead = len(text) - len(text.lstrip()) + 2
            try:
                return compile_expr(inner[0][2], words=words)
            except ExprProblem as exc:
                raise ExprProblem(exc.message, lead + exc.offset) from None
    return compile_expr(text, words=words)
