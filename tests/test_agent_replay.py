"""`stepstone replay` (the journal is the cassette: nothing executes, nothing is written) and
`stepstone inject`, `pause`, `cancel --reason` on a live ctx.agent loop."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from stepstone import AsyncClient, Client, RunFailed, WorkflowContext, workflow
from stepstone.cli.app import load_app
from stepstone.cli.main import main
from stepstone.core.llm import Models, ToolCall
from stepstone.core.model import RunState
from stepstone.core.port import Store
from stepstone.models import ScriptedProvider, ScriptedReply
from tests.test_waits import wait_for_state

APP = '''
from stepstone import WorkflowContext, workflow


def lookup(topic: str) -> str:
    """Look a topic up."""
    return {found!r} + topic


@workflow(name="researcher")
async def researcher(ctx: WorkflowContext, topic: str) -> str:
    {extra}
    done = await ctx.agent(f"research {{topic}}", tools=[lookup])
    return done.text
'''


def _app(tmp_path: Path, name: str, *, found: str = "found ", extra: str = "pass") -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(APP.format(found=found, extra=extra))
    return str(path)


def _replies() -> list[ScriptedReply]:
    lookups = tuple(ToolCall(f"c{i}", "lookup", {"topic": t}) for i, t in enumerate("xy"))
    return [ScriptedReply(tool_calls=lookups), ScriptedReply(text="all found")]


def _replay(db: str, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = main(["replay", "r1", "--db", db, "--json", *args], env={"HOME": "/nonexistent"})
    return code, json.loads(capsys.readouterr().out)


def _snapshot(db: str) -> Any:
    with Client(db) as client:
        desc = client.describe("r1")
        return [(s.seq, s.status, s.output_json, s.finished_at) for s in desc.steps], desc.run


def test_replay_matches_or_names_the_first_divergence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'replay.db'}"
    v1 = _app(tmp_path, "v1")
    models = Models([ScriptedProvider(_replies())], default_model="m")
    with Client(db, workflows=load_app(v1), models=models) as client:
        client._portal.call(client.store.migrate)
        assert client.run("researcher", "durability", run_id="r1") == "all found"
    before = _snapshot(db)
    # the same code: it matches (no model configured: replies come from the journal)
    code, out = _replay(db, "--app", v1, capsys=capsys)
    assert code == 0 and out["data"]["ok"] is True and out["data"]["replayed"] == 6
    # a new step before the loop: the first divergence is seq 0
    v2 = _app(tmp_path, "v2", extra='await ctx.step("prepare", lambda: 1)')
    code, out = _replay(db, "--app", v2, capsys=capsys)
    assert code == 11
    assert out["data"]["divergence"] == {
        "seq": 0,
        "step": "stepstone.inject",
        "expected": "ctx.signal('stepstone.inject')",
        "got": "prepare",
    }
    assert "diverges from its journal at step 'stepstone.inject' #0" in out["error"]["message"]
    # a tool that now answers otherwise: replay alone trusts the journal, --from-seq runs it
    v3 = _app(tmp_path, "v3", found="FOUND ")
    assert _replay(db, "--app", v3, capsys=capsys)[0] == 0
    code, out = _replay(db, "--app", v3, "--from-seq", "3", capsys=capsys)
    assert code == 11
    assert out["data"]["divergence"] == {
        "seq": 3,
        "step": "lookup",
        "expected": '"found y"',
        "got": '"FOUND y"',
    }
    code, out = _replay(db, "--app", v1, "--from-seq", "0", capsys=capsys)
    assert (code, out["data"]["reexecuted"]) == (0, 2)  # the two lookups, never the model
    assert _snapshot(db) == before, "replay wrote nothing"


def test_replay_of_an_unknown_run_or_without_app_exits_with_its_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'replay.db'}"
    assert main(["migrate", "--db", db], env={}) == 0
    v1 = _app(tmp_path, "v1")
    assert main(["replay", "nope", "--db", db, "--app", v1], env={}) == 3
    assert main(["replay", "nope", "--db", db], env={}) == 2
    assert main(["replay", "nope", "--db", db, "--app", v1, "--from-seq", "-1"], env={}) == 4
    capsys.readouterr()


# --- steering a live loop --------------------------------------------------------------------

gates: dict[str, threading.Event] = {}


def slow(topic: str) -> str:
    """Look a topic up, slowly (waits for the test's gate)."""
    gates["started"].set()
    gates["release"].wait(10)
    return f"found {topic}"


@workflow
async def steered(ctx: WorkflowContext) -> list[str]:
    done = await ctx.agent("research", tools=[slow], max_turns=5)
    return [str(m["content"]) for m in done.messages if m["role"] == "user"]


def _steering_models() -> Models:
    call = ScriptedReply(tool_calls=(ToolCall("c1", "slow", {"topic": "x"}),))
    return Models([ScriptedProvider([call, ScriptedReply(text="ok")])], default_model="m")


async def _started(task: asyncio.Task[Any]) -> None:
    assert await asyncio.to_thread(gates["started"].wait, 10), task


@pytest.fixture
def gated() -> None:
    gates.update(started=threading.Event(), release=threading.Event())


@pytest.mark.usefixtures("gated")
async def test_inject_and_pause_steer_a_live_loop(store: Store, tmp_path: Path) -> None:
    async with AsyncClient(store, models=_steering_models()) as client:
        task = asyncio.create_task(client.run(steered, run_id="live"))
        await _started(task)  # turn 1's tool runs
        await client.pause("live")
        await client.inject("live", "cite primary sources")
        gates["release"].set()
        await wait_for_state(client, "live", RunState.PAUSED)
        await client.unpause("live")
        assert await task == ["research", "[operator note] cite primary sources"]
        # replayed, the note is taken at the same turn
        assert (await client.replay("live")).ok


@pytest.mark.usefixtures("gated")
async def test_cancel_with_a_reason_stops_a_live_loop(store: Store) -> None:
    async with AsyncClient(store, models=_steering_models()) as client:
        task = asyncio.create_task(client.run(steered, run_id="live"))
        await _started(task)
        await client.cancel("live", "the operator has the answer")
        gates["release"].set()
        with pytest.raises(RunFailed) as info:
            await task
        assert info.value.state == "cancelled"
        assert info.value.message == "the operator has the answer"
        names = [s.name for s in (await client.describe("live")).steps]
        assert names == ["stepstone.inject", "agent", "slow"], "no model turn after the cancel"


def test_inject_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'inject.db'}"
    v1 = _app(tmp_path, "v1")
    models = Models([ScriptedProvider(_replies())], default_model="m")
    with Client(db, workflows=load_app(v1), models=models) as client:
        client._portal.call(client.store.migrate)
        handle = client.start("researcher", "x", run_id="pending")
        assert main(["inject", "pending", "be brief", "--db", db, "--json"], env={}) == 0
        assert json.loads(capsys.readouterr().out)["data"] == {
            "run_id": "pending",
            "note": "be brief",
        }
        assert main(["inject", "pending", " ", "--db", db], env={}) == 4
        assert client.run("researcher", "x", run_id="pending") == "all found"
        assert handle.result() == "all found"
        provider = models.providers["scripted"]
        assert isinstance(provider, ScriptedProvider)
        first = [m["content"] for m in provider.requests[0].messages]
        assert first == ["research x", "[operator note] be brief"]
        # a finished run takes no more notes
        assert main(["inject", "pending", "late", "--db", db], env={}) == 4
        assert "is completed" in capsys.readouterr().err
