"""The SQLite adapter's SQL: its named query blocks and numbered migrations, loaded once."""

from __future__ import annotations

import sqlite3

from stepstone.store.queries import Queries, load_migrations

__all__ = ["LATEST", "MIGRATIONS", "Q", "statements"]

Q = Queries.for_package("stepstone.store.sqlite")
MIGRATIONS = load_migrations("stepstone.store.sqlite")
LATEST = MIGRATIONS[-1][0]


def statements(sql: str) -> list[str]:
    """Split a migration into statements (sqlite3 executes one at a time inside a transaction)."""
    found, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        if not buffer and line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            found.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        found.append(buffer.strip())
    return found
