"""The `stepstone` command, end to end: real processes, real SQLite files in tmp_path, no mocks.

Each test writes a small app module into tmp_path and runs `python -m stepstone ...` there. Waits
are on output lines (a worker's "ready" line) or on run state polled with a deadline, never on
fixed sleeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepstone import Client
from stepstone.cli import main as cli_main

APP = textwrap.dedent(
    '''
    """Workflows the CLI tests drive."""
    import os
    from dataclasses import dataclass

    from stepstone import WorkflowContext, step, workflow


    @dataclass
    class Approval:
        approved: bool
        by: str


    @step
    async def prepare(name: str) -> str:
        with open("prepare.log", "a") as log:
            log.write(name + "\\n")
        return f"prepared {name}"


    @workflow
    async def approve(ctx: WorkflowContext, name: str) -> dict:
        prepared = await prepare(name)
        ctx.state["prepared"] = prepared
        decision = await ctx.wait_for_signal("approval", schema=Approval)
        ctx.emit("decided", {"approved": decision.approved})
        return {"prepared": prepared, "approved": decision.approved, "by": decision.by}


    @step
    async def fragile(n: int) -> int:
        if not os.path.exists("fixed"):
            raise RuntimeError("not fixed yet")
        return n + 1


    @workflow
    async def flaky(ctx: WorkflowContext, n: int) -> int:
        await prepare(str(n))
        return await fragile(n)


    @step
    async def double(n: int) -> int:
        return n * 2


    @step
    async def add_one(n: int) -> int:
        return n + 1


    @workflow
    async def pipeline(ctx: WorkflowContext, n: int) -> int:
        doubled = await double(n)
        ctx.emit("progress", {"doubled": doubled})
        return await add_one(doubled)
    '''
)

PROCESS_TIMEOUT_S = 60
READY_TIMEOUT_S = 30


class Cli:
    """Runs `python -m stepstone` in ``cwd`` against the SQLite file ``db``."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.db_path = cwd / "t.db"
        self.db = f"sqlite:///{self.db_path}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEPSTONE_")}
        # HOME in tmp_path: the default store (~/.stepstone) never touches the real home.
        # No bytecode cache: a test edits app.py and must see the edit at once.
        env.update(HOME=str(cwd), PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1")
        self.env = env

    def argv(self, *args: str, db: bool = True) -> list[str]:
        return [sys.executable, "-m", "stepstone", *args, *(["--db", self.db] if db else [])]

    def __call__(
        self, *args: str, code: int = 0, db: bool = True, prefix: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*prefix, *self.argv(*args, db=db)],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT_S,
        )
        assert proc.returncode == code, (
            f"`stepstone {' '.join(args)}` exited {proc.returncode}, expected {code}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
        return proc

    def json(self, *args: str, code: int = 0, ok: bool | None = None, **kw: Any) -> dict[str, Any]:
        """The one JSON envelope the command prints with --json (``ok``: expected, when it is
        not simply ``code == 0``: a run handed back waiting is ok with exit 40)."""
        proc = self(*args, "--json", code=code, **kw)
        envelope: dict[str, Any] = json.loads(proc.stdout)
        assert envelope["ok"] is (code == 0 if ok is None else ok)
        if code and not envelope["ok"]:
            assert envelope["error"]["exit_code"] == code
        return envelope

    def value(self, *args: str) -> Any:
        """The command's human stdout parsed as JSON (results are printed as JSON)."""
        return json.loads(self(*args).stdout)

    def data(self, *args: str, **kw: Any) -> Any:
        return self.json(*args, **kw)["data"]

    def wait_state(self, run_id: str, *states: str, timeout_s: float = 30) -> None:
        """Poll the store (with a deadline) until the run is in one of ``states``."""
        deadline = time.monotonic() + timeout_s
        with Client(self.db) as client:
            while True:
                state = client.status(run_id).value
                if state in states:
                    return
                assert time.monotonic() < deadline, f"run {run_id} still {state}, not {states}"
                time.sleep(0.05)

    @contextlib.contextmanager
    def worker(
        self, *extra: str, workflows: str = "approve, flaky, pipeline"
    ) -> Iterator[subprocess.Popen[str]]:
        """A worker process, yielded once it printed its ready line; SIGTERM must stop it with 0."""
        args = ("worker", "--app", "app", "--poll-s", "0.1", "--grace-s", "5", *extra)
        proc = subprocess.Popen(
            self.argv(*args),
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + READY_TIMEOUT_S
        try:
            while True:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
                assert line is not None, f"worker exited before it was ready: {''.join(seen)}"
                seen.append(line)
                if " ready: " in line:
                    assert line.startswith("worker ")
                    assert f"workflows [{workflows}" in line
                    break
        except queue.Empty:
            proc.kill()
            pytest.fail(f"worker not ready within {READY_TIMEOUT_S}s: {''.join(seen)}")
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=PROCESS_TIMEOUT_S)
            finally:
                if proc.poll() is None:
                    proc.kill()
            assert proc.returncode == 0, f"worker exited {proc.returncode}"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    (tmp_path / "app.py").write_text(APP)
    return Cli(tmp_path)


@pytest.fixture
def migrated(cli: Cli) -> Cli:
    cli("migrate")
    return cli


def _stderr_line(proc: subprocess.CompletedProcess[str]) -> str:
    """Errors are one line on stderr, prefixed `stepstone: `, without a traceback (commands
    that wait for a run first note its id, on a line of its own)."""
    lines = [
        line
        for line in proc.stderr.strip().splitlines()
        if not line.endswith(
            (
                "waiting for its result (Ctrl-C stops waiting; the run goes on)",
                "running here (Ctrl-C stops it; it can go on later)",
            )
        )
    ]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("stepstone: ")
    assert "Traceback" not in proc.stderr
    return lines[0]


# --- help, usage, schema and store problems ----------------------------------------------------


def test_help_lists_exit_codes_and_env_vars(cli: Cli) -> None:
    out = cli("--help", db=False).stdout
    for code in sorted(set(cli_main.EXIT_CODES.values()) | {0, 1}):
        assert f"\n  {code:<4} " in out, f"exit code {code} missing from --help"
        assert f"\n    {code:<4} " in (cli_main.__doc__ or ""), f"exit code {code} not in docstring"
    assert "stepstone migrate" in out
    assert "STEPSTONE_DB" in out
    start_help = cli("start", "--help", db=False).stdout
    assert "STEPSTONE_DB" in start_help
    assert "STEPSTONE_APP" in start_help


def test_exit_code_table_puts_subclasses_first() -> None:
    classes = list(cli_main.EXIT_CODES)
    for i, cls in enumerate(classes):
        for later in classes[i + 1 :]:
            assert not issubclass(later, cls), f"{later.__name__} is shadowed by {cls.__name__}"


def test_usage_errors_exit_2(cli: Cli) -> None:
    proc = cli("frobnicate", code=2)
    assert "frobnicate" in _stderr_line(proc)
    envelope = cli.json("runs", "--bogus-flag", code=2)
    assert envelope["error"]["type"] == "UsageError"
    assert "--bogus-flag" in envelope["error"]["message"]
    # a flag's value out of range is invalid input (exit 4), naming the flag
    envelope = cli.json("runs", "--limit", "0", code=4)
    assert envelope["error"]["type"] == "InvalidArgument"
    assert "--limit" in envelope["error"]["message"]
    # --app is required by start (and STEPSTONE_APP can stand in for it)
    assert "--app" in _stderr_line(cli("start", "approve", code=2))


def test_unmigrated_db_exit_6_then_migrate(cli: Cli) -> None:
    proc = cli("runs", code=6)
    assert "stepstone migrate" in _stderr_line(proc)
    envelope = cli.json("runs", code=6)
    assert envelope["error"]["type"] == "SchemaError"
    assert "stepstone migrate" in envelope["error"]["message"]

    first = cli("migrate").stdout
    assert "applied" in first or "migrated" in first
    assert "up to date" in cli("migrate").stdout
    assert cli.data("migrate")["applied"] == []
    assert cli("runs").stdout.strip() == "no runs"
    assert cli.json("runs") == {"ok": True, "schema_version": 1, "data": []}


def test_default_and_env_store(cli: Cli) -> None:
    # no --db and no STEPSTONE_DB: the embedded ~/.stepstone/stepstone.db migrates itself
    assert cli.json("runs", db=False) == {"ok": True, "schema_version": 1, "data": []}
    assert (cli.cwd / ".stepstone" / "stepstone.db").exists()
    # STEPSTONE_DB names the store when --db is absent
    cli("migrate")
    cli("run", "pipeline", "--app", "app", "--arg", "n=1", "--run-id", "p-env")
    cli.env["STEPSTONE_DB"] = cli.db
    assert [r["run_id"] for r in cli.data("runs", db=False)] == ["p-env"]


def test_corrupt_db_exit_5(cli: Cli) -> None:
    cli.db_path.write_bytes(b"this is not a database\x00" * 200)
    envelope = cli.json("runs", code=5)
    assert envelope["error"]["type"] == "StoreCorrupt"
    assert str(cli.db_path) in _stderr_line(cli("runs", code=5))


def _read_only_prefix(folder: Path) -> tuple[str, ...] | None:
    """A command prefix under which ``folder`` is a read-only mount, or None if unavailable.

    chmod does not stop root, so instead the command runs in a private mount namespace
    (`unshare -rm`: nothing leaks to the host) where ``folder`` is bind-mounted read-only; the
    kernel then refuses writes with EROFS whoever runs it.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    prefix = (unshare, "-rm", "sh", "-c", script, str(folder))
    probe = folder / "probe"
    works = subprocess.run([*prefix, "true"], capture_output=True, timeout=30).returncode == 0
    refused = subprocess.run([*prefix, "touch", str(probe)], capture_output=True, timeout=30)
    if not works or refused.returncode == 0 or probe.exists():
        probe.unlink(missing_ok=True)
        return None
    return prefix


def test_read_only_db_exit_5(migrated: Cli) -> None:
    cli = migrated
    cli("run", "pipeline", "--app", "app", "--arg", "n=1", "--run-id", "p1")
    prefix = _read_only_prefix(cli.cwd)
    restore: list[tuple[Path, int]] = []
    if prefix is None:
        if os.geteuid() == 0:
            pytest.skip("running as root without mount namespaces: no way to make a file read-only")
        # not root: plain permissions work (the folder too, or SQLite could create -wal/-shm)
        for path in [*cli.cwd.glob("t.db*"), cli.cwd]:
            restore.append((path, path.stat().st_mode))
            path.chmod(0o555 if path.is_dir() else 0o444)
        prefix = ()
    try:
        proc = cli("start", "pipeline", "--app", "app", "--arg", "n=2", code=5, prefix=prefix)
        line = _stderr_line(proc)
        assert "cannot be written" in line or "read-only" in line.lower() or "readonly" in line
        envelope = cli.json("cancel", "p1", code=5, prefix=prefix)
        assert envelope["error"]["type"] == "StoreReadOnly"
    finally:
        for path, mode in restore:
            path.chmod(mode)
    assert [r["run_id"] for r in cli.data("runs")] == ["p1"]  # nothing was written


# --- not found and invalid input ---------------------------------------------------------------


def test_not_found_exit_3(migrated: Cli) -> None:
    cli = migrated
    proc = cli("start", "nope", "--app", "app", code=3)
    assert "unknown workflow 'nope'" in _stderr_line(proc)
    assert "approve" in proc.stderr  # the known workflows are listed
    assert "no_such_module" in _stderr_line(cli("start", "x", "--app", "no_such_module", code=3))
    for args in (("show", "r-missing"), ("cancel", "r-missing"), ("result", "r-missing")):
        assert "r-missing" in _stderr_line(cli(*args, code=3))
    envelope = cli.json("signal", "r-missing", "approval", code=3)
    assert envelope["error"]["type"] == "RunNotFound"
    assert envelope["error"]["run_id"] == "r-missing"


def test_invalid_input_exit_4_and_nothing_stored(migrated: Cli) -> None:
    cli = migrated
    line = _stderr_line(cli("start", "pipeline", "--app", "app", "--input", '{"n": 1', code=4))
    assert "--input" in line
    assert "line 1 column 8" in line
    line = _stderr_line(cli("start", "pipeline", "--app", "app", "--input", "@nope.json", code=4))
    assert "nope.json" in line
    (cli.cwd / "bad.json").write_text('{\n  "n": 1,\n}\n')
    line = _stderr_line(cli("start", "pipeline", "--app", "app", "--input", "@bad.json", code=4))
    assert "bad.json" in line
    assert "line 3 column 1" in line
    # wrong type for the parameter: refused before anything is stored
    cli("start", "pipeline", "--app", "app", "--arg", "n=abc", code=4)
    cli("start", "pipeline", "--app", "app", "--input", "[1, 2]", code=4)
    assert cli.data("runs") == []


# --- runs in-process: run, retry, fork, events, timeline ----------------------------------------


def test_run_fork_with_patch_events_and_timeline(migrated: Cli) -> None:
    cli = migrated
    assert cli.value("run", "pipeline", "--app", "app", "--arg", "n=3", "--run-id", "p1") == 7
    data = cli.data("run", "pipeline", "--app", "app", "--input", "[5]")
    assert data["state"] == "completed"
    assert data["result"] == 11

    forked = cli("fork", "p1", "--from-seq", "1", "--patch", "0=20", "--new-run-id", "p2").stdout
    assert forked.strip() == "p2"
    bad = cli("fork", "p1", "--from-seq", "1", "--patch", "0={oops", code=4)
    assert "--patch 0" in _stderr_line(bad)
    assert cli.value("run", "pipeline", "--app", "app", "--run-id", "p2") == 21
    shown = cli.data("show", "p2")
    assert shown["forked_from"] == "p1"
    assert shown["steps"][0]["output"] == 20
    assert [s["name"] for s in shown["steps"] if s["kind"] == "step"] == ["double", "add_one"]

    events = cli("events", "p1").stdout
    assert "progress" in events
    assert '"doubled":6' in events.replace(" ", "")
    lines = cli("events", "p1", "--follow", "--json").stdout.strip().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["progress"]
    timeline = cli("timeline", "p1").stdout
    assert "double" in timeline
    assert "completed" in timeline
    human = cli("show", "p1").stdout
    assert "completed" in human
    assert "add_one" in human


def test_failed_run_exit_7_then_retry_keeps_completed_steps(migrated: Cli) -> None:
    cli = migrated
    proc = cli("run", "flaky", "--app", "app", "--arg", "n=4", "--run-id", "f1", code=7)
    assert "RuntimeError: not fixed yet" in _stderr_line(proc)
    envelope = cli.json("result", "f1", code=7)
    assert envelope["error"]["type"] == "RunFailed"
    assert envelope["error"]["state"] == "failed"
    assert "not fixed yet" in envelope["error"]["traceback"]
    assert "not fixed yet" in cli("runs", "--state", "failed").stdout
    shown = cli("show", "f1").stdout
    assert "Traceback" in shown  # show prints the run's recorded traceback
    assert "\x1b[" not in shown + cli("runs").stdout  # no colour codes when not a terminal

    (cli.cwd / "fixed").touch()
    assert cli.data("retry", "f1")["state"] == "pending"
    assert cli.value("run", "flaky", "--app", "app", "--run-id", "f1") == 5
    assert (cli.cwd / "prepare.log").read_text().split() == ["4"]  # not executed again
    assert "retry" in _stderr_line(cli("retry", "f1", code=4))  # completed: nothing to retry


def test_pause_unpause_cancel(migrated: Cli) -> None:
    cli = migrated
    run_id = cli("start", "approve", "--app", "app", "--arg", "name=ann").stdout.strip()
    assert cli.data("show", run_id)["state"] == "pending"
    assert cli.data("pause", run_id)["state"] == "paused"
    assert [r["run_id"] for r in cli.data("runs", "--state", "paused")] == [run_id]
    assert cli.data("unpause", run_id)["state"] == "pending"
    assert "unpause" in _stderr_line(cli("unpause", run_id, code=4))
    assert cli.data("cancel", run_id, "--reason", "not needed")["state"] == "cancelled"
    envelope = cli.json("result", run_id, code=7)
    assert envelope["error"]["state"] == "cancelled"
    cli("cancel", run_id, code=4)


def test_global_options_before_or_after_the_command(migrated: Cli) -> None:
    cli = migrated
    before = subprocess.run(
        [sys.executable, "-m", "stepstone", "--json", "--db", cli.db, "runs"],
        cwd=cli.cwd,
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_S,
    )
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout) == {"ok": True, "schema_version": 1, "data": []}
    assert cli.json("runs") == {"ok": True, "schema_version": 1, "data": []}


# --- with a worker process ---------------------------------------------------------------------


@pytest.mark.slow
def test_worker_signal_result_and_check(migrated: Cli) -> None:
    cli = migrated
    run_id = cli("start", "approve", "--app", "app", "--arg", "name=bob", "--run-id", "a1").stdout
    assert run_id.strip() == "a1"
    pending = cli.data("start", "pipeline", "--app", "app", "--arg", "n=2")
    assert pending["state"] == "pending"

    with cli.worker("--worker-id", "w-test"):
        cli.wait_state("a1", "waiting")
        assert cli.data("result", pending["run_id"], "--timeout-s", "30")["result"] == 5
        # still waiting for the signal: exit 40 with what it waits for
        envelope = cli.json("result", "a1", "--timeout-s", "0.2", code=40)
        assert envelope["error"]["type"] == "StillWaiting"
        assert envelope["error"]["run_id"] == "a1"
        assert "approval" in envelope["error"]["message"]

        # a malformed payload is refused and the run is not touched
        envelope = cli.json("signal", "a1", "approval", "--data", '{"approved": "yes"}', code=4)
        assert envelope["error"]["type"] == "SignalPayloadError"
        line = _stderr_line(cli("signal", "a1", "approval", "--data", '{"approved": tru}', code=4))
        assert "--data" in line
        assert "line 1 column" in line
        shown = cli.data("show", "a1")
        assert shown["state"] == "waiting"
        assert shown["waiting_for"] == ["signal 'approval'"]
        [wait] = shown["waits"]  # structured, for scripts and agents
        assert (wait["kind"], wait["name"], wait["until"]) == ("signal", "approval", None)
        assert wait["schema"]["properties"]["approved"]["type"] == "boolean"
        assert wait["resume_command"] == f"stepstone signal a1 approval --data JSON --db {cli.db}"
        human = cli("show", "a1").stdout
        assert "schema: {" in human and f"answer: {wait['resume_command']}" in human
        [refused] = shown["signals"]  # on record as rejected by the wait, never taken
        assert (refused["rejected"], refused["consumed_seq"]) == (True, wait["seq"])
        assert "missing required property 'by'" in refused["problem"]
        assert shown["pending_signals"] == []
        assert shown["rejected_signals"] == [refused["signal_id"]]
        assert shown["state_data"] == {"prepared": "prepared bob"}
        assert "signal 'approval'" in cli("runs").stdout

        follow = subprocess.Popen(
            cli.argv("events", "a1", "--follow", "--json"),
            cwd=cli.cwd,
            env=cli.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        (cli.cwd / "ok.json").write_text('{"approved": true, "by": "ann"}')
        cli("signal", "a1", "approval", "--data", "@ok.json")
        result = cli.data("result", "a1", "--timeout-s", "30")
        assert result["result"] == {"prepared": "prepared bob", "approved": True, "by": "ann"}
        out, err = follow.communicate(timeout=PROCESS_TIMEOUT_S)
        assert follow.returncode == 0, err
        assert [json.loads(line)["kind"] for line in out.splitlines()] == ["decided"]

        # start --wait: the worker executes it, the command prints the result
        assert cli.value("start", "pipeline", "--app", "app", "--input", "[4]", "--wait") == 9

        # check: a run waiting under the current code can continue
        cli("start", "approve", "--app", "app", "--arg", "name=cy", "--run-id", "a2")
        cli.wait_state("a2", "waiting")
    assert "prepared cy" in cli("show", "a2").stdout
    checked = cli.data("check", "--app", "app")
    assert [(c["run_id"], c["ok"]) for c in checked] == [("a2", True)]

    # the code changes so that it no longer matches a2's recorded steps: exit 8
    app = cli.cwd / "app.py"
    edited = app.read_text().replace("prepared = await prepare(name)", "prepared = await double(2)")
    app.write_text(edited)
    envelope = cli.json("check", "--app", "app", code=8)
    assert envelope["error"]["type"] == "ChecksFailed"
    [problem] = envelope["data"]
    assert problem["run_id"] == "a2"
    assert problem["ok"] is False
    assert "prepare" in problem["problem"]
    human = cli("check", "--app", "app", code=8)
    assert "a2" in human.stdout
    assert "cannot continue" in _stderr_line(human)


def test_start_wait_returns_at_the_signal_wait_with_the_resume_command(migrated: Cli) -> None:
    with migrated.worker():
        args = ("start", "approve", "--app", "app", "--arg", "name=zed", "--run-id", "sw1")
        envelope = migrated.json(*args, "--wait", code=40, ok=True)
        data = envelope["data"]
        assert data["status"] == "waiting"
        assert (data["run_id"], data["event"]) == ("sw1", "approval")
        assert data["resume_command"].startswith("stepstone resume sw1 --event approval")
        migrated("signal", "sw1", "approval", "--data", '{"approved": true, "by": "zed"}')
        done = migrated.data(*args, "--wait")  # the same run id: that run, now to its end
        assert done["result"] == {"prepared": "prepared zed", "approved": True, "by": "zed"}


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "-f", "flow.yaml", "--input", "{}"],
        ["--db", "x.db", "--json", "start", "tests.apps.demo:hello", "--app", "m", "--arg", "a=1"],
        ["worker", "--app", "m", "--queue", "a", "--queue", "b", "--concurrency", "3"],
        ["resume", "--run-id", "r1", "--event", "go", "--input", "{}"],
        ["dlq", "retry", "r1"],
        ["db", "copy", "x.db", "y.db"],
    ],
)
def test_the_one_command_parser_parses_as_the_full_one(argv: list[str]) -> None:
    """``stepstone X`` builds only X's parser (startup time); it must read every command line
    exactly as the parser of all commands does."""
    epilog = cli_main.exit_codes_epilog()
    command = next(a for a in argv if a in cli_main._COMMANDS)
    alone = cli_main.build_parser(epilog, only=command).parse_args(argv)
    assert alone == cli_main.build_parser(epilog).parse_args(argv)


def test_an_option_value_that_spells_a_command_is_not_taken_for_it(cli: Cli) -> None:
    """``--db run runs``: the one-command guess (``run``) fails to parse, so the full parser
    reads the line: ``migrate`` creates, and ``runs`` lists, the store file named ``run``."""
    cli("--db", "run", "migrate", db=False)
    envelope = cli.json("--db", "run", "runs", db=False)
    assert envelope["data"] == []
    assert (cli.cwd / "run").exists()


def test_main_called_in_process_leaves_the_garbage_collector_alone(tmp_path: Path) -> None:
    """Only the ``stepstone`` process itself (main() without argv) freezes its startup heap."""
    import gc

    frozen = gc.get_freeze_count()
    assert cli_main.main(["migrate", "--db", str(tmp_path / "t.db")], env={}) == 0
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_the_stepstone_process_freezes_its_startup_heap(tmp_path: Path) -> None:
    code = (
        "import gc, sys\n"
        "from stepstone.cli.main import main\n"
        f"sys.argv = ['stepstone', 'migrate', '--db', {str(tmp_path / 't.db')!r}]\n"
        "assert main() == 0\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 10000)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split()[-2:] == ["True", "True"], done.stdout + done.stderr
