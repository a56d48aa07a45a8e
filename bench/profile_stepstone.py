"""Where stepstone's time goes: cProfile of the 100-step workflow and of 3-step workflows.

Runs ``seq100`` (default durability) ``--reps`` times and ``wf3`` ``--n`` times in-process under
cProfile (after an unprofiled warm-up) and writes the top entries by cumulative and by own time
to ``bench/PROFILE.md``. cProfile inflates the absolute numbers (roughly 2-3x here); read the
shares, not the totals. Run with /work/main/.venv/bin/python.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import re
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
from stepstone_bench import ALL, seq100, url, wf3

from stepstone import AsyncClient, open_store

TOP = 30
PG_MARKER = "<!-- PostgreSQL profile: written by bench/profile_postgres.py -->"
_statements: list[str] = []
_real_connect = sqlite3.connect


def _traced_connect(*args: object, **kwargs: object) -> sqlite3.Connection:
    """sqlite3.connect that records every statement the store runs (patched in, src untouched)."""
    conn = _real_connect(*args, **kwargs)  # type: ignore[arg-type]
    conn.set_trace_callback(_statements.append)
    return conn


async def trace_statements(db: Path, name: str) -> tuple[int, Counter[str]]:
    """Run ``name`` once (after a warm-up) and count the SQL statements it sent, by kind."""
    sqlite3.connect = _traced_connect  # type: ignore[assignment]
    try:
        store = open_store(url(db))
        await store.migrate()
        wf = seq100 if name == "seq100" else wf3
        async with AsyncClient(store, workflows=ALL) as client:
            await client.run(wf)
            _statements.clear()
            await client.run(wf)
            seen = list(_statements)
        await store.close()
    finally:
        sqlite3.connect = _real_connect  # type: ignore[assignment]
    kinds: Counter[str] = Counter()
    for sql in seen:
        words = re.sub(r"\s+", " ", re.sub(r"--[^\n]*", "", sql)).strip().split(" ")
        first = words[0].upper()
        head = " ".join(
            words[: 4 if first == "SELECT" else 3 if first in ("INSERT", "DELETE") else 2]
        )
        if words[0].upper() == "UPDATE":
            head = " ".join(words[:2]) + " SET " + (words[3] if len(words) > 3 else "")
        kinds[head[:60]] += 1
    return len(seen), kinds


async def profile_workload(db: Path, name: str, runs: int) -> tuple[pstats.Stats, float]:
    store = open_store(url(db))
    await store.migrate()
    wf = seq100 if name == "seq100" else wf3
    async with AsyncClient(store, workflows=ALL) as client:
        for _ in range(3):
            await client.run(wf)
        profiler = cProfile.Profile()
        t0 = time.perf_counter()
        profiler.enable()
        for _ in range(runs):
            await client.run(wf)
        profiler.disable()
        elapsed = time.perf_counter() - t0
    await store.close()
    return pstats.Stats(profiler), elapsed


def table(stats: pstats.Stats, sort: str) -> str:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats(sort).print_stats(TOP)
    text = out.getvalue()
    text = text[text.index("   ncalls") :] if "   ncalls" in text else text
    # Shorten paths: the project's own files relative to src/, the stdlib by module file name.
    text = re.sub(r"\S*/src/(stepstone/)", r"\1", text)
    text = re.sub(r"\S*/lib/python3\.\d+/", "", text)
    return text.rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=20, help="seq100 runs profiled")
    parser.add_argument("--n", type=int, default=500, help="wf3 runs profiled")
    parser.add_argument("--out", type=Path, default=common.BENCH_DIR / "PROFILE.md")
    args = parser.parse_args()
    work = common.fresh_dir(common.WORK_ROOT, "profile")
    sections = []
    for name, runs, steps in (("seq100", args.reps, 100), ("wf3", args.n, 3)):
        stats, elapsed = asyncio.run(profile_workload(work / f"{name}.db", name, runs))
        per_step = elapsed * 1e6 / (runs * steps)
        count, kinds = asyncio.run(trace_statements(work / f"{name}-trace.db", name))
        listing = "\n".join(f"{n:5d}  {k}" for k, n in kinds.most_common())
        sections.append(
            f"## `{name}`, {runs} runs (under cProfile: {elapsed * 1000:.0f} ms, "
            f"{per_step:.0f} µs/step, {runs / elapsed:.0f} wf/s)\n\n"
            f"### SQL statements sent for one run ({count} in all, "
            f"{count / steps:.1f} per step)\n\n"
            f"```\n{listing}\n```\n\n"
            f"### By cumulative time (top {TOP})\n\n"
            f"```\n{table(stats, 'cumulative')}\n```\n\n"
            f"### By own time (tottime, top {TOP})\n\n```\n{table(stats, 'tottime')}\n```\n"
        )
    header = (
        "# stepstone profile\n\n"
        "SQLite first; the PostgreSQL part is at the end of this file.\n\n"
        "Written by `bench/profile_stepstone.py` (run by `bench/run.py`): cProfile of in-process "
        "runs on SQLite with default durability, after a warm-up. cProfile roughly doubles to "
        "triples the cost of Python calls, so read the shares, not the totals.\n\n"
    )
    # the PostgreSQL part (bench/profile_postgres.py) follows its marker line: keep it
    old = args.out.read_text() if args.out.exists() else ""
    tail = old[old.index(PG_MARKER) :] if PG_MARKER in old else ""
    args.out.write_text(header + "\n".join(sections) + ("\n" + tail if tail else ""))
    print(f"wrote the SQLite part of {args.out}")


if __name__ == "__main__":
    main()
