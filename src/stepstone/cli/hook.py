"""``stepstone hook install|uninstall|status|session-start``: Claude Code's SessionStart hook
that shows the inbox's unread items when a session starts.

``session-start`` is what the hook runs: it reads the store (never creating or migrating one),
prints Claude Code's SessionStart JSON when something is unread and nothing otherwise, and
always exits 0 (a problem goes to stderr: a hook must never stop a session from starting).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

from stepstone.cli.entry import hook_db
from stepstone.cli.output import Output
from stepstone.cli.session import Session
from stepstone.desk.hook import HOOK_MARK, HookState, hook_state, install_hook, uninstall_hook
from stepstone.desk.session_start import SHOWN, session_start_output

__all__ = ["cmd_hook", "session_start_fast", "settings_path"]


def settings_path(session: Session) -> Path:
    home = session.env.get("HOME")
    return (Path(home) if home else Path.home()) / ".claude" / "settings.json"


def hook_command(session: Session) -> str:
    """The command the hook runs: this Python's stepstone, on this store."""
    parts = [shlex.quote(sys.executable), "-m", HOOK_MARK]
    if session.db is not None:
        parts += ["--db", shlex.quote(session.db)]
    return " ".join(parts)


def cmd_hook(ns: argparse.Namespace, session: Session) -> Output:
    if ns.hook_command == "session-start":
        return _session_start(session)
    path = settings_path(session)
    if ns.hook_command == "install":
        state = install_hook(path, hook_command(session))
    elif ns.hook_command == "uninstall":
        state = uninstall_hook(path)
    else:
        state = hook_state(path)
    return Output(_state_json(state), lambda screen: screen.line(_describe(state)))


def _state_json(state: HookState) -> dict[str, object]:
    return {
        "settings": str(state.path),
        "installed": state.installed,
        "command": state.command,
        "changed": state.changed,
        "backup": str(state.backup) if state.backup else None,
    }


def _describe(state: HookState) -> str:
    where = f"in {state.path}"
    if not state.installed:
        text = f"the SessionStart hook is not installed {where}"
    else:
        text = f"the SessionStart hook is installed {where}: {state.command}"
    if state.changed:
        text += f" (updated; the previous file is {state.backup})" if state.backup else " (new)"
    return text


def session_start_fast(args: list[str], env: Mapping[str, str]) -> int | None:
    """``hook session-start [--db URL]`` without building the whole parser (it runs at every
    session start), through the store (PostgreSQL, or an SQLite store the lean read of
    :mod:`stepstone.cli.entry` left to it); None when ``args`` hold anything else (the full
    parser then reports it)."""
    db = hook_db(args, env)
    if db is False:
        return None
    _session_start(Session(db=db or None, env=env))
    return 0


def _session_start(session: Session) -> Output:
    try:
        text = asyncio.run(_unread(session.db))
    except Exception as exc:  # a hook must never keep a session from starting
        print(f"stepstone hook: inbox not read: {exc}", file=sys.stderr)
        text = None
    if text is not None:
        sys.stdout.write(text + "\n")
    return Output(streamed=True)


async def _unread(db: str | None) -> str | None:
    from stepstone.store import DEFAULT_DB_PATH, open_store

    if db is None and not DEFAULT_DB_PATH.expanduser().exists():
        return None  # nothing was ever launched here: no store to create
    store = open_store(db, auto_migrate=False)
    try:
        unread = await store.count_unread()
        items = await store.list_inbox(limit=SHOWN) if unread else []
    finally:
        await store.close()
    return session_start_output(items, unread)
