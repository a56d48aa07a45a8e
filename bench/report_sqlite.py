"""The SQLite section of bench/RESULTS.md: the "durable core" workloads, stepstone vs DBOS
Transact vs LangGraph, each on its own SQLite file."""

from __future__ import annotations

import json
from typing import Any

import common
from report import DASH, TIMES, Collected, advantage, cell, errors_and_times, fmt, header
from report import fmt_range as rng

PEERS = ("dbos", "langgraph")

TARGETS: dict[tuple[str, str], tuple[str, float]] = {
    # (workload, metric): (comparison, bound) -- from the "durable core" issue
    ("seq100", "us_per_step"): ("<=", 100),
    ("seq100_full", "us_per_step"): ("<=", 300),
    ("seq100_full", "us_per_step_steady"): ("<=", 300),
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
        "Wall time of one run / 100 (start and finish of the run included). "
        '`durability="full"` (fsync per commit) is measured twice in the same process: '
        "`us_per_step` from a fresh file (the first ~0.2 s append to a growing WAL, so each fsync "
        "also writes the file size) and `us_per_step_steady` after 0.5 s of use, once the store "
        "has checkpointed and started the WAL over (commits then overwrite it), as in a worker "
        "that has been running.",
    ),
    (
        "wf3",
        "b. {n} three-step workflows one after another, in-process",
        "stepstone `AsyncClient.run`; DBOS: calling the `@DBOS.workflow`; LangGraph: "
        '`graph.invoke` on a fresh thread, `durability="sync"`.',
    ),
    (
        "queue",
        "b'. The same {n} through a queue and one worker process (concurrency 64)",
        "Enqueue from one process, then one worker process drains the queue; drain is timed from "
        "the worker being ready to an outside observer (polling the SQLite file every 2 ms) "
        "seeing all runs completed; end-to-end = N / (enqueue + drain). LangGraph: n/a, the OSS "
        "library has no queue or worker (runs are driven by the caller's `invoke`).",
    ),
    (
        "par200",
        "c. One workflow with 200 parallel no-op steps",
        "stepstone `ctx.parallel(*200 calls)`; DBOS `asyncio.gather` of 200 async steps in an "
        "async workflow; LangGraph a fan-out of 200 `Send` tasks in one superstep.",
    ),
    (
        "recovery",
        "d. SIGKILL at step 6 of 10 (steps 1-5 recorded); a new worker process finishes the run",
        "From spawning the new process to the parent observing the result (stepstone: "
        "`client.result`; DBOS: polling its `workflow_status` row; LangGraph: no automatic "
        "recovery, the new process calls `invoke(None, thread)` itself and prints the result). "
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


def render(col: Collected, data: dict[str, Any]) -> list[str]:
    meta = data["meta"]
    lines = ["## SQLite", "", "Durable core — stepstone vs DBOS Transact vs LangGraph.", ""]
    lines += header(meta)
    lines += [
        "**Caveats.** One small VM: 2 noisy vCPUs, shared disk. Every number is a median over the "
        f"samples shown as (min{DASH}max, n=count); the systems were run interleaved, round by "
        "round, in the same invocation, so ratios compare like with like, but absolute numbers "
        "move ±20% between runs. All three use SQLite files under `bench/.work/` with their own "
        "defaults (stepstone: WAL + synchronous=NORMAL for checkpoints; DBOS: rollback journal + "
        f'FULL; LangGraph `SqliteSaver`: WAL + FULL). "{TIMES}" columns: how many times better '
        "stepstone's median is (>1 = stepstone better).",
        "",
        *(
            [f"**Other work on the machine.** {meta['other_work']}", ""]
            if meta.get("other_work")
            else []
        ),
        f"Python {meta['python']}, SQLite {meta['sqlite']}, {meta['platform']}. Raw SQLite floor "
        "in this run (BEGIN IMMEDIATE + INSERT of one step row + COMMIT, WAL; measured before and "
        f"after the workloads): {rng(meta['sqlite_floor_range']['NORMAL'])} µs with "
        f"synchronous=NORMAL, {rng(meta['sqlite_floor_range']['FULL'])} µs with FULL (fsync) "
        "appending to a growing WAL (a fresh file)"
        + (
            f", {rng(meta['sqlite_floor_range']['FULL_REUSED'])} µs with FULL once the WAL has "
            "been checkpointed and started over (commits overwrite it: a store in use)."
            if "FULL_REUSED" in meta["sqlite_floor_range"]
            else "."
        ),
        "",
        "Peers (bench/.peers/venv, pinned in `bench/peers/setup.sh`): "
        + ", ".join(f"{k} {v}" for k, v in sorted(meta["peer_versions"].items()))
        + ".",
        "",
        '### Targets (issue "durable core")',
        "",
        "| target | measured (stepstone median) | met |",
        "|---|---|---|",
    ]
    for (workload, metric), (op, bound) in TARGETS.items():
        samples = col.get("stepstone", workload, metric)
        unit = col.units.get(("stepstone", workload, metric), "")
        target = f"{workload} {metric} {op} {fmt(bound)} {unit}"
        if samples:
            m = common.median(samples)
            ok = m <= bound if op == "<=" else m >= bound
            lines.append(f"| {target} | {fmt(m)} {unit} | {'yes' if ok else '**no**'} |")
        else:
            lines.append(f"| {target} | not measured (error) | **no** |")
    lines.append("")

    for workload, title, how in SECTIONS:
        n = col.extras.get(("stepstone", workload), {}).get("n", 0)
        lines += [f"### {title.format(n=f'{n:,}')}", "", how, ""]
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
            ours = col.get("stepstone", w, m)
            row_name = f"{m} [{unit}]" if w == workload else f'{m} [{unit}], durability="full"'
            if w == "seq100" and m != "us_per_step":
                row_name = f"{m} [{unit}] (peer variant)"
            peers = [col.get(p, w, m) for p in PEERS]
            lines.append(
                f"| {row_name} | {cell(ours)} | {cell(peers[0])} | {cell(peers[1])} | "
                f"{advantage(m, unit, ours, peers[0])} | {advantage(m, unit, ours, peers[1])} |"
            )
        for system in ("stepstone", *PEERS):
            extra = col.extras.get((system, workload))
            if extra:
                lines.append(f"\n{system} settings: `{json.dumps(extra)}`")
        lines.append("")

    lines += [
        "### Notes on the peers' variants (SQLite)",
        "",
        '- LangGraph `us_per_step` uses `durability="sync"` (checkpoint written before the next '
        "node, like stepstone and DBOS); `us_per_step_durability_async` is LangGraph's default "
        "(checkpoint written concurrently with the next node); `us_per_step_aiosqlite` is "
        '`AsyncSqliteSaver` + `ainvoke` with `durability="sync"`.',
        "- DBOS's queue runs with `polling_interval_sec=0.01` (default 1 s would cap the drain at "
        "~64 workflows per second); stepstone's worker is woken by its own store events.",
        "- DBOS recovery includes DBOS's launch, which recovers the local executor's PENDING "
        "workflows; LangGraph has no recovery, so its number is a manual resume of a known "
        "thread.",
        "",
    ]
    return lines + errors_and_times(col, "SQLite")
