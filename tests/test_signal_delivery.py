"""Signals are checked where they are delivered (issue 8, item 4).

A payload that fails its wait's schema (or the workflow's declared ``signals=`` type) is rejected
when the wait meets it: on record with the problem, in the timeline, never the wait's outcome;
the wait goes on. A name the run neither declares nor waits for is refused (exit 4, "did you
mean") unless the early send says it is intended (``buffer=True`` / ``--buffer``).
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stepstone import (
    AsyncClient,
    SignalPayloadError,
    UnknownSignal,
    WorkflowContext,
    workflow,
)
from stepstone.cli.main import main
from stepstone.core.model import RunState, StepKind, Wait
from stepstone.core.port import Store, Suspended
from tests.test_waits import Approval, wait_for_state


@workflow
async def gate(ctx: WorkflowContext) -> str:
    decision = await ctx.wait_for_signal("approval", schema=Approval)  # declared on the wait only
    return f"{decision.approved} by {decision.by}"


@workflow(signals={"approval": Approval})
async def declared_gate(ctx: WorkflowContext) -> str:
    decision = await ctx.wait_for_signal("approval")
    return f"{decision.approved} by {decision.by}"


async def _sender(store: Store) -> AsyncClient:
    """A client in another process: it knows neither workflow, only what the store holds."""
    return AsyncClient(store)


async def test_a_bad_early_payload_is_rejected_at_the_wait_and_a_good_one_completes_the_run(
    client: AsyncClient, store: Store
) -> None:
    await client.start(gate, run_id="g1")
    sender = await _sender(store)
    try:
        await sender.signal("g1", "approval", {"approved": "yes", "by": "eve"}, buffer=True)
        task = asyncio.create_task(client.run(gate, run_id="g1"))
        await wait_for_state(client, "g1", RunState.WAITING)
        [bad] = await client.store.list_signals("g1")
        wait = next(s for s in (await client.describe("g1")).steps if s.kind is StepKind.SIGNAL)
        assert bad.rejected and bad.consumed_seq == wait.seq
        assert bad.problem is not None and "$.approved" in bad.problem
        assert "boolean" in bad.problem
        desc = await client.describe("g1")
        assert desc.rejected_signals == (bad,) and desc.pending_signals == ()
        assert desc.waiting_for == ("signal 'approval'",)
        timeline = await client.timeline("g1")
        [entry] = [e for e in timeline if e.kind == "signal_rejected"]
        assert f"rejected by wait #{wait.seq}" in entry.detail and "$.approved" in entry.detail
        await sender.signal("g1", "approval", {"approved": True, "by": "ana"})
        assert await task == "True by ana"
    finally:
        await sender.close()
    signals = await client.store.list_signals("g1")
    assert [(s.rejected, s.consumed_seq) for s in signals] == [(True, 0), (False, 0)]


async def test_the_wait_skips_bad_buffered_payloads_and_takes_the_next_good_one(
    client: AsyncClient, store: Store
) -> None:
    await client.start(declared_gate, run_id="g2")
    sender = await _sender(store)  # cannot check the declared type: the wait does
    try:
        for payload in ({"approved": True}, "nope", {"approved": False, "by": "bo"}):
            await sender.signal("g2", "approval", payload, buffer=True)
    finally:
        await sender.close()
    assert await client.run(declared_gate, run_id="g2") == "False by bo"
    signals = await client.store.list_signals("g2")
    assert [s.rejected for s in signals] == [True, True, False]
    assert "missing required property 'by'" in (signals[0].problem or "")
    kinds = [e.kind for e in await client.timeline("g2")]
    assert kinds.count("signal_rejected") == 2 and kinds[-1] == "completed"


async def test_a_client_that_knows_the_workflow_refuses_a_bad_declared_payload_on_record(
    client: AsyncClient,
) -> None:
    client.registry.add(declared_gate)
    await client.start(declared_gate, run_id="g3")
    with pytest.raises(SignalPayloadError, match=r"\$\.approved"):
        await client.signal("g3", "approval", {"approved": 1, "by": "x"})
    [refused] = await client.store.list_signals("g3")
    assert refused.rejected and refused.consumed_seq is None  # no wait saw it: the door did
    assert (await client.get("g3")).state is RunState.PENDING


async def test_an_unknown_signal_name_is_refused_with_did_you_mean_unless_buffered(
    client: AsyncClient, store: Store
) -> None:
    client.registry.add(declared_gate)
    await client.start(declared_gate, run_id="u1")
    with pytest.raises(UnknownSignal) as info:
        await client.signal("u1", "aproval", {"approved": True, "by": "x"})
    message = str(info.value)
    assert "did you mean 'approval'?" in message and "buffer=True" in message
    assert info.value.known == ("approval",) and info.value.suggestion == "approval"
    await client.signal("u1", "approval", {"approved": True, "by": "x"})  # declared: early is ok
    sender = await _sender(store)
    try:
        # not knowing the workflow, a client takes only the names the run waits for now
        with pytest.raises(UnknownSignal, match="--app") as unknown:
            await sender.signal("u1", "approval", {"approved": True, "by": "y"})
        assert not unknown.value.workflow_known and "--buffer" in str(unknown.value)
        await sender.signal("u1", "other", 1, buffer=True)
        assert [s.name for s in await client.store.list_signals("u1")] == ["approval", "other"]
        await client.start(gate, run_id="u2")
        task = asyncio.create_task(client.run(gate, run_id="u2"))
        await wait_for_state(client, "u2", RunState.WAITING)
        await sender.signal("u2", "approval", {"approved": True, "by": "z"})  # waited for now
        assert await task == "True by z"
    finally:
        await sender.close()


APP = textwrap.dedent(
    """
    import dataclasses

    from stepstone import WorkflowContext, workflow


    @dataclasses.dataclass(frozen=True)
    class Approval:
        approved: bool
        by: str


    @workflow(signals={"approval": Approval})
    async def gated(ctx: WorkflowContext) -> str:
        decision = await ctx.wait_for_signal("approval")
        return decision.by
    """
)


def _cli(db: str, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main([*argv, "--db", db, "--json"], env={})
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, json.loads(lines[-1]) if lines else None, captured.err


async def test_cli_signal_refuses_unknown_names_with_exit_4_and_buffer_sends_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gate_app.py").write_text(APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    db = f"sqlite:///{tmp_path / 'cli.db'}"

    def cli(*argv: str) -> tuple[int, Any, str]:
        return _cli(db, capsys, *argv)

    assert (await asyncio.to_thread(cli, "migrate"))[0] == 0
    code, out, _ = await asyncio.to_thread(cli, "start", "gated", "--app", "gate_app")
    assert code == 0, out
    run_id = out["data"]["run_id"]
    ok = '{"approved": true, "by": "ann"}'
    code, out, _ = await asyncio.to_thread(
        cli, "signal", run_id, "aproval", "--app", "gate_app", "--data", ok
    )
    assert code == 4 and out["error"]["type"] == "UnknownSignal"
    assert "did you mean 'approval'?" in out["error"]["message"]
    assert "--buffer" in out["error"]["message"]
    code, out, _ = await asyncio.to_thread(cli, "signal", run_id, "approval", "--data", ok)
    assert code == 4 and "--app" in out["error"]["message"]  # no app: not waiting, not known
    code, out, _ = await asyncio.to_thread(
        cli, "signal", run_id, "approval", "--data", '{"approved": "no", "by": "x"}', "--buffer"
    )
    assert code == 0 and out["data"]["buffered"] is True
    code, out, _ = await asyncio.to_thread(
        cli, "signal", run_id, "approval", "--app", "gate_app", "--data", ok
    )
    assert code == 0, out
    code, out, _ = await asyncio.to_thread(
        cli, "run", "gated", "--app", "gate_app", "--run-id", run_id
    )
    assert code == 0 and out["data"]["result"] == "ann", out
    code, out, _ = await asyncio.to_thread(cli, "timeline", run_id)
    rejected = [e for e in out["data"] if e["kind"] == "signal_rejected"]
    assert len(rejected) == 1 and "$.approved" in rejected[0]["detail"]
    code, out, _ = await asyncio.to_thread(cli, "show", run_id)
    [first, second] = out["data"]["signals"]
    assert (first["rejected"], second["rejected"]) == (True, False)
    assert out["data"]["rejected_signals"] == [first["signal_id"]]
    capsys.readouterr()
    assert main(["signal", "--help"]) == 0
    assert "--buffer" in capsys.readouterr().out


def test_sayiir_send_signal_keeps_an_early_signal_for_the_wait(tmp_path: Path) -> None:
    # sayiir's contract: a signal sent before the run reaches its wait is buffered for it
    from stepstone import Client
    from stepstone.flow import Flow, resume_workflow, send_signal, task

    @task("add")
    def add(x: int) -> int:
        return x + 1

    url = f"sqlite:///{tmp_path / 'flow.db'}"
    wf = Flow("early").then(add).wait_for_signal("go").build()
    with Client(url, workflows=[wf]) as client:
        client.start(wf, 1, run_id="e1")  # pending: not waiting for 'go' yet
    send_signal("e1", "go", 5, url)
    status = resume_workflow(wf, "e1", url)
    assert status.is_completed() and status.output == 5


async def test_store_take_signal_rejects_what_the_check_refuses_and_wakes_on_none_of_it(
    store: Store,
) -> None:
    from tests.test_store_contract import ALL, W1, at, claim_one

    def check(text: str) -> str | None:
        return None if json.loads(text) == "good" else f"$: {text} is not 'good'"

    claim = await claim_one(store, "r1")
    assert await store.take_signal(claim, 0, "go", until=None, now=at(2), check=check) is None
    waiting = (Wait("signal", 0, "go"),)
    assert await store.close_claim(claim, Suspended(waiting), now=at(3)) is RunState.WAITING
    refused = await store.send_signal(
        "r1", "go", '"at the door"', now=at(4), problem="$: refused", rejected_by=0
    )
    assert (refused.rejected, refused.consumed_seq, refused.consumed_at) == (True, 0, at(4))
    run = await store.get_run("r1")
    assert run is not None and run.state is RunState.WAITING, "a rejected signal wakes nothing"
    await store.send_signal("r1", "go", '"bad"', now=at(5))
    await store.send_signal("r1", "go", '"good"', now=at(6))
    claim = (await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(7)))[0]
    assert await store.take_signal(claim, 0, "go", until=None, now=at(7), check=check) == '"good"'
    # taken again (a retried attempt): the same one, the rejected ones stay rejected
    assert await store.take_signal(claim, 0, "go", until=None, now=at(7), check=check) == '"good"'
    signals = await store.list_signals("r1")
    assert [(s.problem, s.consumed_seq) for s in signals] == [
        ("$: refused", 0),
        ("$: \"bad\" is not 'good'", 0),
        (None, 0),
    ]
    # a rejected signal does not count as one waiting for the next suspend
    await store.send_signal("r1", "go", '"worse"', now=at(8), problem="$: no")
    assert await store.close_claim(claim, Suspended(waiting), now=at(9)) is RunState.WAITING
