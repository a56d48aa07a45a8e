"""Commands that look after a deployment: serve runs (worker), check new code against unfinished
runs (check), and bring the store's schema up to date (migrate)."""

from __future__ import annotations

import argparse
import asyncio
import threading
from typing import Any

from stepstone.cli.app import app_declarations, load_app, load_registry
from stepstone.cli.inputs import parse_credentials, parse_labels
from stepstone.cli.output import Output
from stepstone.cli.render import Screen
from stepstone.cli.session import Session
from stepstone.cli.tracing import otel_observer
from stepstone.client.shapes import check_json
from stepstone.core.definitions import Registry
from stepstone.core.executor import CheckResult
from stepstone.core.settings import Settings
from stepstone.errors import ChecksFailed, StoreUnavailable
from stepstone.store import open_store
from stepstone.worker import Worker

__all__ = ["cmd_check", "cmd_migrate", "cmd_worker"]


def cmd_worker(ns: argparse.Namespace, session: Session) -> Output:
    """Serve until SIGINT/SIGTERM. Once claiming, one line ``worker <id> ready: ...`` goes to
    stderr (scripts and tests wait for it instead of sleeping)."""
    registry = load_app(ns.app) if ns.app else Registry()
    declared_queues, declared_pools = app_declarations(ns.app) if ns.app else ({}, {})
    mirror = None
    if ns.skills:
        from stepstone.cli.daemon import skills_label  # imported on use
        from stepstone.cli.desk import inbox_mirror, serve_skills, skill_queues

        skills = serve_skills(session)
        for wf in skills:
            registry.add(wf)
        ns.queue = ns.queue or skill_queues(skills)
        mirror = inbox_mirror(session)
    labels = dict(parse_labels("--label", ns.label))
    if ns.skills:  # a launch that finds this worker alive starts no daemon
        labels.setdefault(*skills_label(session))
    tunables = {"lease_s": ns.lease_s, "poll_s": ns.poll_s, "grace_s": ns.grace_s}
    settings = Settings(**{k: v for k, v in tunables.items() if v is not None})
    # a queue or pool the app declares in code brings its limits or strategy along
    queues = [declared_queues.get(q, q) for q in (ns.queue or ["default"])]
    pool = declared_pools.get(ns.pool, ns.pool) if ns.pool else None
    observer, flush = otel_observer(session.env) if ns.otel else (None, None)
    worker = Worker(
        session.db,  # an SQLite file is created and migrated; PostgreSQL must be migrated
        workflows=registry,
        queue=queues,
        concurrency=ns.concurrency,
        labels=labels,
        pool=pool,
        settings=settings,
        worker_id=ns.worker_id,
        credentials=parse_credentials(ns.credential, session.env),
        models=session.models(),
        tracing=observer or False,
    )

    def announce() -> None:
        worker.ready.wait()
        session.screen.note(
            f"worker {worker.worker_id} ready: queues [{', '.join(worker.queues)}], "
            f"workflows [{', '.join(registry.names())}]"
        )

    threading.Thread(target=announce, name="stepstone-cli-ready", daemon=True).start()
    if mirror is not None:
        mirror.start()  # runs end here: INBOX.md is re-rendered after each change
    try:
        worker.run()
    finally:
        if mirror is not None:
            mirror.stop()
        if flush is not None:
            flush()
    data = {"worker_id": worker.worker_id, "executed": worker.executed}
    return Output(
        data,
        lambda screen: screen.note(
            f"worker {worker.worker_id} stopped after {worker.executed} execution(s)"
        ),
    )


def cmd_check(ns: argparse.Namespace, session: Session) -> Output:
    registry = load_registry(None if ns.file else ns.app, ns.file)
    assert registry is not None  # main requires --app or -f
    with session.client(registry) as client:
        results = client.check(unblock=ns.unblock)
    failed = [r for r in results if not r.ok]

    def human(screen: Screen) -> None:
        if not results:
            screen.line(f"no unfinished runs of {', '.join(registry.names())}")
            return
        screen.table(
            ("run", "workflow", "can continue", "replayed", "problem"),
            [_check_row(r) for r in results],
            no_wrap=("run",),
        )
        screen.line(f"{len(results) - len(failed)} of {len(results)} run(s) can continue")

    output = Output([check_json(r) for r in results], human)
    if failed:
        raise ChecksFailed(len(failed), len(results), output)
    return output


def _check_row(result: CheckResult) -> tuple[str, str, str, str, str]:
    return (
        result.run_id,
        result.workflow,
        "yes" if result.ok else "NO",
        f"{result.replayed} step(s)",
        result.problem or "",
    )


def cmd_migrate(ns: argparse.Namespace, session: Session) -> Output:
    data = asyncio.run(_migrate(session.db))

    def human(screen: Screen) -> None:
        # Only the process whose transaction applied the migrations says so: another one
        # migrating at once waited for it, found nothing to do, and says "up to date".
        for name in data["applied"]:
            screen.line(f"applied {name}")
        if not data["applied"]:
            screen.line(f"schema up to date (version {data['version']})")

    return Output(data, human)


async def _migrate(db: str | None) -> dict[str, Any]:
    store = open_store(db)
    try:
        try:
            previous: int | None = (await store.schema_status())[0]
        except StoreUnavailable:  # e.g. the folder of a new database does not exist yet
            previous = None
        applied = await store.migrate()
        version, latest = await store.schema_status()
    finally:
        await store.close()
    return {"applied": applied, "previous": previous, "version": version, "latest": latest}
