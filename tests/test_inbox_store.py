"""The inbox in the store contract: one item per outcome of a launched run, written with the
state change, never for other runs, never twice (run on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepstone.core.model import ErrorInfo, Launch, RunState, Wait, WaitInfo
from stepstone.core.port import Cancelled, Completed, Failed, NewEvent, Store, Suspended
from stepstone.core.resources import NOTIFY_EVENT
from stepstone.errors import LeaseLost, RunStateError
from tests.test_store_contract import ALL, W1, W2, at, claim_one


async def launched(store: Store, run_id: str, now: float = 1):  # type: ignore[no-untyped-def]
    await store.record_launch(Launch(run_id, "greeter", budget_usd=0.5), now=at(0))
    return await claim_one(store, run_id, now=now)


async def test_a_launched_run_completing_is_one_done_item(store: Store) -> None:
    claim = await launched(store, "r1")
    await store.close_claim(claim, Completed('"hello, ann"'), now=at(2))
    [item] = await store.list_inbox()
    assert (item.run_id, item.skill, item.outcome, item.level) == ("r1", "greeter", "done", "info")
    assert item.summary == "hello, ann" and item.unread and item.created_at == at(2)


async def test_runs_not_launched_leave_no_item(store: Store) -> None:
    claim = await claim_one(store, "plain")
    await store.close_claim(claim, Completed("1"), now=at(2))
    assert await store.list_inbox(include_read=True) == []


async def test_a_failure_is_an_error_item_naming_the_error(store: Store) -> None:
    claim = await launched(store, "r1")
    await store.close_claim(claim, Failed(ErrorInfo("KeyError", "'x'")), now=at(2))
    [item] = await store.list_inbox()
    assert (item.outcome, item.level, item.summary) == ("failed", "error", "KeyError: 'x'")


async def test_closing_twice_leaves_one_item(store: Store) -> None:
    claim = await launched(store, "r1")
    await store.close_claim(claim, Completed("1"), now=at(2))
    with pytest.raises(LeaseLost):
        await store.close_claim(claim, Completed("1"), now=at(3))
    assert len(await store.list_inbox(include_read=True)) == 1


async def test_a_signal_wait_then_the_end_are_two_items(store: Store) -> None:
    claim = await launched(store, "r1")
    info = WaitInfo(prompt="Approve the\ndeploy?")
    wait = Wait("signal", 1, "approval", info=info)
    assert await store.close_claim(claim, Suspended((wait,)), now=at(2)) is RunState.WAITING
    [item] = await store.list_inbox()
    assert item.outcome == "waiting"
    assert item.summary == "waits for signal 'approval': Approve the\ndeploy?"
    await store.send_signal("r1", "approval", "true", now=at(3))
    [again] = await store.claim_runs(W2, ALL, limit=1, lease_s=30, now=at(4))
    await store.close_claim(again, Completed('"ok"'), now=at(5))
    assert [i.outcome for i in await store.list_inbox()] == ["waiting", "done"]


async def test_a_timer_is_not_an_item(store: Store) -> None:
    claim = await launched(store, "r1")
    await store.close_claim(claim, Suspended((Wait("timer", 1, until=at(99)),)), now=at(2))
    assert await store.list_inbox() == []


async def test_cancelling_a_waiting_run_is_one_cancelled_item(store: Store) -> None:
    claim = await launched(store, "r1")
    await store.close_claim(claim, Suspended((Wait("signal", 1, "go"),)), now=at(2))
    await store.request_control("r1", "cancel", reason="not needed", now=at(3))
    with pytest.raises(RunStateError):
        await store.request_control("r1", "cancel", reason="again", now=at(4))
    items = await store.list_inbox()
    assert [(i.outcome, i.summary) for i in items][1:] == [("cancelled", "cancelled: not needed")]


async def test_a_running_run_cancelled_at_its_boundary_is_one_item(store: Store) -> None:
    claim = await launched(store, "r1")
    await store.request_control("r1", "cancel", reason="stop", now=at(2))
    await store.close_claim(claim, Cancelled(None), now=at(3))
    [item] = await store.list_inbox()
    assert (item.outcome, item.summary) == ("cancelled", "cancelled: stop")


async def test_notify_gives_the_next_item_its_summary_and_level(store: Store) -> None:
    claim = await launched(store, "r1")
    note = json.dumps({"summary": "line one\nline two", "level": "warning"})
    await store.append_events(claim, [NewEvent(NOTIFY_EVENT, note, 0)], now=at(2))
    await store.close_claim(claim, Suspended((Wait("signal", 1, "go"),)), now=at(3))
    await store.send_signal("r1", "go", "1", now=at(4))
    [again] = await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(5))
    await store.close_claim(again, Completed('"finished"'), now=at(6))
    first, second = await store.list_inbox()
    assert (first.summary, first.level) == ("line one\nline two", "warning")
    assert (second.summary, second.level) == ("finished", "info")  # the note was used once


async def test_dismiss_one_run_or_all_and_list_unread_first(store: Store) -> None:
    for run_id in ("a", "b", "c"):
        claim = await launched(store, run_id)
        await store.close_claim(claim, Completed(f'"{run_id}"'), now=at(2))
    assert await store.dismiss_inbox("b", now=at(3)) == 1
    assert await store.dismiss_inbox("b", now=at(4)) == 0
    assert [i.run_id for i in await store.list_inbox()] == ["a", "c"]
    listed = await store.list_inbox(include_read=True)
    assert [(i.run_id, i.unread) for i in listed] == [("a", True), ("c", True), ("b", False)]
    assert listed[2].read_at == at(3)
    assert await store.dismiss_inbox(None, now=at(5)) == 2
    assert await store.list_inbox() == []


async def test_record_launch_is_idempotent(store: Store) -> None:
    await store.record_launch(Launch("r1", "greeter"), now=at(0))
    await store.record_launch(Launch("r1", "other"), now=at(1))
    claim = await claim_one(store, "r1")
    await store.close_claim(claim, Completed("1"), now=at(2))
    [item] = await store.list_inbox()
    assert item.skill == "greeter"


async def test_deleting_or_purging_a_run_takes_its_items_and_launch_mark(store: Store) -> None:
    for run_id, end in (("gone", 2), ("purged", 2), ("kept", 5)):
        claim = await launched(store, run_id)
        await store.close_claim(claim, Completed("1"), now=at(end))
    await store.delete_run("gone")
    assert await store.purge_runs(finished_before=at(3), states=[RunState.COMPLETED]) == 1
    assert [i.run_id for i in await store.list_inbox(include_read=True)] == ["kept"]
    # a new run under a purged id is not launched: its outcome adds no item
    claim = await claim_one(store, "purged")
    await store.close_claim(claim, Completed("1"), now=at(6))
    assert [i.run_id for i in await store.list_inbox(include_read=True)] == ["kept"]


async def test_a_budget_pause_is_one_paused_item(store: Store) -> None:
    from stepstone.core.port import Paused

    claim = await launched(store, "r1")
    reason = "run 'r1' budget: $0.003000 of $0.002500"
    assert await store.close_claim(claim, Paused(reason), now=at(2)) is RunState.PAUSED
    [item] = await store.list_inbox()
    assert (item.outcome, item.level) == ("paused", "warning")
    assert item.summary == f"paused by a budget: {reason}"


async def test_a_child_of_a_launched_run_reaches_the_inbox_only_when_it_waits(
    store: Store,
) -> None:
    from stepstone.core.model import NewRun, StepKind, StepRecord, StepStatus

    parent = await launched(store, "p1")
    record = StepRecord(0, "child", StepKind.CHILD, StepStatus.STARTED, started_at=at(1))
    child = NewRun("c1", "wf", "v1", "null", parent_run_id="p1", parent_seq=0)
    await store.start_child(parent, record, child, now=at(1))
    [claim] = await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(2))
    assert claim.run_id == "c1"
    wait = Wait("signal", 0, "approval", info=WaitInfo(prompt="Ship it?"))
    await store.close_claim(claim, Suspended((wait,)), now=at(3))
    [item] = await store.list_inbox()
    assert (item.run_id, item.skill, item.outcome) == ("c1", "greeter", "waiting")
    assert item.summary == "child run of p1: waits for signal 'approval': Ship it?"
    await store.send_signal("c1", "approval", "true", now=at(4))
    [again] = await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(5))
    await store.close_claim(again, Completed("1"), now=at(6))  # the child's end: no item
    assert [i.run_id for i in await store.list_inbox()] == ["c1"]


async def test_db_copy_takes_launches_and_inbox_items_along(store: Store, tmp_path: Path) -> None:
    from stepstone import open_store
    from stepstone.store.copy import copy_store

    claim = await launched(store, "r1")
    await store.append_events(
        claim,
        [NewEvent(NOTIFY_EVENT, json.dumps({"summary": "said", "level": "info"}), 0)],
        now=at(1),
    )
    await store.close_claim(claim, Suspended((Wait("signal", 1, "go"),)), now=at(2))
    await store.dismiss_inbox("r1", now=at(3))
    target = open_store(f"sqlite:///{tmp_path}/copy.db")
    await target.migrate()
    try:
        report = await copy_store(store, target, now=at(4))
        assert report.inbox == 1
        [before] = await store.list_inbox(include_read=True)
        [after] = await target.list_inbox(include_read=True)
        keep = ("run_id", "skill", "outcome", "level", "summary", "created_at", "read_at")
        assert [getattr(after, k) for k in keep] == [getattr(before, k) for k in keep]
        assert after.notified and after.summary == "said"
        # the copy goes on as the original would: the end is one more item, the notify used
        await target.send_signal("r1", "go", "true", now=at(5))
        [again] = await target.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(6))
        await target.close_claim(again, Completed('"ok"'), now=at(7))
        [done] = await target.list_inbox()
        assert (done.outcome, done.summary) == ("done", "ok")
        assert (await copy_store(store, target, now=at(8))).inbox == 1  # seen; nothing added
        assert len(await target.list_inbox(include_read=True)) == 2
    finally:
        await target.close()
