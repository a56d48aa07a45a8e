"""Signals: sending one to a run (waking it if it waits for that name) and a run taking the
oldest unconsumed one whose payload its wait accepts as a journaled step (or recording that it
waits); a payload the wait refuses is marked rejected and never taken."""

from __future__ import annotations

from datetime import datetime

from stepstone.core.model import Claim, SignalRecord
from stepstone.core.port import PayloadCheck
from stepstone.errors import RunNotFound, RunStateError
from stepstone.store.rules import signal_awaited, signal_taken
from stepstone.store.scripts.runs import fence, get_run
from stepstone.store.scripts.tx import Tx

__all__ = ["list_signals", "send_signal", "take_signal"]


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
    if tx.attempt > 0:
        for earlier in await list_signals(tx, run_id):
            if (earlier.name, earlier.payload_json, earlier.created_at) == (
                name,
                payload_json,
                now,
            ):
                return earlier  # the earlier attempt committed
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
    if problem is None:
        await tx.run("wake_for_signal", {"run_id": run_id, "name": name, "now": now})
    return SignalRecord(
        added["signal_id"], run_id, name, payload_json, now, rejected_by, consumed_at, problem
    )


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
    payload, or record that step ``seq`` waits for one (until ``until``) and return None. Each
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
    waiting = signal_awaited(seq, name, until, now)
    params = tx.columns.step_params(claim.run_id, claim.lease_token, waiting)
    await tx.run("record_step_if_absent", params)
    return None


async def list_signals(tx: Tx, run_id: str) -> list[SignalRecord]:
    return [tx.columns.signal(r) for r in await tx.all("list_signals", {"run_id": run_id})]
