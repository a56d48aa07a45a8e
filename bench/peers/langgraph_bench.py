"""LangGraph workloads for the "durable core" benchmark (run with bench/.peers/venv/bin/python).

The same workloads as ``bench/stepstone_bench.py``, on LangGraph with its SQLite checkpointer
(``SqliteSaver``, WAL, SQLite's default synchronous=FULL). A "workflow" is one ``invoke`` of a
compiled graph on a fresh ``thread_id``; a "step" is one no-op node, checkpointed after it runs
(``durability="sync"``: the checkpoint is written before the next node starts, the guarantee
stepstone gives; LangGraph's default ``"async"`` writes it concurrently and is reported too).

- ``seq100``: a chain of 100 no-op nodes, µs per node (sync SqliteSaver; also AsyncSqliteSaver);
- ``wf3``: N invocations of a 3-node chain one after another, workflows per second;
- ``queue``: not measured: LangGraph (the OSS library) has no queue or worker;
- ``par200``: one invocation fanning out 200 no-op ``Send`` tasks in one superstep, milliseconds;
- ``recovery``: LangGraph has no worker that recovers crashed runs; the application must
  re-invoke the thread. Measured as: a process running the 10-node chain is SIGKILLed while node
  6 runs; milliseconds from spawning a new process that calls ``invoke(None, thread)`` to the
  result (so: interpreter + imports + resume, no discovery of the crashed thread);
- ``startup``: ``python -c "from langgraph.graph import StateGraph; from
  langgraph.checkpoint.sqlite import SqliteSaver"`` and a whole process running a 1-node graph
  on a fresh checkpoint database, wall milliseconds.
"""

from __future__ import annotations

import asyncio
import operator
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import common
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

SYSTEM = "langgraph"
HERE = Path(__file__).resolve()


class Counted(TypedDict):
    i: int


def noop(state: Counted) -> dict[str, int]:
    return {"i": state["i"] + 1}


async def anoop(state: Counted) -> dict[str, int]:
    return {"i": state["i"] + 1}


def chain(n: int, *, node: Any = noop) -> StateGraph:
    builder = StateGraph(Counted)
    for k in range(n):
        builder.add_node(f"n{k}", node)
        builder.add_edge(START if k == 0 else f"n{k - 1}", f"n{k}")
    builder.add_edge(f"n{n - 1}", END)
    return builder


class Fanned(TypedDict):
    done: Annotated[list[int], operator.add]


def fan_out(state: Fanned) -> list[Send]:
    return [Send("work", {"done": [k]}) for k in range(200)]


def work(state: Fanned) -> dict[str, list[int]]:
    return {"done": state["done"]}


def fan_graph() -> StateGraph:
    builder = StateGraph(Fanned)
    builder.add_node("work", work)
    builder.add_conditional_edges(START, fan_out, ["work"])
    builder.add_edge("work", END)
    return builder


def config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}, "recursion_limit": 10_000}


def saver(db: Path) -> SqliteSaver:
    return SqliteSaver(sqlite3.connect(str(db), check_same_thread=False))


# --- in-process workloads ---------------------------------------------------------------------


def bench_seq100(work: Path, reps: int) -> dict[str, tuple[str, list[float]]]:
    metrics: dict[str, tuple[str, list[float]]] = {}
    graph = chain(100).compile(checkpointer=saver(work / "seq.sqlite"))
    for durability in ("sync", "async"):
        samples = []
        for i in range(reps + 1):
            t0 = time.perf_counter()
            out = graph.invoke({"i": 0}, config(f"{durability}{i}"), durability=durability)
            elapsed = time.perf_counter() - t0
            assert out["i"] == 100
            if i:
                samples.append(elapsed * 1e6 / 100)
        metrics["us_per_step" if durability == "sync" else "us_per_step_durability_async"] = (
            "µs/step",
            samples,
        )
    metrics["us_per_step_aiosqlite"] = ("µs/step", asyncio.run(seq100_async(work, reps)))
    return metrics


async def seq100_async(work: Path, reps: int) -> list[float]:
    samples = []
    async with AsyncSqliteSaver.from_conn_string(str(work / "aseq.sqlite")) as checkpointer:
        graph = chain(100, node=anoop).compile(checkpointer=checkpointer)
        for i in range(reps + 1):
            t0 = time.perf_counter()
            out = await graph.ainvoke({"i": 0}, config(f"a{i}"), durability="sync")
            elapsed = time.perf_counter() - t0
            assert out["i"] == 100
            if i:
                samples.append(elapsed * 1e6 / 100)
    return samples


def bench_wf3(work: Path, reps: int, n: int) -> dict[str, tuple[str, list[float]]]:
    graph = chain(3).compile(checkpointer=saver(work / "wf3.sqlite"))
    for k in range(min(50, n)):
        graph.invoke({"i": 0}, config(f"warm{k}"), durability="sync")
    samples = []
    for r in range(reps):
        t0 = time.perf_counter()
        for k in range(n):
            graph.invoke({"i": 0}, config(f"r{r}-{k}"), durability="sync")
        samples.append(n / (time.perf_counter() - t0))
    return {"wf_per_s": ("wf/s", samples)}


def bench_par200(work: Path, reps: int) -> dict[str, tuple[str, list[float]]]:
    graph = fan_graph().compile(checkpointer=saver(work / "par.sqlite"))
    samples = []
    for i in range(reps + 1):
        t0 = time.perf_counter()
        out = graph.invoke({"done": []}, config(f"p{i}"), durability="sync")
        elapsed = time.perf_counter() - t0
        assert len(out["done"]) == 200
        if i:
            samples.append(elapsed * 1000)
    return {"ms": ("ms", samples)}


# --- recovery (manual resume) -----------------------------------------------------------------


def mark_node(k: int) -> Any:
    def mark(state: Counted) -> dict[str, int]:
        with open(os.environ["BENCH_SIDE_FILE"], "a") as f:
            f.write(f"{k}\n")
        if os.environ.get("BENCH_HANG_AT") == str(k):
            time.sleep(3600)
        return {"i": state["i"] + 1}

    return mark


def wf10() -> StateGraph:
    builder = StateGraph(Counted)
    for k in range(1, 11):
        builder.add_node(f"n{k}", mark_node(k))
        builder.add_edge(START if k == 1 else f"n{k - 1}", f"n{k}")
    builder.add_edge("n10", END)
    return builder


def run_wf10_mode(db: Path, resume: bool) -> None:
    """Internal: start (or resume, with input None) thread "rec" of the 10-node chain."""
    graph = wf10().compile(checkpointer=saver(db))
    out = graph.invoke(None if resume else {"i": 0}, config("rec"), durability="sync")
    print(f"done {out['i']}", flush=True)


def bench_recovery(work: Path, reps: int) -> dict[str, tuple[str, list[float]]]:
    total, exactly_once = [], []
    for rep in range(reps):
        d = common.fresh_dir(work, f"recovery{rep}")
        db, side = d / "rec.sqlite", d / "side.txt"
        argv = [sys.executable, str(HERE), "--db", str(db), "--work-dir", str(d), "--workload"]
        env = {**common.python_env(), "BENCH_SIDE_FILE": str(side)}
        first = subprocess.Popen(
            [*argv, "_start_wf10"],
            env={**env, "BENCH_HANG_AT": "6"},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            common.wait_for_file(side, lambda s: "6\n" in s, timeout_s=60)
        finally:
            first.kill()
            first.communicate()
        t0 = time.perf_counter()
        second = subprocess.Popen(
            [*argv, "_resume_wf10"],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        line = second.stdout.readline() if second.stdout else ""
        elapsed = time.perf_counter() - t0
        _, err = second.communicate()
        if line.strip() != "done 10":
            raise RuntimeError(f"resume printed {line!r}:\n{err[-3000:]}")
        counts = Counter(int(x) for x in side.read_text().split())
        ok = all(counts[i] == 1 for i in (1, 2, 3, 4, 5, 7, 8, 9, 10)) and counts[6] == 2
        total.append(elapsed * 1000)
        exactly_once.append(1.0 if ok else 0.0)
    return {"ms": ("ms", total), "steps_1_5_exactly_once": ("bool", exactly_once)}


# --- whole processes --------------------------------------------------------------------------

IMPORT = (
    "from langgraph.graph import StateGraph; from langgraph.checkpoint.sqlite import SqliteSaver"
)

ONESHOT = """
import sqlite3, sys
from typing import TypedDict
from langgraph.graph import START, END, StateGraph
from langgraph.checkpoint.sqlite import SqliteSaver

class S(TypedDict):
    i: int

def one(state: S) -> dict:
    return {"i": 1}

builder = StateGraph(S)
builder.add_node("one", one)
builder.add_edge(START, "one")
builder.add_edge("one", END)
conn = sqlite3.connect(sys.argv[1], check_same_thread=False)
graph = builder.compile(checkpointer=SqliteSaver(conn))
assert graph.invoke({"i": 0}, {"configurable": {"thread_id": "t"}}, durability="sync")["i"] == 1
"""


def bench_startup(work: Path, reps: int) -> dict[str, tuple[str, list[float]]]:
    py = sys.executable
    base = common.time_processes(lambda i: [py, "-c", "pass"], reps)
    imp = common.time_processes(lambda i: [py, "-c", IMPORT], reps)
    one = common.time_processes(
        lambda i: [py, "-c", ONESHOT, str((work / f"one{i}.sqlite").resolve())], reps
    )
    return {"python_ms": ("ms", base), "import_ms": ("ms", imp), "oneshot_ms": ("ms", one)}


# --- main -------------------------------------------------------------------------------------

WORKLOADS = ["seq100", "wf3", "par200", "recovery", "startup", "_start_wf10", "_resume_wf10"]


def main() -> None:
    args = common.parse_args(WORKLOADS)
    name = args.workload
    if name in ("_start_wf10", "_resume_wf10"):
        return run_wf10_mode(args.db, resume=name == "_resume_wf10")
    work = common.fresh_dir(args.work_dir, f"langgraph-{name}")
    extra: dict[str, object] = {}
    if name == "seq100":
        metrics = bench_seq100(work, args.reps)
    elif name == "wf3":
        metrics = bench_wf3(work, args.reps, args.n)
        extra["n"] = args.n
    elif name == "par200":
        metrics = bench_par200(work, args.reps)
    elif name == "recovery":
        metrics = bench_recovery(work, args.reps)
        extra["note"] = (
            "manual resume: invoke(None, thread) in a new process; no automatic recovery"
        )
    else:
        metrics = bench_startup(work, args.reps)
        extra["import_statement"] = IMPORT
    common.emit(SYSTEM, name, metrics, **extra)


if __name__ == "__main__":
    main()
