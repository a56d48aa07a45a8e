"""The desk from the shell: skill new, launch (offline), skills, inbox, dismiss, INBOX.md, and
worker --skills, each as a real `python -m stepstone` process."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_cli import READY_TIMEOUT_S, Cli


@pytest.fixture
def desk(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path)
    cli("skill", "new", "hello", db=False)
    return cli


def inbox_md(cli: Cli) -> str:
    return (cli.cwd / ".stepstone" / "INBOX.md").read_text()


def test_a_scaffolded_skill_launches_offline_and_lands_in_the_inbox(desk: Cli) -> None:
    assert desk("launch", "hello", "ann", "--await").stdout == "Hello, ann!\n"
    [item] = desk.data("inbox")
    assert (item["skill"], item["outcome"], item["unread"]) == ("hello", "done", True)
    assert item["summary"] == "greeted ann: Hello, ann!"
    run_id = item["run_id"]
    artifact = desk.cwd / ".stepstone" / "runs" / run_id / "greeting.txt"
    assert artifact.read_text() == "Hello, ann!\n"
    assert f"run {run_id}" in inbox_md(desk) and "greeted ann: Hello, ann!" in inbox_md(desk)
    assert desk("dismiss", run_id).stdout == f"dismissed 1 item(s) of run {run_id}\n"
    assert desk.data("inbox") == []
    [read] = desk.data("inbox", "--all")
    assert read["unread"] is False and "## Read (1)" in inbox_md(desk)


def test_arguments_are_typed_and_a_bad_one_exits_4_naming_it(desk: Cli) -> None:
    out = desk("launch", "hello", "--arg", "name=bo", "--arg", "excited=true", "--await")
    assert out.stdout == "HELLO, BO!\n"
    bad = desk("launch", "hello", "bo", "--arg", "excited=maybe", code=4)
    assert bad.stderr.strip() == "stepstone: --arg excited: 'maybe' is not a bool"
    unknown = desk("launch", "hello", "bo", "--arg", "excite=1", code=4)
    assert "did you mean 'excited'?" in unknown.stderr
    assert "no skill 'nope'" in desk("launch", "nope", code=3).stderr
    budget = desk("launch", "hello", "bo", "--budget-usd=-1", code=4)
    assert budget.stderr.strip() == "stepstone: --budget-usd '-1': must be a finite amount >= 0"
    assert len(desk.data("inbox")) == 1  # the refused launches left nothing


def test_relaunching_a_run_id_resumes_it_and_adds_no_second_item(desk: Cli) -> None:
    data = desk.data("launch", "hello", "ann", "--run-id", "r-1", "--await")
    assert (data["run_id"], data["result"]) == ("r-1", "Hello, ann!")
    again = desk.data("launch", "hello", "--run-id", "r-1", "--await")
    assert again["result"] == "Hello, ann!"
    assert [i["run_id"] for i in desk.data("inbox")] == ["r-1"]
    refused = desk("launch", "hello", "bob", "--run-id", "r-1", code=4)
    assert "keeps its arguments" in refused.stderr


def test_skills_lists_parameters_and_where_each_was_found(desk: Cli, tmp_path: Path) -> None:
    elsewhere = tmp_path / "more"
    (elsewhere / "hello").mkdir(parents=True)
    (elsewhere / "hello" / "skill.py").write_text("x = 1\n")
    desk.env["STEPSTONE_SKILLS_PATH"] = str(elsewhere)
    first, second = desk.data("skills", db=False)
    assert first["found_in"] == "./skills" and first["workflow"] == "hello"
    assert [(p["name"], p["type"], p["required"]) for p in first["parameters"]] == [
        ("name", "str", True),
        ("excited", "bool", False),
    ]
    assert second["found_in"] == "STEPSTONE_SKILLS_PATH"
    assert second["note"] == f"shadowed by {tmp_path / 'skills' / 'hello'}"


WAITING = """
from stepstone import WorkflowContext
from stepstone.desk import skill


@skill
async def approve(ctx: WorkflowContext, what: str) -> str:
    ok = await ctx.wait_for_signal("approval", prompt=f"Ship {what}?\\nSay yes or no.")
    return f"{what}: {ok}"
"""


def test_a_run_waiting_for_a_human_is_an_item_then_continues(desk: Cli) -> None:
    folder = desk.cwd / "skills" / "approve"
    folder.mkdir()
    (folder / "skill.py").write_text(textwrap.dedent(WAITING))
    waiting = desk("launch", "approve", "v2", "--run-id", "a-1", "--await", code=40)
    assert "stepstone signal a-1 approval" in waiting.stdout
    [item] = desk.data("inbox")
    assert item["outcome"] == "waiting"
    assert item["summary"] == "waits for signal 'approval': Ship v2?\nSay yes or no."
    assert "Ship v2?\nSay yes or no." in inbox_md(desk)  # several lines stay several lines
    desk("signal", "a-1", "approval", "--data", "true")
    assert desk("launch", "approve", "--run-id", "a-1", "--await").stdout == "v2: True\n"
    assert [i["outcome"] for i in desk.data("inbox")] == ["waiting", "done"]


def test_an_inbox_file_stepstone_did_not_write_is_refused_and_kept(desk: Cli) -> None:
    desk("launch", "hello", "ann", "--await")
    path = desk.cwd / ".stepstone" / "INBOX.md"
    path.write_text("my own notes\n")
    out = desk("inbox", code=4)
    assert out.stderr.startswith(f"stepstone: {path}: not an inbox file stepstone wrote")
    assert path.read_text() == "my own notes\n"


@contextlib.contextmanager
def skills_worker(desk: Cli) -> Iterator[None]:
    """A `worker --skills` process for the test's duration; SIGTERM must stop it with 0."""
    proc = subprocess.Popen(
        desk.argv("worker", "--skills", "--poll-s", "0.1"),
        cwd=desk.cwd,
        env=desk.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_worker_skills_executes_launched_runs_in_their_queues(desk: Cli) -> None:
    toml = desk.cwd / "skills" / "hello" / "skill.toml"
    toml.write_text(toml.read_text().replace('queue = "default"', 'queue = "fast"'))
    run_id = desk("launch", "hello", "cy", "--no-daemon").stdout.strip()
    assert desk.data("show", run_id)["queue"] == "fast"
    with skills_worker(desk):
        result = desk("result", run_id, "--timeout-s", str(READY_TIMEOUT_S)).stdout
    assert result.strip() == json.dumps("Hello, cy!")
    [item] = desk.data("inbox", "--all")
    assert (item["run_id"], item["outcome"]) == (run_id, "done")


def test_worker_skills_renders_the_inbox_file_when_a_run_ends(desk: Cli) -> None:
    path = desk.cwd / ".stepstone" / "INBOX.md"
    run_id = desk("launch", "hello", "di", "--no-daemon").stdout.strip()
    path.unlink()  # rendered by launch, before the run ran: only the worker renders it now
    with skills_worker(desk):
        deadline = time.monotonic() + READY_TIMEOUT_S
        while f"run {run_id}" not in (path.read_text() if path.exists() else ""):
            assert time.monotonic() < deadline, "INBOX.md never showed the run"
            time.sleep(0.05)
    assert "greeted di: Hello, di!" in path.read_text()


def test_worker_skills_notifies_the_desktop_of_new_items_once(desk: Cli) -> None:
    bin_dir, calls = desk.cwd / "bin", desk.cwd / "notified.txt"
    bin_dir.mkdir()
    fake = bin_dir / "notify-send"  # records its arguments, one line per notification
    fake.write_text(f'#!/bin/sh\nprintf "%s|" "$@" >> {calls}\necho >> {calls}\n')
    fake.chmod(0o755)
    desk("launch", "hello", "old", "--await")  # there before the worker: not notified
    desk.env["PATH"] = f"{bin_dir}{os.pathsep}{desk.env['PATH']}"
    with skills_worker(desk):
        run_id = desk("launch", "hello", "eve", "--no-daemon").stdout.strip()
        desk("result", run_id, "--timeout-s", str(READY_TIMEOUT_S))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not calls.exists():
            assert time.monotonic() < deadline, "no desktop notification"
            time.sleep(0.05)
    [line] = calls.read_text().splitlines()
    assert "stepstone: hello done|greeted eve: Hello, eve!|" in line


SPENDER = """
from stepstone import WorkflowContext
from stepstone.desk import skill


@skill
async def spender(ctx: WorkflowContext, calls: int = 4) -> list[str]:
    return [(await ctx.llm(f"q{i}", model="cheap", max_tokens=10)).text for i in range(calls)]
"""


def test_a_launch_budget_is_stored_and_pauses_the_run_before_it_is_passed(desk: Cli) -> None:
    (desk.cwd / "skills" / "spender").mkdir(parents=True)
    (desk.cwd / "skills" / "spender" / "skill.py").write_text(SPENDER)
    replies = desk.cwd / "replies.json"
    replies.write_text(
        json.dumps([{"text": "ok", "repeat": True, "usage": {"input_tokens": 1000}}])
    )
    (desk.cwd / ".stepstone").mkdir(exist_ok=True)
    (desk.cwd / ".stepstone" / "config.toml").write_text(
        f'[llm]\nprovider = "scripted"\nscript = "{replies}"\n'
        "[llm.prices.cheap]\ninput = 1.0\noutput = 1.0\n"  # each call: 0.001 USD (+ 10 out)
    )
    out = desk("launch", "spender", "--budget-usd", "0.0025", "--run-id", "s-1", "--await", code=7)
    assert "budget" in out.stderr
    assert "stepstone launch spender --run-id s-1 --budget-usd USD --await" in out.stderr
    [budget] = desk.data("budget", "list", "--run", "s-1")
    # three calls fit (the third's worst case is its short prompt), the fourth would pass it
    assert budget["usd"] == 0.0025 and budget["spent_usd"] == pytest.approx(0.003)
    [item] = desk.data("inbox")
    assert (item["run_id"], item["outcome"]) == ("s-1", "paused")
    assert item["summary"].startswith("paused by a budget: run 's-1' budget")
    # raised (a relaunch with a new budget), it goes on from the third call
    done = desk.data("launch", "spender", "--run-id", "s-1", "--budget-usd", "1", "--await")
    assert done["result"] == ["ok"] * 4
    [line] = desk.data("cost", "s-1")
    assert line["calls"] == 4
