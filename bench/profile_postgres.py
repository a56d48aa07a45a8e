"""Where stepstone's time goes on PostgreSQL: round trips, statements, CPU and fsync per step.

Run with /work/main/.venv/bin/python (``bench/run.py`` runs it after the PostgreSQL workloads).
On a fresh database, after a warm-up:

- ``seq100`` and ``wf3`` (``AsyncClient.run``) once each with psycopg instrumented (patched in
  this process; src is untouched): every round trip (``AsyncConnection.wait``), every statement
  by its ``queries.sql`` block name, transactions;
- ``seq100`` ``--reps`` times timed: wall time per step split into this process's CPU
  (``time.process_time``), the server backends' CPU (``/proc/PID/schedstat`` of this database's
  backends) and WAL fsync time (``pg_stat_wal.wal_sync_time``, with ``track_wal_io_timing`` on for
  this database); the rest is waiting on the network, wake-ups and scheduling;
- a drain of ``--n`` three-step runs by two worker processes: the server's own counters for that
  database (``pg_stat_database``: commits, rows inserted/updated) per workflow;
- cProfile of the ``seq100`` runs (by own time).

The result replaces the PostgreSQL part of ``bench/PROFILE.md`` (after the marker line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import pstats
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import pgdb
import psycopg
from pgtrace import Tracer
from stepstone_pg_bench import (
    ALL,
    LATENCY_POLL_S,
    drain_once,
    probe,
    ready_time,
    seq100,
    spawn_worker,
    stop,
    wf3,
)

from stepstone import AsyncClient, open_store

MARKER = "<!-- PostgreSQL profile: written by bench/profile_postgres.py -->"


def backend_cpu_ns(dbname: str) -> int:
    """On-CPU nanoseconds so far of every server backend connected to ``dbname`` (but ours)."""
    with psycopg.connect(pgdb.admin_url(), autocommit=True) as conn:
        pids = [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )
        ]
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    return total


def wal_stats() -> tuple[float, float, float]:
    """(wal_records, wal_sync, wal_sync_time ms) of the whole server."""
    with psycopg.connect(pgdb.admin_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT wal_records, wal_sync, wal_sync_time FROM pg_stat_wal"
        ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1]), float(row[2])


async def trace_runs(url: str) -> dict[str, tuple[Counter[str], Counter[str]]]:
    out = {}
    store = open_store(url)
    await store.migrate()
    async with AsyncClient(store, workflows=ALL) as client:
        for wf in (seq100, wf3):
            await client.run(wf)
            with Tracer() as tracer:
                await client.run(wf)
            out[wf.name] = (Counter(tracer.round_trips), Counter(tracer.statements))
    await store.close()
    return out


async def timed_seq100(dbname: str, url: str, reps: int) -> tuple[dict[str, float], pstats.Stats]:
    """Time ``reps`` runs on a new store (after one warm-up run). Backends flush their WAL
    counters when they exit, so the store is closed before pg_stat_wal is read again, and the
    warm-up run is counted in the WAL figures (``reps + 1`` runs)."""
    await asyncio.sleep(1.1)  # earlier backends' counters reach pg_stat_wal
    wal0 = wal_stats()
    store = open_store(url)
    async with AsyncClient(store, workflows=ALL) as client:
        await client.run(seq100)
        cpu0, server0 = time.process_time(), backend_cpu_ns(dbname)
        t0 = time.perf_counter()
        for _ in range(reps):
            await client.run(seq100)
        wall = time.perf_counter() - t0
        cpu, server = time.process_time() - cpu0, backend_cpu_ns(dbname) - server0
    await store.close()
    await asyncio.sleep(0.5)
    wal = wal_stats()
    store = open_store(url)
    async with AsyncClient(store, workflows=ALL) as client:
        await client.run(seq100)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(reps):
            await client.run(seq100)
        profiler.disable()
    await store.close()
    steps, wal_steps = reps * 100, (reps + 1) * 100
    split = {
        "wall_us": wall * 1e6 / steps,
        "client_cpu_us": cpu * 1e6 / steps,
        "server_cpu_us": server / 1e3 / steps,
        "wal_sync_us": (wal[2] - wal0[2]) * 1e3 / wal_steps,
        "wal_syncs": (wal[1] - wal0[1]) / wal_steps,
        "wal_records": (wal[0] - wal0[0]) / wal_steps,
    }
    return split, pstats.Stats(profiler)


def database_counters(dbname: str) -> dict[str, int]:
    with psycopg.connect(pgdb.admin_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted,"
            " tup_returned, tup_fetched FROM pg_stat_database WHERE datname = %s",
            (dbname,),
        ).fetchone()
    assert row is not None
    keys = ("commits", "rollbacks", "inserted", "updated", "deleted", "returned", "fetched")
    return dict(zip(keys, (int(x) for x in row), strict=True))


def index_counters(dbname: str) -> dict[str, tuple[int, int]]:
    """(scans, index entries read) per index of stepstone's tables, and sequential scans."""
    with psycopg.connect(pgdb.conninfo_for(dbname), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT indexrelname, idx_scan, idx_tup_read FROM pg_stat_user_indexes"
            " WHERE schemaname = 'stepstone'"
            " UNION ALL SELECT relname || ' (seq scan)', seq_scan, seq_tup_read"
            " FROM pg_stat_user_tables WHERE schemaname = 'stepstone'"
        ).fetchall()
    return {r[0]: (int(r[1] or 0), int(r[2] or 0)) for r in rows}


Drain = tuple[
    dict[str, float], dict[str, tuple[float, float]], dict[str, float], dict[str, Counter[str]]
]


def drain_counters(work: Path, n: int) -> Drain:
    """Server counters per workflow for the enqueue and the drain of ``n`` runs: the
    database's, and scans and entries read per index."""
    with pgdb.fresh_database("prof_drain") as (name, url):
        asyncio.run(_migrate(url))
        time.sleep(1.1)  # let the migration's counters reach the statistics views
        before, idx_before = database_counters(name), index_counters(name)
        for old in work.glob("trace*.json"):
            old.unlink()
        result = drain_once(name, url, work, n, migrate=False, trace=True)
        time.sleep(1.1)  # the workers' backends flush their counters on exit
        after, idx_after = database_counters(name), index_counters(name)
    per_wf = {k: (after[k] - before[k]) / n for k in after}
    per_index = {
        k: ((v[0] - idx_before.get(k, (0, 0))[0]) / n, (v[1] - idx_before.get(k, (0, 0))[1]) / n)
        for k, v in idx_after.items()
    }
    per_index = {k: v for k, v in per_index.items() if v[0] or v[1]}
    sent: dict[str, Counter[str]] = {"round_trips": Counter(), "statements": Counter()}
    for path in sorted(work.glob("trace*.json")):
        for kind, counts in json.loads(path.read_text()).items():
            sent[kind].update(counts)
    return per_wf, per_index, result, sent


def start_path(work: Path, starts: int) -> dict[str, Counter[str]]:
    """What an idle worker process sends to PostgreSQL per start (``probe``: one step): its
    counts (SIGUSR1 snapshots, see ``bench/pgtrace.py``) before and after ``starts`` starts,
    each after more than a second of idleness."""
    for old in work.glob("trace0.json*"):
        old.unlink()
    with pgdb.fresh_database("prof_start") as (_, url):
        asyncio.run(_migrate(url))
        proc = spawn_worker(url, work, 0, LATENCY_POLL_S, trace=True)
        try:
            ready_time(work, 0, proc)
            asyncio.run(_starts(url, 1))
            before = _snapshot(proc, work / "trace0.json.1")
            asyncio.run(_starts(url, starts))
            after = _snapshot(proc, work / "trace0.json.2")
        finally:
            stop(proc)
    return {kind: after[kind] - before[kind] for kind in after}


def _snapshot(proc: subprocess.Popen[str], path: Path) -> dict[str, Counter[str]]:
    proc.send_signal(signal.SIGUSR1)
    deadline = time.time() + 10
    while not path.exists() and time.time() < deadline:
        time.sleep(0.01)
    return {k: Counter(v) for k, v in json.loads(path.read_text()).items()}


async def _starts(url: str, count: int) -> None:
    store = open_store(url)
    async with AsyncClient(store, workflows=ALL) as client:
        for _ in range(count):
            await asyncio.sleep(1.1)
            handle = await client.start(probe)
            await handle.result(timeout_s=30)
    await store.close()


async def _migrate(url: str) -> None:
    store = open_store(url)
    await store.migrate()
    await store.close()


def profile_table(stats: pstats.Stats, top: int = 25) -> str:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    text = text[text.index("   ncalls") :] if "   ncalls" in text else text
    text = re.sub(r"\S*/src/(stepstone/)", r"\1", text)
    text = re.sub(r"\S*/site-packages/", "", text)
    text = re.sub(r"\S*/lib/python3\.\d+/", "", text)
    return text.rstrip()


def listing_per(counter: Counter[str], n: int) -> str:
    return "\n".join(f"{c / max(n, 1):7.2f}  {k}" for k, c in counter.most_common() if c > 0)


def listing(counter: Counter[str]) -> str:
    return "\n".join(f"{n:5d}  {k}" for k, n in counter.most_common())


def render(
    traced: dict[str, tuple[Counter[str], Counter[str]]],
    split: dict[str, float],
    floor: dict[str, float],
    drain: Drain,
    starts: tuple[int, dict[str, Counter[str]]],
    stats: pstats.Stats,
    reps: int,
    n: int,
    server: dict[str, str],
) -> str:
    per_wf, per_index, drained, sent = drain
    worker_trips = sum(sent["round_trips"].values())
    worker_statements = "\n".join(
        f"{count / n:7.2f}  {name}" for name, count in sent["statements"].most_common()
    )
    lines = [
        MARKER,
        "",
        "# stepstone on PostgreSQL",
        "",
        "Written by `bench/profile_postgres.py` (run by `bench/run.py` with the PostgreSQL "
        f"workloads). PostgreSQL {server['server_version']} on the same 2-vCPU VM, "
        f"synchronous_commit={server['synchronous_commit']}, "
        f"wal_sync_method={server['wal_sync_method']}. `pg_stat_statements` is not loaded on "
        f"this server (shared_preload_libraries='{server['shared_preload_libraries']}'; loading "
        "it needs a restart of a server other work shares), so statements and round trips are "
        "counted in the client by patching psycopg in this process.",
        "",
        "## Per step: where the time goes (`seq100`, 100 sequential no-op steps)",
        "",
        f"{reps} runs of `seq100` after a warm-up, per step, next to the raw floor measured "
        "in the same run (psycopg from this machine, autocommit, prepared: one INSERT + COMMIT "
        "of a step row):",
        "",
        "| | stepstone, µs per step | raw INSERT + COMMIT, µs |",
        "|---|---|---|",
        f"| wall time | {split['wall_us']:.0f} | {floor['insert_commit']:.0f} |",
        f"| client CPU (this process: engine, codec, psycopg) | {split['client_cpu_us']:.0f} "
        f"| {floor['insert_commit_cpu']:.0f} |",
        f"| server CPU (the database's backends, /proc schedstat) | {split['server_cpu_us']:.0f} "
        "| — |",
        f"| WAL fsync (pg_stat_wal.wal_sync_time; {split['wal_syncs']:.2f} syncs and "
        f"{split['wal_records']:.1f} WAL records per step) | {split['wal_sync_us']:.0f} | — |",
        "",
        f"A `SELECT 1` round trip costs {floor['select1']:.0f} µs here. The parts overlap (an "
        "fsync partly runs on the backend's CPU in the kernel; the client's CPU includes the "
        "listener and pool tasks), so they need not add up to the wall time. WAL counters are "
        "server-wide: other work on the server adds to them.",
        "",
    ]
    for name, steps in (("seq100", 100), ("wf3", 3)):
        trips, statements = traced[name]
        total_trips, total_statements = sum(trips.values()), sum(statements.values())
        lines += [
            f"## Round trips and statements for one `{name}` run (`AsyncClient.run`)",
            "",
            f"{total_trips} round trips ({total_trips / steps:.2f} per step), "
            f"{total_statements} statements ({total_statements / steps:.2f} per step). "
            "Round trips by kind (`_execute_gen` = one statement; `_enter_gen`/`_exit_gen` = "
            "BEGIN/COMMIT of an explicit transaction):",
            "",
            "```",
            listing(trips),
            "```",
            "",
            "Statements by `queries.sql` block:",
            "",
            "```",
            listing(statements),
            "```",
            "",
        ]
    lines += [
        f"## A drain through two worker processes ({n:,} three-step runs)",
        "",
        f"Drain {drained['drain_per_s']:.0f} wf/s, enqueue {drained['enqueue_per_s']:.0f} "
        "runs/s in this measurement. The server's counters for that database (`pg_stat_database`) "
        "per workflow, enqueue and drain together:",
        "",
        "| counter | per workflow |",
        "|---|---|",
        *[f"| {k} | {v:.2f} |" for k, v in per_wf.items()],
        "",
        "Commits per workflow below the statements a run needs alone mean group commit "
        "batched concurrent writes into shared transactions. Rows returned and fetched count "
        "what the statements read; per index (`pg_stat_user_indexes`; the observer polling "
        "for the end of the drain every 2 ms is included):",
        "",
        "| index | scans per workflow | entries read per workflow |",
        "|---|---|---|",
        *[
            f"| {k} | {v[0]:.2f} | {v[1]:.1f} |"
            for k, v in sorted(per_index.items(), key=lambda kv: -kv[1][1])
        ],
        "",
        f"What the two worker processes sent, per workflow ({worker_trips / n:.2f} round trips "
        "per workflow; counted by patching psycopg in the workers, `bench/pgtrace.py`; the "
        "enqueue is not included):",
        "",
        "```",
        worker_statements,
        "```",
        "",
        f"## What an idle worker process sends per start ({starts[0]} starts)",
        "",
        "A worker process (`Settings(poll_s=5.0)`) idles; each start comes after 1.1 s of "
        "idleness, as in workload 3 (`probe`: one step). Statements and round trips per start "
        "(the worker's own counts between two snapshots; its listener's wait is not counted):",
        "",
        "```",
        listing_per(starts[1]["statements"], starts[0]),
        "```",
        "",
        f"{sum(starts[1]['round_trips'].values()) / max(starts[0], 1):.2f} round trips per start.",
        "",
        f"## cProfile of {reps} `seq100` runs (by own time, top 25)",
        "",
        "cProfile inflates Python calls 2-3x; read the shares. Time inside `wait_async`/`select` "
        "is waiting for the server.",
        "",
        "```",
        profile_table(stats),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace everything from MARKER on in ``path`` (the SQLite part above it stays)."""
    old = path.read_text() if path.exists() else ""
    head = old.split(MARKER)[0].rstrip()
    path.write_text((head + "\n\n" if head else "") + text.rstrip() + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=20, help="seq100 runs timed and profiled")
    parser.add_argument("--n", type=int, default=1000, help="runs in the profiled drain")
    parser.add_argument("--starts", type=int, default=5, help="starts of an idle worker traced")
    parser.add_argument("--out", type=Path, default=common.BENCH_DIR / "PROFILE.md")
    args = parser.parse_args()
    work = common.fresh_dir(common.WORK_ROOT, "profile-pg")
    server = pgdb.server_info()
    floor = pgdb.floor_us()
    with pgdb.fresh_database("prof") as (name, url):
        with psycopg.connect(pgdb.admin_url(), autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" SET track_wal_io_timing = on')
        traced = asyncio.run(trace_runs(url))
        split, stats = asyncio.run(timed_seq100(name, url, args.reps))
    drain = drain_counters(work, args.n)
    starts = (args.starts, start_path(work, args.starts))
    write_section(
        args.out, render(traced, split, floor, drain, starts, stats, args.reps, args.n, server)
    )
    print(f"wrote the PostgreSQL part of {args.out}")


if __name__ == "__main__":
    main()
