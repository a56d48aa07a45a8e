"""Human output: plain lines, key/value blocks and rich tables (rich is imported only for tables).

Times are shown in local time to the second, durations in milliseconds. Colour is used only when
stdout is a terminal (rich decides, and honours ``NO_COLOR``); piped output is plain text and wide
enough that ids are never wrapped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import IO, Any

__all__ = ["STATE_STYLES", "Screen", "fmt_ms", "fmt_time", "one_line", "state_cell"]

STATE_STYLES = {
    "pending": "blue",
    "running": "cyan",
    "sleeping": "yellow",
    "waiting": "yellow",
    "paused": "magenta",
    "blocked": "bold red",
    "completed": "green",
    "failed": "red",
    "cancelled": "dim",
}


def state_cell(state: str) -> tuple[str, str]:
    """A run state as a table cell, coloured by what it means (on a terminal only)."""
    return state, STATE_STYLES.get(state, "")


_PIPE_WIDTH = 200


def fmt_time(at: datetime | None) -> str:
    """``2024-05-01 14:03:07`` in local time; empty for ``None``."""
    if at is None:
        return ""
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def fmt_ms(seconds: float | None) -> str:
    """A duration in milliseconds (``12 ms``, ``1,204 ms``); empty for ``None``."""
    if seconds is None:
        return ""
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:,.0f} ms"


def one_line(text: str | None, limit: int = 80) -> str:
    """The first line of ``text``, shortened to ``limit`` characters."""
    if not text:
        return ""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


class Screen:
    """Where human output goes: stdout for results, stderr for notes."""

    def __init__(self, out: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._console: Any = None

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        """A message for the person at the terminal, kept out of stdout."""
        print(text, file=self.err, flush=True)

    def json(self, value: Any) -> None:
        self.line(json.dumps(value, indent=2, ensure_ascii=False))

    def fields(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Aligned ``key: value`` lines; empty values are left out."""
        shown = [(k, v) for k, v in pairs if v]
        width = max((len(k) for k, _ in shown), default=0)
        for key, value in shown:
            lines = value.splitlines() or [""]
            self.line(f"{key + ':':<{width + 1}} {lines[0]}")
            for rest in lines[1:]:
                self.line(f"{'':<{width + 1}} {rest}")

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[str | tuple[str, str]]],
        *,
        title: str | None = None,
        no_wrap: Sequence[str] = (),
        min_width: Mapping[str, int] | None = None,
    ) -> None:
        """A table; columns named in ``no_wrap`` (ids, times) are never folded. A cell given as
        ``(text, style)`` is coloured with a rich style when the output is a terminal."""
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(
            title=title,
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            title_justify="left",
            highlight=False,
        )
        for name in columns:
            table.add_column(
                name,
                no_wrap=name in no_wrap,
                overflow="fold",
                min_width=(min_width or {}).get(name),
            )
        for row in rows:
            # Text: no markup in user data
            table.add_row(*(Text(*cell) if isinstance(cell, tuple) else Text(cell) for cell in row))
        self._rich().print(table)

    def _rich(self) -> Any:
        if self._console is None:
            from rich.console import Console

            terminal = self.out.isatty()
            self._console = Console(
                file=self.out, highlight=False, width=None if terminal else _PIPE_WIDTH
            )
        return self._console
