"""The desk's part of the ``stepstone`` parser: launch, skills, skill new, inbox, dismiss."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["ENV_SKILLS_PATH", "add_desk_commands"]

ENV_SKILLS_PATH = "STEPSTONE_SKILLS_PATH"

Command = Callable[[str, str], argparse.ArgumentParser]

SKILLS_PATH_HELP = (
    "skills are folders NAME/ with skill.py, looked up in ./skills, ~/.stepstone/skills, the "
    f"folders of ${ENV_SKILLS_PATH} (':'-separated), then ~/.claude/skills (sagaflow's skills "
    "there are listed, not run); the first folder of a name wins"
)


def _budget(text: str) -> object:
    """Dollars >= 0; else a BadValue, which check_values turns into exit 4 naming the flag."""
    from stepstone.cli.parser import BadValue  # the parser imports this module

    try:
        value = float(text)
    except ValueError:
        return BadValue(text, "expected an amount in dollars")
    if not 0 <= value < float("inf"):  # also refuses nan
        return BadValue(text, "must be a finite amount >= 0")
    return value


def _action(
    actions: Any, name: str, text: str, common: argparse.ArgumentParser, epilog: str
) -> argparse.ArgumentParser:
    """One ACTION of a command with actions (``skill new``, ``hook install``)."""
    parser: argparse.ArgumentParser = actions.add_parser(
        name,
        help=text,
        description=text,
        parents=[common],
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def add_desk_commands(command: Command, common: argparse.ArgumentParser, epilog: str) -> None:
    """Add the desk's commands through the parser's ``command(name, help)`` factory."""
    p = command(
        "launch",
        "start a skill's run and print its id (--await: run it here and print its result); "
        "each outcome of the run lands in the inbox once. " + SKILLS_PATH_HELP,
    )
    p.add_argument("skill", metavar="NAME", help="the skill (its folder's name)")
    p.add_argument(
        "values",
        metavar="VALUE",
        nargs="*",
        help="the value of the skill's first required parameter (the rest go as --arg)",
    )
    p.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a launch argument, converted by the parameter's type (int, bool, list[str] ... "
        "as JSON; str as the text); a bad value exits 4 naming it (repeatable)",
    )
    p.add_argument(
        "--await",
        dest="await_",
        action="store_true",
        help="execute the run in this process and print its result (exit 7 if it fails, 40 if "
        "it stops at a signal wait)",
    )
    p.add_argument(
        "--run-id",
        metavar="ID",
        help="the run's id; launching an existing id resumes that run instead of starting one",
    )
    p.add_argument(
        "--queue", metavar="Q", help="the queue (default: skill.toml's queue, else default)"
    )
    p.add_argument(
        "--no-daemon",
        action="store_true",
        help="do not start the skills daemon when none runs (a worker of your own serves the run)",
    )
    p.add_argument(
        "--budget-usd",
        type=_budget,
        metavar="USD",
        help="a spending limit, stored with the launch (and printed by `launch --json`); NOT "
        "enforced yet: model-call budgets come with the agent layer (default: skill.toml's "
        "budget_usd)",
    )

    p = command(
        "skills",
        "list the skills found, with their launch arguments and where each was found. "
        + SKILLS_PATH_HELP,
    )

    p = command("skill", "manage skill folders")
    actions = p.add_subparsers(dest="skill_command", metavar="ACTION", required=True)
    d = _action(
        actions,
        "new",
        "scaffold a skill folder that runs offline (skill.py, skill.toml, prompts/): "
        "`stepstone launch NAME ann --await` works at once",
        common,
        epilog,
    )
    d.add_argument("name", metavar="NAME", help="the skill's name (its folder)")
    d.add_argument(
        "--dir",
        metavar="DIR",
        default="skills",
        help="the skills folder to create it in (default: ./skills, the first on the path)",
    )

    p = command(
        "inbox",
        "the outcomes of launched runs (done, failed, cancelled, waiting for a signal), unread "
        "first; also re-renders ~/.stepstone/INBOX.md",
    )
    p.add_argument("--all", action="store_true", help="also the items already dismissed")
    p.add_argument(
        "--limit", type=int, default=200, metavar="N", help="at most N items of each kind"
    )

    p = command(
        "hook",
        "Claude Code's SessionStart hook in ~/.claude/settings.json: shows the inbox's unread "
        "items when a session starts",
    )
    actions = p.add_subparsers(dest="hook_command", metavar="ACTION", required=True)
    for name, text in (
        (
            "install",
            "merge the hook into ~/.claude/settings.json (other hooks kept; the file is copied "
            "to settings.json.stepstone-backup first; a file that is not JSON is refused with "
            "its line); installing twice changes nothing",
        ),
        ("uninstall", "remove stepstone's hook (and only it) from ~/.claude/settings.json"),
        ("status", "whether the hook is installed, and its command"),
        (
            "session-start",
            "what the hook runs: print the unread items as Claude Code's SessionStart JSON "
            "(nothing when none); always exits 0",
        ),
    ):
        _action(actions, name, text, common, epilog)

    p = command(
        "daemon",
        "the skills worker as a daemon, one per host and skills path: it holds a lease in the "
        "store (renewed with its heartbeat; a dead daemon's is taken over by the next) and logs "
        "to ~/.stepstone/worker.log; a launch starts it when no live worker serves the run; an "
        "edited skill makes it drain and start again on the new code",
    )
    actions = p.add_subparsers(dest="daemon_command", metavar="ACTION", required=True)
    for name, text in (
        ("start", "start the daemon unless a live one serves (detached); prints its pid"),
        ("status", "whether the daemon runs: its pid, its lease's holder and age, its log"),
        ("stop", "stop the daemon gracefully (running steps get their grace period)"),
        ("restart", "stop, then start the daemon"),
        ("run", "serve in the foreground as the daemon (what `start` spawns)"),
    ):
        _action(actions, name, text, common, epilog)
    d = _action(actions, "logs", "the end of the daemon's log", common, epilog)
    d.add_argument("--lines", type=int, default=40, metavar="N", help="how many lines (40)")

    command(
        "doctor",
        "check the desk: store reachable and migrated, disk and WAL (SQLite), a live worker, "
        "skills that load, the session hook, clock skew (PostgreSQL); each failing check "
        "prints the command that fixes it; exit 0 only when none fails (else 9)",
    )

    p = command("dismiss", "mark a run's inbox items (or all of them) read")
    p.add_argument("run_id", metavar="RUN", nargs="?", help="the run whose items to dismiss")
    p.add_argument("--all", action="store_true", help="dismiss every unread item")
