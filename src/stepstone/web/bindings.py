"""Webhook bindings: which workflow ``POST /hooks/{name}`` starts, and how it is signed.

A binding names a workflow, a signature preset and the environment variable that holds the
secret; the secret itself is read by the CLI when ``serve`` starts and lives only in memory.
Bindings come from ``@workflow(webhook="github")`` in the app and from a small TOML file that
``stepstone webhook add`` writes (``~/.stepstone/webhooks.toml`` by default)::

    [webhooks.github]
    workflow = "on_push"
    secret_env = "GITHUB_WEBHOOK_SECRET"
    preset = "github"

The file, not the store, holds them: a binding is deployment configuration, like the secret
variable it names, and each ``serve`` process is configured where its secret is.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from stepstone.core.definitions import Registry
from stepstone.errors import InvalidArgument
from stepstone.web.signatures import PRESETS

__all__ = [
    "HookEntry",
    "WebhookBinding",
    "check_hook_name",
    "default_secret_env",
    "load_hook_entries",
    "save_hook_entries",
]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_hook_name(name: str) -> str:
    """``name`` if it can be a path segment and a TOML key: letters, digits, ``_`` and ``-``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidArgument(
            f"webhook name {name!r} must be 1-64 letters, digits, '_' or '-' (it is a URL path)"
        )
    return name


def default_secret_env(name: str) -> str:
    """The variable holding the secret of a hook the app declares:
    ``STEPSTONE_WEBHOOK_<NAME>_SECRET``."""
    return f"STEPSTONE_WEBHOOK_{name.upper().replace('-', '_')}_SECRET"


def _check_preset(preset: str, where: str) -> str:
    if preset not in PRESETS:
        raise InvalidArgument(f"{where}: preset {preset!r} is not one of {', '.join(PRESETS)}")
    return preset


@dataclass(frozen=True, slots=True)
class HookEntry:
    """A binding as configured: the secret is named by its variable, never written."""

    name: str
    workflow: str
    secret_env: str
    preset: str = "stepstone"


@dataclass(frozen=True, slots=True)
class WebhookBinding:
    """A binding ready to serve: the secret itself (kept out of ``repr``)."""

    name: str
    workflow: str
    preset: str
    secret: str = field(repr=False)


def load_hook_entries(path: Path, registry: Registry | None = None) -> list[HookEntry]:
    """The bindings of the file at ``path`` (none when it does not exist), then those the
    app's workflows declare (``@workflow(webhook=...)``) that the file does not override."""
    entries: dict[str, HookEntry] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidArgument(f"{path}: {exc}") from None
        for name, item in (data.get("webhooks") or {}).items():
            where = f"{path}: [webhooks.{name}]"
            if not isinstance(item, dict) or not all(
                isinstance(item.get(k), str) for k in ("workflow", "secret_env")
            ):
                raise InvalidArgument(f"{where} needs workflow and secret_env strings")
            entries[check_hook_name(name)] = HookEntry(
                name,
                item["workflow"],
                item["secret_env"],
                _check_preset(str(item.get("preset", "stepstone")), where),
            )
    for wf in registry or ():
        name = getattr(wf, "webhook", None)
        if name is not None and name not in entries:
            preset = name if name in PRESETS else "stepstone"
            entries[name] = HookEntry(name, wf.name, default_secret_env(name), preset)
    return list(entries.values())


def save_hook_entries(path: Path, entries: list[HookEntry]) -> None:
    """Write ``entries`` to ``path`` (replacing it atomically; the folder is created)."""
    lines = ["# webhook bindings of `stepstone serve` (secrets stay in the variables named)"]
    for e in sorted(entries, key=lambda e: e.name):
        check_hook_name(e.name)
        _check_preset(e.preset, f"webhook {e.name!r}")
        lines += ["", f"[webhooks.{e.name}]"]
        for key in ("workflow", "secret_env", "preset"):
            lines.append(f"{key} = {json.dumps(getattr(e, key))}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
