"""The PostgreSQL schema's version: migrating it (safely from several processes at once) and
checking it when a store opens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from stepstone.errors import SchemaError, StoreCorrupt
from stepstone.store.postgres.connection import Conn, LinkSettings, connect
from stepstone.store.postgres.errors import convert
from stepstone.store.postgres.sql import Q
from stepstone.store.queries import list_migrations, load_migrations

__all__ = ["LATEST", "apply_migrations", "check_schema", "schema_version"]

_PACKAGE = "stepstone.store.postgres"
LATEST = list_migrations(_PACKAGE)[-1][0]  # the texts are read when a database is migrated


async def _one_row(conn: Conn, sql: str) -> dict[str, Any] | None:
    cur = await conn.execute(sql)
    return await cur.fetchone()


async def _version(conn: Conn) -> int:
    row = await _one_row(conn, Q.has_schema_table)
    if not row or not row["present"]:
        return 0
    row = await _one_row(conn, Q.schema_version)
    return int(row["version"]) if row else 0


async def schema_version(settings: LinkSettings) -> int:
    """The applied version (0: no stepstone schema), on a connection of its own."""
    try:
        async with await connect(settings.conninfo) as conn:
            return await _version(conn)
    except psycopg.Error as exc:
        raise convert(exc, settings.url, settings.secret) from exc


def _newer(url: str, version: int) -> SchemaError:
    return SchemaError(
        url,
        f"schema version {version} is newer than this stepstone knows ({LATEST}); "
        "upgrade stepstone",
    )


async def apply_migrations(settings: LinkSettings) -> list[str]:
    """Apply the pending migrations in one transaction. The transaction first takes an advisory
    lock, so a second process migrating at the same time waits, then finds nothing to do."""
    applied: list[str] = []
    try:
        async with await connect(settings.conninfo) as conn, conn.transaction():
            await conn.execute(Q.migration_lock)
            await conn.execute(Q.create_schema_table)
            row = await _one_row(conn, Q.schema_version)
            current = int(row["version"]) if row else 0
            if current > LATEST:
                raise _newer(settings.url, current)
            if current == 0:
                row = await _one_row(conn, Q.count_tables)
                if row and row["n"]:
                    raise StoreCorrupt(
                        settings.url,
                        "the schema 'stepstone' holds tables but no stepstone migrations; "
                        "it is not a stepstone store",
                    )
            now = datetime.now(UTC)
            for version, name, text in load_migrations(_PACKAGE):
                if version <= current:
                    continue
                await conn.execute(text.encode())  # several statements, no parameters
                params = {"version": version, "name": name, "now": now}
                await conn.execute(Q.record_migration, params)
                applied.append(f"{version:04d}_{name}")
    except psycopg.Error as exc:
        raise convert(exc, settings.url, settings.secret) from exc
    return applied


async def check_schema(settings: LinkSettings, *, auto_migrate: bool) -> None:
    """Raise SchemaError unless the schema is exactly the one this code knows (migrating it
    first when ``auto_migrate``). Also the first connection a store makes: a wrong URL, a
    refused login or a missing database fail here, at once, with the server's reason."""
    version = await schema_version(settings)
    if version == LATEST:
        return
    if version > LATEST:
        raise _newer(settings.url, version)
    if auto_migrate:
        await apply_migrations(settings)
        return
    what = "has no stepstone schema" if version == 0 else f"has schema version {version}"
    behind = "" if version == 0 else f", behind {LATEST}"
    raise SchemaError(
        settings.url,
        f"the database {what}{behind}; run `stepstone migrate --db {settings.url}` "
        "(or `await store.migrate()`)",
    )
