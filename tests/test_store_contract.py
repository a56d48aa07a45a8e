"""The store contract: every adapter must pass this suite unchanged (real databases, no fakes).

Time is injected: each call gets ``now``, so leases and timers are tested without sleeping.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stepstone.core.model import (
    Claim,
    ErrorInfo,
    NewRun,
    Routing,
    RunQuery,
    RunState,
    StepKind,
    StepRecord,
    StepStatus,
    Wait,
    WorkerInfo,
)
from stepstone.core.port import (
    Blocked,
    Cancelled,
    ClaimFilter,
    Completed,
    Failed,
    NewEvent,
    Paused,
    Released,
    Store,
    Suspended,
)
from stepstone.errors import (
    AlreadyResumed,
    InvalidArgument,
    LeaseLost,
    RunNotFound,
    RunStateError,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
W1 = WorkerInfo("w1", "host-a", 101, ("default",), 8)
W2 = WorkerInfo("w2", "host-b", 202, ("default",), 8)
ALL = ClaimFilter(queues=("default",), workflows=("wf",))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_run(run_id: str, **kw: object) -> NewRun:
    fields: dict[str, object] = {
        "run_id": run_id,
        "workflow": "wf",
        "version": "v1",
        "input_json": '{"args":[1],"kwargs":{}}',
    }
    fields.update(kw)
    return NewRun(**fields)  # type: ignore[arg-type]


def step(
    seq: int, status: StepStatus = StepStatus.COMPLETED, output: str | None = "1"
) -> StepRecord:
    return StepRecord(seq, f"s{seq}", StepKind.STEP, status, output_json=output, started_at=at(1))


async def claim_one(store: Store, run_id: str, worker: WorkerInfo = W1, now: float = 1) -> Claim:
    await store.create_run(new_run(run_id), now=at(0))
    claims = await store.claim_runs(worker, ALL, limit=1, lease_s=30, now=at(now))
    assert [c.run_id for c in claims] == [run_id]
    return claims[0]


# --- runs ----------------------------------------------------------------------------------


async def test_create_is_idempotent_on_run_id(store: Store) -> None:
    run, created, claim = await store.create_run(new_run("r1"), now=at(0))
    assert created and claim is None
    assert run.state is RunState.PENDING and run.input_json == '{"args":[1],"kwargs":{}}'
    again, created_again, _ = await store.create_run(
        new_run("r1", input_json='{"args":[2]}'), now=at(5)
    )
    assert not created_again
    assert again.input_json == run.input_json and again.created_at == at(0)


async def test_create_already_claimed(store: Store) -> None:
    run, created, claim = await store.create_run(new_run("r1"), now=at(0), claim_for=W1, lease_s=10)
    assert created and claim is not None
    assert run.state is RunState.RUNNING and run.lease_owner == "w1"
    assert claim.lease_token == run.lease_token
    assert run.lease_expires_at == at(10)
    # not claimable by another worker while the lease holds
    assert await store.claim_runs(W2, ALL, limit=5, lease_s=10, now=at(5)) == []


async def test_get_and_list_runs(store: Store) -> None:
    assert await store.get_run("missing") is None
    for i in range(5):
        await store.create_run(new_run(f"r{i}", queue="q" if i % 2 else "default"), now=at(i))
    runs = await store.list_runs(RunQuery(limit=10))
    assert [r.run_id for r in runs] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r.run_id for r in await store.list_runs(RunQuery(queue="q"))] == ["r3", "r1"]
    assert [r.run_id for r in await store.list_runs(RunQuery(limit=2))] == ["r4", "r3"]
    page = await store.list_runs(RunQuery(limit=2, before_run_id="r3"))
    assert [r.run_id for r in page] == ["r2", "r1"]
    await claim_one_existing(store, "r0")
    running = await store.list_runs(RunQuery(states=(RunState.RUNNING,)))
    assert [r.run_id for r in running] == ["r0"]


async def test_list_runs_by_labels(store: Store) -> None:
    """A labels filter keeps the runs that carry every pair asked for, among others."""
    labels = {"a": (("team", "ops"),), "b": (("gpu", "a100"), ("team", "ops")), "c": ()}
    for i, (run_id, pairs) in enumerate(labels.items()):
        await store.create_run(new_run(run_id, routing=Routing(labels=pairs)), now=at(i))

    async def listed(*pairs: tuple[str, str]) -> list[str]:
        return [r.run_id for r in await store.list_runs(RunQuery(labels=pairs))]

    assert await listed(("team", "ops")) == ["b", "a"]
    assert await listed(("gpu", "a100"), ("team", "ops")) == ["b"]
    assert await listed(("team", "dev")) == []
    assert await listed() == ["c", "b", "a"]


async def claim_one_existing(store: Store, run_id: str) -> Claim:
    claim = await store.claim_run(run_id, W1, lease_s=30, now=at(10))
    assert claim is not None
    return claim


async def test_claim_order_priority_then_due_time(store: Store) -> None:
    await store.create_run(new_run("low"), now=at(0))
    await store.create_run(new_run("high", priority=5), now=at(2))
    await store.create_run(new_run("late", start_at=at(100)), now=at(1))
    await store.create_run(new_run("early"), now=at(1))
    claims = await store.claim_runs(W1, ALL, limit=10, lease_s=1000, now=at(10))
    assert [c.run_id for c in claims] == ["high", "low", "early"]
    assert all(c.run.state is RunState.RUNNING and c.run.lease_owner == "w1" for c in claims)
    # the delayed run becomes claimable at its start time
    assert await store.next_wake_at(ALL, now=at(10)) is not None
    assert [
        c.run_id for c in await store.claim_runs(W1, ALL, limit=10, lease_s=30, now=at(100))
    ] == ["late"]


async def test_claim_respects_queues_workflows_and_limit(store: Store) -> None:
    await store.create_run(new_run("a", queue="gpu"), now=at(0))
    await store.create_run(new_run("b", workflow="other"), now=at(0))
    await store.create_run(new_run("c"), now=at(0))
    await store.create_run(new_run("d"), now=at(0))
    assert not await store.has_claimable(ClaimFilter(("nothing",), ("wf",)), now=at(1))
    assert await store.has_claimable(ALL, now=at(1))
    got = await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(1))
    assert [c.run_id for c in got] == ["c"]
    got = await store.claim_runs(W1, ALL, limit=5, lease_s=30, now=at(1))
    assert [c.run_id for c in got] == ["d"]
    got = await store.claim_runs(
        W1, ClaimFilter(("gpu",), ("wf", "other")), limit=5, lease_s=30, now=at(1)
    )
    assert [c.run_id for c in got] == ["a"]
    got = await store.claim_runs(
        W1, ClaimFilter(("default",), ("other",)), limit=5, lease_s=30, now=at(1)
    )
    assert [c.run_id for c in got] == ["b"]
    assert not await store.has_claimable(
        ClaimFilter(("default", "gpu"), ("wf", "other")), now=at(1)
    )


async def test_expired_lease_is_claimable_and_counts_a_recovery(store: Store) -> None:
    first = await claim_one(store, "r1")
    assert first.run.recoveries == 0 and not first.recovered
    assert await store.claim_runs(W2, ALL, limit=1, lease_s=30, now=at(30)) == []
    second = (await store.claim_runs(W2, ALL, limit=1, lease_s=30, now=at(32)))[0]
    assert second.recovered and second.run.recoveries == 1
    assert second.lease_token > first.lease_token and second.run.lease_owner == "w2"


async def test_fencing_stale_token_writes_nothing(store: Store) -> None:
    first = await claim_one(store, "r1")
    await store.record_step(first, step(0), now=at(2))
    second = (await store.claim_runs(W2, ALL, limit=1, lease_s=30, now=at(40)))[0]
    with pytest.raises(LeaseLost):
        await store.record_step(first, step(1, output='"zombie"'), now=at(41))
    with pytest.raises(LeaseLost):
        await store.close_claim(first, Completed('"zombie"'), now=at(41))
    with pytest.raises(LeaseLost):
        await store.take_signal(first, 1, "s", until=None, now=at(41))
    with pytest.raises(LeaseLost):
        await store.append_events(first, [NewEvent("x", None, 0)], now=at(41))
    steps = await store.load_steps("r1")
    assert [(s.seq, s.output_json) for s in steps] == [(0, "1")]
    assert await store.close_claim(second, Completed('"ok"'), now=at(42)) is RunState.COMPLETED
    run = await store.get_run("r1")
    assert run is not None and run.output_json == '"ok"' and run.lease_owner is None


async def test_renew_leases_reports_control_and_lost_leases(store: Store) -> None:
    c1 = await claim_one(store, "r1")
    await store.create_run(new_run("r2"), now=at(0))
    c2 = (await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(1)))[0]
    await store.request_control("r2", "cancel", reason="stop", now=at(2))
    live = ["r1", "r2"]
    held = {s.run_id: s for s in await store.renew_leases("w1", live, lease_s=30, now=at(20))}
    assert held["r1"].lease_token == c1.lease_token and held["r1"].control is None
    assert held["r2"].control == "cancel"
    # renewed: still held at 45 (20 + 30), not claimable by another worker
    assert await store.claim_runs(W2, ALL, limit=5, lease_s=30, now=at(45)) == []
    taken = await store.claim_runs(W2, ALL, limit=5, lease_s=30, now=at(51))
    assert {c.run_id for c in taken} == {"r1", "r2"}
    assert await store.renew_leases("w1", live, lease_s=30, now=at(52)) == []
    assert c2.run_id == "r2"


async def test_renew_leases_extends_only_the_runs_still_executing(store: Store) -> None:
    """A lease the worker holds on a run it no longer executes (its execution ended without
    closing the claim) is not extended: it expires and another worker takes the run over."""
    await claim_one(store, "alive")
    await store.create_run(new_run("orphan"), now=at(0))
    assert len(await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(1))) == 1
    held = await store.renew_leases("w1", ["alive", "gone"], lease_s=30, now=at(20))
    assert [s.run_id for s in held] == ["alive"]
    assert await store.renew_leases("w1", [], lease_s=30, now=at(21)) == []
    taken = await store.claim_runs(W2, ALL, limit=5, lease_s=30, now=at(32))
    assert [c.run_id for c in taken] == ["orphan"] and taken[0].recovered
    orphan = await store.get_run("orphan")
    assert orphan is not None and orphan.lease_owner == "w2"
    alive = await store.get_run("alive")
    assert alive is not None and alive.lease_owner == "w1"


# --- steps ---------------------------------------------------------------------------------


async def test_record_and_load_steps_upsert(store: Store) -> None:
    claim = await claim_one(store, "r1")
    err = ErrorInfo("ValueError", "bad", "tb", "builtins", '["bad"]', (1,))
    assert await store.record_step(claim, step(0), now=at(2), state_json='{"phase":"a"}') is None
    await store.record_step(
        claim,
        StepRecord(
            1, "s1", StepKind.STEP, StepStatus.RETRYING, '{"until":null}', err, 1, at(2), at(3)
        ),
        now=at(3),
    )
    await store.record_step(
        claim,
        StepRecord(1, "s1", StepKind.STEP, StepStatus.FAILED, None, err, 2, at(4), at(5)),
        now=at(5),
    )
    steps = await store.load_steps("r1")
    assert [(s.seq, s.status, s.attempts) for s in steps] == [
        (0, StepStatus.COMPLETED, 1),
        (1, StepStatus.FAILED, 2),
    ]
    assert steps[1].error == err
    assert steps[1].started_at == at(2), "an upsert keeps the first start time"
    run = await store.get_run("r1")
    assert run is not None and run.state_json == '{"phase":"a"}'


async def test_record_step_returns_pending_control(store: Store) -> None:
    claim = await claim_one(store, "r1")
    await store.request_control("r1", "pause", reason=None, now=at(2))
    assert await store.record_step(claim, step(0), now=at(3)) == "pause"
    await store.request_control("r1", None, reason=None, now=at(4))
    assert await store.record_step(claim, step(1), now=at(5)) is None


async def test_start_child_is_atomic_and_idempotent(store: Store) -> None:
    claim = await claim_one(store, "p")
    child = new_run("p.0", parent_run_id="p", parent_seq=0)
    entry = StepRecord(0, "wf", StepKind.CHILD, StepStatus.WAITING, '{"run_id":"p.0"}')
    run = await store.start_child(claim, entry, child, now=at(2))
    assert run.parent_run_id == "p" and run.state is RunState.PENDING
    again = await store.start_child(claim, entry, child, now=at(3))
    assert again.created_at == run.created_at
    assert [s.kind for s in await store.load_steps("p")] == [StepKind.CHILD]
    children = await store.list_runs(RunQuery(parent_run_id="p"))
    assert [c.run_id for c in children] == ["p.0"]
    # with another filter the children are listed by list_runs, not list_children
    pending = await store.list_runs(RunQuery(parent_run_id="p", states=(RunState.PENDING,)))
    assert [c.run_id for c in pending] == ["p.0"]
    assert await store.list_runs(RunQuery(parent_run_id="p", workflow="other")) == []


# --- how claims end ------------------------------------------------------------------------


async def test_close_completed_failed_wake_the_parent(store: Store) -> None:
    parent = await claim_one(store, "p")
    await store.start_child(
        parent,
        StepRecord(0, "wf", StepKind.CHILD, StepStatus.WAITING, '{"run_id":"p.0"}'),
        new_run("p.0", parent_run_id="p", parent_seq=0),
        now=at(2),
    )
    state = await store.close_claim(parent, Suspended((Wait("child", 0, "p.0"),)), now=at(3))
    assert state is RunState.WAITING
    child = await store.claim_run("p.0", W2, lease_s=30, now=at(4))
    assert child is not None
    assert await store.close_claim(child, Completed("42"), now=at(5)) is RunState.COMPLETED
    woken = await store.get_run("p")
    assert woken is not None and woken.state is RunState.PENDING
    assert woken.wake_at is not None and woken.wake_at <= at(5)


async def test_close_failed_keeps_error(store: Store) -> None:
    claim = await claim_one(store, "r1")
    err = ErrorInfo("KeyError", "'x'", "Traceback...", "builtins", '["x"]', (3,))
    assert await store.close_claim(claim, Failed(err), now=at(2)) is RunState.FAILED
    run = await store.get_run("r1")
    assert run is not None and run.error == err and run.finished_at == at(2)


async def test_suspend_states_and_due_times(store: Store) -> None:
    claim = await claim_one(store, "r1")
    waits = (Wait("timer", 0, until=at(60)),)
    assert await store.close_claim(claim, Suspended(waits), now=at(2)) is RunState.SLEEPING
    run = await store.get_run("r1")
    assert (
        run is not None and run.wake_at == at(60) and run.waits == waits and run.lease_owner is None
    )
    assert await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(59)) == []
    assert await store.next_wake_at(ALL, now=at(2)) == at(60)
    claim = (await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(60)))[0]
    assert not claim.recovered and claim.run.recoveries == 0
    # waiting for a signal with a timeout: claimable at the timeout
    sig = (Wait("signal", 1, "go", until=at(120), schema_json='{"type":"object"}'),)
    assert await store.close_claim(claim, Suspended(sig), now=at(61)) is RunState.WAITING
    run = await store.get_run("r1")
    assert run is not None and run.waits[0].schema_json == '{"type":"object"}'
    assert await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(119)) == []
    assert len(await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(120))) == 1


async def test_signal_wakes_waiting_run_and_suspend_sees_buffered_signal(store: Store) -> None:
    claim = await claim_one(store, "r1")
    assert await store.take_signal(claim, 0, "go", until=None, now=at(2)) is None
    waiting = (Wait("signal", 0, "go"),)
    assert await store.close_claim(claim, Suspended(waiting), now=at(3)) is RunState.WAITING
    await store.send_signal("r1", "other", '"x"', now=at(4))
    run = await store.get_run("r1")
    assert run is not None and run.state is RunState.WAITING, (
        "a signal nobody waits for wakes nothing"
    )
    await store.send_signal("r1", "go", '{"n":1}', now=at(5))
    run = await store.get_run("r1")
    assert run is not None and run.state is RunState.PENDING
    claim = (await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(6)))[0]
    assert await store.take_signal(claim, 0, "go", until=None, now=at(6)) == '{"n":1}'
    # a signal that arrived before the suspend: the run goes straight back to pending
    await store.send_signal("r1", "go", '{"n":2}', now=at(7))
    assert await store.close_claim(claim, Suspended(waiting), now=at(8)) is RunState.PENDING


async def test_signals_are_consumed_in_order_once(store: Store) -> None:
    await store.create_run(new_run("r1"), now=at(0))
    for n in range(3):
        await store.send_signal("r1", "go", str(n), now=at(1 + n))
    claim = (await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(5)))[0]
    got = [await store.take_signal(claim, seq, "go", until=None, now=at(6)) for seq in range(4)]
    assert got == ["0", "1", "2", None]
    signals = await store.list_signals("r1")
    assert [(s.payload_json, s.consumed_seq) for s in signals] == [("0", 0), ("1", 1), ("2", 2)]
    entries = await store.load_steps("r1")
    assert [(e.seq, e.status) for e in entries][-1] == (3, StepStatus.WAITING)
    assert json.loads(entries[0].output_json or "{}") == {"payload": 0}


async def test_signal_to_missing_or_finished_run(store: Store) -> None:
    with pytest.raises(RunNotFound):
        await store.send_signal("nope", "go", "1", now=at(0))
    claim = await claim_one(store, "r1")
    await store.close_claim(claim, Completed("1"), now=at(2))
    with pytest.raises(RunStateError):
        await store.send_signal("r1", "go", "1", now=at(3))
    assert await store.list_signals("r1") == []


async def test_resume_with_signal_delivers_once_or_says_why_not(store: Store) -> None:
    with pytest.raises(RunNotFound):
        await store.resume_with_signal("nope", "go", "1", now=at(0))
    claim = await claim_one(store, "r1")
    assert await store.take_signal(claim, 0, "go", until=None, now=at(2)) is None
    await store.close_claim(claim, Suspended((Wait("signal", 0, "go"),)), now=at(3))
    with pytest.raises(RunStateError, match="it waits for event 'go'") as other:
        await store.resume_with_signal("r1", "stop", "1", now=at(4))
    assert not isinstance(other.value, AlreadyResumed)
    assert await store.list_signals("r1") == []
    signal = await store.resume_with_signal("r1", "go", '{"n":1}', now=at(5))
    assert (signal.run_id, signal.name, signal.payload_json) == ("r1", "go", '{"n":1}')
    run = await store.get_run("r1")
    assert run is not None and run.state is RunState.PENDING
    with pytest.raises(AlreadyResumed, match="already resumed"):
        await store.resume_with_signal("r1", "go", '{"n":2}', now=at(6))
    claim = (await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(7)))[0]
    with pytest.raises(AlreadyResumed):  # running counts as resumed too
        await store.resume_with_signal("r1", "go", '{"n":3}', now=at(7))
    assert await store.take_signal(claim, 0, "go", until=None, now=at(8)) == '{"n":1}'
    assert [s.payload_json for s in await store.list_signals("r1")] == ['{"n":1}']
    await store.close_claim(claim, Completed("1"), now=at(9))
    with pytest.raises(RunStateError, match="completed") as finished:
        await store.resume_with_signal("r1", "go", "1", now=at(10))
    assert not isinstance(finished.value, AlreadyResumed)


async def test_delete_run_only_when_finished(store: Store) -> None:
    with pytest.raises(RunNotFound):
        await store.delete_run("nope")
    claim = await claim_one(store, "r1")
    await store.record_step(claim, step(0), now=at(2))
    await store.send_signal("r1", "go", "1", now=at(2))
    with pytest.raises(RunStateError, match="running"):
        await store.delete_run("r1")
    assert await store.get_run("r1") is not None and len(await store.load_steps("r1")) == 1
    await store.close_claim(claim, Completed("1"), now=at(3))
    await store.create_run(new_run("r2"), now=at(0))
    await store.delete_run("r1")
    assert await store.get_run("r1") is None
    assert await store.load_steps("r1") == [] and await store.list_signals("r1") == []
    assert await store.get_run("r2") is not None, "only the run named is deleted"
    with pytest.raises(RunNotFound):
        await store.delete_run("r1")


async def test_pause_park_and_release(store: Store) -> None:
    claim = await claim_one(store, "r1")
    assert await store.close_claim(claim, Paused(), now=at(2)) is RunState.PAUSED
    assert await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(100)) == []
    await store.request_control("r1", None, reason=None, now=at(101))
    claim = (await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(102)))[0]
    assert await store.close_claim(claim, Released(), now=at(103)) is RunState.PENDING
    claim = (await store.claim_runs(W2, ALL, limit=1, lease_s=30, now=at(104)))[0]
    assert claim.run.recoveries == 0, "a hand-back is not a recovery"
    assert await store.close_claim(claim, Blocked("code changed"), now=at(105)) is RunState.BLOCKED
    run = await store.get_run("r1")
    assert run is not None and run.error is not None and "code changed" in run.error.message


async def test_cancel_pending_running_and_cascade(store: Store) -> None:
    await store.create_run(new_run("idle"), now=at(0))
    run = await store.request_control("idle", "cancel", reason="no longer needed", now=at(1))
    assert run.state is RunState.CANCELLED and run.error is not None
    assert run.error.message == "no longer needed"
    with pytest.raises(RunStateError):
        await store.request_control("idle", "cancel", reason=None, now=at(2))
    parent = await claim_one(store, "p")
    await store.start_child(
        parent,
        StepRecord(0, "wf", StepKind.CHILD, StepStatus.WAITING, '{"run_id":"p.0"}'),
        new_run("p.0", parent_run_id="p", parent_seq=0),
        now=at(2),
    )
    run = await store.request_control("p", "cancel", reason="stop", now=at(3))
    assert run.state is RunState.RUNNING and run.control == "cancel", (
        "running: at the next boundary"
    )
    assert await store.close_claim(parent, Cancelled("stop"), now=at(4)) is RunState.CANCELLED
    child = await store.get_run("p.0")
    assert child is not None and child.state is RunState.CANCELLED


async def test_control_errors(store: Store) -> None:
    with pytest.raises(RunNotFound):
        await store.request_control("nope", "pause", reason=None, now=at(0))
    await store.create_run(new_run("r1"), now=at(0))
    with pytest.raises(RunStateError):
        await store.request_control("r1", None, reason=None, now=at(1))
    paused = await store.request_control("r1", "pause", reason=None, now=at(1))
    assert paused.state is RunState.PAUSED
    assert (
        await store.request_control("r1", "pause", reason=None, now=at(2))
    ).state is RunState.PAUSED


async def test_retry_keeps_completed_steps_and_drops_the_failed_one(store: Store) -> None:
    claim = await claim_one(store, "r1")
    await store.record_step(claim, step(0), now=at(2))
    err = ErrorInfo("RuntimeError", "boom", step_seqs=(1,))
    await store.record_step(
        claim, StepRecord(1, "s1", StepKind.STEP, StepStatus.FAILED, error=err), now=at(3)
    )
    await store.close_claim(claim, Failed(err), now=at(4))
    with pytest.raises(RunStateError):
        await store.request_control("r1", None, reason=None, now=at(5))  # unpause a failed run
    run = await store.retry_run("r1", now=at(6))
    assert run.state is RunState.PENDING and run.error is None and run.recoveries == 0
    assert [s.seq for s in await store.load_steps("r1")] == [0]
    with pytest.raises(RunStateError):
        await store.retry_run("r1", now=at(7))
    with pytest.raises(RunNotFound):
        await store.retry_run("nope", now=at(7))


async def test_fork_copies_steps_before_and_patches(store: Store) -> None:
    claim = await claim_one(store, "r1")
    for seq in range(4):
        await store.record_step(claim, step(seq, output=str(seq * 10)), now=at(2))
    await store.close_claim(claim, Completed("1"), now=at(3))
    fork = await store.fork_run(
        "r1", from_seq=3, patch={1: '"patched"'}, new_run_id="f1", now=at(4)
    )
    assert fork.state is RunState.PENDING and fork.forked_from == "r1" and fork.input_json
    steps = await store.load_steps("f1")
    assert [(s.seq, s.output_json) for s in steps] == [(0, "0"), (1, '"patched"'), (2, "20")]


async def test_fork_with_bad_patch_writes_nothing(store: Store) -> None:
    claim = await claim_one(store, "r1")
    await store.record_step(claim, step(0), now=at(2))
    with pytest.raises(InvalidArgument):
        await store.fork_run("r1", from_seq=1, patch={5: "1"}, new_run_id="f1", now=at(3))
    with pytest.raises(InvalidArgument):
        await store.fork_run("r1", from_seq=1, patch={0: "1"}, new_run_id="r1", now=at(3))
    with pytest.raises(RunNotFound):
        await store.fork_run("nope", from_seq=1, patch={}, new_run_id="f2", now=at(3))
    assert await store.get_run("f1") is None
    assert await store.load_steps("f1") == []


# --- events and workers ----------------------------------------------------------------------


async def test_events_dedupe_by_index_and_read_after(store: Store) -> None:
    claim = await claim_one(store, "r1")
    await store.append_events(
        claim, [NewEvent("progress", '{"n":1}', 0), NewEvent("progress", '{"n":2}', 1)], now=at(2)
    )
    await store.append_events(claim, [NewEvent("progress", '{"n":1}', 0)], now=at(3))  # a replay
    events = await store.read_events("r1")
    user = [e for e in events if e.source == "user"]
    assert [(e.kind, e.data_json) for e in user] == [
        ("progress", '{"n":1}'),
        ("progress", '{"n":2}'),
    ]
    system = [e.kind for e in events if e.source == "system"]
    assert system[:1] == ["claimed"]
    later = await store.read_events("r1", after_id=user[0].event_id)
    assert [e.data_json for e in later if e.source == "user"] == ['{"n":2}']


async def test_workers_register_list_and_release(store: Store) -> None:
    await store.register_worker(W1, now=at(0))
    await store.register_worker(W2, now=at(0))
    await store.register_worker(W1, now=at(5))
    workers = {w.worker_id: w for w in await store.list_workers()}
    assert set(workers) == {"w1", "w2"} and workers["w1"].heartbeat_at == at(5)
    assert workers["w1"].queues == ("default",) and workers["w1"].pid == 101
    await claim_one(store, "r1", worker=W1)
    assert await store.release_worker_runs(["w1"], now=at(6)) == 1
    taken = await store.claim_runs(W2, ALL, limit=1, lease_s=30, now=at(6))
    assert [c.run_id for c in taken] == ["r1"] and taken[0].recovered
    assert {w.worker_id for w in await store.list_workers()} == {"w2"}
    await store.unregister_worker("w2")
    assert await store.list_workers() == []


async def test_migrate_is_idempotent_and_reports_version(store: Store) -> None:
    assert await store.migrate() == []
    version, latest = await store.schema_status()
    assert version == latest >= 1


# --- cost ledger -----------------------------------------------------------------------------


def ledger_entry(run_id: str, seq: int, model: str = "p/m", day: float = 2, **kw: Any) -> Any:
    from stepstone.core.ledger import LedgerEntry, MeteredCall

    fields: dict[str, Any] = {
        "model": model,
        "input_tokens": 100,
        "output_tokens": 10,
        "cache_read_tokens": None,
        "cache_write_tokens": None,
        "cost_usd": 0.25,
        "latency_s": 0.5,
    }
    fields.update(kw)
    return LedgerEntry(run_id, seq, f"s{seq}", "wf", "default", MeteredCall(**fields), at(day))


async def test_ledger_rows_are_written_with_their_step_and_rolled_up(store: Store) -> None:
    from stepstone.core.ledger import CostQuery

    claim = await claim_one(store, "r1")
    await store.record_step(claim, step(0), now=at(2), ledger=ledger_entry("r1", 0))
    entry = ledger_entry("r1", 1, "q/big", day=86400 * 2, cache_read_tokens=5, cost_usd=1.0)
    await store.record_step(claim, step(1), now=at(3), ledger=entry)
    # the same write again (a retried transaction) is one ledger row, not two
    await store.record_step(claim, step(1), now=at(4), ledger=entry)
    [total] = await store.cost(CostQuery(run_id="r1"))
    assert total.key is None and total.calls == 2
    assert (total.input_tokens, total.output_tokens, total.cache_read_tokens) == (200, 20, 5)
    assert total.cost_usd == pytest.approx(1.25) and total.latency_s == pytest.approx(1.0)
    by_model = await store.cost(CostQuery(by="model"))
    assert [(line.key, line.calls) for line in by_model] == [("q/big", 1), ("p/m", 1)]
    by_day = await store.cost(CostQuery(by="day"))
    assert sorted(line.key or "" for line in by_day) == ["2026-01-01", "2026-01-03"]
    assert [line.calls for line in await store.cost(CostQuery(since=at(86400)))] == [1]
    assert await store.cost(CostQuery(workflow="other")) == []
    assert await store.cost(CostQuery(queue="other")) == []
    [wf] = await store.cost(CostQuery(workflow="wf", queue="default", by="workflow"))
    assert wf.key == "wf" and wf.calls == 2


async def test_a_step_run_again_after_retry_is_a_second_call(store: Store) -> None:
    from stepstone.core.ledger import CostQuery

    claim = await claim_one(store, "r1")
    failed = StepRecord(0, "s0", StepKind.STEP, StepStatus.FAILED, error=ErrorInfo("E", "bad"))
    await store.record_step(claim, failed, now=at(2), ledger=ledger_entry("r1", 0, day=2))
    await store.close_claim(claim, Failed(ErrorInfo("E", "bad", step_seqs=(0,))), now=at(3))
    await store.retry_run("r1", now=at(4))
    again = (await store.claim_runs(W1, ALL, limit=1, lease_s=30, now=at(5)))[0]
    await store.record_step(again, step(0), now=at(6), ledger=ledger_entry("r1", 0, day=6))
    [line] = await store.cost(CostQuery(run_id="r1"))
    assert line.calls == 2 and line.input_tokens == 200


async def test_a_fenced_out_step_writes_no_ledger_row(store: Store) -> None:
    from stepstone.core.ledger import CostQuery

    first = await claim_one(store, "r1")
    await store.claim_runs(W2, ALL, limit=1, lease_s=30, now=at(40))
    with pytest.raises(LeaseLost):
        await store.record_step(first, step(0), now=at(41), ledger=ledger_entry("r1", 0))
    assert await store.cost(CostQuery()) == []
    assert await store.load_steps("r1") == []


async def test_ledger_rows_outlive_a_deleted_run(store: Store) -> None:
    from stepstone.core.ledger import CostQuery

    claim = await claim_one(store, "r1")
    await store.record_step(claim, step(0), now=at(2), ledger=ledger_entry("r1", 0))
    await store.close_claim(claim, Completed("1"), now=at(3))
    await store.delete_run("r1")
    [line] = await store.cost(CostQuery(run_id="r1"))
    assert line.calls == 1


async def test_budget_use_sums_the_ledger_per_scope_within_the_period(store: Store) -> None:
    from stepstone.core.ledger import Budget

    claim = await claim_one(store, "r1")
    await store.record_step(claim, step(0), now=at(2), ledger=ledger_entry("r1", 0, day=100))
    await store.record_step(claim, step(1), now=at(3), ledger=ledger_entry("r1", 1, day=5000))
    await store.set_budget("run", "r1", Budget(usd=1.0), now=at(1))
    await store.set_budget("workflow", "wf", Budget(tokens=1000, period_s=3600), now=at(1))
    await store.set_budget("queue", "other", Budget(usd=1.0), now=at(1))
    uses = {u.spec.scope: u for u in await store.budget_use("r1", "wf", "default", now=at(5100))}
    assert set(uses) == {"run", "workflow"}
    assert uses["run"].spent_usd == pytest.approx(0.5) and uses["run"].spent_tokens == 220
    # the workflow's budget counts the last hour only: the call at 5000 s, not the one at 100 s
    assert uses["workflow"].spent_tokens == 110
    assert uses["workflow"].fraction() == pytest.approx(0.11)
    await store.set_budget("run", "r1", None, now=at(6))
    assert {u.spec.scope for u in await store.budget_use("r1", "wf", "q", now=at(7))} == {
        "workflow"
    }
