"""Schema discipline: migrations equal the schema.sql snapshot; every named query block is used."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from pathlib import Path

import pytest

from stepstone.store.queries import Queries
from stepstone.store.sqlite.sql import statements

SRC = Path(__file__).resolve().parent.parent / "src" / "stepstone"


def _sqlite_objects(db: Path) -> dict[str, object]:
    """The schema as structure: columns per table (ALTER TABLE rewrites a table's SQL text, so
    text would differ for the same table) and each index's own definition."""
    conn = sqlite3.connect(db)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        columns = {t: conn.execute(f"PRAGMA table_info({t})").fetchall() for t in tables}
        indexes = {
            name: " ".join((sql or "").split())
            for name, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' ORDER BY name"
            )
        }
    finally:
        conn.close()
    return {"columns": columns, "indexes": indexes}


ALL_SQLITE_MIGRATIONS = [
    "0001_initial",
    "0002_routing",
    "0003_target_index",
    "0004_signal_problem",
    "0005_schedules",
    "0006_ledger",
    "0007_inbox",
    "0008_memory_ledger_days",
    "0009_trace_context",
    "0010_leases",
]


def _migrate_one_by_one(path: Path) -> list[str]:
    """The migrations themselves, in order, as an older file gets them."""
    from stepstone.store.sqlite.connection import DatabaseFile, open_connection
    from stepstone.store.sqlite.schema import apply_migrations

    db = DatabaseFile(path=str(path), url=f"sqlite:///{path}", busy_timeout_s=5.0)
    conn = open_connection(db, create=True)
    try:
        return apply_migrations(db, conn, one_by_one=True)
    finally:
        conn.close()


def test_sqlite_migrations_equal_schema_snapshot(tmp_path: Path) -> None:
    migrated = tmp_path / "migrated.db"
    assert _migrate_one_by_one(migrated) == ALL_SQLITE_MIGRATIONS

    snapshot = tmp_path / "snapshot.db"
    text = resources.files("stepstone.store.sqlite").joinpath("schema.sql").read_text()
    conn = sqlite3.connect(snapshot)
    for statement in statements(text):
        conn.execute(statement)
    conn.commit()
    conn.close()
    assert _sqlite_objects(migrated) == _sqlite_objects(snapshot)


async def test_a_new_sqlite_file_gets_the_snapshot_recorded_as_every_migration(
    tmp_path: Path,
) -> None:
    from stepstone.store.sqlite.store import SQLiteStore

    fresh = tmp_path / "fresh.db"
    store = SQLiteStore(fresh)
    assert await store.migrate() == ALL_SQLITE_MIGRATIONS
    assert await store.migrate() == []  # nothing left to do
    assert await store.schema_status() == (10, 10)
    await store.close()
    migrated = tmp_path / "migrated.db"
    _migrate_one_by_one(migrated)
    assert _sqlite_objects(fresh) == _sqlite_objects(migrated)
    conn = sqlite3.connect(fresh)
    recorded = conn.execute("SELECT version, name FROM stepstone_schema ORDER BY version")
    assert [f"{v:04d}_{n}" for v, n in recorded] == ALL_SQLITE_MIGRATIONS
    conn.close()


async def test_an_older_sqlite_file_gets_only_the_later_migrations(tmp_path: Path) -> None:
    """A file left at version 6 by an older stepstone: the snapshot is for new files only."""
    from stepstone.store.sqlite.sql import migrations
    from stepstone.store.sqlite.store import SQLiteStore

    older = tmp_path / "older.db"
    conn = sqlite3.connect(older)
    conn.execute(
        "CREATE TABLE stepstone_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at REAL NOT NULL)"
    )
    for version, name, sql in migrations()[:6]:
        for statement in statements(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO stepstone_schema VALUES (?, ?, 0)", (version, name))
    conn.commit()
    conn.close()
    store = SQLiteStore(older)
    assert await store.migrate() == ALL_SQLITE_MIGRATIONS[6:]
    await store.close()
    migrated = tmp_path / "migrated.db"
    _migrate_one_by_one(migrated)
    assert _sqlite_objects(older) == _sqlite_objects(migrated)


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_every_query_block_is_used(dialect: str) -> None:
    folder = SRC / "store" / dialect
    if not (folder / "queries.sql").exists():
        pytest.skip(f"no {dialect} adapter yet")
    queries = Queries((folder / "queries.sql").read_text(), dialect)
    code = "\n".join(p.read_text() for p in folder.glob("*.py"))
    scripts = "\n".join(p.read_text() for p in (SRC / "store" / "scripts").glob("*.py"))
    unused = [
        name
        for name in queries.blocks
        if not re.search(rf"\bQ\.{name}\b", code) and f'"{name}"' not in scripts
    ]
    assert unused == [], f"unused query blocks in {dialect}/queries.sql: {unused}"


def test_every_block_a_script_runs_exists_in_every_dialect() -> None:
    """The store scripts name their statements; each dialect must define every one of them."""
    scripts = "\n".join(p.read_text() for p in (SRC / "store" / "scripts").glob("*.py"))
    named = set(re.findall(r"tx\.(?:one|all|run)\(\s*\"(\w+)\"", scripts))
    named |= set(re.findall(r"\"(delete_\w+)\"", scripts))  # purge's loop over its deletes
    assert {"record_step", "claim_run", "find_claimable", "delete_runs"} <= named
    for dialect in ("sqlite", "postgres"):
        queries = Queries((SRC / "store" / dialect / "queries.sql").read_text(), dialect)
        missing = sorted(named - set(queries.blocks))
        assert missing == [], f"{dialect}/queries.sql lacks blocks the scripts run: {missing}"


# Statements only one dialect has a use for (SQLite has no LISTEN nor advisory locks).
DIALECT_ONLY = {"sqlite": set(), "postgres": {"listen", "migration_lock"}}


def test_dialects_share_block_names() -> None:
    names = {}
    for dialect in ("sqlite", "postgres"):
        path = SRC / "store" / dialect / "queries.sql"
        if path.exists():
            names[dialect] = set(Queries(path.read_text(), dialect).blocks)
    if len(names) < 2:
        pytest.skip("only one dialect so far")
    assert names["sqlite"] - DIALECT_ONLY["sqlite"] == names["postgres"] - DIALECT_ONLY["postgres"]
    for dialect, only in DIALECT_ONLY.items():
        assert only <= names[dialect], f"{dialect} lost its own blocks {only - names[dialect]}"


# Walks of a bounded set (a partial index over claimable, running or attention-needing runs) or
# ordered walks that stop at a LIMIT; any other SCAN of these tables reads all history.
BOUNDED_SCANS = {
    "list_runs": {"runs_by_created"},
    "export_runs": {"sqlite_autoindex_runs_1"},
    "running_counts": {"runs_leased"},
    "queue_stats": {"runs_due", "runs_leased", "runs_attention"},
}


async def test_sqlite_statements_never_scan_all_history(tmp_path: Path) -> None:
    """Every SQLite statement reaches runs, steps, events and signals through an index, and a
    whole-index walk only over a bounded set or up to a LIMIT (as the PostgreSQL plans are
    checked in test_postgres.py)."""
    from stepstone.store.sqlite.sql import Q
    from stepstone.store.sqlite.store import SQLiteStore

    store = SQLiteStore(tmp_path / "plans.db")
    await store.migrate()
    await store.close()
    conn = sqlite3.connect(tmp_path / "plans.db")
    scans = {}
    for name, sql in Q.blocks.items():
        params = {p: None for p in re.findall(r":(\w+)", sql)}
        for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params):
            scan = re.match(
                r"SCAN (runs|steps|events|signals)\b(?: USING (?:COVERING )?INDEX (\w+))?", row[3]
            )
            if scan and scan.group(2) not in BOUNDED_SCANS.get(name, set()):
                scans.setdefault(name, []).append(row[3])
    conn.close()
    assert not scans, f"statements that scan all history: {scans}"
