"""The PostgreSQL section of bench/RESULTS.md: the "PostgreSQL store and a distributed worker
fleet" workloads, stepstone vs DBOS Transact vs sayiir, each on fresh PostgreSQL databases."""

from __future__ import annotations

from typing import Any

import common
import pg_findings
from report import (
    DASH,
    TIMES,
    Collected,
    cell,
    comparison,
    errors_and_times,
    fmt,
    header,
    settings_lines,
    verdict,
)
from report import fmt_range as rng

PEERS = [("dbos", "DBOS"), ("sayiir", "sayiir")]
SYSTEMS = ["stepstone", "dbos", "sayiir"]

# (label, workload, metric, comparison, bound) -- from the issue
TARGETS = [
    ("1. per sequential step", "pg_seq100", "us_per_step", "<=", 500.0),
    ("2. drain, two worker processes", "pg_drain", "drain_per_s", ">=", 1000.0),
    ("3. start to first step, idle worker (median)", "pg_latency", "first_step_ms", "<", 5.0),
    ("4. 200 parallel steps", "pg_par200", "ms", "<=", 100.0),
]
# workload 5: the 1M-row table against the empty one, within 10%
SCALE = [
    ("claim_runs, 1 run", "claim1_ms", "latency"),
    ("claim_runs, batch of 64", "claim64_ms", "latency"),
    ("claim_runs finding nothing (an idle worker's poll)", "idle_claim_ms", "latency"),
    ("has_claimable", "has_claimable_ms", "latency"),
    ("has_claimable, nothing claimable", "idle_has_claimable_ms", "latency"),
    ("drain, two worker processes", "drain_per_s", "throughput"),
]

SECTIONS = [
    (
        "pg_seq100",
        "1. One workflow of 100 sequential no-op steps",
        "Wall time of one run / 100 (start and finish included), after a warm-up run, on a "
        "fresh database. stepstone `AsyncClient.run`; DBOS calling the `@DBOS.workflow` (100 "
        "async `@DBOS.step` calls); sayiir `run_durable_workflow` of a `Flow` of 100 `.then` "
        "tasks.",
        None,
    ),
    (
        "pg_drain",
        "2. {n} three-step workflows drained by two worker processes",
        "Enqueue N runs (stepstone `AsyncClient.start` and DBOS `enqueue_async`, 64 concurrent; "
        "sayiir `WorkflowClient.submit` from 8 threads), then start two worker processes; drain "
        "= N / (the moment an outside observer polling the database every 2 ms sees no "
        "unfinished run, minus the moment the first worker was ready). Starting from the first "
        "ready worker counts the second one's startup against the drain (`ready_gap_ms`). End "
        "to end = N / (enqueue + drain).",
        ["drain_per_s", "enqueue_per_s", "e2e_per_s", "worker_startup_ms", "ready_gap_ms"],
    ),
    (
        "pg_latency",
        "3. Start-to-first-step latency with an idle worker process",
        "One worker process idles; every 1.05-1.35 s (so it has had no work for more than a "
        "second) the bench process takes `time.monotonic()` and starts a one-step workflow; "
        "the step returns `time.monotonic()` taken when it begins (CLOCK_MONOTONIC is one clock "
        "for all processes on Linux). `first_step_ms` is the difference; `start_call_ms` is "
        "how long the start call took; `result_ms` is when the bench process had the result "
        "(stepstone `handle.result()`, DBOS `get_result()`, sayiir polling `status()` every "
        "1 ms). stepstone's worker runs with `Settings(poll_s=5.0)`: only LISTEN/NOTIFY can "
        "explain a millisecond answer. DBOS's queue is polled every 10 ms; sayiir's worker "
        "polls every 10 ms and also listens for its own NOTIFY hints.",
        ["first_step_ms", "start_call_ms", "result_ms", "idle_insert_commit_ms"],
    ),
    (
        "pg_par200",
        "4. One workflow with 200 parallel no-op steps",
        "stepstone `ctx.parallel(*200 calls)`; DBOS `asyncio.gather` of 200 async steps; "
        "sayiir `Flow.fork()` with 200 branches and a join task (one more task than the "
        "others), via `run_durable_workflow`.",
        None,
    ),
]


def render(col: Collected, data: dict[str, Any]) -> list[str]:
    meta = data["meta"]
    server = meta["server"]
    lines = [
        "## PostgreSQL",
        "",
        "Store and worker fleet — stepstone vs DBOS Transact vs sayiir.",
        "",
    ]
    lines += header(meta)
    floor = meta["pg_floor_range"]
    lines += [
        "**Caveats.** The same small VM (2 noisy vCPUs, shared disk) runs PostgreSQL, the bench "
        "process and every worker process, so workers and the server compete for the two "
        f"CPUs. Every number is a median over the samples shown as (min{DASH}max, n=count); the "
        "systems ran interleaved, round by round, in the same invocation, each measurement on "
        "a fresh database (stepstone: `await store.migrate()` on it), so ratios compare like "
        f'with like; absolute numbers move ±20% between runs. "{TIMES}" columns: how many times '
        "better stepstone's median is (>1 = stepstone better).",
        "",
        f"**Other work on the machine.** {meta['other_work']}",
        "",
        f"PostgreSQL {server['server_version']} at 127.0.0.1 (synchronous_commit="
        f"{server['synchronous_commit']}, fsync={server['fsync']}, wal_sync_method="
        f"{server['wal_sync_method']}, shared_buffers={server['shared_buffers']}, "
        f"max_connections={server['max_connections']}); Python {meta['python']}, "
        f"{meta['platform']}. Raw floor in this run (psycopg on this machine, autocommit, "
        "prepared, measured before and after the workloads): one INSERT + COMMIT of a "
        f"step-like row {rng(floor['insert_commit'])} µs, a `SELECT 1` round trip "
        f"{rng(floor['select1'])} µs.",
        "",
        "Peers (bench/.peers/venv, pinned in `bench/peers/setup.sh`): "
        + ", ".join(f"{k} {v}" for k, v in sorted(meta["peer_versions"].items()))
        + ".",
        "",
        '### Targets (issue "PostgreSQL store and a distributed worker fleet")',
        "",
        "| target | measured (stepstone median) | met |",
        "|---|---|---|",
    ]
    for label, workload, metric, op, bound in TARGETS:
        samples = col.get("stepstone", workload, metric)
        unit = col.units.get(("stepstone", workload, metric), "")
        target = f"{label}: {op} {fmt(bound)} {unit}"
        if samples:
            m = common.median(samples)
            lines.append(f"| {target} | {fmt(m)} {unit} | {verdict(m, op, bound)} |")
        else:
            lines.append(f"| {target} | not measured (error) | **no** |")
    for label, metric, kind in SCALE:
        ratio = scale_ratio(col, metric)
        target = f"5. 1M finished runs vs empty, {label}: within 10%"
        if ratio is None:
            lines.append(f"| {target} | not measured (error) | **no** |")
            continue
        ok = ratio <= 1.10 if kind == "latency" else ratio >= 0.90
        lines.append(f"| {target} | 1M/empty = {ratio:.2f} | {'yes' if ok else '**no**'} |")
    lines.append("")

    for workload, title, how, rows in SECTIONS:
        n = col.extras.get(("stepstone", workload), {}).get("n", 0)
        lines += [f"### {title.format(n=f'{n:,}')}", "", how, ""]
        lines += comparison(col, workload, PEERS, rows=rows)
        if workload == "pg_seq100":
            lines.append(
                f"| raw INSERT + COMMIT floor [µs] | {fmt(meta['pg_floor']['insert_commit'])} "
                f"(psycopg, same run) | | | | |"
            )
        lines += settings_lines(col, workload, SYSTEMS)
        lines.append("")
    lines += scale_section(col)
    lines += pg_findings.findings(col)
    lines += [
        "### Notes on the peers (PostgreSQL)",
        "",
        "- DBOS Transact: system database on a fresh PostgreSQL database per measurement, "
        "defaults otherwise; its queue runs with `polling_interval_sec=0.01` (the default 1 s "
        "caps a drain at ~64 workflows/s per process and makes start latency ~0.5 s); two "
        "processes with distinct `executor_id`s and `worker_concurrency=64` each. DBOS's "
        "`get_result` polls about once a second, which is what its `result_ms` shows.",
        "- sayiir: `PostgresBackend` on a fresh database; its `Worker` has no concurrency "
        "setting and polls every `poll_interval` (default 5 s), plus LISTEN/NOTIFY hints when a "
        "task becomes ready. In trial runs here a drain advanced by about one task per worker "
        "per poll (0.1 s: ~7 wf/s; 0.01 s: ~40-50 wf/s; 0.002 s: ~80-115 wf/s), so it runs with "
        "`poll_interval=0.01`, the interval DBOS gets too. Its 200-way fork has a join task.",
        "- Drains and start latency use fewer runs or starts for the peers where their rate "
        "would blow the time budget (`n` in each system's settings line; throughput is a rate, "
        "so it compares across N).",
        "- Workload 5 (1M finished runs) is stepstone-only: it measures stepstone's own claim "
        "query and indexes.",
        "",
    ]
    return lines + errors_and_times(col, "PostgreSQL")


def scale_ratio(col: Collected, metric: str) -> float | None:
    empty = col.get("stepstone", "pg_claims", f"{metric}_empty")
    big = col.get("stepstone", "pg_claims", f"{metric}_1m")
    if not empty or not big:
        return None
    return common.median(big) / common.median(empty)


def scale_section(col: Collected) -> list[str]:
    extra = col.extras.get(("stepstone", "pg_claims"), {})
    fill = extra.get("fill", {})
    lines = [
        "### 5. The claim path with 1,000,000 finished runs in the table vs an empty table",
        "",
        f"{fill.get('rows', 0):,} completed runs were inserted into `stepstone.runs` by one "
        f"`INSERT … SELECT generate_series` ({fill.get('insert_s', 0)} s; table "
        f"{fill.get('table_size', '?')}, indexes {fill.get('indexes_size', '?')}), then "
        "`VACUUM (ANALYZE)` and `CHECKPOINT` "
        f"({fill.get('vacuum_analyze_checkpoint_s', 0)} s; vacuum as well, so autovacuum does "
        "not start in the middle of the measurement, and a checkpoint, so the load's dirty "
        "pages are not written while we measure). Only `runs` is filled "
        "(no steps or events rows for the old runs). Claims are timed in-process on runs of "
        "a workflow no worker serves (after a warm-up claim), alternating between the two "
        "databases in blocks; those "
        "runs are then deleted and both tables vacuumed, and the drains "
        f"({extra.get('n', 0):,} runs, two worker processes, as in workload 2) alternate "
        "between the two databases, which keep their drained runs: both go through the same "
        "history and differ only by the 1M finished runs. `step_us` is µs per step of a "
        "100-step workflow before the claims; `step_busy_us` the same while "
        f"{extra.get('running_during_busy', 0):,} runs claimed by hand hold their leases "
        "(state `running`).",
        "",
        "| metric | empty table | 1M finished runs | 1M / empty |",
        "|---|---|---|---|",
    ]
    metrics = sorted({m.rsplit("_", 1)[0] for (s, w, m) in col.samples if w == "pg_claims"})
    order = [m for _, m, _ in SCALE] + [m for m in metrics if m not in {x for _, x, _ in SCALE}]
    for metric in order:
        empty = col.get("stepstone", "pg_claims", f"{metric}_empty")
        big = col.get("stepstone", "pg_claims", f"{metric}_1m")
        if not empty and not big:
            continue
        unit = col.units.get(("stepstone", "pg_claims", f"{metric}_empty"), "")
        ratio = scale_ratio(col, metric)
        lines.append(
            f"| {metric} [{unit}] | {cell(empty)} | {cell(big)} | "
            f"{'—' if ratio is None else f'{ratio:.2f}'} |"
        )
    runs = extra.get("runs_in_table", {})
    if runs:
        lines += [
            "",
            f"Rows in `stepstone.runs` at the end: empty side {runs.get('empty', 0):,} (the "
            f"drained runs), large side {runs.get('1m', 0):,}.",
        ]
    lines += ["", *pg_findings.plan_summary(extra.get("explain", {}))]
    if extra.get("indexes"):
        lines += [
            "",
            f"Indexes of `stepstone.runs` as measured (schema version "
            f"{extra.get('schema_version', '?')}):",
            "",
            "```",
            *extra["indexes"],
            "```",
        ]
    for size, title in (("empty", "empty table"), ("1m", "1M finished runs")):
        for query, plan in extra.get("explain", {}).get(size, {}).items():
            lines += [
                "",
                f"<details><summary>EXPLAIN (ANALYZE, BUFFERS) of <code>{query}</code>, "
                f"{title} (generic plan; the store's session options and parameters)</summary>",
                "",
                "```",
                plan,
                "```",
                "",
                "</details>",
            ]
    for text in extra.get("worker_stderr", []):
        lines += ["", "A stepstone worker process printed (last lines):", "", "```", text, "```"]
    return [*lines, ""]
