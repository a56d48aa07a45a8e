"""`stepstone hook`: Claude Code's SessionStart hook merged into a real settings file with
other hooks in it, round-tripped, and what the hook prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import Cli

OTHERS = {
    "model": "opus",
    "hooks": {
        "SessionStart": [
            {"matcher": "startup", "hooks": [{"type": "command", "command": "echo hi"}]}
        ],
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "check-bash"}]}
        ],
    },
}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def settings(cli: Cli) -> Path:
    return cli.cwd / ".claude" / "settings.json"


def test_install_merges_keeps_other_hooks_and_round_trips(cli: Cli) -> None:
    path = settings(cli)
    path.parent.mkdir()
    original = json.dumps(OTHERS, indent=4)
    path.write_text(original)
    state = cli.data("hook", "install")
    assert state["installed"] and state["changed"]
    assert Path(state["backup"]).read_text() == original
    data = json.loads(path.read_text())
    assert data["model"] == "opus" and data["hooks"]["PreToolUse"] == OTHERS["hooks"]["PreToolUse"]
    theirs, ours = data["hooks"]["SessionStart"]
    assert theirs == OTHERS["hooks"]["SessionStart"][0]
    [hook] = ours["hooks"]
    assert "stepstone hook session-start" in hook["command"] and cli.db in hook["command"]
    installed = path.read_text()
    again = cli.data("hook", "install")
    assert again["installed"] and not again["changed"]
    assert path.read_text() == installed  # idempotent: not even rewritten
    assert cli.data("hook", "status")["command"] == hook["command"]
    removed = cli.data("hook", "uninstall")
    assert not removed["installed"] and removed["changed"]
    assert json.loads(path.read_text()) == OTHERS
    assert not cli.data("hook", "uninstall")["changed"]


def test_install_creates_the_file_when_there_is_none(cli: Cli) -> None:
    state = cli.data("hook", "install", db=False)
    assert state["changed"] and state["backup"] is None
    [entry] = json.loads(settings(cli).read_text())["hooks"]["SessionStart"]
    assert entry["matcher"] == "startup|resume"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"hooks": {\n  "SessionStart": [,]\n}}', ":2:20: not valid JSON"),
        ('{"hooks": []}', ': "hooks" must be an object, got a list'),
        ('{"hooks": {"SessionStart": {}}}', ': "hooks.SessionStart" must be a list'),
        ("[1]", ": expected a JSON object at the top"),
    ],
)
def test_a_settings_file_claude_code_cannot_read_is_refused_and_untouched(
    cli: Cli, text: str, problem: str
) -> None:
    path = settings(cli)
    path.parent.mkdir()
    path.write_text(text)
    out = cli("hook", "install", code=4)
    assert out.stderr.startswith(f"stepstone: {path}{problem}")
    assert path.read_text() == text
    assert not path.with_name("settings.json.stepstone-backup").exists()


HELLO = """
from stepstone import WorkflowContext
from stepstone.desk import skill

@skill
async def hello(ctx: WorkflowContext, name: str) -> str:
    ctx.notify(f"said hello to {name}\\nand more")
    return name
"""


def test_session_start_prints_the_unread_items_for_claude_code(cli: Cli) -> None:
    assert cli("hook", "session-start").stdout == ""  # no store yet: nothing, exit 0
    (cli.cwd / "skills" / "hello").mkdir(parents=True)
    (cli.cwd / "skills" / "hello" / "skill.py").write_text(HELLO)
    for name in ("ann", "bob"):
        cli("launch", "hello", name, "--run-id", f"r-{name}", "--await")
    out = json.loads(cli("hook", "session-start").stdout)
    context = out["hookSpecificOutput"]["additionalContext"]
    assert out["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    assert context.splitlines()[:3] == [
        "stepstone inbox: 2 unread result(s) of launched skills",
        "- hello done (run r-ann): said hello to ann",
        "- hello done (run r-bob): said hello to bob",
    ]
    cli("dismiss", "--all")
    assert cli("hook", "session-start").stdout == ""


def test_on_the_embedded_store_the_hook_reads_the_inbox_without_the_engine(cli: Cli) -> None:
    """The lean read (sqlite3 and the store's named queries) prints what the read through the
    store prints, and loads no asyncio, client or engine: it runs at every session start."""
    import subprocess
    import sys

    (cli.cwd / "skills" / "hello").mkdir(parents=True)
    (cli.cwd / "skills" / "hello" / "skill.py").write_text(HELLO)
    for name in ("ann", "bob"):
        cli("launch", "hello", name, "--run-id", f"r-{name}", "--await")
    lean = (
        "import sys, json\n"
        f"sys.argv = ['stepstone', 'hook', 'session-start', '--db', {cli.db!r}]\n"
        "from stepstone.cli.entry import main\n"
        "assert main() == 0\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    full = (
        "from stepstone.cli.hook import session_start_fast\n"
        f"session_start_fast(['--db', {cli.db!r}], {{}})\n"
    )

    def python(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=cli.env, check=True
        )

    lean_run, full_run = python(lean), python(full)
    assert lean_run.stdout == full_run.stdout
    assert "2 unread result(s)" in lean_run.stdout
    loaded = set(json.loads(lean_run.stderr))
    for heavy in ("asyncio", "stepstone.client", "stepstone.core.engine", "stepstone.cli.main"):
        assert heavy not in loaded, heavy
