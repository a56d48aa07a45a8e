"""Desktop notifications of new inbox items: ``notify-send`` (Linux) or ``osascript`` (macOS)
where one is installed; silently nothing elsewhere. Never raises: a notification is a
courtesy, the inbox is the record."""

from __future__ import annotations

import shutil
import subprocess
import sys

from stepstone.core.model import InboxItem

__all__ = ["notify_desktop"]


def notify_desktop(item: InboxItem) -> bool:
    """Show ``item``; whether a notifier was found and accepted it."""
    title = f"stepstone: {item.skill} {item.outcome}"
    body = item.summary.strip()[:300]
    if shutil.which("notify-send"):
        urgency = "critical" if item.level == "error" else "normal"
        argv = ["notify-send", "--app-name=stepstone", f"--urgency={urgency}", title, body]
    elif sys.platform == "darwin" and shutil.which("osascript"):
        script = f"display notification {_quoted(body)} with title {_quoted(title)}"
        argv = ["osascript", "-e", script]
    else:
        return False
    try:
        done = subprocess.run(argv, capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _quoted(text: str) -> str:
    """An AppleScript string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
