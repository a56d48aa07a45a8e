"""JSON given on the command line: ``--input``, ``--arg k=v``, ``--data``, ``--patch SEQ=JSON``.

Every flag that takes JSON also takes ``@path`` to read it from a file. A mistake raises
``InvalidArgument`` naming the flag, the file (if any) and json's line and column.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stepstone.core.codec import surrogate_path
from stepstone.core.definitions import Workflow
from stepstone.errors import InvalidArgument

__all__ = [
    "parse_credentials",
    "parse_labels",
    "parse_json_flag",
    "parse_patches",
    "parse_workflow_input",
]


def parse_json_flag(flag: str, text: str) -> Any:
    """The JSON value of ``flag``: inline JSON, ``@path`` to read it from a file, or ``-`` to
    read it from stdin."""
    source = "the value"
    if text == "-":
        source = "stdin"
        text = sys.stdin.read()
    elif text.startswith("@"):
        path = Path(text[1:])
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidArgument(f"{flag}: no such file: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"{flag}: cannot read {path}: {exc}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"{flag}: invalid JSON in {source} at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise InvalidArgument(f"{flag}: JSON in {source} is nested too deeply") from None
    bad = surrogate_path(value)
    if bad is not None:
        raise InvalidArgument(
            f"{flag}: the string at {bad} in {source} holds a lone surrogate (\\ud800-\\udfff "
            "alone is not valid Unicode and cannot be stored)"
        )
    return value


def parse_workflow_input(
    wf: Workflow[Any, Any], input_text: str | None, arg_texts: list[str]
) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments for ``wf`` from ``--input`` and ``--arg k=v`` flags.

    ``--input`` is a JSON list (positional arguments) or object (keyword arguments). ``--arg k=v``
    adds the keyword ``k``: ``v`` is read as JSON (``n=3``, ``tags=["a"]``) unless the parameter is
    annotated ``str`` or ``v`` is not valid JSON, in which case it is the string itself.
    """
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    if input_text is not None:
        value = parse_json_flag("--input", input_text)
        if isinstance(value, list):
            args = value
        elif isinstance(value, dict):
            kwargs = value
        else:
            raise InvalidArgument(
                "--input: expected a JSON list (positional arguments) or object (keyword "
                f"arguments), got {type(value).__name__}"
            )
    hints = wf.signature.hints
    known = _parameter_names(wf)
    for text in arg_texts:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            raise InvalidArgument(f"--arg {text!r}: expected NAME=VALUE")
        key = key.strip()
        if known is not None and key not in known:
            listed = ", ".join(known) if known else "none: the workflow takes no arguments"
            import difflib  # only to word an error

            hint = difflib.get_close_matches(key, known, n=1)
            did = f"; did you mean {hint[0]!r}?" if hint else ""
            raise InvalidArgument(
                f"--arg {key}: workflow {wf.name!r} has no parameter {key!r}{did} "
                f"(its parameters: {listed})"
            )
        if key in kwargs:
            raise InvalidArgument(f"--arg {key}: given twice")
        if hints.get(key) is str:
            kwargs[key] = raw
            continue
        try:
            kwargs[key] = json.loads(raw)
        except json.JSONDecodeError:
            kwargs[key] = raw
        except RecursionError:
            raise InvalidArgument(f"--arg {key}: JSON nested too deeply") from None
        bad = surrogate_path(kwargs[key])
        if bad is not None:
            raise InvalidArgument(f"--arg {key}: the string at {bad} holds a lone surrogate")
    return args, kwargs


def _parameter_names(wf: Workflow[Any, Any]) -> list[str] | None:
    """The names ``--arg`` may give (None: the workflow takes ``**kwargs``, any name goes)."""
    names = []
    for param in wf.signature.params:
        if param.kind is param.VAR_KEYWORD:
            return None
        if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            names.append(param.name)
    return names


def parse_patches(texts: list[str]) -> dict[int, Any]:
    """``--patch SEQ=JSON`` flags as ``{seq: value}`` (``@path`` reads the JSON from a file)."""
    patches: dict[int, Any] = {}
    for text in texts:
        seq_text, sep, raw = text.partition("=")
        try:
            seq = int(seq_text)
        except ValueError:
            seq = -1
        if not sep or seq < 0:
            raise InvalidArgument(
                f"--patch {text!r}: expected SEQ=JSON with SEQ a step number >= 0"
            )
        if seq in patches:
            raise InvalidArgument(f"--patch {seq}: given twice")
        patches[seq] = parse_json_flag(f"--patch {seq}", raw)
    return patches


def parse_credentials(texts: list[str], env: Mapping[str, str]) -> dict[str, str]:
    """``--credential NAME=ENVVAR`` flags as ``{NAME: the value of $ENVVAR}``; the values are
    never echoed in errors."""
    found: dict[str, str] = {}
    for text in texts:
        name, sep, var = text.partition("=")
        if not sep or not name or not var:
            raise InvalidArgument(f"--credential {text!r}: expected NAME=ENVVAR")
        if name in found:
            raise InvalidArgument(f"--credential {name}: given twice")
        value = env.get(var)
        if value is None:
            raise InvalidArgument(f"--credential {name}: the environment variable {var} is not set")
        found[name] = value
    return found


def parse_labels(flag: str, texts: list[str]) -> dict[str, str]:
    """``--label KEY=VALUE`` flags as a mapping."""
    labels: dict[str, str] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{flag} {text!r}: expected KEY=VALUE")
        labels[key] = value
    return labels
