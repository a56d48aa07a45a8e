"""The agent-facing command line: a run handed back at its signal wait (exit 40) with everything
the answerer needs and the exact resume command; resume exactly once under concurrency (exit 70
for the others); status/inspect/logs/delete; RUN or --run-id; init/guide; --format cpf.

Commands run in-process through ``main(argv, env=...)`` (fast) and as real processes where
concurrency or the printed command itself is under test. Real SQLite files and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from stepstone import Client
from stepstone.cli.main import EXIT_CODES, MEANINGS, main
from stepstone.errors import AlreadyResumed

APP = textwrap.dedent(
    '''
    """Workflows the agent CLI tests drive."""
    from stepstone import WorkflowContext, step, workflow

    SCHEMA = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}


    @step
    async def prepare(name: str) -> str:
        return f"prepared {name}"


    @step
    def hold(gate: str | None) -> str:
        """Blocks until the test writes to the FIFO ``gate`` (a barrier, not a sleep)."""
        if not gate:
            return ""
        with open(gate) as fifo:
            return fifo.read()


    @workflow
    async def approve(ctx: WorkflowContext, name: str, gate: str | None = None) -> dict:
        prepared = await prepare(name)
        decision = await ctx.wait_for_signal(
            "approval",
            schema=SCHEMA,
            timeout_s=3600,
            prompt="Approve the change?",
            summary=f"change for {name}",
            audience="agent",
            risk_level="high",
            step="review",
        )
        opened = await hold(gate)
        return {"prepared": prepared, "ok": decision["ok"], "gate": opened}


    @workflow
    async def parent(ctx: WorkflowContext, name: str) -> dict:
        return {"child": await ctx.child(approve, name)}


    @step
    async def explode() -> None:
        raise RuntimeError("boom")


    @workflow
    async def broken(ctx: WorkflowContext) -> None:
        await explode()


    @step
    async def double(n: int) -> int:
        return n * 2


    @workflow
    async def plain(ctx: WorkflowContext, n: int) -> int:
        await ctx.sleep(0.05)
        return await double(n)
    '''
)

MODULE = "agent_cli_app"
SCHEMA_FILE = Path(__file__).parent / "data" / "checkpointflow-run-envelope.schema.json"
TIMEOUT_S = 60


class Agent:
    """The CLI in-process against one store, in ``cwd`` (which holds the app)."""

    def __init__(self, cwd: Path, db: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.cwd, self.db, self.capsys = cwd, db, capsys
        self.env = {"HOME": str(cwd)}

    def __call__(self, *argv: str, code: int = 0) -> tuple[str, str]:
        got = main([*argv, "--db", self.db], env=self.env)
        out, err = self.capsys.readouterr()
        assert got == code, f"`stepstone {' '.join(argv)}` exited {got}, not {code}\n{out}\n{err}"
        return out, err

    def json(self, *argv: str, code: int = 0) -> Any:
        out, _ = self(*argv, "--json", code=code)
        return json.loads(out)

    def cpf(self, *argv: str, code: int) -> dict[str, Any]:
        out, _ = self(*argv, "--format", "cpf", code=code)
        envelope: dict[str, Any] = json.loads(out)
        jsonschema.validate(envelope, json.loads(SCHEMA_FILE.read_text()))
        assert envelope["exit_code"] == code
        return envelope

    def process_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEPSTONE_")}
        bin_dir = str(Path(sys.executable).parent)
        env.update(HOME=str(self.cwd), PATH=bin_dir + os.pathsep + env.get("PATH", ""))
        env.update(PYTHONPATH=str(self.cwd), NO_COLOR="1")
        return env


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / f"{MODULE}.py").write_text(APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.fixture
def agent(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> Agent:
    return Agent(app_dir, f"sqlite:///{app_dir / 't.db'}", capsys)


def _run_waiting(agent: Agent, run_id: str, *extra: str) -> dict[str, Any]:
    args = ("run", "approve", "--app", MODULE, "--arg", "name=ann", "--run-id", run_id, *extra)
    envelope: dict[str, Any] = agent.json(*args, code=40)
    assert envelope["ok"] is True
    return dict(envelope["data"])


# --- run stops at the wait, and the command it prints continues it ----------------------------


def test_run_exits_40_with_the_waiting_envelope_and_its_command_resumes(agent: Agent) -> None:
    data = _run_waiting(agent, "w1")
    assert data["run_id"] == "w1" and data["status"] == "waiting"
    assert (data["step"], data["event"]) == ("review", "approval")
    assert data["prompt"] == "Approve the change?" and data["summary"] == "change for ann"
    assert (data["audience"], data["risk_level"]) == ("agent", "high")
    assert data["input_schema"]["required"] == ["ok"]
    assert data["timeout_at"] is not None
    command = data["resume_command"]
    assert command == (
        f"stepstone resume w1 --event approval --input @response.json --app {MODULE} "
        f"--db {shlex.quote(agent.db)}"
    )
    # human output: what it waits for and the same command
    out, _ = agent(
        "run", "approve", "--app", MODULE, "--arg", "name=ann", "--run-id", "w1", code=40
    )
    assert "waiting for event 'approval' at step 'review'" in out
    assert command in out
    # the printed command, executed as it is by a shell, continues the run to its end
    (agent.cwd / "response.json").write_text('{"ok": true}')
    proc = subprocess.run(
        command,
        shell=True,
        cwd=agent.cwd,
        env=agent.process_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"prepared": "prepared ann", "ok": True, "gate": ""}
    with Client(agent.db) as client:
        assert client.status("w1").value == "completed"


def test_until_finished_blocks_through_the_wait(agent: Agent) -> None:
    args = ["run", "approve", "--app", MODULE, "--arg", "name=bo", "--run-id", "f1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "stepstone", *args, "--until", "finished", "--db", agent.db],
        cwd=agent.cwd,
        env=agent.process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with Client(agent.db) as client:
            _wait_until_exists(client, "f1")
            run = client.next_stop("f1", timeout_s=TIMEOUT_S)  # wakes on store changes
            assert run.state.value == "waiting"
            assert proc.poll() is None, "--until finished must not return at the wait"
            client.signal("f1", "approval", {"ok": False})
        out, err = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["ok"] is False


def _wait_until_exists(client: Client, run_id: str) -> None:
    """The other process creates the run: poll the store, with a deadline, until it is there."""
    deadline = time.monotonic() + TIMEOUT_S
    while not any(r.run_id == run_id for r in client.list(limit=10)):
        assert time.monotonic() < deadline, f"run {run_id} never created"
        time.sleep(0.05)


def test_a_child_waiting_on_a_signal_makes_the_parents_run_exit_40(agent: Agent) -> None:
    data = agent.json(
        "run", "parent", "--app", MODULE, "--arg", "name=kid", "--run-id", "p1", code=40
    )["data"]
    assert data["run_id"] == "p1" and data["event"] == "approval"
    assert data["waiting_run_id"] != "p1", "the wait is the child's"
    assert data["resume_command"].startswith("stepstone resume p1 --event approval")
    # resuming the parent answers the child's wait and continues both to the end
    out, _ = agent(
        "resume", "p1", "--event", "approval", "--input", '{"ok": true}', "--app", MODULE
    )
    assert json.loads(out)["child"]["ok"] is True
    with Client(agent.db) as client:
        assert client.status("p1").value == "completed"
        assert client.status(data["waiting_run_id"]).value == "completed"


# --- resume: payload checked first, exactly once --------------------------------------------


def test_resuming_a_python_workflow_needs_its_app(agent: Agent) -> None:
    _run_waiting(agent, "py1")
    _, err = agent("resume", "py1", "--event", "approval", "--input", '{"ok": true}', code=2)
    assert "runs a Python workflow: give --app MODULE" in err
    with Client(agent.db) as client:
        assert client.status("py1").value == "waiting"
        assert client.describe("py1").signals == (), "nothing delivered"


def test_bad_payload_is_exit_4_and_changes_nothing(agent: Agent) -> None:
    _run_waiting(agent, "b1")
    _, err = agent(
        "resume", "b1", "--event", "approval", "--input", '{"ok": "yes"}', "--app", MODULE, code=4
    )
    assert "$.ok: expected boolean" in err
    _, err = agent(
        "resume", "b1", "--event", "nope", "--input", '{"ok": true}', "--app", MODULE, code=4
    )
    assert "it waits for event 'approval'" in err
    with Client(agent.db) as client:
        assert client.status("b1").value == "waiting"
        assert client.describe("b1").signals == (), "nothing stored"
    data = agent.json(
        "resume",
        "--run-id",
        "b1",
        "--event",
        "approval",
        "--input",
        "@ok.json",
        "--app",
        MODULE,
        code=4,
    )
    assert "no such file" in data["error"]["message"]


def _resume_concurrently(agent: Agent, tmp: Path, db: str) -> None:
    gate = tmp / "gate.fifo"
    os.mkfifo(gate)
    agent.db = db
    _run_waiting(agent, "c1", "--arg", f"gate={gate}")
    argv = [
        sys.executable,
        "-m",
        "stepstone",
        "resume",
        "c1",
        "--event",
        "approval",
        "--input",
        '{"ok": true}',
        "--app",
        MODULE,
        "--db",
        db,
    ]
    results: queue.Queue[tuple[int, str, str]] = queue.Queue()

    def one() -> None:
        proc = subprocess.run(
            argv,
            cwd=agent.cwd,
            env=agent.process_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S * 2,
        )
        results.put((proc.returncode, proc.stdout, proc.stderr))

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    # the winner holds the run in its `hold` step until the gate opens: the others all finish
    losers = [results.get(timeout=TIMEOUT_S * 2) for _ in range(11)]
    for code, _, err in losers:
        assert code == 70, err
        assert "already resumed" in err
    with open(gate, "w") as fifo:  # opens the gate: the winner continues to the end
        fifo.write("open")
    code, out, err = results.get(timeout=TIMEOUT_S * 2)
    for t in threads:
        t.join()
    assert code == 0, err
    assert json.loads(out) == {"prepared": "prepared ann", "ok": True, "gate": "open"}
    with Client(db) as client:
        desc = client.describe("c1")
        assert desc.run.state.value == "completed"
        assert len(desc.signals) == 1, "exactly one resume delivered"
        assert [(s.name, s.attempts) for s in desc.steps] == [
            ("prepare", 1),
            ("approval", 1),
            ("hold", 1),
        ], "the run continued once"
        claims = [e for e in client.events("c1", include_system=True) if e.kind == "claimed"]
        assert len(claims) == 1, (
            "claimed once after the wait: by the one resume (run creates it claimed)"
        )


def test_twelve_concurrent_resumes_continue_once_sqlite(agent: Agent, tmp_path: Path) -> None:
    _resume_concurrently(agent, tmp_path, agent.db)


@pytest.mark.postgres
def test_twelve_concurrent_resumes_continue_once_postgres(
    agent: Agent, tmp_path: Path, pg_url: str
) -> None:
    _resume_concurrently(agent, tmp_path, pg_url)


def test_already_resumed_is_exit_70_in_the_table() -> None:
    assert EXIT_CODES[AlreadyResumed] == 70 and 70 in MEANINGS and 40 in MEANINGS
    ordered = list(EXIT_CODES)
    from stepstone.errors import RunStateError

    assert ordered.index(AlreadyResumed) < ordered.index(RunStateError)


# --- status, inspect, logs, delete, --run-id ---------------------------------------------------


def test_status_exit_codes_are_the_runs(agent: Agent) -> None:
    _run_waiting(agent, "s1")
    out, _ = agent("status", "s1", code=40)
    assert "waiting for event 'approval'" in out
    assert (
        agent("run", "plain", "--app", MODULE, "--arg", "n=2", "--run-id", "s2")[0].strip() == "4"
    )
    agent("status", "--run-id", "s2", code=0)
    agent("run", "broken", "--app", MODULE, "--run-id", "s3", code=7)
    data = agent.json("status", "s3", code=7)
    assert data["ok"] is True and data["data"]["state"] == "failed"
    assert "RuntimeError: boom" in data["data"]["error"]
    agent("status", "nope", code=3)


def test_run_id_flag_wherever_a_run_is_named(agent: Agent) -> None:
    _run_waiting(agent, "a1")
    for command in ("show", "timeline", "inspect", "logs", "events"):
        expected = 40 if command == "inspect" else 0
        agent(command, "--run-id", "a1", code=expected)
    inspected = agent.json("inspect", "--run-id", "a1", code=40)["data"]
    assert inspected["signal_waits"][0]["event"] == "approval"
    assert "waiting" in [e["kind"] for e in inspected["events"]], "system events are included"
    assert next(s["name"] for s in inspected["steps"]) == "prepare"
    agent("inspect", "a1", "--run-id", "a2", code=2)  # two different runs
    agent("status", code=2)  # none
    agent("pause", "--run-id", "a1")
    agent("unpause", "--run-id", "a1")
    _, err = agent("signal", "--run-id", "a1", "approval", "--data", "[]", code=4)
    assert "signal 'approval' for run a1" in err, "--run-id names the run, NAME stays positional"
    out, _ = agent("cancel", "--run-id", "a1", "--reason", "no longer needed")
    assert "cancelled" in out
    agent("status", "a1", code=7)
    fork = agent.json("fork", "--run-id", "a1", "--from-seq", "1", "--new-run-id", "a9")
    assert fork["data"]["run_id"] == "a9"


def test_delete_only_finished_runs(agent: Agent) -> None:
    _run_waiting(agent, "d1")
    _, err = agent("delete", "d1", code=4)
    assert "it is waiting" in err
    agent("run", "plain", "--app", MODULE, "--arg", "n=1", "--run-id", "d2")
    agent("delete", "--run-id", "d2")
    agent("status", "d2", code=3)
    agent("status", "d1", code=40)
    agent("delete", "d2", code=3)


def test_logs_lists_steps_with_outcomes(agent: Agent) -> None:
    agent("run", "broken", "--app", MODULE, "--run-id", "l1", code=7)
    out, _ = agent("logs", "l1")
    assert "explode" in out and "boom" in out


# --- init, guide, flows ------------------------------------------------------------------------


def test_init_refuses_to_overwrite_without_force(agent: Agent) -> None:
    target = agent.cwd / "flow.yaml"
    agent("init", "--file", str(target))
    assert "schema_version: stepstone/v1" in target.read_text()
    target.write_text("mine")
    _, err = agent("init", "--file", str(target), code=4)
    assert "already exists" in err and target.read_text() == "mine"
    agent("init", "--file", str(target), "--force")
    assert "schema_version: stepstone/v1" in target.read_text()


def test_guide_prints_the_packaged_guide(agent: Agent) -> None:
    out, _ = agent("guide")
    assert out.startswith("# ")


def test_flows_without_folders_lists_nothing(agent: Agent) -> None:
    out, _ = agent("flows")
    assert out == ""
    agent("flows", "--detail", "nope", code=3)


# --- --format cpf ------------------------------------------------------------------------------


def test_cpf_envelopes_validate_against_checkpointflows_schema(agent: Agent) -> None:
    args = ("run", "approve", "--app", MODULE, "--arg", "name=ann", "--run-id", "k1")
    waiting = agent.cpf(*args, code=40)
    assert waiting["status"] == "waiting" and waiting["current_step_id"] == "review"
    wait = waiting["wait"]
    assert (wait["event_name"], wait["audience"], wait["risk_level"]) == (
        "approval",
        "agent",
        "high",
    )
    assert wait["resume"]["command"].startswith("stepstone resume --run-id k1 --event approval")
    assert agent.cpf("status", "--run-id", "k1", code=40)["status"] == "waiting"
    assert agent.cpf("inspect", "--run-id", "k1", code=40)["run_id"] == "k1"
    bad = agent.cpf(
        "resume",
        "--run-id",
        "k1",
        "--event",
        "approval",
        "--input",
        '{"ok": 1}',
        "--app",
        MODULE,
        code=10,
    )
    assert bad["ok"] is False and bad["error"]["code"] == "ERR_VALIDATION_EVENT_INPUT"
    done = agent.cpf(
        "resume",
        "--run-id",
        "k1",
        "--event",
        "approval",
        "--input",
        '{"ok": true}',
        "--app",
        MODULE,
        code=0,
    )
    assert done["status"] == "completed" and done["result"]["ok"] is True
    again = agent.cpf(
        "resume", "--run-id", "k1", "--event", "approval", "--input", "{}", "--app", MODULE, code=20
    )
    assert again["error"]["code"] == "ERR_RUN_NOT_WAITING"
    failed = agent.cpf("run", "broken", "--app", MODULE, "--run-id", "k2", code=30)
    assert failed["ok"] is False and failed["error"]["code"] == "ERR_STEP_FAILED"
    assert agent.cpf("status", "k2", code=30)["status"] == "failed"
    _run_waiting(agent, "k3")
    cancelled = agent.cpf("cancel", "--run-id", "k3", "--reason", "stop", code=0)
    assert cancelled["status"] == "cancelled"
    missing = agent.cpf("status", "--run-id", "nope", code=10)
    assert missing["error"]["code"] == "ERR_RUN_NOT_FOUND"
