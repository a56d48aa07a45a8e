"""Issue 8's sharp edges, each pinned by a test that failed before its fix.

Bad values at the CLI and the API are exit 4 / InvalidArgument naming the flag or JSON path,
and nothing is written to the store.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stepstone import Client, InvalidArgument, WorkflowContext, workflow
from stepstone.cli.main import main
from stepstone.core.model import NewRun, RunState
from stepstone.store import open_store
from stepstone.store.copy import copy_store

APP = textwrap.dedent(
    """
    from stepstone import WorkflowContext, step, workflow

    @step
    async def echo(x: object) -> object:
        return x

    @workflow
    async def wf(ctx: WorkflowContext, x: object = None, count: int = 0) -> object:
        return await echo(x)
    """
)


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "edges_app.py").write_text(APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def cli(app_dir: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    db = f"sqlite:///{app_dir / 't.db'}"
    code = main([*argv, "--db", db, "--json"], env={"HOME": str(app_dir)})
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else None


def stored_runs(app_dir: Path) -> int:
    with Client(f"sqlite:///{app_dir / 't.db'}") as client:
        return len(client.list())


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--input", '["\\ud800"]'], "$[0]"),
        (["--input", '{"x": {"k": "\\udfff"}}'], "$.x.k"),
        (["--arg", 'x="\\ud800"'], "--arg x"),
        (["--priority", "1e23"], "--priority"),
        (["--priority", "2147483648"], "--priority"),
        (["--delay-s", "1e300"], "--delay-s"),
        (["--delay-s", "nan"], "--delay-s"),
        (["--arg", "cuont=3"], "did you mean 'count'"),
    ],
)
def test_bad_start_values_are_exit_4_naming_the_flag_and_store_nothing(
    app_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    assert cli(app_dir, capsys, "migrate")[0] == 0
    code, envelope = cli(app_dir, capsys, "start", "wf", "--app", "edges_app", *args)
    assert code == 4, envelope
    assert named in envelope["error"]["message"]
    assert stored_runs(app_dir) == 0


def test_deep_json_input_is_exit_4(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (app_dir / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    assert cli(app_dir, capsys, "migrate")[0] == 0
    code, envelope = cli(app_dir, capsys, "start", "wf", "--app", "edges_app", "--input", "@deep")
    assert code == 4  # no such file: named
    code, envelope = cli(
        app_dir, capsys, "start", "wf", "--app", "edges_app", "--input", "@deep.json"
    )
    assert code == 4 and "nested too deeply" in envelope["error"]["message"]
    assert stored_runs(app_dir) == 0


def test_fork_from_seq_out_of_range(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(app_dir, capsys, "migrate")[0] == 0
    code, _ = cli(app_dir, capsys, "run", "wf", "--app", "edges_app", "--run-id", "r1")
    assert code == 0
    code, envelope = cli(app_dir, capsys, "fork", "r1", "--from-seq", "1e23")
    assert code == 4 and "--from-seq" in envelope["error"]["message"]
    code, envelope = cli(app_dir, capsys, "fork", "r1", "--from-seq", "5")
    assert code == 4 and "past its recorded steps" in envelope["error"]["message"]
    code, envelope = cli(app_dir, capsys, "fork", "r1", "--from-seq", "1")
    assert code == 0
    assert stored_runs(app_dir) == 2


@workflow
async def plain(ctx: WorkflowContext, n: int = 0) -> int:
    return n


async def test_priority_range_is_checked_at_the_api(store_url: str) -> None:
    store = open_store(store_url)
    await store.migrate()
    from stepstone import AsyncClient

    async with AsyncClient(store, workflows=[plain]) as client:
        for bad in (2**31, -(2**31) - 1, 10**23):
            with pytest.raises(InvalidArgument, match="priority"):
                await client.start(plain, priority=bad)
        for bad_s in (1e300, float("nan"), -1.0):
            with pytest.raises(InvalidArgument, match="delay_s"):
                await client.start(plain, delay_s=bad_s)
        await client.start(plain, priority=2**31 - 1)
    await store.close()


async def test_db_copy_names_the_run_it_cannot_copy(tmp_path: Path, pg_url: str) -> None:
    from datetime import UTC, datetime

    source = open_store(f"sqlite:///{tmp_path / 'src.db'}")
    await source.migrate()
    now = datetime.now(UTC)
    for run_id, priority in (("ok-1", 1), ("huge", 2**40), ("ok-2", 2)):
        await source.create_run(
            NewRun(run_id, "wf", "v1", '{"args":[],"kwargs":{}}', "default", priority), now=now
        )
    target = open_store(pg_url)
    report = await copy_store(source, target, now=now)
    assert report.runs_added == 2
    assert [r for r, _ in report.refused] == ["huge"]
    assert "priority" in report.refused[0][1]
    assert (await target.get_run("ok-2")) is not None
    assert (await target.get_run("huge")) is None
    assert (await source.get_run("huge")).state is RunState.PENDING  # type: ignore[union-attr]
    await source.close()
    await target.close()


def test_workflow_without_a_context_parameter_fails_at_decoration() -> None:
    with pytest.raises(InvalidArgument, match="first parameter 'order: int' must be the context"):

        @workflow
        async def missing(order: int) -> int:
            return order

    with pytest.raises(InvalidArgument, match="must take the context"):

        @workflow
        async def none() -> int:
            return 1


def test_a_named_sqlite_file_creates_and_migrates_itself_for_clients_and_workers(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    with Client(url, workflows=[plain]) as client:
        assert client.run(plain, 3) == 3
    from stepstone import Worker

    worker_url = f"sqlite:///{tmp_path / 'worker.db'}"
    worker = Worker(worker_url, workflows=[plain])
    import asyncio

    async def serve_once() -> None:
        task = asyncio.create_task(worker.serve())
        await asyncio.to_thread(worker.ready.wait, 30)
        worker.stop()
        await task

    asyncio.run(serve_once())
    with Client(worker_url, auto_migrate=False) as client:
        assert client.list() == []  # migrated by the worker: no SchemaError


def test_read_only_commands_refuse_to_create_a_named_file(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, envelope = cli(app_dir, capsys, "runs")
    assert code == 6 and "stepstone migrate" in envelope["error"]["message"]
    assert not (app_dir / "t.db").exists()
    code, _ = cli(app_dir, capsys, "start", "wf", "--app", "edges_app")
    assert code == 0 and stored_runs(app_dir) == 1


@pytest.mark.postgres
def test_a_sync_client_on_postgres_left_open_exits_cleanly(tmp_path: Path, pg_url: str) -> None:
    import subprocess
    import sys

    script = tmp_path / "left_open.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from stepstone import Client, WorkflowContext, workflow

            @workflow
            async def hello(ctx: WorkflowContext) -> int:
                return 1

            client = Client({pg_url!r}, workflows=[hello])
            handle = client.start(hello)
            print(client.status(handle.run_id).value)
            # no client.close(): the interpreter exits with the pool and listener open
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "pending"
    assert "Task was destroyed" not in done.stderr and "pending!" not in done.stderr


@workflow
async def slow_child(ctx: WorkflowContext, n: int) -> int:
    await ctx.step("nap", _nap, 0.6)
    return n * 10


async def _nap(seconds: float) -> float:
    import asyncio

    await asyncio.sleep(seconds)
    return seconds


@workflow
async def overlapping_parent(ctx: WorkflowContext) -> int:
    handle = await ctx.start_child(slow_child, 4)
    await ctx.step("own-nap", _nap, 0.6)
    return int(await handle.result()) + 1


async def test_start_child_overlaps_the_parents_next_step_under_client_run(store_url: str) -> None:
    import time

    from stepstone import AsyncClient

    async with AsyncClient(store_url, workflows=[overlapping_parent, slow_child]) as client:
        began = time.monotonic()
        assert await client.run(overlapping_parent, run_id="p") == 41
        took = time.monotonic() - began
    assert took < 1.1, f"child and parent steps ran one after the other ({took:.2f}s)"


@workflow
async def fire_and_forget(ctx: WorkflowContext) -> str:
    handle = await ctx.start_child(slow_child, 1)
    return handle.run_id


async def test_children_left_running_by_client_run_are_handed_back(store_url: str) -> None:
    from stepstone import AsyncClient

    async with AsyncClient(store_url, workflows=[fire_and_forget, slow_child]) as client:
        child_id = await client.run(fire_and_forget, run_id="ff")
        child = await client.get(child_id)
        assert child.state in (RunState.PENDING, RunState.COMPLETED), child.state
        assert child.lease_owner is None or child.is_finished  # not left leased to this client
        assert child.recoveries == 0
        assert await client.run(slow_child, run_id=child_id) == 10  # continues where it was


@workflow
async def bad_values(ctx: WorkflowContext, kind: str) -> object:
    if kind == "result":
        return {"text": "ok\ud800"}
    if kind == "step":
        return await ctx.step("make", _surrogate_list)
    if kind == "state":
        ctx.state["note"] = "x\udfff"
        return None
    if kind == "emit":
        ctx.emit("progress", {"msg": "\ud800"})
        return None
    if kind == "deep":
        value: list[object] = []
        for _ in range(5_000):
            value = [value]
        return value
    if kind == "unawaited":
        return {"call": ctx.step("make", _surrogate_list)}
    return None


def _surrogate_list() -> dict[str, list[str]]:
    return {"a": ["fine", "bad\ud800"]}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "result",
            "value at $.text of type str cannot be encoded as JSON (it holds a lone surrogate",
        ),
        ("step", "value at $.a[1] of type str"),
        ("state", "ctx.state['note']: value at $ of type str"),
        ("emit", "value at $.msg of type str"),
        ("deep", "nested too deeply"),
        ("unawaited", "did you forget `await`?"),
    ],
)
async def test_values_no_store_can_hold_fail_the_run_with_their_path(
    store_url: str, kind: str, expected: str
) -> None:
    from stepstone import AsyncClient, RunFailed

    async with AsyncClient(store_url, workflows=[bad_values]) as client:
        with pytest.raises(RunFailed) as failed:
            await client.run(bad_values, kind, run_id=f"bad-{kind}")
        assert failed.value.error_type == "EncodeError", failed.value
        assert expected in failed.value.message
        run = await client.get(f"bad-{kind}")
        assert run.state is RunState.FAILED and run.lease_owner is None


@workflow
async def waits_for_go(ctx: WorkflowContext) -> str:
    return str(await ctx.wait_for_signal("go"))


@workflow
async def leaves_a_waiting_child(ctx: WorkflowContext) -> str:
    handle = await ctx.start_child(waits_for_go)
    return handle.run_id


async def test_client_run_does_not_wait_for_a_parked_child_it_leaves_behind(
    store_url: str,
) -> None:
    import time

    from stepstone import AsyncClient

    async with AsyncClient(store_url, workflows=[leaves_a_waiting_child, waits_for_go]) as client:
        began = time.monotonic()
        child_id = await client.run(leaves_a_waiting_child, run_id="lw")
        assert time.monotonic() - began < 3.0  # not the 10 s grace period
        child = await client.get(child_id)
        # handed back before or parked at its wait: never left leased to this client
        assert child.state in (RunState.PENDING, RunState.WAITING), child.state
        assert child.lease_owner is None and child.recoveries == 0
        await client.signal(child_id, "go", "now", buffer=True)
        assert await client.run(waits_for_go, run_id=child_id) == "now"
