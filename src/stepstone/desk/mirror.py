"""Keeping ``INBOX.md`` in step with the store while a worker serves skills: runs end in the
worker's process, so that is where the file is re-rendered after each change, and where a
desktop notification says a new item arrived (items there when it started are not notified)."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

from stepstone.desk.inbox_file import write_inbox_file
from stepstone.desk.notify import notify_desktop
from stepstone.errors import InvalidArgument, StoreError
from stepstone.store import open_store_for_use

__all__ = ["InboxMirror"]

log = logging.getLogger("stepstone.desk")

SHOWN = 200
"""How many items of each kind (unread, read) the file shows."""


class InboxMirror:
    """Re-renders ``path`` from the store at ``url`` whenever the inbox changed, on a thread of
    its own with its own connection. Changes are coalesced: at most one rendering per
    ``min_interval_s``. ``rendered`` is set after each rendering (tests wait on it)."""

    def __init__(
        self, url: str | None, path: Path, *, min_interval_s: float = 0.25, notify: bool = True
    ) -> None:
        self.url, self.path, self.min_interval_s = url, path, min_interval_s
        self.notify = notify
        self._notified = 0  # the newest item already notified (or there at start)
        self.rendered = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stepstone-inbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        asyncio.run(self._follow())

    async def _follow(self) -> None:
        store, _ = open_store_for_use(self.url)
        shown: object = None
        refused = started = False
        try:
            while not self._stop.is_set():
                since = await store.change_token()
                try:
                    items = await store.list_inbox(include_read=True, limit=SHOWN)
                    seen = [(i.item_id, i.read_at) for i in items]
                    newest = max((i.item_id for i in items), default=0)
                    if self.notify and started:
                        for item in items:
                            if item.unread and item.item_id > self._notified:
                                notify_desktop(item)
                    self._notified, started = max(self._notified, newest), True
                    if seen != shown:
                        write_inbox_file(self.path, items)
                        shown, refused = seen, False
                        self.rendered.set()
                except InvalidArgument as exc:
                    if not refused:  # once, not on every change
                        log.warning("inbox file not written: %s", exc)
                    refused = True
                except StoreError as exc:
                    log.warning("inbox file not rendered: %s", exc)
                await store.wait_for_change(1.0, since=since)
                await asyncio.sleep(self.min_interval_s)
        finally:
            await store.close()
