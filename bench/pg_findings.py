"""What looked wrong or slow in stepstone on PostgreSQL, read from one run's data: the EXPLAIN
plans of the claim path and the step writes, and the numbers next to them.

Every statement in the RESULTS.md section this renders is conditional on what this run's plans
and samples show (the adapter is being changed while the harness runs), never a fixed text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import common
from report import Collected, fmt

SIDES = {"empty": "empty table", "1m": "1M table"}
NARROW = {"runs_due", "runs_timers", "runs_leased", "runs_by_owner", "runs_pkey"}
CLAIM_LIMIT = 64


@dataclass(frozen=True)
class Scan:
    """One scan of ``stepstone.runs`` in a plan."""

    index: str  # "" for a sequential scan
    rows: int | None  # rows it yielded per loop (None: never executed)
    removed: int | None  # rows its filter removed, when it had no index condition
    whole: bool  # no index condition: it read the whole (partial) index


def scans(plan: str) -> list[Scan]:
    rows = plan.splitlines()
    found = []
    for i, row in enumerate(rows):
        text = row.strip().removeprefix("->  ")
        if text.startswith("Seq Scan on runs "):
            found.append(Scan("", _rows(text), None, True))
            continue
        if "Index" not in text or not re.search(r" on runs(_\w+)?\b", text):
            continue
        if " using " in text:
            index = text.split(" using ")[1].split(" on ")[0]
        elif text.startswith("Bitmap Index Scan on "):
            index = text.split(" on ")[1].split()[0]
        else:
            continue
        detail = " ".join(r.strip() for r in rows[i + 1 : i + 4])
        removed = re.search(r"Rows Removed by Filter: (\d+)", detail)
        whole = "Index Cond" not in detail and "never executed" not in text
        found.append(Scan(index, _rows(text), int(removed.group(1)) if removed else None, whole))
    return found


def _rows(text: str) -> int | None:
    if "never executed" in text:
        return None
    m = re.search(r"actual time=\S+ rows=(\d+)", text)
    return int(m.group(1)) if m else None


def plan_summary(explain: dict[str, dict[str, str]]) -> list[str]:
    """One line per plan: the indexes of runs it used, the rows each yielded (per loop), and
    the scans that read a whole index with a filter."""
    lines = [
        "What the plans below read on `stepstone.runs` (index and rows it yielded per loop; a "
        f"claim returns at most {CLAIM_LIMIT}):",
        "",
    ]
    for size, plans in explain.items():
        for query, plan in plans.items():
            used, flagged = [], []
            for scan in scans(plan):
                name = scan.index or "sequential scan"
                used.append(
                    f"`{name}` ({'never executed' if scan.rows is None else f'{scan.rows} rows'})"
                )
                if scan.whole and scan.rows is not None:
                    removed = f" ({scan.removed} rows removed)" if scan.removed else ""
                    flagged.append(f"`{name}` read whole with a filter{removed}")
            if "Gather" in plan:
                flagged.append("a parallel plan (Gather)")
            note = f"; **{'; '.join(flagged)}**" if flagged else ""
            lines.append(f"- `{query}`, {SIDES.get(size, size)}: {', '.join(used)}{note}")
    return lines


def findings(col: Collected) -> list[str]:
    extra = col.extras.get(("stepstone", "pg_claims"), {})
    plans: dict[str, dict[str, str]] = extra.get("explain", {})
    if not plans:
        return []

    def med(metric: str, workload: str = "pg_claims") -> float:
        return common.median(col.get("stepstone", workload, metric) or [])

    def plan(size: str, prefix: str) -> str:
        return next((p for q, p in plans.get(size, {}).items() if q.startswith(prefix)), "")

    lines = ["### What looked wrong or slow in stepstone on PostgreSQL", ""]
    items: list[str] = []

    # 1. the step-write fence (record_step, finish_run) while many runs are running
    running = extra.get("running_during_busy", 0)
    fence = {
        size: [s for q in ("record_step", "finish_run") for s in scans(plan(size, q))]
        for size in SIDES
    }
    whole = [
        SIDES[size] for size, found in fence.items() if any(s.whole and s.index for s in found)
    ]
    numbers = (
        f"a 100-step workflow cost {fmt(med('step_us_1m'))} µs/step on the 1M table with no "
        f"other run running and {fmt(med('step_busy_us_1m'))} µs/step while {running:,} runs "
        f"held leases (empty table: {fmt(med('step_us_empty'))} and "
        f"{fmt(med('step_busy_us_empty'))})"
    )
    if whole:
        items.append(
            f"**A step write read every running run** on the {' and the '.join(whole)}: "
            "`record_step` (its fence) and `finish_run` find the run by `run_id = … AND "
            "lease_token = … AND state = 'running'`, and a partial index over running runs "
            "matches that predicate too; with a generic plan and statistics that saw few running "
            "runs, the planner scanned that index whole with a filter instead of looking the run "
            f"up in `runs_pkey`. So {numbers}. Fix: lease indexes whose predicate the fence does "
            "not imply (`WHERE lease_owner IS NOT NULL`, `WHERE lease_expires_at IS NOT NULL`), "
            "or lock the row by `run_id` alone and check token and state on the locked row."
        )
    elif any(fence.values()):
        items.append(
            f"Step writes found their run by key (`runs_pkey`) on both sides with {running:,} "
            f"runs running: {numbers}."
            + (
                " (Earlier runs of this harness, before schema version 2, saw `record_step` and "
                "`finish_run` scan every running run through `runs_by_owner`.)"
                if extra.get("schema_version", 0) >= 2
                else ""
            )
        )

    # 2. expired leases read through an index without a condition, or a parallel plan
    parallel = [
        f"`{query}` ({SIDES[size]})"
        for size in SIDES
        for query, text in plans.get(size, {}).items()
        if "Gather" in text
    ]
    if parallel:
        items.append(
            f"**Parallel plans in the claim path**: {', '.join(parallel)} (Gather over a "
            "parallel bitmap heap scan). A generic plan estimates a condition like "
            "`lease_expires_at <= $1` at a third of the table, so on a large table the planner "
            "starts parallel workers to find nothing: `has_claimable` with nothing claimable "
            f"took {fmt(med('idle_has_claimable_ms_1m'))} ms on the 1M table vs "
            f"{fmt(med('idle_has_claimable_ms_empty'))} ms on the empty one. Fix: "
            "`max_parallel_workers_per_gather=0` in the store's session options (no claim-path "
            "statement profits from parallel workers), or an `ORDER BY … LIMIT 1` form the "
            "planner serves with an index scan."
        )
    owner = [
        f"`{q}` ({SIDES[size]})"
        for size in SIDES
        for q, text in plans.get(size, {}).items()
        if not q.startswith(("record_step", "finish_run"))
        and any(s.whole and s.index == "runs_by_owner" and s.rows is not None for s in scans(text))
    ]
    if owner:
        items.append(
            "**The expired-lease branch read every running run**: "
            + ", ".join(owner)
            + " scanned `runs_by_owner` whole with a filter instead of `runs_leased` with an "
            "index condition (both indexed the same rows). When nothing is claimable, "
            f"`claim_runs` took {fmt(med('idle_claim_ms_1m'))} ms on the 1M table vs "
            f"{fmt(med('idle_claim_ms_empty'))} ms on the empty one."
        )

    # 3. the due branch reading the whole backlog
    backlog = [
        f"`{q}` ({SIDES[size]}: `{s.index}`, {s.rows} rows)"
        for size in SIDES
        for q, text in plans.get(size, {}).items()
        if q == "find_claimable"
        for s in scans(text)
        if s.index in ("runs_due", "runs_timers") and (s.rows or 0) > CLAIM_LIMIT
    ]
    if backlog:
        items.append(
            "**A claim read the whole backlog**: "
            + ", ".join(backlog)
            + f" to return at most {CLAIM_LIMIT} runs (a bitmap scan then a sort, instead of "
            "walking `runs_due` in claim order and stopping at the limit), so a claim costs "
            "O(due runs)."
        )

    # 4. start latency
    first, call, raw = (
        med(m, "pg_latency") for m in ("first_step_ms", "start_call_ms", "idle_insert_commit_ms")
    )
    if first == first:  # measured
        items.append(
            f"**Start latency** {fmt(first)} ms (target < 5 ms): after a second of idleness "
            f"the `start` call alone takes {fmt(call)} ms (a raw INSERT + COMMIT after the same "
            f"idle gap takes {fmt(raw)} ms: CPUs and the server's backend wake up); the other "
            f"{fmt(first - call)} ms are the notification, the worker's claim (a commit) and "
            "starting the run. PROFILE.md lists what an idle worker sends per start."
        )
    lines += [f"{i}. {text}" for i, text in enumerate(items, 1)]

    # 5. did anything read beyond the narrow indexes (the finished runs)?
    wide = sorted({s.index or "a sequential scan" for p in _all(plans) for s in scans(p)} - NARROW)
    lines.append("")
    if wide:
        lines.append(
            f"**Plans read runs through {', '.join(wide)}**, which hold finished runs too; see "
            "the EXPLAIN output above."
        )
    else:
        lines.append(
            "No plan above read `stepstone.runs` sequentially or through an index that holds "
            "finished runs: the claim path and the step writes never touch the 1M finished "
            "runs, which only take buffer-cache space (table and indexes exceed shared_buffers "
            "here)."
        )
    return [*lines, ""]


def _all(plans: dict[str, dict[str, str]]) -> list[str]:
    return [p for size in plans.values() for p in size.values()]
