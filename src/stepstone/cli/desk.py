"""The desk's commands: launch, skills, skill new, inbox, dismiss.

The skills path, the runs folder and the inbox file come from the environment here (``HOME``,
``STEPSTONE_SKILLS_PATH``, the current directory) and are passed to :mod:`stepstone.desk`.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stepstone.cli.desk_parser import ENV_SKILLS_PATH
from stepstone.cli.output import Output
from stepstone.cli.render import Screen, fmt_time
from stepstone.cli.session import Session
from stepstone.cli.stops import WAITING
from stepstone.client import Client
from stepstone.client.base import paused_by_budget, raise_for
from stepstone.core.definitions import Registry, Workflow
from stepstone.core.ids import new_run_id
from stepstone.core.ledger import Budget
from stepstone.core.model import InboxItem, Launch, Run, RunState, describe_wait
from stepstone.desk import (
    LoadedSkill,
    SkillRoot,
    find_skill,
    find_skills,
    launch_arguments,
    load_skill,
    load_skills,
    new_skill,
    registry_of,
    write_inbox_file,
)
from stepstone.desk.mirror import InboxMirror
from stepstone.errors import InvalidArgument, RunNotFound, SkillError, UsageError

__all__ = [
    "cmd_dismiss",
    "cmd_inbox",
    "cmd_launch",
    "cmd_skill",
    "cmd_skills",
    "inbox_mirror",
    "serve_skills",
    "skill_queues",
    "skills_roots",
]


def _home(session: Session) -> Path:
    home = session.env.get("HOME")
    return Path(home) if home else Path.home()


def skills_roots(session: Session) -> list[SkillRoot]:
    """The skills path, in the order a name is looked up."""
    home = _home(session)
    roots = [
        SkillRoot(Path.cwd() / "skills", "./skills"),
        SkillRoot(home / ".stepstone" / "skills", "~/.stepstone/skills"),
    ]
    for part in session.env.get(ENV_SKILLS_PATH, "").split(os.pathsep):
        if part.strip():
            roots.append(SkillRoot(Path(part).expanduser(), ENV_SKILLS_PATH))
    roots.append(SkillRoot(home / ".claude" / "skills", "~/.claude/skills", sagaflow_only=True))
    return roots


def runs_dir(session: Session) -> Path:
    """Where runs' files go: ``~/.stepstone/runs/RUN/``."""
    return _home(session) / ".stepstone" / "runs"


def inbox_path(session: Session) -> Path:
    return _home(session) / ".stepstone" / "INBOX.md"


def inbox_mirror(session: Session) -> InboxMirror:
    """What keeps INBOX.md in step with the store in a worker serving skills."""
    return InboxMirror(session.db, inbox_path(session))


def render_inbox_file(client: Client, session: Session) -> None:
    """Re-render ``~/.stepstone/INBOX.md`` from the store."""
    write_inbox_file(inbox_path(session), client.inbox(include_read=True, limit=200))


def serve_skills(session: Session) -> list[Workflow[Any, Any]]:
    """The workflows of every skill of the path, for ``worker --skills``; a skill that cannot
    be loaded is reported on stderr and skipped (SkillError when none can be, or two clash)."""
    loaded, problems = load_skills(skills_roots(session), runs_dir=runs_dir(session))
    for info, problem in problems:
        session.screen.note(f"skill {info.name!r} skipped: {problem}")
    if not loaded:
        raise SkillError("worker --skills: no skill to serve (see `stepstone skills`)")
    return list(registry_of(loaded))


def skill_queues(workflows: list[Workflow[Any, Any]]) -> list[str]:
    """The queues a skills worker serves: ``default`` and every queue its skills name."""
    return sorted({"default", *(wf.defaults.queue for wf in workflows if wf.defaults.queue)})


# --- launch ----------------------------------------------------------------------------------


def cmd_launch(ns: argparse.Namespace, session: Session) -> Output:
    info = find_skill(skills_roots(session), ns.skill)
    skill = load_skill(info, runs_dir=runs_dir(session))
    wf = skill.workflow
    budget = ns.budget_usd if ns.budget_usd is not None else info.budget_usd
    queue = ns.queue or info.queue
    options: dict[str, Any] = {"queue": queue} if queue else {}
    with session.client(Registry([wf]), create=True) as client:
        run_id = ns.run_id or new_run_id()
        existing = _existing(client, run_id) if ns.run_id else None
        if existing is not None and existing.workflow != wf.name:
            raise InvalidArgument(
                f"--run-id {run_id}: that run is of workflow {existing.workflow!r}, not of skill "
                f"{skill.name!r} ({wf.name!r})"
            )
        if existing is not None and (ns.values or ns.arg):
            raise InvalidArgument(
                f"--run-id {run_id}: the run exists and keeps its arguments; relaunch it "
                "without arguments to resume it"
            )
        # an existing run keeps its input: its arguments are not asked for again
        kwargs = launch_arguments(skill, ns.values, ns.arg) if existing is None else {}
        client.record_launch(Launch(run_id, skill.name, budget))  # before the run exists
        if budget is not None and (existing is None or ns.budget_usd is not None):
            # the run's own budget, in the store: every worker checks it before each model call
            client.set_budget(Budget(usd=budget), run_id=run_id)
            if existing is not None and paused_by_budget(existing):
                client.unpause(run_id)  # raised: it goes on (and pauses again if still short)
        if not ns.await_:
            if existing is None:
                client.start(wf, run_id=run_id, **options, **kwargs)
            run = client.get(run_id)
            render_inbox_file(client, session)
            if not ns.no_daemon:
                from stepstone.cli.daemon import ensure_daemon  # imported on use

                ensure_daemon(session, client, queue or "default")  # unless one serves it
            elif not session.json and not _someone_serves(client):
                session.screen.note(
                    "no live worker: `stepstone worker --skills` runs it (or launch with --await)"
                )
            return Output(_launched(run, skill, budget), lambda s: s.line(run_id))
        try:
            run = client.run_until_wait(wf, run_id=run_id, **options, **kwargs)
        finally:
            render_inbox_file(client, session)
    return _stopped(run, skill, budget)


def _someone_serves(client: Client) -> bool:
    now = datetime.now(UTC)
    return any(w.alive_at(now) for w in client.workers())


def _existing(client: Client, run_id: str) -> Run | None:
    try:
        return client.get(run_id)
    except RunNotFound:
        return None


def _launched(run: Run, skill: LoadedSkill, budget: float | None) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "skill": skill.name,
        "workflow": run.workflow,
        "state": run.state.value,
        "budget_usd": budget,
    }


def _stopped(run: Run, skill: LoadedSkill, budget: float | None) -> Output:
    """The result of an awaited launch (exit 0), its failure or budget pause (exit 7), or its
    question (40)."""
    data = _launched(run, skill, budget)
    if run.state is RunState.COMPLETED:
        value = json.loads(run.output_json) if run.output_json else None

        def show(screen: Screen) -> None:
            screen.line(value) if isinstance(value, str) else screen.json(value)

        return Output({**data, "result": value}, show)
    if run.state in (RunState.FAILED, RunState.CANCELLED, RunState.BLOCKED):
        raise_for(run)  # RunFailed: exit 7
    if paused_by_budget(run):  # exit 7, saying how to go on
        relaunch = f"stepstone launch {skill.name} --run-id {run.run_id} --budget-usd USD --await"
        raise_for(run, hint=f"or relaunch it with a higher budget: {relaunch}")
    waits = [describe_wait(w) for w in run.waits]
    signals = [w.name for w in run.waits if w.kind == "signal" and w.name]
    name = signals[0] if signals else "NAME"

    def waiting(screen: Screen) -> None:
        screen.line(f"run {run.run_id} waits: {'; '.join(waits) or run.state.value}")
        screen.line(
            f"answer: stepstone signal {run.run_id} {name} --data JSON, then continue it here "
            f"with: stepstone launch {skill.name} --run-id {run.run_id} --await"
        )

    return Output({**data, "waits": waits}, waiting, exit_code=WAITING)


# --- skills ----------------------------------------------------------------------------------


def cmd_skills(ns: argparse.Namespace, session: Session) -> Output:
    rows = []
    for info in find_skills(skills_roots(session)):
        row: dict[str, Any] = {
            "name": info.name,
            "folder": str(info.folder),
            "found_in": info.origin,
            "kind": info.kind,
            "description": info.description,
            "queue": info.queue,
            "budget_usd": info.budget_usd,
            "parameters": [],
            "note": info.note,
        }
        if info.shadowed_by is not None:
            row["note"] = f"shadowed by {info.shadowed_by}"
        elif info.kind == "stepstone":
            try:
                loaded = load_skill(info, runs_dir=runs_dir(session))
            except SkillError as exc:
                row["kind"], row["note"] = "broken", str(exc)
            else:
                row["description"] = loaded.description
                row["workflow"] = loaded.workflow.name
                row["parameters"] = [
                    {
                        "name": p.name,
                        "type": p.type_name,
                        "required": p.required,
                        "default": None if p.required else _jsonable(p.default),
                    }
                    for p in loaded.params
                ]
        rows.append(row)

    def human(screen: Screen) -> None:
        if not rows:
            screen.line("no skills found; create one with `stepstone skill new NAME`")
            return
        screen.table(
            ("skill", "arguments", "description", "found in"),
            [
                (
                    r["name"],
                    _signature(r["parameters"]) if r["kind"] == "stepstone" else "-",
                    r["description"] or "",
                    f"{r['folder']} ({r['found_in']})" + (f"\n{r['note']}" if r["note"] else ""),
                )
                for r in rows
            ],
            no_wrap=("skill",),
        )

    return Output(rows, human)


def _signature(params: list[dict[str, Any]]) -> str:
    parts = []
    for p in params:
        text = f"{p['name']}: {p['type']}"
        parts.append(text if p["required"] else f"[{text} = {json.dumps(p['default'])}]")
    return ", ".join(parts) or "(none)"


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def cmd_skill(ns: argparse.Namespace, session: Session) -> Output:
    if ns.skill_command != "new":  # pragma: no cover - argparse allows only "new"
        raise UsageError(f"unknown action {ns.skill_command!r}")
    folder = Path(ns.dir)
    files = new_skill(folder, ns.name)
    data = {"skill": ns.name, "folder": str(folder / ns.name), "files": [str(f) for f in files]}

    def human(screen: Screen) -> None:
        for path in files:
            screen.line(f"created {path}")
        screen.line(f"try it: stepstone launch {ns.name} ann --await")

    return Output(data, human)


# --- inbox -----------------------------------------------------------------------------------


def item_json(item: InboxItem) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "run_id": item.run_id,
        "skill": item.skill,
        "outcome": item.outcome,
        "level": item.level,
        "summary": item.summary,
        "created_at": item.created_at.isoformat(),
        "read_at": item.read_at.isoformat() if item.read_at else None,
        "unread": item.unread,
    }


def cmd_inbox(ns: argparse.Namespace, session: Session) -> Output:
    if ns.limit < 1:
        raise InvalidArgument(f"--limit {ns.limit}: must be >= 1")
    with session.client() as client:
        items = client.inbox(include_read=ns.all, limit=ns.limit)
        render_inbox_file(client, session)

    def human(screen: Screen) -> None:
        if not items:
            screen.line("the inbox is empty" if ns.all else "no unread items")
            return
        for item in items:
            mark = "*" if item.unread else " "
            screen.line(
                f"{mark} {fmt_time(item.created_at)}  {item.skill}  {item.outcome}  {item.run_id}"
            )
            for line in item.summary.splitlines() or [""]:
                screen.line(f"    {line}")

    return Output([item_json(i) for i in items], human)


def cmd_dismiss(ns: argparse.Namespace, session: Session) -> Output:
    if (ns.run_id is None) == (not ns.all):
        raise UsageError("give RUN or --all, not both (see `stepstone dismiss --help`)")
    with session.client() as client:
        count = client.dismiss(None if ns.all else ns.run_id)
        render_inbox_file(client, session)
    which = "every run" if ns.all else f"run {ns.run_id}"
    data = {"run_id": ns.run_id, "dismissed": count}
    return Output(data, lambda s: s.line(f"dismissed {count} item(s) of {which}"))
