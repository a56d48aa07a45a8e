"""``INBOX.md``: the inbox as a Markdown file (sagaflow's file, kept for those who read it).

The store is the inbox; the file is a view of it, re-rendered whole after each change and
replaced atomically (a reader never sees half a file). Its first line marks it as stepstone's:
a file at that path without the mark (someone else's, or a corrupted one) is refused, naming
it, rather than overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from pathlib import Path

from stepstone.core.model import InboxItem
from stepstone.desk.files import write_atomically
from stepstone.errors import InvalidArgument

__all__ = ["MARK", "render_inbox", "write_inbox_file"]

MARK = "<!-- stepstone inbox: rendered from the store after each change; edits are lost -->"


def render_inbox(items: Sequence[InboxItem]) -> str:
    """The file's text: unread items oldest first, then read ones newest first; each summary
    exactly as the run gave it (several lines stay several lines)."""
    unread = [i for i in items if i.unread]
    read = [i for i in items if not i.unread]
    lines = [MARK, "# Inbox", ""]
    if not items:
        lines += ["Nothing yet: `stepstone launch NAME` runs a skill; its outcome lands here.", ""]
    for title, group in ((f"Unread ({len(unread)})", unread), (f"Read ({len(read)})", read)):
        if not group:
            continue
        lines += [f"## {title}", ""]
        for item in group:
            lines += [_heading(item), "", item.summary.rstrip("\n"), ""]
    lines.append("Dismiss with `stepstone dismiss RUN` (or `--all`).")
    return "\n".join(lines) + "\n"


def _heading(item: InboxItem) -> str:
    at = item.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"### {item.skill} · {item.outcome} · {item.level} · run {item.run_id} · {at}"


def write_inbox_file(path: Path, items: Sequence[InboxItem]) -> None:
    """Replace ``path`` with the rendering of ``items``; a file there that stepstone did not
    write raises InvalidArgument naming it, and is left as it is."""
    try:
        with path.open("rb") as f:
            first = f.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    except FileNotFoundError:
        first = MARK
    except OSError as exc:
        raise InvalidArgument(f"{path}: cannot read it: {exc}") from None
    if first != MARK:
        raise InvalidArgument(
            f"{path}: not an inbox file stepstone wrote (its first line is not stepstone's "
            "mark); it was left as it is: move it away and stepstone renders it again from the "
            "store"
        )
    write_atomically(path, render_inbox(items).encode("utf-8"))
