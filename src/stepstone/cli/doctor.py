"""``stepstone doctor``: is this machine's desk in working order? Each check passes, fails
(with the exact command that fixes it) or is skipped (it does not apply here); the exit code is
0 only when none fails (9 otherwise)."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from stepstone.cli.daemon import daemon_lease
from stepstone.cli.desk import runs_dir, skills_roots
from stepstone.cli.hook import settings_path
from stepstone.cli.output import Output
from stepstone.cli.render import Screen
from stepstone.cli.session import Session
from stepstone.core.frozen import frozen
from stepstone.core.port import Store
from stepstone.desk.daemon import daemon_of
from stepstone.desk.hook import hook_state
from stepstone.desk.loading import load_skills
from stepstone.errors import InvalidArgument, ModelError, StoreError
from stepstone.store import DEFAULT_DB_PATH, open_store

__all__ = ["DOCTOR_FAILED", "cmd_doctor"]

DOCTOR_FAILED = 9

MIN_FREE_BYTES = 512 * 1024**2
MAX_WAL_BYTES = 256 * 1024**2
MAX_SKEW_S = 2.0
MAX_HEARTBEAT_AGE_S = 60.0
MODEL_CHECK_S = 10.0
"""How long the model provider has to answer its check."""

Status = Literal["ok", "fail", "skip"]


@frozen
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None


def cmd_doctor(ns: argparse.Namespace, session: Session) -> Output:
    checks = asyncio.run(_store_checks(session))
    checks += [_skills(session), _hook(session), _model_provider(session)]
    failed = [c for c in checks if c.status == "fail"]
    data = [{"check": c.name, "status": c.status, "detail": c.detail, "fix": c.fix} for c in checks]

    def human(screen: Screen) -> None:
        screen.table(
            ("check", "status", "detail"),
            [(c.name, c.status, c.detail) for c in checks],
            no_wrap=("check", "status"),
        )
        for c in failed:
            screen.line(f"fix {c.name}: {c.fix}")
        screen.line("all checks pass" if not failed else f"{len(failed)} check(s) fail")

    return Output(data, human, exit_code=DOCTOR_FAILED if failed else 0)


def _db_flag(session: Session) -> str:
    return f" --db {shlex.quote(session.db)}" if session.db else ""


async def _store_checks(session: Session) -> list[Check]:
    if session.db is None and not DEFAULT_DB_PATH.expanduser().exists():
        note = f"{DEFAULT_DB_PATH} does not exist yet: the first launch creates it"
        return [Check("store", "ok", note), Check("worker", "skip", "no store yet")]
    store = open_store(session.db, auto_migrate=False)
    try:
        try:
            applied, latest = await store.schema_status()
        except StoreError as exc:
            fix = "check --db / STEPSTONE_DB, and that the database server is up"
            return [Check("store", "fail", str(exc), fix)]
        if applied < latest:
            detail = f"schema version {applied}, this stepstone needs {latest}"
            return [Check("store", "fail", detail, f"stepstone migrate{_db_flag(session)}")]
        checks = [Check("store", "ok", f"{store.url}: schema version {applied}")]
        checks += _sqlite_files(store)
        checks.append(await _worker(store, daemon_lease(session)))
        checks.append(await _clock(store))
        return checks
    finally:
        await store.close()


def _sqlite_files(store: Store) -> list[Check]:
    if not store.url.startswith("sqlite:") or store.url.endswith(":memory:"):
        return []
    path = Path(str(getattr(store, "path", ""))).expanduser()
    free = shutil.disk_usage(path.parent).free
    disk = Check("disk", "ok", f"{free / 1024**3:.1f} GiB free in {path.parent}")
    if free < MIN_FREE_BYTES:
        fix = f"free space in {path.parent} (at least {MIN_FREE_BYTES // 1024**2} MiB)"
        disk = Check("disk", "fail", f"only {free / 1024**2:.0f} MiB free in {path.parent}", fix)
    wal = Path(f"{path}-wal")
    size = wal.stat().st_size if wal.exists() else 0
    wal_check = Check("wal", "ok", f"{size / 1024**2:.1f} MiB")
    if size > MAX_WAL_BYTES:
        fix = f"sqlite3 {shlex.quote(str(path))} 'PRAGMA wal_checkpoint(TRUNCATE)'"
        wal_check = Check("wal", "fail", f"{wal} is {size / 1024**2:.0f} MiB", fix)
    return [disk, wal_check]


async def _worker(store: Store, lease_name: str) -> Check:
    now = datetime.now(UTC)
    lease, workers = await store.get_lease(lease_name), await store.list_workers()
    holder = daemon_of(lease, workers, now)
    daemon = holder.pid if holder is not None else None
    alive = [w for w in workers if w.alive_at(now)]
    held = f"daemon pid {daemon}; " if daemon else "no daemon; "
    renewed = ""
    if lease is not None and holder is not None:
        renewed = (
            f"; the daemon's lease renewed {(now - lease.renewed_at).total_seconds():.1f} s ago"
        )
    if not alive:
        if daemon:  # the lease is held, yet nothing beats: a stuck daemon
            detail = f"{held}but no live worker: launched runs wait"
            return Check("worker", "fail", detail, "stepstone daemon restart")
        fix = "stepstone daemon start   (or any launch; or a worker of your own: worker --skills)"
        return Check("worker", "fail", f"{held}no live worker: launched runs wait", fix)
    freshest = max(alive, key=lambda w: w.heartbeat_at or now)
    age = (now - (freshest.heartbeat_at or now)).total_seconds()
    detail = f"{held}{len(alive)} live worker(s); {freshest.worker_id} beat {age:.1f} s ago"
    detail += renewed
    if age > MAX_HEARTBEAT_AGE_S:
        return Check("worker", "fail", detail, "stepstone daemon restart")
    return Check("worker", "ok", detail)


async def _clock(store: Store) -> Check:
    if not store.url.startswith("postgres"):
        return Check("clock", "skip", "an SQLite store shares this machine's clock")
    before = time.time()
    server = await store.server_now()
    after = time.time()
    skew = server.timestamp() - (before + after) / 2
    detail = f"{skew:+.3f} s against the database server"
    if abs(skew) > MAX_SKEW_S:
        fix = "synchronise the clocks (enable NTP on this machine and the database server)"
        return Check("clock", "fail", detail, fix)
    return Check("clock", "ok", detail)


def _skills(session: Session) -> Check:
    loaded, problems = load_skills(skills_roots(session), runs_dir=runs_dir(session))
    if problems:
        info, problem = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Check("skills", "fail", f"{info.name}: {problem}{more}", "stepstone skills")
    if not loaded:
        return Check("skills", "fail", "no skill found", "stepstone skill new NAME")
    return Check("skills", "ok", ", ".join(s.name for s in loaded))


def _hook(session: Session) -> Check:
    path = settings_path(session)
    try:
        state = hook_state(path)
    except InvalidArgument as exc:
        return Check("hook", "fail", str(exc), f"repair {path}, then: stepstone hook install")
    if not state.installed:
        return Check("hook", "fail", f"not in {path}", f"stepstone hook install{_db_flag(session)}")
    return Check("hook", "ok", f"in {path}")


def _model_provider(session: Session) -> Check:
    """The provider ``ctx.llm`` calls by default: offline (scripted), or reachable and taking
    its key (one call that spends no tokens: the model list)."""
    try:
        models = session.models()
    except InvalidArgument as exc:
        return Check("model", "fail", str(exc), "fix ~/.stepstone/config.toml or STEPSTONE_LLM_*")
    provider = models.providers[models.default]
    check = getattr(provider, "check", None)
    if check is None:
        return Check("model", "ok", f"offline: {provider.name} provider")
    try:
        detail = asyncio.run(asyncio.wait_for(check(), MODEL_CHECK_S))
    except TimeoutError:
        detail, kind = f"no answer in {MODEL_CHECK_S:g} s", "unavailable"
    except ModelError as exc:
        detail, kind = str(exc), type(exc).__name__
    else:
        return Check("model", "ok", f"{provider.name}: {detail}")
    fix = (
        "set the key: STEPSTONE_OPENAI_API_KEY / ANTHROPIC_API_KEY (or [llm.openai] api_key_env)"
        if kind == "ModelAuthError"
        else "check the base URL ([llm.openai] base_url / STEPSTONE_OPENAI_BASE_URL) and that "
        "the server runs; STEPSTONE_LLM_PROVIDER=scripted works offline"
    )
    return Check("model", "fail", f"{provider.name}: {detail}", fix)
