"""Run the benchmarks: stepstone and its peers, same workloads, one invocation.

    /work/main/.venv/bin/python bench/run.py             # SQLite + PostgreSQL, ~10-13 minutes
    /work/main/.venv/bin/python bench/run.py --quick     # both, under 3 minutes
    /work/main/.venv/bin/python bench/run.py --postgres  # the PostgreSQL section only
    /work/main/.venv/bin/python bench/run.py --sqlite    # the SQLite section only

SQLite ("durable core"): stepstone (``bench/stepstone_bench.py``, project venv), DBOS Transact
and LangGraph (``bench/peers/*_bench.py``, peer venv) on SQLite files. PostgreSQL ("PostgreSQL
store and a distributed worker fleet"): stepstone (``bench/stepstone_pg_bench.py``,
``bench/stepstone_pg_scale.py``), DBOS Transact and sayiir (``bench/peers/dbos_pg_bench.py``,
``bench/peers/sayiir_bench.py``) on fresh databases of the server at ``BENCH_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``), dropped afterwards.

Sets up the peers' virtualenv (``bench/peers/setup.sh``) if it is missing, then runs each
workload-system pair in its own process, systems interleaved round by round, so a noisy stretch
of the machine hits all of them. A PostgreSQL job during which the server restarted (other work
shares it) is run again, up to twice. Medians are compared as ratios in ``bench/RESULTS.md``
(raw samples in ``bench/RESULTS.json``; a section not run this time is kept from the last run);
profiles go to ``bench/PROFILE.md``.
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
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import report
from report import Collected

BENCH = common.BENCH_DIR
ROOT = BENCH.parent
PEER_PY = BENCH / ".peers" / "venv" / "bin" / "python"
SCRIPTS = {
    ("stepstone", "sqlite"): (Path(sys.executable), BENCH / "stepstone_bench.py"),
    ("dbos", "sqlite"): (PEER_PY, BENCH / "peers" / "dbos_bench.py"),
    ("langgraph", "sqlite"): (PEER_PY, BENCH / "peers" / "langgraph_bench.py"),
    ("stepstone", "postgres"): (Path(sys.executable), BENCH / "stepstone_pg_bench.py"),
    ("stepstone", "postgres-scale"): (Path(sys.executable), BENCH / "stepstone_pg_scale.py"),
    ("dbos", "postgres"): (PEER_PY, BENCH / "peers" / "dbos_pg_bench.py"),
    ("sayiir", "postgres"): (PEER_PY, BENCH / "peers" / "sayiir_bench.py"),
}
PEER_PACKAGES = (
    "dbos",
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-checkpoint-sqlite",
    "langchain-core",
    "SQLAlchemy",
    "aiosqlite",
    "sayiir",
    "psycopg",
)
PG_PEER_PACKAGES = ("dbos", "sayiir", "psycopg", "SQLAlchemy")


@dataclass(frozen=True)
class Job:
    """One bench-script invocation: a system running a workload with some repetitions."""

    system: str
    workload: str
    reps: int
    n: int = 0

    @property
    def section(self) -> str:
        if self.workload == "pg_claims":
            return "postgres-scale"
        return "postgres" if self.workload.startswith("pg_") else "sqlite"


# --- the plans --------------------------------------------------------------------------------


def sqlite_plan(quick: bool) -> tuple[int, list[Job]]:
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


def postgres_plan(quick: bool) -> tuple[int, list[Job], list[Job]]:
    """(rounds, jobs of one round, jobs run once after the rounds). Latency jobs take ``n``
    starts of ~1.2 s each (the worker must idle for over a second before each)."""
    if quick:
        return (
            1,
            [
                Job("stepstone", "pg_seq100", 3),
                Job("dbos", "pg_seq100", 2),
                Job("sayiir", "pg_seq100", 2),
                Job("stepstone", "pg_drain", 1, 2000),
                Job("dbos", "pg_drain", 1, 300),
                Job("sayiir", "pg_drain", 1, 300),
                Job("stepstone", "pg_par200", 3),
                Job("dbos", "pg_par200", 1),
                Job("sayiir", "pg_par200", 1),
                Job("stepstone", "pg_latency", 0, 10),
                Job("dbos", "pg_latency", 0, 3),
                Job("sayiir", "pg_latency", 0, 3),
            ],
            [Job("stepstone", "pg_claims", 1, 2000)],
        )
    return (
        2,
        [
            Job("stepstone", "pg_seq100", 5),
            Job("dbos", "pg_seq100", 3),
            Job("sayiir", "pg_seq100", 3),
            Job("stepstone", "pg_drain", 2, 2000),
            Job("dbos", "pg_drain", 1, 2000),
            Job("sayiir", "pg_drain", 1, 1000),
            Job("stepstone", "pg_par200", 5),
            Job("dbos", "pg_par200", 2),
            Job("sayiir", "pg_par200", 2),
            Job("stepstone", "pg_latency", 0, 25),
            Job("dbos", "pg_latency", 0, 10),
            Job("sayiir", "pg_latency", 0, 10),
        ],
        [Job("stepstone", "pg_claims", 3, 2000)],
    )


# --- running jobs -----------------------------------------------------------------------------


def invoke(job: Job, work: Path, env: dict[str, str]) -> tuple[dict[str, Any] | None, str, float]:
    """Run one job's script; (its result line, an error or "", seconds)."""
    python, script = SCRIPTS[(job.system, job.section)]
    argv = [str(python), str(script), "--workload", job.workload, "--reps", str(job.reps)]
    argv += ["--work-dir", str(work)]
    if job.n:
        argv += ["--n", str(job.n)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env)
    except subprocess.TimeoutExpired:
        return None, "timed out after 900 s", time.perf_counter() - t0
    elapsed = time.perf_counter() - t0
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not lines[-1].startswith("{"):
        return None, f"exit {proc.returncode}\n{proc.stderr.strip()[-4000:]}", elapsed
    return json.loads(lines[-1]), "", elapsed


def record(col: Collected, job: Job, result: dict[str, Any], elapsed: float) -> None:
    label = f"{job.system}/{job.workload}"
    col.seconds[label] = col.seconds.get(label, 0.0) + elapsed
    col.add(job.system, job.workload, result)
    summary = ", ".join(
        f"{m}={common.median(v):.4g}"
        for (s, w, m), v in col.samples.items()
        if (s, w) == (job.system, job.workload)
    )
    print(f"  {label} ({elapsed:.1f}s): {summary[:300]}", flush=True)


def run_sqlite_job(job: Job, work: Path, col: Collected) -> None:
    result, error, elapsed = invoke(job, work, common.python_env())
    if result is None:
        col.errors.append(f"{job.system}/{job.workload}: {error}")
        print(f"  {job.system}/{job.workload}: FAILED ({error.splitlines()[0]})", flush=True)
        return
    record(col, job, result, elapsed)


def run_postgres_job(job: Job, work: Path, col: Collected, env: dict[str, str]) -> None:
    """Run a job; if the server restarted meanwhile (or the job failed), run it again (twice at
    most) once the server is back, and keep only the clean attempt."""
    import pgdb

    label = f"{job.system}/{job.workload}"
    for attempt in range(3):
        started = pgdb.started_at()
        result, error, elapsed = invoke(job, work, env)
        restarted = pgdb.started_at() != started
        pgdb.drop_tagged(pgdb.tag())  # whatever a failed attempt left behind
        if result is not None and not restarted:
            if attempt:
                result["attempts"] = attempt + 1
            record(col, job, result, elapsed)
            return
        why = "the server restarted during the job" if restarted else error.splitlines()[0]
        col.notes.append(f"{label}: attempt {attempt + 1} discarded ({why})")
        print(f"  {label}: attempt {attempt + 1} discarded ({why})", flush=True)
        if not restarted and attempt == 1:
            break
    col.errors.append(f"{label}: {error or 'the server restarted during every attempt'}")


# --- environment ------------------------------------------------------------------------------


def ensure_peers() -> None:
    probe = [str(PEER_PY), "-c", "import dbos, langgraph, sayiir, psycopg"]
    if PEER_PY.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return
    print("setting up the peers' virtualenv (bench/peers/setup.sh)...", flush=True)
    subprocess.run(
        ["bash", str(BENCH / "peers" / "setup.sh")],
        check=True,
        env={**os.environ, "PYTHON": sys.executable},
    )


def peer_versions(packages: tuple[str, ...]) -> dict[str, str]:
    proc = subprocess.run([str(PEER_PY), "-m", "pip", "freeze"], capture_output=True, text=True)
    wanted = {p.lower() for p in packages}
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


def base_meta(started: float, digest: str) -> dict[str, Any]:
    return {
        "command": " ".join(["/work/main/.venv/bin/python bench/run.py", *sys.argv[1:]]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": time.perf_counter() - started,
        "source_digest": digest,
        "source_digest_at_end": source_digest(),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
    }


def run_profile(script: str, col: Collected, *args: str) -> None:
    print(f"profiling stepstone ({script}) -> bench/PROFILE.md", flush=True)
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        env=col_env(),
    )
    if proc.returncode != 0:
        col.errors.append(f"{script}: exit {proc.returncode}\n{proc.stderr[-4000:]}")


def col_env() -> dict[str, str]:
    return {**common.python_env(), "BENCH_PG_TAG": PG_TAG}


PG_TAG = f"r{os.getpid()}"


# --- the sections -----------------------------------------------------------------------------


def run_sqlite(args: argparse.Namespace, sampler: Any) -> dict[str, Any]:
    started, digest = time.perf_counter(), source_digest()
    since = len(sampler.samples) if sampler else 0
    rounds, jobs = sqlite_plan(args.quick)
    if args.no_peers:
        jobs = [j for j in jobs if j.system == "stepstone"]
    col = Collected()
    floors = [common.sqlite_floor()]
    for r in range(rounds):
        print(f"SQLite round {r + 1}/{rounds}", flush=True)
        for job in jobs:
            run_sqlite_job(job, common.WORK_ROOT / "run", col)
    floors.append(common.sqlite_floor())
    if not args.no_profile:
        run_profile("profile_stepstone.py", col)
    meta = base_meta(started, digest)
    meta.update(
        sqlite=sqlite3.sqlite_version,
        sqlite_floor={lvl: common.median([f[lvl] for f in floors]) for lvl in floors[0]},
        sqlite_floor_range={
            lvl: (min(f[lvl] for f in floors), max(f[lvl] for f in floors)) for lvl in floors[0]
        },
        peer_versions=peer_versions(PEER_PACKAGES[:7]) if not args.no_peers else {},
        other_work=(
            "Other work shared the machine with this run: " + sampler.summary(since) + "."
            if sampler
            else ""
        ),
    )
    return col.to_json(meta)


def run_postgres(args: argparse.Namespace, sampler: Any) -> dict[str, Any]:
    import pgdb

    started, digest = time.perf_counter(), source_digest()
    os.environ["BENCH_PG_TAG"] = PG_TAG
    env = col_env()
    rounds, jobs, once = postgres_plan(args.quick)
    if args.no_peers:
        jobs = [j for j in jobs if j.system == "stepstone"]
    col = Collected()
    server_start = pgdb.started_at()
    server = pgdb.server_info()
    load = [os.getloadavg()[0]]
    floors = [pgdb.floor_us()]
    since = len(sampler.samples)
    try:
        for r in range(rounds):
            print(f"PostgreSQL round {r + 1}/{rounds}", flush=True)
            for job in jobs:
                run_postgres_job(job, common.WORK_ROOT / "run-pg", col, env)
                load.append(os.getloadavg()[0])
        for job in once:
            run_postgres_job(job, common.WORK_ROOT / "run-pg", col, env)
        floors.append(pgdb.floor_us())
        if not args.no_profile:
            reps, n, starts = ("10", "500", "3") if args.quick else ("20", "1000", "5")
            run_profile("profile_postgres.py", col, "--reps", reps, "--n", n, "--starts", starts)
    finally:
        pgdb.drop_tagged(PG_TAG)
    meta = base_meta(started, digest)
    meta.update(
        server=server,
        pg_floor={k: common.median([f[k] for f in floors]) for k in floors[0]},
        pg_floor_range={
            k: (min(f[k] for f in floors), max(f[k] for f in floors)) for k in floors[0]
        },
        peer_versions=peer_versions(PG_PEER_PACKAGES) if not args.no_peers else {},
        other_work=other_work(col, server_start, load, sampler.summary(since)),
    )
    return col.to_json(meta)


def other_work(col: Collected, server_start: str, load: list[float], sampled: str) -> str:
    """What else ran while we measured: server restarts, other sessions, the load average."""
    import pgdb

    restarts = [n for n in col.notes if "restarted" in n]
    text = (
        f"Other work shared the machine and the PostgreSQL server with this run: {sampled}; "
        f"the 1-minute load average between jobs (our own processes included) ranged "
        f"{min(load):.1f}{report.DASH}{max(load):.1f} on 2 CPUs. "
    )
    if restarts or pgdb.started_at() != server_start:
        text += (
            f"The server was restarted by other work during the run; {len(restarts)} job "
            "attempt(s) overlapping a restart were discarded and run again: "
            + "; ".join(r.split(": attempt")[0] for r in restarts)
            + "."
        )
    else:
        text += "The server was not restarted during the run."
    return text


# --- main -------------------------------------------------------------------------------------


def other_work_sampler() -> Any:
    """A started ``pgdb.OtherWork`` sampler (None without psycopg: a SQLite-only machine)."""
    try:
        import pgdb
    except ImportError:
        return None
    sampler = pgdb.OtherWork()
    sampler.start()
    return sampler


def load_previous(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    if "meta" in data:  # the format before the PostgreSQL section: SQLite only
        return {"sqlite": data}
    return {k: v for k, v in data.items() if k in ("sqlite", "postgres")}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one round, fewer repetitions")
    parser.add_argument("--postgres", action="store_true", help="the PostgreSQL section only")
    parser.add_argument("--sqlite", action="store_true", help="the SQLite section only")
    parser.add_argument("--no-peers", action="store_true", help="stepstone only")
    parser.add_argument("--no-profile", action="store_true", help="skip bench/PROFILE.md")
    args = parser.parse_args()
    common.compile_bytecode()  # as a pip install would have: see its docstring
    started = time.perf_counter()
    common.WORK_ROOT.mkdir(parents=True, exist_ok=True)
    if not args.no_peers:
        ensure_peers()
    sections = load_previous(BENCH / "RESULTS.json")
    sampler = other_work_sampler()
    ran = []
    if not args.postgres:
        sections["sqlite"] = run_sqlite(args, sampler)
        ran.append("sqlite")
    if not args.sqlite:
        sections["postgres"] = run_postgres(args, sampler)
        ran.append("postgres")
    ordered = {k: sections[k] for k in ("sqlite", "postgres") if k in sections}
    (BENCH / "RESULTS.json").write_text(json.dumps(ordered, indent=1) + "\n")
    report.write(ordered, BENCH / "RESULTS.md")
    elapsed = time.perf_counter() - started
    print(f"wrote bench/RESULTS.md and bench/RESULTS.json in {elapsed:.0f} s")
    errors = sum(len(ordered[k].get("errors", [])) for k in ran)
    if errors:
        print(f"{errors} job(s) failed; see the Errors sections", file=sys.stderr)


if __name__ == "__main__":
    main()
