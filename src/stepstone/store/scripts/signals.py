"""Signals: sending one to a run (waking it if it waits for that name) and a run taking the
oldest unconsumed one whose payload its wait accepts as a journaled step (or recording that it
waits); a payload the wait refuses is marked rejected and never taken."""

from __future__ import annotations

from datetime import datetime

from stepstone.core.model import Claim, RunState, SignalRecord
from stepstone.core.port import PayloadCheck
from stepstone.errors import AlreadyResumed, RunNotFound, RunStateError
from stepstone.store.rules import signal_awaited, signal_taken, signal_timed_out
from stepstone.store.scripts.runs import fence, get_run
from stepstone.store.scripts.tx import Tx

__all__ = ["list_signals", "resume_with_signal", "send_signal", "take_signal"]


async def send_signal(
    tx: Tx,
    run_id: str,
    name: str,
    payload_json: str,
    now: datetime,
    problem: str | None = None,
    rejected_by: int | None = None,
) -> SignalRecord:
    """Store the signal for an unfinished run and wake the run if it waits for ``name``; with a
    ``problem``, store it rejected (by wait ``rejected_by``, if any) and wake nothing."""
    if tx.attempt > 0 and (earlier := await _committed_before(tx, run_id, name, payload_json, now)):
        return earlier
    added = await _insert(tx, run_id, name, payload_json, now, rejected_by, problem)
    if problem is None:
        await tx.run("wake_for_signal", {"run_id": run_id, "name": name, "now": now})
    return added


async def resume_with_signal(
    tx: Tx, run_id: str, name: str, payload_json: str, now: datetime
) -> SignalRecord:
    """Deliver signal ``name`` to a run that waits for it now, exactly once: the conditional
    wake-up (the run is waiting, for ``name``) and, only if it woke the run, the signal. When
    it did not, nothing is written and the error says why: no such run, the run is finished,
    it waits for something else (named), or it was resumed already (:class:`AlreadyResumed`)."""
    if tx.attempt > 0 and (earlier := await _committed_before(tx, run_id, name, payload_json, now)):
        return earlier
    if await tx.run("wake_for_signal", {"run_id": run_id, "name": name, "now": now}) != 1:
        raise await _not_resumable(tx, run_id, name)
    return await _insert(tx, run_id, name, payload_json, now, None, None)


async def _committed_before(
    tx: Tx, run_id: str, name: str, payload_json: str, now: datetime
) -> SignalRecord | None:
    """On a retried attempt: the signal its earlier attempt stored, if that one committed."""
    for earlier in await list_signals(tx, run_id):
        if (earlier.name, earlier.payload_json, earlier.created_at) == (name, payload_json, now):
            return earlier
    return None


async def _insert(
    tx: Tx,
    run_id: str,
    name: str,
    payload_json: str,
    now: datetime,
    rejected_by: int | None,
    problem: str | None,
) -> SignalRecord:
    """Store one signal for an unfinished run (else RunNotFound / RunStateError)."""
    consumed_at = now if rejected_by is not None else None
    params = {
        "run_id": run_id,
        "name": name,
        "payload": payload_json,
        "now": now,
        "seq": rejected_by,
        "consumed_at": consumed_at,
        "problem": problem,
    }
    added = await tx.one("insert_signal", params)
    if added is None:
        run = await get_run(tx, run_id)
        if run is None:
            raise RunNotFound(run_id)
        raise RunStateError(
            run_id, run.state.value, f"send signal {name!r} to", "an unfinished run"
        )
    return SignalRecord(
        added["signal_id"], run_id, name, payload_json, now, rejected_by, consumed_at, problem
    )


async def _not_resumable(tx: Tx, run_id: str, name: str) -> Exception:
    run = await get_run(tx, run_id)
    action = f"resume with event {name!r}"
    if run is None:
        return RunNotFound(run_id)
    if run.is_finished:
        return RunStateError(run_id, run.state.value, "resume", f"a run waiting for {name!r}")
    if run.state is RunState.WAITING:
        events = sorted({w.name for w in run.waits if w.kind == "signal" and w.name})
        what = " or ".join(f"event {e!r}" for e in events) or "no event (a timer or child run)"
        error = RunStateError(run_id, run.state.value, action, what)
        error.args = (f"cannot resume run {run_id} with event {name!r}: it waits for {what}",)
        return error
    if run.state in (RunState.PENDING, RunState.RUNNING):
        return AlreadyResumed(run_id, run.state.value, name)
    return RunStateError(run_id, run.state.value, "resume", f"a run waiting for {name!r}")


async def take_signal(
    tx: Tx,
    claim: Claim,
    seq: int,
    name: str,
    until: datetime | None,
    now: datetime,
    check: PayloadCheck | None = None,
) -> str | None:
    """Consume the oldest signal ``name`` that ``check`` accepts as step ``seq`` and return its
    payload, or record that step ``seq`` waits for one (until ``until``; timed out already when
    ``until`` is not after ``now``) and return None. Each
    older one ``check`` refuses is marked rejected by ``seq``, with the problem."""
    await fence(tx, claim)
    params = {"run_id": claim.run_id, "name": name, "seq": seq}
    found = await tx.one("next_signal", params)
    while found is not None and found["consumed_seq"] is None and check is not None:
        problem = check(found["payload"])
        if problem is None:
            break
        reject = {"seq": seq, "now": now, "signal_id": found["signal_id"], "problem": problem}
        await tx.run("reject_signal", reject)
        found = await tx.one("next_signal", params)
    if found is not None:
        if found["consumed_seq"] is None:  # else: this wait took it in an attempt now retried
            consume = {"seq": seq, "now": now, "signal_id": found["signal_id"]}
            await tx.run("consume_signal", consume)
        payload: str = found["payload"]
        record = signal_taken(seq, name, payload, now)
        await tx.run("record_step", tx.columns.step_params(claim.run_id, claim.lease_token, record))
        return payload
    if until is not None and until <= now:  # its time is up: one write, no wait
        timed_out = signal_timed_out(seq, name, now)
        params = tx.columns.step_params(claim.run_id, claim.lease_token, timed_out)
        await tx.run("record_step", params)
        return None
    waiting = signal_awaited(seq, name, until, now)
    params = tx.columns.step_params(claim.run_id, claim.lease_token, waiting)
    await tx.run("record_step_if_absent", params)
    return None


async def list_signals(tx: Tx, run_id: str) -> list[SignalRecord]:
    return [tx.columns.signal(r) for r in await tx.all("list_signals", {"run_id": run_id})]
