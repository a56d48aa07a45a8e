"""Shared fixtures: real SQLite files in tmp_path, a real PostgreSQL database per test."""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from stepstone import AsyncClient, open_store
from stepstone.core.port import Store

PG_URL = os.environ.get("STEPSTONE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"


def _postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed (pip install 'stepstone[postgres]')"
    import psycopg

    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at {PG_URL} does not answer: {exc}"
    return None


_PG_PROBLEM: str | bool | None = False


def postgres_problem() -> str | None:
    global _PG_PROBLEM
    if _PG_PROBLEM is False:
        _PG_PROBLEM = _postgres_reachable()
    return _PG_PROBLEM  # type: ignore[return-value]


def require_postgres() -> None:
    problem = postgres_problem()
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {problem}")
    pytest.skip(problem)


def _has_postgres_adapter() -> bool:
    return importlib.util.find_spec("stepstone.store.postgres") is not None


ADAPTERS = ["sqlite"] + (["postgres"] if _has_postgres_adapter() else [])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'stepstone.db'}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database, created once per session; tests clone it."""
    require_postgres()
    import psycopg

    from stepstone.store.postgres.store import PostgresStore

    name = f"stepstone_tpl_{uuid.uuid4().hex[:8]}"
    admin = PG_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    import asyncio

    async def migrate() -> None:
        store = PostgresStore(url)
        await store.migrate()
        await store.close()

    asyncio.run(migrate())
    yield name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, cloned from the migrated template."""
    template = request.getfixturevalue("pg_template")
    import psycopg

    name = f"stepstone_t_{uuid.uuid4().hex[:10]}"
    admin = PG_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=ADAPTERS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a migrated store, once per adapter."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return url
    return f"sqlite:///{tmp_path / 'stepstone.db'}"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    s = open_store(store_url)
    await s.migrate()
    yield s
    await s.close()


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[Store]:
    s = open_store(sqlite_url)
    await s.migrate()
    yield s
    await s.close()


@pytest.fixture
async def client(store: Store) -> AsyncIterator[AsyncClient]:
    c = AsyncClient(store)
    yield c
    await c.close()
