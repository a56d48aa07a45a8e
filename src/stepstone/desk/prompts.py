"""Prompts: ``prompts/NAME.md`` in a skill's folder, with optional front matter and ``$var``.

A file may start with front matter between two ``---`` lines, ``key: value`` per line; the keys
known are ``tier`` (a model tier name, e.g. ``haiku``) and ``max_tokens`` (a whole number).
The rest is the text; ``$name`` or ``${name}`` is replaced by the variable given, ``$$`` is a
literal ``$``. A variable the text uses and the call does not give is an error naming both the
variable and the file (never an empty string in a prompt sent to a model).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stepstone.core.resources import Prompt
from stepstone.errors import PromptError

__all__ = ["fill_prompt", "prompt_path"]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_KEYS = ("tier", "max_tokens")


def prompt_path(folder: Path, name: str) -> Path:
    """Where prompt ``name`` lives in a skill folder (``prompts/NAME.md``)."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise PromptError(
            f"prompt name {name!r}: expected letters, digits, '_', '-' and '.', like "
            "'greeter.user' (the file prompts/greeter.user.md)"
        )
    return folder / "prompts" / f"{name}.md"


def fill_prompt(folder: Path, name: str, variables: Mapping[str, Any]) -> Prompt:
    """Prompt ``name`` of the skill in ``folder``, filled with ``variables``."""
    path = prompt_path(folder, name)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = (
            sorted(p.name[:-3] for p in path.parent.glob("*.md")) if path.parent.is_dir() else []
        )
        listed = f" (prompts there: {', '.join(known)})" if known else ""
        raise PromptError(f"{path}: no such prompt file{listed}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptError(f"{path}: cannot read it: {exc}") from None
    meta, body, first_line = _front_matter(path, source)
    template = string.Template(body)
    for match in template.pattern.finditer(body):
        var = match.group("named") or match.group("braced")
        if match.group("invalid") is not None:
            line = first_line + body.count("\n", 0, match.start())
            raise PromptError(f"{path}:{line}: a '$' that starts no variable (write $$ for '$')")
        if var is not None and var not in variables:
            line = first_line + body.count("\n", 0, match.start())
            given = ", ".join(sorted(variables)) or "none"
            raise PromptError(
                f"{path}:{line}: prompt {name!r} uses ${var}, which the call does not give "
                f"(given: {given})"
            )
    text = template.substitute({k: str(v) for k, v in variables.items()})
    return Prompt(text, name=name, tier=meta.get("tier"), max_tokens=meta.get("max_tokens"))


def _front_matter(path: Path, source: str) -> tuple[dict[str, Any], str, int]:
    """(the front matter's values, the text after it, the file line the text starts on)."""
    lines = source.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, source, 1
    meta: dict[str, Any] = {}
    for i, line in enumerate(lines[1:], start=2):
        if line.strip() == "---":
            return meta, "\n".join(lines[i:]), i + 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip().strip("\"'")
        if not sep or key not in _KEYS:
            raise PromptError(
                f"{path}:{i}: front matter line {line.strip()!r}: expected 'tier: NAME' or "
                "'max_tokens: N'"
            )
        if key == "max_tokens":
            if not value.isdigit() or int(value) < 1:
                raise PromptError(f"{path}:{i}: max_tokens must be a whole number >= 1")
            meta[key] = int(value)
        else:
            meta[key] = value
    raise PromptError(f"{path}:1: front matter opened with '---' is never closed")
