"""PostgreSQL plumbing shared by the PostgreSQL bench scripts (psycopg 3, in both virtualenvs).

Every measurement gets a fresh database named ``bench_<tag>_<label>_<n>``; ``<tag>`` comes from
``BENCH_PG_TAG`` (set by ``bench/run.py`` for one invocation, so it can drop whatever a crashed
script left behind) and the server from ``BENCH_PG_URL`` (default: the local server, user
postgres). Also here: a neutral outside observer that polls a query until it holds, and the raw
INSERT + COMMIT floor of the server.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_counter = itertools.count()


def admin_url() -> str:
    """The maintenance database's URL (databases are created and dropped through it)."""
    return os.environ.get("BENCH_PG_URL", DEFAULT_URL)


def tag() -> str:
    raw = os.environ.get("BENCH_PG_TAG") or f"p{os.getpid()}"
    return re.sub(r"[^a-z0-9]", "", raw.lower())[:16]


def url_for(dbname: str) -> str:
    """``admin_url()`` with another database name (a URL, as stepstone's ``open_store`` wants)."""
    scheme, _, rest = admin_url().partition("://")
    head, _, tail = rest.partition("/")
    query = tail.partition("?")[2]
    return f"{scheme}://{head}/{dbname}" + (f"?{query}" if query else "")


def conninfo_for(dbname: str) -> str:
    params = conninfo_to_dict(admin_url())
    params["dbname"] = dbname
    return make_conninfo("", **params)


APP_NAME = "stepstone-bench"  # the harness's own admin sessions, not counted as other work


def admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(admin_url(), autocommit=True, application_name=APP_NAME)


def create_database(label: str) -> str:
    """Create an empty database for one measurement; return its name."""
    name = f"bench_{tag()}_{re.sub(r'[^a-z0-9]', '', label.lower())}_{os.getpid()}_{next(_counter)}"
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_database(label: str) -> Iterator[tuple[str, str]]:
    """``(name, url)`` of a new empty database, dropped afterwards."""
    name = create_database(label)
    try:
        yield name, url_for(name)
    finally:
        drop_database(name)


def drop_tagged(prefix_tag: str) -> list[str]:
    """Drop every database of one invocation (``bench_<tag>_*``): leftovers of crashed jobs."""
    with admin() as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s",
                (f"bench\\_{prefix_tag}\\_%",),
            )
        ]
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return names


def wait_until(dbname: str, sql: str, *, timeout_s: float, poll_s: float = 0.002) -> float:
    """Poll ``sql`` (one boolean) on ``dbname`` until it is true; return the wall time
    (``time.time()``) at which it was first seen true. The neutral outside observer of "all runs
    finished", the same for stepstone and the peers. A missing table counts as false."""
    deadline = time.time() + timeout_s
    with psycopg.connect(conninfo_for(dbname), autocommit=True) as conn:
        while True:
            now = time.time()
            if now > deadline:
                raise TimeoutError(f"{dbname}: {sql!r} not true within {timeout_s}s")
            try:
                row = conn.execute(sql, prepare=True).fetchone()
            except psycopg.errors.UndefinedTable:
                row = None
            if row and row[0]:
                return time.time()
            time.sleep(poll_s)


STEP_TABLE = """
CREATE TABLE floor_steps (
    run_id text NOT NULL, seq integer NOT NULL, name text NOT NULL, kind text NOT NULL,
    status text NOT NULL, output text, error text, attempts integer NOT NULL DEFAULT 1,
    started_at timestamptz, finished_at timestamptz, PRIMARY KEY (run_id, seq))
"""


def floor_us(commits: int = 300) -> dict[str, float]:
    """The floor a per-step checkpoint cannot beat on this server, from this client (psycopg,
    autocommit, prepared statements, synchronous_commit=on as stepstone forces):

    - ``insert_commit``: one step-like row INSERTed and COMMITted (one round trip, one WAL flush);
    - ``select1``: ``SELECT 1`` (one round trip, no flush): what is not fsync in the above;
    - ``insert_commit_cpu``: this process's CPU per INSERT + COMMIT (psycopg's share).

    Medians of 3 batches, µs per statement."""
    out: dict[str, list[float]] = {"insert_commit": [], "select1": [], "insert_commit_cpu": []}
    with (
        fresh_database("floor") as (name, _),
        psycopg.connect(
            conninfo_for(name), autocommit=True, options="-c synchronous_commit=on"
        ) as conn,
    ):
        conn.execute(STEP_TABLE)
        for rep in range(3):
            t0 = time.perf_counter()
            for _ in range(commits):
                conn.execute("SELECT 1", prepare=True)
            out["select1"].append((time.perf_counter() - t0) * 1e6 / commits)
            t0, cpu0 = time.perf_counter(), time.process_time()
            for i in range(commits):
                now = datetime.now(UTC)
                conn.execute(
                    "INSERT INTO floor_steps (run_id, seq, name, kind, status, output,"
                    " started_at, finished_at)"
                    " VALUES (%s, %s, 'noop', 'step', 'completed', 'null', %s, %s)",
                    (f"01m809g2338fvh8tga25b3d2r{rep}", i, now, now),
                    prepare=True,
                )
            out["insert_commit"].append((time.perf_counter() - t0) * 1e6 / commits)
            out["insert_commit_cpu"].append((time.process_time() - cpu0) * 1e6 / commits)
    return {k: sorted(v)[len(v) // 2] for k, v in out.items()}


def server_info() -> dict[str, str]:
    """The server's version and the settings that bear on commit latency."""
    names = (
        "server_version",
        "synchronous_commit",
        "fsync",
        "wal_sync_method",
        "shared_buffers",
        "max_connections",
        "shared_preload_libraries",
    )
    with admin() as conn:
        return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}  # type: ignore[index]


def other_activity() -> dict[str, int]:
    """Connections to databases other than this invocation's (other work on the server)."""
    with admin() as conn:
        rows = conn.execute(
            "SELECT count(*) FILTER (WHERE datname NOT LIKE %s),"
            " count(*) FILTER (WHERE datname NOT LIKE %s AND state = 'active')"
            " FROM pg_stat_activity WHERE datname IS NOT NULL AND application_name <> %s",
            (f"bench\\_{tag()}\\_%", f"bench\\_{tag()}\\_%", APP_NAME),
        ).fetchone()
    assert rows is not None
    return {"connections": int(rows[0]), "active": int(rows[1])}


def started_at() -> str:
    """The server's start time (waits up to 3 minutes for it to accept connections)."""
    deadline = time.time() + 180
    while True:
        try:
            with admin() as conn:
                row = conn.execute("SELECT pg_postmaster_start_time()::text").fetchone()
            return str(row[0]) if row else ""
        except psycopg.OperationalError:
            if time.time() > deadline:
                raise
            time.sleep(1.0)


class OtherWork(threading.Thread):
    """Samples, once a second, what else runs: test suites (pytest processes; this harness
    runs none) and sessions of the PostgreSQL server on databases other than ours."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[int, int, int]] = []  # (pytest processes, connections, active)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            pytest = 0
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                with contextlib.suppress(OSError):  # a process that ended meanwhile
                    pytest += b"pytest" in cmdline.read_bytes()
            try:
                pg = other_activity()
            except Exception:  # the server down or restarting
                pg = {"connections": 0, "active": 0}
            self.samples.append((pytest, pg["connections"], pg["active"]))

    def summary(self, since: int = 0) -> str:
        """What the samples from index ``since`` on saw (one section of the invocation)."""
        samples = self.samples[since:]
        n = len(samples) or 1
        tests = sum(1 for s in samples if s[0]) / n
        active = sum(1 for s in samples if s[2]) / n
        most = max((s[1] for s in samples), default=0)
        return (
            f"sampled once a second ({len(samples)} samples): other test suites (pytest "
            f"processes) were running during {tests:.0%} of this section, other "
            f"sessions were active on the server in {active:.0%} of the samples (up to {most} "
            "connections to other databases)"
        )
