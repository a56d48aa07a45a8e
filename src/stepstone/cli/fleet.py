"""Commands about the fleet and the data: workers, queues, dead letters, copying a store."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from datetime import UTC, datetime

from stepstone.cli.operate import cmd_retry
from stepstone.cli.output import Output
from stepstone.cli.render import Screen, fmt_time, one_line
from stepstone.cli.session import Session
from stepstone.client.shapes import queue_json, run_json, worker_json
from stepstone.errors import RunsNotCopied
from stepstone.store import open_store, redact_url
from stepstone.store.copy import CopyReport, copy_store

__all__ = ["cmd_db", "cmd_dlq", "cmd_queues", "cmd_workers"]


def cmd_workers(ns: argparse.Namespace, session: Session) -> Output:
    with session.client() as client:
        workers = client.workers()
    now = datetime.now(UTC)

    def human(screen: Screen) -> None:
        if not workers:
            screen.line("no workers registered")
            return
        rows = [
            (
                w.worker_id,
                f"{w.host}:{w.pid}",
                ", ".join(w.queues),
                ", ".join(f"{k}={v}" for k, v in w.labels),
                w.pool or "",
                w.version or "",
                f"{w.load}/{w.concurrency}",
                fmt_time(w.heartbeat_at),
                "yes" if w.alive_at(now) else "NO",
            )
            for w in workers
        ]
        columns = (
            "worker",
            "host:pid",
            "queues",
            "labels",
            "pool",
            "code",
            "load",
            "heartbeat",
            "alive",
        )
        screen.table(columns, rows, no_wrap=("worker", "heartbeat"))

    return Output([worker_json(w, now) for w in workers], human)


def cmd_queues(ns: argparse.Namespace, session: Session) -> Output:
    with session.client() as client:
        stats = {s.queue: s for s in client.queue_stats(window_s=ns.window_s)}
        specs = {q.name: q for q in client.queues()}
    names = sorted(set(stats) | set(specs))
    data = [queue_json(n, stats.get(n), specs.get(n)) for n in names]

    def human(screen: Screen) -> None:
        if not names:
            screen.line("no queues have runs or limits")
            return
        rows = []
        for name in names:
            s, q = stats.get(name), specs.get(name)
            limits = []
            if q is not None and q.concurrency is not None:
                limits.append(f"concurrency {q.concurrency}")
            if q is not None and q.per_key_concurrency is not None:
                limits.append(f"per key {q.per_key_concurrency}")
            if q is not None and q.rate_limit is not None:
                per_key = " per key" if q.rate_limit_per_key else ""
                limits.append(f"{q.rate_limit}/{q.rate_period_s:g}s{per_key}")
            oldest = s.oldest_pending_age_s if s is not None else None
            rows.append(
                (
                    name,
                    str(s.pending if s else 0),
                    str(s.running if s else 0),
                    str(s.waiting if s else 0),
                    str(s.sleeping if s else 0),
                    f"{s.throughput_per_s:.2f}/s" if s else "",
                    f"{oldest:.1f} s" if oldest is not None else "",
                    ", ".join(limits),
                )
            )
        columns = (
            "queue",
            "pending",
            "running",
            "waiting",
            "sleeping",
            "throughput",
            "oldest",
            "limits",
        )
        screen.table(columns, rows, no_wrap=("queue",))

    return Output(data, human)


def cmd_dlq(ns: argparse.Namespace, session: Session) -> Output:
    if ns.dlq_command == "retry":
        return cmd_retry(ns, session)
    if ns.dlq_command == "purge":
        with session.client() as client:
            count = client.purge(older_than_s=ns.older_than_s, state=ns.state or ["failed"])
        return Output({"purged": count}, lambda screen: screen.line(f"purged {count} run(s)"))
    with session.client() as client:
        runs = client.dead_letters(workflow=ns.workflow, queue=ns.queue, limit=ns.limit)

    def human(screen: Screen) -> None:
        if not runs:
            screen.line("no dead letters")
            return
        rows = [
            (
                r.run_id,
                r.workflow,
                r.queue,
                fmt_time(r.finished_at),
                one_line(f"{r.error.type}: {r.error.message}" if r.error else ""),
            )
            for r in runs
        ]
        screen.table(("run", "workflow", "queue", "failed", "error"), rows, no_wrap=("run",))

    return Output([run_json(r) for r in runs], human)


def cmd_db(ns: argparse.Namespace, session: Session) -> Output:
    report = asyncio.run(_copy(ns.source, ns.target, session))
    source, target = redact_url(ns.source), redact_url(ns.target)
    data = {"source": source, "target": target, **dataclasses.asdict(report)}

    def human(screen: Screen) -> None:
        skipped = report.runs_seen - report.runs_added
        screen.line(
            f"copied {report.runs_added} run(s) ({skipped} already there), {report.steps} step(s), "
            f"{report.signals} signal(s), {report.events} event(s), {report.ledger} ledger row(s), "
            f"{report.inbox} inbox item(s), "
            f"{report.queues} queue(s), {report.pools} pool(s), {report.schedules} schedule(s) "
            f"and {report.memory} memory document(s) from {source} to {target}"
        )

    output = Output(data, human)
    if report.refused:
        raise RunsNotCopied(report.refused, output)
    return output


async def _copy(source_url: str, target_url: str, session: Session) -> CopyReport:
    source, target = open_store(source_url), open_store(target_url)
    try:
        await source.schema_status()
        return await copy_store(
            source,
            target,
            now=datetime.now(UTC),
            progress=lambda seen, added: (
                session.screen.note(f"{seen} run(s) read, {added} added")
                if session.verbose
                else None
            ),
        )
    finally:
        await source.close()
        await target.close()
