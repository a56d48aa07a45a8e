"""`stepstone schedule ...` end to end (real processes, a real SQLite file): the lifecycle, and bad
input that exits with its documented code, one line on stderr, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import Cli, _stderr_line

APP = """
from stepstone import Schedule, WorkflowContext, step, workflow


@step
def note(run_id: str) -> str:
    with open("ticks.log", "a") as log:
        log.write(run_id + "\\n")
    return run_id


@workflow
def greet(ctx: WorkflowContext, name: str) -> str:
    return note(f"{ctx.run_id} {name}")
"""


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    (tmp_path / "app.py").write_text(APP)
    c = Cli(tmp_path)
    c("migrate")
    return c


ADD = ("schedule", "add", "hello", "--app", "app", "--workflow", "greet")


def _nothing_stored(cli: Cli) -> None:
    assert cli.data("schedule", "list") == []
    assert cli.data("runs") == []


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (
            ("--cron", "61 9 * * *", "--input", '{"name": "a"}'),
            4,
            "bad cron expression '61 9 * * *'",
        ),
        (("--cron", "0 9 * *", "--input", '{"name": "a"}'), 4, "bad cron expression '0 9 * *'"),
        (
            ("--cron", "0 9 * * *", "--tz", "Europe/Pariss", "--input", '{"name": "a"}'),
            4,
            "unknown time zone 'Europe/Pariss'",
        ),
        (("--cron", "0 9 * * *", "--input", '{"name": "a"'), 4, "--input: invalid JSON"),
        (("--cron", "0 9 * * *", "--input", '"a"'), 4, "--input: expected a JSON list"),
        (("--cron", "0 9 * * *", "--input", '{"nom": "a"}'), 4, "schedule 'hello'"),
        (("--cron", "0 9 * * *", "--jitter-s", "-3"), 4, "--jitter-s '-3'"),
        (("--cron", "0 9 * * *", "--overlap", "queue"), 2, "--overlap: invalid choice"),
    ],
)
def test_add_refuses_bad_input_and_writes_nothing(
    cli: Cli, args: tuple[str, ...], code: int, says: str
) -> None:
    line = _stderr_line(cli(*ADD, *args, code=code))
    assert says in line
    _nothing_stored(cli)


def test_add_an_unknown_workflow_or_without_app_writes_nothing(cli: Cli) -> None:
    line = _stderr_line(
        cli(
            "schedule",
            "add",
            "x",
            "--app",
            "app",
            "--workflow",
            "nope",
            "--cron",
            "* * * * *",
            code=3,
        )
    )
    assert "unknown workflow 'nope'" in line and "greet" in line
    line = _stderr_line(
        cli("schedule", "add", "x", "--workflow", "greet", "--cron", "* * * * *", code=2)
    )
    assert "--app MODULE is required" in line
    _nothing_stored(cli)


def test_unknown_schedule_exits_3(cli: Cli) -> None:
    for action in ("pause", "resume", "delete"):
        assert "no schedule named 'ghost'" in _stderr_line(cli("schedule", action, "ghost", code=3))
    line = _stderr_line(cli("schedule", "trigger", "ghost", "--app", "app", code=3))
    assert "ghost" in line
    _nothing_stored(cli)


def test_lifecycle_add_list_pause_resume_trigger_backfill_delete(cli: Cli) -> None:
    weekdays = ("--cron", "0 9 * * 1-5", "--tz", "Europe/Paris", "--input", '{"name": "ann"}')
    weekdays += ("--overlap", "skip", "--jitter-s", "5")
    added = cli.data(*ADD, *weekdays)
    assert added["cron"] == "0 9 * * 1-5" and added["timezone"] == "Europe/Paris"
    assert added["overlap"] == "skip" and added["catchup"] == "latest" and added["jitter_s"] == 5
    # the same again is fine; another definition needs --replace
    cli(*ADD, *weekdays)
    line = _stderr_line(cli(*ADD, "--cron", "0 10 * * *", "--input", '{"name": "ann"}', code=4))
    assert "schedule 'hello' already exists" in line
    replaced = cli.data(*ADD, "--cron", "0 10 * * *", "--input", '{"name": "bob"}', "--replace")
    assert replaced["cron"] == "0 10 * * *" and replaced["timezone"] == "UTC"
    assert [s["name"] for s in cli.data("schedule", "list")] == ["hello"]
    assert cli.data("schedule", "pause", "hello")["paused"] is True
    assert "hello" in cli("schedule", "list").stdout
    assert cli.data("schedule", "resume", "hello")["paused"] is False

    run_id = cli.data("schedule", "trigger", "hello", "--app", "app")["run_id"]
    assert run_id.startswith("schedule:hello:")
    # naive times are local to the schedule's zone (UTC here); both ends included
    window = ("--from", "2026-03-01T10:00", "--to", "2026-03-03T10:00", "--app", "app")
    first = cli.data("schedule", "backfill", "hello", *window)["ticks"]
    assert [t["outcome"] for t in first] == ["started"] * 3
    again = cli.data("schedule", "backfill", "hello", *window)["ticks"]
    assert [t["outcome"] for t in again] == ["existing"] * 3
    backfill = ("schedule", "backfill", "hello", "--app", "app")
    line = _stderr_line(cli(*backfill, "--from", "yesterday", "--to", "2026-03-03", code=4))
    assert "--from 'yesterday'" in line
    line = _stderr_line(cli(*backfill, "--from", "2026-03-03", "--to", "2026-03-01", code=4))
    assert "before" in line
    assert len(cli.data("runs")) == 4

    cli("schedule", "delete", "hello")
    assert cli.data("schedule", "list") == []
    assert len(cli.data("runs")) == 4  # the runs stay


def test_a_worker_fires_a_schedule_added_from_the_cli(cli: Cli) -> None:
    cli(*ADD, "--cron", "* * * * * *", "--input", '["eve"]', "--catchup", "none")
    with cli.worker(workflows="greet"):
        log = cli.cwd / "ticks.log"
        from tests.workers import wait_for_file_line

        wait_for_file_line(log, r"schedule:hello:\S+ eve", timeout=20)
    info = cli.data("schedule", "list")[0]
    assert info["last_run_id"].startswith("schedule:hello:")
