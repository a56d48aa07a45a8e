"""Run the "durable core" benchmark: stepstone and its peers, same workloads, one run.

    /work/main/.venv/bin/python bench/run.py            # ~5-8 minutes
    /work/main/.venv/bin/python bench/run.py --quick    # under 2 minutes, fewer repetitions

Sets up the peers' virtualenv (``bench/peers/setup.sh``) if it is missing, then runs every
workload for stepstone (``bench/stepstone_bench.py``, project venv), DBOS Transact and LangGraph
(``bench/peers/*_bench.py``, peer venv), each workload-system pair in its own process. Systems are
interleaved round by round, so a noisy stretch of the machine hits all of them. Medians of all
samples are compared as ratios and written to ``bench/RESULTS.md`` (raw samples to
``bench/RESULTS.json``); a cProfile of stepstone goes to ``bench/PROFILE.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

BENCH = common.BENCH_DIR
ROOT = BENCH.parent
PEER_PY = BENCH / ".peers" / "venv" / "bin" / "python"
SYSTEMS = {
    "stepstone": (Path(sys.executable), BENCH / "stepstone_bench.py"),
    "dbos": (PEER_PY, BENCH / "peers" / "dbos_bench.py"),
    "langgraph": (PEER_PY, BENCH / "peers" / "langgraph_bench.py"),
}
PEERS = ("dbos", "langgraph")
PEER_PACKAGES = (
    "dbos",
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-checkpoint-sqlite",
    "langchain-core",
    "SQLAlchemy",
    "aiosqlite",
)


@dataclass(frozen=True)
class Job:
    """One bench-script invocation: a system running a workload with some repetitions."""

    system: str
    workload: str
    reps: int
    n: int = 0


@dataclass
class Collected:
    samples: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    units: dict[tuple[str, str, str], str] = field(default_factory=dict)
    extras: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


# --- the plan ---------------------------------------------------------------------------------


def plan(quick: bool) -> tuple[int, list[Job]]:
    """(rounds, jobs of one round). Repetitions are sized so the slow peers stay within budget."""
    n = 300 if quick else 1000
    r = 1 if quick else 2  # repetition multiplier
    jobs = [
        Job("stepstone", "seq100", 3 * r),
        Job("stepstone", "seq100_full", 3 * r),
        Job("dbos", "seq100", 2 * r),
        Job("langgraph", "seq100", 2 * r),
        Job("stepstone", "wf3", 1 * r, n),
        Job("dbos", "wf3", 1, n),
        Job("langgraph", "wf3", 1, n),
        Job("stepstone", "queue", 1 * r, n),
        Job("dbos", "queue", 1, n),
        Job("stepstone", "par200", 5 * r),
        Job("dbos", "par200", 2 * r),
        Job("langgraph", "par200", 3 * r),
        Job("stepstone", "recovery", 3 * r),
        Job("dbos", "recovery", 1 * r),
        Job("langgraph", "recovery", 1 * r),
        Job("stepstone", "startup", 3 * r),
        Job("dbos", "startup", 2 * r),
        Job("langgraph", "startup", 2 * r),
    ]
    return (1 if quick else 3), jobs


def run_job(job: Job, work: Path, out: Collected) -> None:
    python, script = SYSTEMS[job.system]
    argv = [
        str(python),
        str(script),
        "--workload",
        job.workload,
        "--reps",
        str(job.reps),
        "--work-dir",
        str(work),
    ]
    if job.n:
        argv += ["--n", str(job.n)]
    label = f"{job.system}/{job.workload}"
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=600, env=common.python_env()
        )
    except subprocess.TimeoutExpired:
        out.errors.append(f"{label}: timed out after 600 s")
        print(f"  {label}: TIMEOUT", flush=True)
        return
    elapsed = time.perf_counter() - t0
    out.seconds[label] = out.seconds.get(label, 0.0) + elapsed
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not lines[-1].startswith("{"):
        out.errors.append(f"{label}: exit {proc.returncode}\n{proc.stderr.strip()[-4000:]}")
        print(f"  {label}: FAILED (exit {proc.returncode})", flush=True)
        return
    result = json.loads(lines[-1])
    for metric, data in result.pop("metrics").items():
        key = (job.system, job.workload, metric)
        out.samples.setdefault(key, []).extend(data["samples"])
        out.units[key] = data["unit"]
    result.pop("system"), result.pop("workload")
    out.extras[(job.system, job.workload)] = result
    summary = ", ".join(
        f"{m}={common.median(out.samples[(job.system, job.workload, m)]):.4g}"
        for (s, w, m) in out.samples
        if (s, w) == (job.system, job.workload)
    )
    print(f"  {label} ({elapsed:.1f}s): {summary}", flush=True)


# --- environment ------------------------------------------------------------------------------


def ensure_peers() -> None:
    if PEER_PY.exists():
        return
    print("setting up the peers' virtualenv (bench/peers/setup.sh)...", flush=True)
    subprocess.run(
        ["bash", str(BENCH / "peers" / "setup.sh")],
        check=True,
        env={**os.environ, "PYTHON": sys.executable},
    )


def peer_versions() -> dict[str, str]:
    proc = subprocess.run([str(PEER_PY), "-m", "pip", "freeze"], capture_output=True, text=True)
    wanted = {p.lower() for p in PEER_PACKAGES}
    found = {}
    for line in proc.stdout.splitlines():
        name, _, version = line.partition("==")
        if name.lower() in wanted:
            found[name] = version
    return found


def source_digest() -> str:
    """A digest of src/stepstone as measured (the tree is being edited; there may be no commit)."""
    h = hashlib.sha256()
    for path in sorted((ROOT / "src" / "stepstone").rglob("*")):
        if path.is_file() and path.suffix in (".py", ".sql"):
            h.update(str(path.relative_to(ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def sqlite_floor(commits: int = 300) -> dict[str, float]:
    """µs per BEGIN IMMEDIATE + INSERT of one step-like row + COMMIT, WAL, synchronous NORMAL vs
    FULL: the floor a per-step checkpoint cannot beat on this disk (measured in this run)."""
    out = {}
    with tempfile.TemporaryDirectory(dir=common.WORK_ROOT) as tmp:
        for level in ("NORMAL", "FULL"):
            conn = sqlite3.connect(Path(tmp) / f"{level}.db", isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={level}")
            conn.execute(
                "CREATE TABLE steps (run_id TEXT NOT NULL, seq INTEGER NOT NULL, "
                "name TEXT NOT NULL, "
                "status TEXT NOT NULL, output TEXT, started_at REAL, finished_at REAL, "
                "PRIMARY KEY (run_id, seq)) WITHOUT ROWID"
            )
            samples = []
            for rep in range(3):
                t0 = time.perf_counter()
                for i in range(commits):
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute(
                        "INSERT INTO steps VALUES (?, ?, 'noop', 'completed', 'null', ?, ?)",
                        (f"01m809g2338fvh8tga25b3d2r{rep}", i, time.time(), time.time()),
                    )
                    conn.execute("COMMIT")
                samples.append((time.perf_counter() - t0) * 1e6 / commits)
            conn.close()
            out[level] = common.median(samples)
    return out


# --- the report -------------------------------------------------------------------------------

TARGETS: dict[tuple[str, str], tuple[str, float]] = {
    # (workload, metric): (comparison, bound) -- from the "durable core" issue
    ("seq100", "us_per_step"): ("<=", 100),
    ("seq100_full", "us_per_step"): ("<=", 300),
    ("wf3", "wf_per_s"): (">=", 2000),
    ("queue", "drain_per_s"): (">=", 3000),
    ("par200", "ms"): ("<=", 40),
    ("recovery", "ms"): ("<=", 300),
    ("startup", "import_ms"): ("<=", 80),
}

SECTIONS = [
    (
        "seq100",
        "a. One workflow of 100 sequential no-op steps",
        "Wall time of one run / 100 (start and finish of the run included).",
    ),
    (
        "wf3",
        "b. {n} three-step workflows one after another, in-process",
        "stepstone `AsyncClient.run`; DBOS: calling the `@DBOS.workflow`; LangGraph: "
        "`graph.invoke` "
        'on a fresh thread, `durability="sync"`.',
    ),
    (
        "queue",
        "b'. The same {n} through a queue and one worker process (concurrency 64)",
        "Enqueue from one process, then one worker process drains the queue; drain is timed from "
        "the "
        "worker being ready to an outside observer (polling the SQLite file every 2 ms) seeing all "
        "runs completed; end-to-end = N / (enqueue + drain). LangGraph: n/a, the OSS library has "
        "no "
        "queue or worker (runs are driven by the caller's `invoke`).",
    ),
    (
        "par200",
        "c. One workflow with 200 parallel no-op steps",
        "stepstone `ctx.parallel(*200 calls)`; DBOS `asyncio.gather` of 200 async steps in an "
        "async "
        "workflow; LangGraph a fan-out of 200 `Send` tasks in one superstep.",
    ),
    (
        "recovery",
        "d. SIGKILL at step 6 of 10 (steps 1-5 recorded); a new worker process finishes the run",
        "From spawning the new process to the parent observing the result (stepstone: "
        "`client.result`; DBOS: polling its `workflow_status` row; LangGraph: no automatic "
        "recovery, "
        "the new process calls `invoke(None, thread)` itself and prints the result). "
        "`steps_1_5_exactly_once` = 1 when steps 1-5 ran once and only step 6 twice.",
    ),
    (
        "startup",
        "e. Process startup",
        '`python -c "import X"` and a whole process running a 1-step durable workflow on a fresh '
        "database (schema creation included), wall time with the interpreter's own start "
        "(`python_ms`).",
    ),
]

BETTER_HIGH = {"wf/s", "runs/s"}
TIMES, DASH = "\N{MULTIPLICATION SIGN}", "\N{EN DASH}"


def fmt(x: float) -> str:
    if x != x:  # NaN
        return "—"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_range(pair: tuple[float, float]) -> str:
    lo, hi = pair
    return f"{lo:.0f}{DASH}{hi:.0f}" if round(lo) != round(hi) else f"{lo:.0f}"


def cell(samples: list[float] | None) -> str:
    if not samples:
        return "n/a"
    spread = f"{fmt(min(samples))}{DASH}{fmt(max(samples))}"
    return f"{fmt(common.median(samples))} ({spread}, n={len(samples)})"


def advantage(metric: str, unit: str, ours: list[float] | None, theirs: list[float] | None) -> str:
    """How many times better stepstone's median is than the peer's (>1 = stepstone better)."""
    if not ours or not theirs or unit == "bool" or metric == "python_ms":
        return "—"
    a, b = common.median(ours), common.median(theirs)
    ratio = a / b if unit in BETTER_HIGH else b / a
    return f"**{ratio:.1f}{TIMES}**" if ratio >= 1 else f"{ratio:.2f}{TIMES} (slower)"


def report(col: Collected, meta: dict[str, Any], path: Path) -> None:
    lines = [
        "# Benchmark: durable core — stepstone vs DBOS Transact vs LangGraph",
        "",
        f"Generated by `{meta['command']}` on {meta['date']} in {meta['duration_s']:.0f} s. "
        f"stepstone sources digest `{meta['source_digest']}` "
        "(sha256 of src/stepstone/**/*.py,*.sql).",
        "",
    ]
    if meta["source_digest_at_end"] != meta["source_digest"]:
        lines += [
            "> **Warning:** src/stepstone changed during this run "
            f"(digest `{meta['source_digest']}` "
            f"at the start, `{meta['source_digest_at_end']}` at the end): stepstone's samples may "
            "mix code versions. Re-run when the tree is quiet.",
            "",
        ]
    lines += [
        "**Caveats.** One small VM: 2 noisy vCPUs, shared disk. Every number is a median over the "
        f"samples shown as (min{DASH}max, n=count); the systems were run interleaved, round by "
        "round, in the same invocation, so ratios compare like with like, but absolute numbers "
        "move ±20% between runs. All three use SQLite files under `bench/.work/` with their own "
        "defaults "
        "(stepstone: WAL + synchronous=NORMAL for checkpoints; DBOS: rollback journal + FULL; "
        f'LangGraph `SqliteSaver`: WAL + FULL). "{TIMES}" columns: how many times better '
        "stepstone's median is (>1 = stepstone better).",
        "",
        f"Python {meta['python']}, SQLite {meta['sqlite']}, {meta['platform']}. Raw SQLite floor "
        f"in this run (BEGIN IMMEDIATE + INSERT of one step row + COMMIT, WAL; measured before and "
        f"after the workloads): {fmt_range(meta['sqlite_floor_range']['NORMAL'])} µs with "
        f"synchronous=NORMAL, {fmt_range(meta['sqlite_floor_range']['FULL'])} µs "
        "with FULL (fsync).",
        "",
        "Peers (bench/.peers/venv, pinned in `bench/peers/setup.sh`): "
        + ", ".join(f"{k} {v}" for k, v in sorted(meta["peer_versions"].items()))
        + ".",
        "",
        '## Targets (issue "durable core")',
        "",
        "| target | measured (stepstone median) | met |",
        "|---|---|---|",
    ]
    for (workload, metric), (op, bound) in TARGETS.items():
        samples = col.samples.get(("stepstone", workload, metric))
        unit = col.units.get(("stepstone", workload, metric), "")
        if samples:
            m = common.median(samples)
            ok = m <= bound if op == "<=" else m >= bound
            verdict = "yes" if ok else "**no**"
            lines.append(
                f"| {workload} {metric} {op} {fmt(bound)} {unit} | {fmt(m)} {unit} | {verdict} |"
            )
        else:
            lines.append(
                f"| {workload} {metric} {op} {fmt(bound)} {unit} | not measured (error) | **no** |"
            )
    lines.append("")

    for workload, title, how in SECTIONS:
        n = col.extras.get(("stepstone", workload), {}).get("n", 0)
        lines += [f"## {title.format(n=f'{n:,}')}", "", how, ""]
        workloads = [workload, "seq100_full"] if workload == "seq100" else [workload]
        lines += [
            f"| metric | stepstone | DBOS | LangGraph | {TIMES} vs DBOS | {TIMES} vs LangGraph |",
            "|---|---|---|---|---|---|",
        ]
        metrics: list[tuple[str, str]] = []
        for w in workloads:
            for _, ww, m in col.samples:
                if ww == w and (w, m) not in metrics:
                    metrics.append((w, m))
        for w, m in metrics:
            unit = next(col.units[k] for k in col.units if k[1:] == (w, m))
            ours = col.samples.get(("stepstone", w, m))
            row_name = f"{m} [{unit}]" if w == workload else f'{m} [{unit}], durability="full"'
            if w == "seq100" and m != "us_per_step":
                row_name = f"{m} [{unit}] (peer variant)"
            peers = [col.samples.get((p, w, m)) for p in PEERS]
            lines.append(
                f"| {row_name} | {cell(ours)} | {cell(peers[0])} | {cell(peers[1])} | "
                f"{advantage(m, unit, ours, peers[0])} | {advantage(m, unit, ours, peers[1])} |"
            )
        for system in SYSTEMS:
            extra = col.extras.get((system, workload))
            if extra:
                lines.append(f"\n{system} settings: `{json.dumps(extra)}`")
        lines.append("")

    lines += [
        "## Notes on the peers' variants",
        "",
        '- LangGraph `us_per_step` uses `durability="sync"` (checkpoint written before the next '
        "node, like stepstone and DBOS); `us_per_step_durability_async` is LangGraph's default "
        "(checkpoint written concurrently with the next node); `us_per_step_aiosqlite` is "
        '`AsyncSqliteSaver` + `ainvoke` with `durability="sync"`.',
        "- DBOS's queue runs with `polling_interval_sec=0.01` (default 1 s would cap the drain at "
        "~64 workflows per second); stepstone's worker is woken by its own store events.",
        "- DBOS recovery includes DBOS's launch, which recovers the local executor's PENDING "
        "workflows; LangGraph has no recovery, so its number is a manual resume of a known thread.",
        "",
    ]
    if col.errors:
        lines += ["## Errors", ""]
        for err in col.errors:
            lines += ["```", err, "```", ""]
    lines += ["## Time spent per job (s)", "", "| job | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in sorted(col.seconds.items())]
    path.write_text("\n".join(lines) + "\n")


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one round, N=300, fewer repetitions")
    parser.add_argument("--no-peers", action="store_true", help="stepstone only")
    parser.add_argument("--no-profile", action="store_true", help="skip bench/PROFILE.md")
    args = parser.parse_args()
    started = time.perf_counter()
    common.WORK_ROOT.mkdir(parents=True, exist_ok=True)
    if not args.no_peers:
        ensure_peers()
    rounds, jobs = plan(args.quick)
    if args.no_peers:
        jobs = [j for j in jobs if j.system == "stepstone"]
    col = Collected()
    digest_at_start = source_digest()
    floors = [sqlite_floor()]
    for r in range(rounds):
        print(f"round {r + 1}/{rounds}", flush=True)
        for job in jobs:
            run_job(job, common.WORK_ROOT / "run", col)
    floors.append(sqlite_floor())
    floor = {level: common.median([f[level] for f in floors]) for level in ("NORMAL", "FULL")}
    floor_range = {
        level: (min(f[level] for f in floors), max(f[level] for f in floors)) for level in floor
    }
    if not args.no_profile:
        print("profiling stepstone -> bench/PROFILE.md", flush=True)
        proc = subprocess.run(
            [sys.executable, str(BENCH / "profile_stepstone.py")],
            capture_output=True,
            text=True,
            env=common.python_env(),
        )
        if proc.returncode != 0:
            col.errors.append(
                f"profile_stepstone.py: exit {proc.returncode}\n{proc.stderr[-4000:]}"
            )
    meta = {
        "command": " ".join(["/work/main/.venv/bin/python bench/run.py", *sys.argv[1:]]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": time.perf_counter() - started,
        "source_digest": digest_at_start,
        "source_digest_at_end": source_digest(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "sqlite_floor": floor,
        "sqlite_floor_range": floor_range,
        "peer_versions": peer_versions() if not args.no_peers else {},
    }
    report(col, meta, BENCH / "RESULTS.md")
    raw = {
        "meta": meta,
        "results": [
            {
                "system": s,
                "workload": w,
                "metric": m,
                "unit": col.units[(s, w, m)],
                "samples": v,
                "median": common.median(v),
            }
            for (s, w, m), v in col.samples.items()
        ],
        "extras": [{"system": s, "workload": w, **e} for (s, w), e in col.extras.items()],
        "errors": col.errors,
    }
    (BENCH / "RESULTS.json").write_text(json.dumps(raw, indent=1) + "\n")
    print(f"wrote bench/RESULTS.md and bench/RESULTS.json in {meta['duration_s']:.0f} s")
    if col.errors:
        print(f"{len(col.errors)} job(s) failed; see the Errors section", file=sys.stderr)


if __name__ == "__main__":
    main()
