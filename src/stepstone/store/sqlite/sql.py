"""The SQLite adapter's SQL: its named query blocks and numbered migrations, loaded once.

Opening an existing store needs only the latest version (from the migrations folder's listing);
the migrations' text and the ``schema.sql`` snapshot are read when a file is migrated."""

from __future__ import annotations

import functools
import sqlite3

from stepstone.store.queries import Queries, list_migrations, load_migrations, read_snapshot

__all__ = ["LATEST", "MIGRATION_NAMES", "Q", "migrations", "snapshot", "statements"]

_PACKAGE = "stepstone.store.sqlite"
Q = Queries.for_package(_PACKAGE)
MIGRATION_NAMES = list_migrations(_PACKAGE)
LATEST = MIGRATION_NAMES[-1][0]


def migrations() -> tuple[tuple[int, str, str], ...]:
    """(version, name, sql) of every migration, in order."""
    return load_migrations(_PACKAGE)


@functools.cache
def snapshot() -> list[str]:
    """The statements of ``schema.sql``: the schema as all migrations leave it, tested equal to
    them (tests/test_schema.py)."""
    return statements(read_snapshot(_PACKAGE))


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
