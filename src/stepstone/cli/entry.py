"""The ``stepstone`` process's entry point (``stepstone`` and ``python -m stepstone``).

``hook session-start`` runs at every Claude Code session start, so on the embedded store it is
answered here, before the command line's machinery (the parser, the client, asyncio) is
imported: the unread inbox read with ``sqlite3`` alone (:mod:`stepstone.desk.session_start`).
Everything else, and a store that lean read cannot serve, goes to
:func:`stepstone.cli.main.main`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

__all__ = ["ENV_DB", "hook_db", "main"]

ENV_DB = "STEPSTONE_DB"
"""The variable naming the store (the parser's ``--db`` default; the same name)."""


def main() -> int:
    argv = sys.argv[1:]
    if argv[:2] == ["hook", "session-start"] and _lean_session_start(argv[2:], os.environ):
        return 0
    from stepstone.cli.main import main as full

    return full()


def hook_db(args: list[str], env: Mapping[str, str]) -> str | Literal[False]:
    """The store ``hook session-start [--db URL]`` reads ("" for the default); False when
    ``args`` hold anything else (the full parser then reports it)."""
    if args[:1] == ["--db"] and len(args) == 2:
        return args[1]
    if len(args) == 1 and args[0].startswith("--db="):
        return args[0][len("--db=") :]
    if args:
        return False
    return env.get(ENV_DB) or ""


def _lean_session_start(args: list[str], env: Mapping[str, str]) -> bool:
    """Print the hook's output from an SQLite store read directly; False when this cannot
    serve it (then the full command does, and reports any problem)."""
    db = hook_db(args, env)
    if db is False:
        return False
    from stepstone.store import DEFAULT_DB_PATH, is_sqlite, sqlite_path

    if db and not is_sqlite(db):
        return False
    path = Path(sqlite_path(db)) if db else DEFAULT_DB_PATH.expanduser()
    if str(path) == ":memory:":
        return False
    from stepstone.desk.session_start import read_unread, session_start_output

    try:
        got = read_unread(path)
    except Exception:  # the full command reports it
        return False
    if got is None:
        return False
    text = session_start_output(*got)
    if text is not None:
        sys.stdout.write(text + "\n")
    return True
