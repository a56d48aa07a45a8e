"""``stepstone memory get|set|delete|list``: the documents runs share through ``ctx.memory``.

The parser part (:func:`add_memory_commands`) is imported by the parser; the command part
(:func:`cmd_memory`) only when the command runs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stepstone.cli.output import Output
    from stepstone.cli.session import Session
    from stepstone.core.memory import MemoryDoc

__all__ = ["add_memory_commands", "cmd_memory"]

Command = Callable[[str, str], argparse.ArgumentParser]
_SCOPES = ("session", "user", "global")


def add_memory_commands(command: Command, common: argparse.ArgumentParser) -> None:
    """Add ``memory`` and its actions through the parser's ``command(name, help)`` factory."""
    p = command(
        "memory",
        "durable memory documents shared by runs (ctx.memory): read, write, delete, list",
    )
    actions = p.add_subparsers(dest="memory_command", metavar="ACTION", required=True)

    def address(name: str, help_text: str) -> argparse.ArgumentParser:
        a: argparse.ArgumentParser = actions.add_parser(name, help=help_text, parents=[common])
        a.add_argument("scope", choices=_SCOPES, help="session, user or global")
        a.add_argument("key", help="the document's key")
        a.add_argument("--owner", metavar="ID", help="the session or user id (not for global)")
        return a

    address("get", "print a document's value (exit 3 when there is none)")
    s = address(
        "set",
        "write a document (replacing it; a run that read the old version and then writes gets "
        "a conflict, and Memory.update runs again on this value)",
    )
    s.add_argument("value", metavar="JSON", help="the value: JSON, @FILE, or - for stdin")
    address("delete", "delete a document (exit 3 when there is none)")
    ls = actions.add_parser("list", help="documents by scope, owner and key", parents=[common])
    ls.add_argument("scope", nargs="?", choices=_SCOPES, help="only this scope")
    ls.add_argument("--owner", metavar="ID", help="only this session or user")
    ls.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")


def _doc_json(doc: MemoryDoc, *, value: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "scope": doc.scope,
        "owner": doc.owner or None,
        "key": doc.key,
        "version": doc.version,
        "run_id": doc.run_id,
        "seq": doc.seq,
        "updated_at": doc.updated_at.isoformat(),
    }
    if value:
        data["value"] = doc.value
    return data


def _where(ns: argparse.Namespace) -> str:
    owner = f" --owner {ns.owner}" if ns.owner else ""
    return f"{ns.scope} {ns.key}{owner}"


def cmd_memory(ns: argparse.Namespace, session: Session) -> Output:
    from stepstone.cli.inputs import parse_json_flag
    from stepstone.cli.output import Output
    from stepstone.cli.render import Screen
    from stepstone.errors import MemoryNotFound

    action = ns.memory_command
    with session.client() as client:
        if action == "list":
            docs = client.memory_list(ns.scope, owner=ns.owner, limit=ns.limit)
            data: Any = [_doc_json(d) for d in docs]

            def human_list(screen: Screen) -> None:
                if not docs:
                    screen.line("no memory documents")
                    return
                rows = [
                    (d.scope, d.owner or "-", d.key, str(d.version), d.run_id or "-", _short(d))
                    for d in docs
                ]
                screen.table(("scope", "owner", "key", "version", "written by", "value"), rows)

            return Output(data, human_list)
        if action == "get":
            doc = client.memory_get(ns.scope, ns.key, owner=ns.owner)
            if doc is None:
                raise MemoryNotFound(f"no memory document {_where(ns)}")
            return Output(_doc_json(doc), lambda screen: screen.line(_pretty(doc.value)))
        if action == "set":
            value = parse_json_flag("VALUE", ns.value)
            version = client.memory_set(ns.scope, ns.key, value, owner=ns.owner)
            data = {"scope": ns.scope, "owner": ns.owner, "key": ns.key, "version": version}
            return Output(
                data, lambda screen: screen.line(f"wrote {_where(ns)}: version {version}")
            )
        if not client.memory_delete(ns.scope, ns.key, owner=ns.owner):
            raise MemoryNotFound(f"no memory document {_where(ns)}")
        data = {"scope": ns.scope, "owner": ns.owner, "key": ns.key, "deleted": True}
        return Output(data, lambda screen: screen.line(f"deleted {_where(ns)}"))


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _short(doc: MemoryDoc, width: int = 40) -> str:
    text = doc.value_json
    return text if len(text) <= width else text[: width - 1] + "…"
