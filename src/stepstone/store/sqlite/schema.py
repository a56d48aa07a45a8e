"""The SQLite schema's version: checking it when the store opens, and migrating it."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from stepstone.errors import SchemaError, StoreCorrupt
from stepstone.store.sqlite.connection import DatabaseFile
from stepstone.store.sqlite.sql import LATEST, MIGRATION_NAMES, Q, migrations, snapshot, statements

__all__ = ["LATEST", "apply_migrations", "check_schema", "schema_version"]


def check_schema(db: DatabaseFile, conn: sqlite3.Connection, *, auto_migrate: bool) -> None:
    """Raise unless the schema is the one this code knows (migrating it first when
    ``auto_migrate``)."""
    try:
        has_table = conn.execute(Q.has_schema_table).fetchone()[0]
        version = conn.execute(Q.schema_version).fetchone()[0] if has_table else 0
        tables = conn.execute(Q.count_tables).fetchone()[0]
    except sqlite3.Error as exc:
        raise db.error(exc) from exc
    if version == LATEST:
        return
    if version > LATEST:
        raise SchemaError(
            db.url,
            f"schema version {version} is newer than this stepstone knows ({LATEST}); "
            "upgrade stepstone",
        )
    if auto_migrate:
        apply_migrations(db, conn)
        return
    if not has_table and tables:
        raise StoreCorrupt(db.url, "this SQLite database has tables but is not a stepstone store")
    what = (
        "has no stepstone schema"
        if version == 0
        else f"has schema version {version}, behind {LATEST}"
    )
    raise SchemaError(
        db.url,
        f"the database {what}; run `stepstone migrate --db {db.url}` (or `await store.migrate()`)",
    )


def apply_migrations(
    db: DatabaseFile, conn: sqlite3.Connection, *, one_by_one: bool = False
) -> list[str]:
    """Apply the pending migrations in one BEGIN IMMEDIATE transaction (another process
    migrating at the same time waits for the write lock, then finds nothing to do).

    A new file (no tables at all) gets the ``schema.sql`` snapshot instead, recorded as every
    migration: 40 statements instead of 55, half the time (``one_by_one`` runs the migrations
    themselves, as an older file gets them)."""
    applied: list[str] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            has_table = conn.execute(Q.has_schema_table).fetchone()[0]
            tables = conn.execute(Q.count_tables).fetchone()[0]
            if not has_table and tables:
                raise StoreCorrupt(
                    db.url, "this SQLite database has tables but is not a stepstone store"
                )
            now = time.time()
            if not tables and not one_by_one:
                for statement in snapshot():
                    conn.execute(statement)
                for version, name in MIGRATION_NAMES:
                    conn.execute(Q.record_migration, {"version": version, "name": name, "now": now})
                    applied.append(f"{version:04d}_{name}")
            else:
                conn.execute(Q.create_schema_table)
                current = conn.execute(Q.schema_version).fetchone()[0]
                for version, name, sql in migrations():
                    if version <= current:
                        continue
                    for statement in statements(sql):
                        conn.execute(statement)
                    conn.execute(Q.record_migration, {"version": version, "name": name, "now": now})
                    applied.append(f"{version:04d}_{name}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise db.error(exc) from exc
    return applied


def schema_version(db: DatabaseFile, conn: sqlite3.Connection | None = None) -> int:
    """The applied version (0: no file or no stepstone schema), on ``conn`` or on a connection
    of its own."""
    if conn is None and not Path(db.path).expanduser().exists():
        return 0
    try:
        own = conn is None
        if conn is None:
            conn = sqlite3.connect(str(Path(db.path).expanduser()), timeout=db.busy_timeout_s)
        try:
            has_table = conn.execute(Q.has_schema_table).fetchone()[0]
            version = conn.execute(Q.schema_version).fetchone()[0] if has_table else 0
        finally:
            if own:
                conn.close()
    except sqlite3.Error as exc:
        raise db.error(exc) from exc
    return int(version)
