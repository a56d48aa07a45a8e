"""``ctx.ask``: named gates, answered separately, only by allowed approvers; the answer records
who. In-process on both stores, and through ``stepstone approve``/``answer``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from stepstone import (
    Answer,
    AsyncClient,
    Client,
    RunFailed,
    SignalPayloadError,
    WorkflowContext,
    workflow,
)
from stepstone.cli.main import main
from stepstone.core.model import RunState
from tests.test_waits import wait_for_state


@workflow
async def two_gates(ctx: WorkflowContext) -> dict[str, Any]:
    legal = await ctx.ask("Legal review passed?", gate="legal", approvers=["ana"])
    publish = await ctx.ask("Publish now?", gate="publish", approvers=["bo", "cy"])
    return {
        "legal": [legal.approved, legal.by, legal.comment],
        "publish": [publish.approved, publish.by],
    }


async def test_two_gates_need_two_answers_each_from_an_approver(client: AsyncClient) -> None:
    task = asyncio.create_task(client.run(two_gates, run_id="g2"))
    await wait_for_state(client, "g2", RunState.WAITING)
    (wait,) = (await client.get("g2")).waits
    assert wait.name == "legal" and wait.info is not None
    assert (wait.info.ask, wait.info.prompt, wait.info.audience) == (
        "approval",
        "Legal review passed?",
        "user",
    )
    # not an approver of this gate: refused at the door, the run keeps waiting
    with pytest.raises(SignalPayloadError, match=r"\$\.by"):
        await client.signal("g2", "legal", {"answer": True, "by": "bo"})
    with pytest.raises(SignalPayloadError, match=r"by"):
        await client.signal("g2", "legal", {"answer": True})  # who answers is required
    await client.signal("g2", "legal", {"answer": True, "by": "ana", "comment": "fine"})
    await wait_for_state(client, "g2", RunState.WAITING)
    while (await client.get("g2")).waits[0].name != "publish":
        await asyncio.sleep(0.01)
    await client.signal("g2", "publish", {"answer": False, "by": "cy"})
    assert await task == {"legal": [True, "ana", "fine"], "publish": [False, "cy"]}


@workflow
async def kinds(ctx: WorkflowContext) -> list[Any]:
    text = await ctx.ask("Title?", kind="text", gate="title")
    pick = await ctx.ask("Size?", kind="choice", options=["S", "M", "L"], gate="size")
    form = await ctx.ask(
        "Ship to?",
        kind="form",
        gate="address",
        schema={
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
            "required": ["city"],
        },
    )
    many = await ctx.wait_for_user("Tags?", input_type="multiselect", options=["a", "b"])
    return [text.value, pick.value, form.value, many, isinstance(text, Answer)]


async def test_text_choice_form_and_wait_for_user(client: AsyncClient) -> None:
    task = asyncio.create_task(client.run(kinds, run_id="k1"))

    async def answer(gate: str, value: Any, bad: Any = None, path: str = "") -> None:
        while True:
            await wait_for_state(client, "k1", RunState.WAITING)
            waits = (await client.get("k1")).waits
            if waits and waits[0].name == gate:
                break
            await asyncio.sleep(0.01)
        if bad is not None:
            with pytest.raises(SignalPayloadError, match=path):
                await client.signal("k1", gate, {"answer": bad, "by": "x"})
        await client.signal("k1", gate, {"answer": value, "by": "x"})

    await answer("title", "Q4 report", bad=7, path=r"\$\.answer")
    await answer("size", "M", bad="XL", path=r"\$\.answer")
    await answer("address", {"city": "Lyon"}, bad={"zip": "1"}, path="city")
    await answer("user_input", ["b"], bad=["c"], path=r"\$\.answer")
    assert await task == ["Q4 report", "M", {"city": "Lyon"}, ["b"], True]


@workflow
async def bad_ask(ctx: WorkflowContext, how: str) -> Any:
    if how == "kind":
        return await ctx.ask("?", kind="vote")  # type: ignore[arg-type]
    if how == "choice":
        return await ctx.ask("?", kind="choice")
    if how == "form":
        return await ctx.ask("?", kind="form")
    if how == "approvers":
        return await ctx.ask("?", approvers=[])
    return await ctx.ask("", gate="g")


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("kind", "kind= must be one of approval, text, choice, form"),
        ("choice", "needs options="),
        ("form", "needs schema="),
        ("approvers", "approvers= must be a non-empty list"),
        ("question", "needs a question"),
    ],
)
async def test_bad_asks_fail_the_run_naming_the_argument(
    client: AsyncClient, how: str, message: str
) -> None:
    with pytest.raises(RunFailed, match=message):
        await client.run(bad_ask, how, run_id=f"bad-{how}")


# --- the command line ----------------------------------------------------------------------

APP = """
from stepstone import WorkflowContext, workflow


@workflow
async def release(ctx: WorkflowContext) -> list:
    ok = await ctx.ask("Ship it?", gate="ship", approvers=["ana"])
    size = await ctx.ask("Size?", kind="choice", options=["S", "M"], gate="size")
    return [ok.approved, ok.by, ok.comment, size.value, size.by]
"""


def test_approve_and_answer_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gates_app.py").write_text(APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    db = f"sqlite:///{tmp_path / 't.db'}"
    env = {"HOME": str(tmp_path), "USER": "mallory"}

    def cli(*argv: str, code: int = 0) -> Any:
        got = main([*argv, "--db", db, "--json"], env=env)
        out, err = capsys.readouterr()
        assert got == code, f"`stepstone {' '.join(argv)}` exited {got}\n{out}\n{err}"
        return json.loads(out)

    waiting = cli("run", "release", "--app", "gates_app", "--run-id", "r1", code=40)["data"]
    assert (waiting["event"], waiting["ask"], waiting["prompt"]) == ("ship", "approval", "Ship it?")
    assert waiting["answer_command"].startswith("stepstone approve r1 --gate ship --db ")
    shown = cli("show", "r1")["data"]["waits"][0]
    assert shown["question"] == "Ship it?" and shown["answer_command"] == waiting["answer_command"]
    assert shown["schema"]["properties"]["by"] == {"enum": ["ana"]}

    # $USER is not an approver: exit 4 naming the path, nothing delivered
    error = cli("approve", "r1", code=4)["error"]
    assert "$.by" in error["message"]
    assert cli("answer", "r1", "--gate", "nope", "--input", '"S"', code=4)["error"]["message"]
    approved = cli("approve", "r1", "--as", "ana", "--comment", "lgtm")["data"]
    assert (approved["gate"], approved["answer"], approved["by"]) == ("ship", True, "ana")

    with Client(db) as client:
        client.registry.add(_release())
        assert client.advance("r1").state is RunState.WAITING
    assert cli("answer", "r1", "--input", '"XL"', code=4)["error"]["message"]
    cli("answer", "r1", "--gate", "size", "--input", '"M"', "--as", "bo")
    with Client(db) as client:
        client.registry.add(_release())
        run = client.advance("r1")
    assert run.state is RunState.COMPLETED
    assert json.loads(run.output_json or "null") == [True, "ana", "lgtm", "M", "bo"]


def _release() -> Any:
    import importlib

    return importlib.import_module("gates_app").release
