"""Claude Code's SessionStart hook in ``~/.claude/settings.json``: install, uninstall, status,
and the text the hook prints.

The settings file is merged, never replaced: other hooks and settings stay as they are, a copy
of the file is kept beside it before the first change (``settings.json.stepstone-backup``), the
new file replaces the old one atomically, and running install twice changes nothing. A file
that is not JSON (or whose ``hooks`` is not what Claude Code reads) is refused with its path,
line and column, and left alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from stepstone.core.frozen import frozen
from stepstone.desk.files import write_atomically
from stepstone.desk.session_start import EVENT, session_start_output
from stepstone.errors import InvalidArgument

__all__ = [
    "HOOK_MARK",
    "HookState",
    "hook_state",
    "install_hook",
    "session_start_output",
    "uninstall_hook",
]

HOOK_MARK = "stepstone hook session-start"
"""Every command stepstone installs contains this: it is how our entry is recognised."""

MATCHER = "startup|resume"


@frozen
class HookState:
    """Whether our SessionStart hook is in ``path`` (and with which command); ``changed``:
    this call wrote the file; ``backup``: where the file was copied first."""

    path: Path
    installed: bool
    command: str | None = None
    changed: bool = False
    backup: Path | None = None


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"{path}: cannot read it: {exc}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); it was left as it is"
        ) from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{path}: expected a JSON object at the top, got {_kind(data)}")
    return data


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _entries(path: Path, data: dict[str, Any], *, create: bool) -> list[Any] | None:
    hooks = data.get("hooks")
    if hooks is None:
        if not create:
            return None
        hooks = data["hooks"] = {}
    if not isinstance(hooks, dict):
        raise InvalidArgument(f'{path}: "hooks" must be an object, got {_kind(hooks)}')
    entries = hooks.get(EVENT)
    if entries is None:
        if not create:
            return None
        entries = hooks[EVENT] = []
    if not isinstance(entries, list):
        raise InvalidArgument(f'{path}: "hooks.{EVENT}" must be a list, got {_kind(entries)}')
    return entries


def _ours(entry: Any) -> list[dict[str, Any]]:
    """The hook commands of one matcher entry that are stepstone's."""
    if not isinstance(entry, dict) or not isinstance(entry.get("hooks"), list):
        return []
    return [
        h for h in entry["hooks"] if isinstance(h, dict) and HOOK_MARK in str(h.get("command", ""))
    ]


def hook_state(path: Path) -> HookState:
    entries = _entries(path, _read(path), create=False) or []
    for entry in entries:
        for hook in _ours(entry):
            return HookState(path, True, str(hook.get("command")))
    return HookState(path, False)


def install_hook(path: Path, command: str) -> HookState:
    """Add (or update) our SessionStart hook running ``command``; idempotent."""
    if HOOK_MARK not in command:
        raise InvalidArgument(f"the hook command must contain {HOOK_MARK!r}, got {command!r}")
    data = _read(path)
    entries = _entries(path, data, create=True)
    assert entries is not None
    found = [hook for entry in entries for hook in _ours(entry)]
    if found and all(h.get("command") == command for h in found):
        return HookState(path, True, command)
    if found:
        for hook in found:
            hook["command"] = command
    else:
        hook = {"type": "command", "command": command, "timeout": 10}
        entries.append({"matcher": MATCHER, "hooks": [hook]})
    backup = _write(path, data)
    return HookState(path, True, command, changed=True, backup=backup)


def uninstall_hook(path: Path) -> HookState:
    """Remove our SessionStart hook (and only it); idempotent."""
    data = _read(path)
    entries = _entries(path, data, create=False)
    if not entries or not any(_ours(e) for e in entries):
        return HookState(path, False)
    kept = []
    for entry in entries:
        ours = _ours(entry)
        if ours:
            entry["hooks"] = [h for h in entry["hooks"] if h not in ours]
            if not entry["hooks"]:
                continue
        kept.append(entry)
    hooks = data["hooks"]
    if kept:
        hooks[EVENT] = kept
    else:
        del hooks[EVENT]
        if not hooks:
            del data["hooks"]
    backup = _write(path, data)
    return HookState(path, False, changed=True, backup=backup)


def _write(path: Path, data: dict[str, Any]) -> Path | None:
    backup = None
    if path.exists():
        backup = path.with_name(path.name + ".stepstone-backup")
        shutil.copy2(path, backup)
    write_atomically(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())
    return backup
