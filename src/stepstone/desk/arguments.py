"""Launch arguments: ``--arg NAME=VALUE`` and one positional value, converted by the types of
the skill's parameters."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from typing import Any

from stepstone.core import codec
from stepstone.desk.loading import LoadedSkill, Param
from stepstone.errors import DecodeError, InvalidArgument

__all__ = ["launch_arguments"]


def launch_arguments(
    skill: LoadedSkill, positional: Sequence[str], pairs: Sequence[str]
) -> dict[str, Any]:
    """The keyword arguments of a launch. ``positional`` (at most one value) is the first
    required parameter; each ``NAME=VALUE`` of ``pairs`` names its parameter. A value is the
    text itself for a ``str`` parameter, else read as JSON (or as the text when it is not
    JSON) and converted by the annotation: ``n=3`` for an ``int``, ``tags=["a"]`` for a
    ``list[str]``. An unknown name, a value given twice, a missing required parameter or a value
    the type refuses raises InvalidArgument naming the parameter."""
    by_name = {p.name: p for p in skill.params}
    texts: dict[str, str] = {}
    if len(positional) > 1:
        raise InvalidArgument(
            f"skill {skill.name!r} takes one value without a name (its first required "
            f"parameter); give the others as --arg NAME=VALUE (got {len(positional)})"
        )
    if positional:
        first = next((p for p in skill.params if p.required), None)
        if first is None:
            raise InvalidArgument(
                f"skill {skill.name!r} has no required parameter to take {positional[0]!r}; "
                "use --arg NAME=VALUE"
            )
        texts[first.name] = positional[0]
    for text in pairs:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidArgument(f"--arg {text!r}: expected NAME=VALUE")
        if key not in by_name:
            raise InvalidArgument(_unknown(skill, key))
        if key in texts:
            raise InvalidArgument(f"--arg {key}: given twice")
        texts[key] = raw
    missing = [p.name for p in skill.params if p.required and p.name not in texts]
    if missing:
        alone = " (or the value alone after the skill's name)" if not positional else ""
        raise InvalidArgument(
            f"skill {skill.name!r} needs {', '.join(missing)}: give --arg {missing[0]}=VALUE"
            + alone
        )
    return {name: convert(by_name[name], raw) for name, raw in texts.items()}


def convert(param: Param, raw: str) -> Any:
    """``raw`` (command-line text) as a value of ``param``'s type."""
    tp = param.type
    if tp is str or tp is None or param.type_name == "any":
        return raw
    where = f"--arg {param.name}"
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        value = raw
    try:
        return codec.decode_value(value, tp, where)
    except DecodeError as first:
        if value is raw:
            raise InvalidArgument(f"{where}: {raw!r} is not a {param.type_name}") from None
        try:  # "007" for a str | None is the text, not the number 7
            return codec.decode_value(raw, tp, where)
        except DecodeError:
            raise InvalidArgument(
                f"{where}: {raw!r} is not a {param.type_name} ({first.problem})"
            ) from None


def _unknown(skill: LoadedSkill, key: str) -> str:
    known = [p.name for p in skill.params]
    hint = difflib.get_close_matches(key, known, n=1)
    did = f"; did you mean {hint[0]!r}?" if hint else ""
    listed = ", ".join(known) if known else "none"
    return (
        f"--arg {key}: skill {skill.name!r} has no parameter {key!r}{did} "
        f"(its parameters: {listed})"
    )
