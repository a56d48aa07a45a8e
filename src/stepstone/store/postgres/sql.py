"""The PostgreSQL adapter's SQL: its named query blocks, loaded once."""

from __future__ import annotations

import re

from stepstone.store.queries import Queries

__all__ = ["Q", "positional"]

Q = Queries.for_package("stepstone.store.postgres")

_PARAM = re.compile(r"%\((\w+)\)s")


def positional(sql: str) -> tuple[str, list[str]]:
    """A block with ``$1``..``$n`` for its ``%(name)s`` parameters, as the server prepares it
    (to ``PREPARE`` and ``EXPLAIN`` it by hand), and the parameter names in that order."""
    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    return _PARAM.sub(number, sql), names
