"""Execute a claimed run from the top and decide how the claim ends (complete, fail, wait, ...)."""

from __future__ import annotations

import asyncio
import contextvars
import json
from dataclasses import replace
from typing import Any

from stepstone.core import codec
from stepstone.core.context import SyncWorkflowContext, WorkflowContext
from stepstone.core.definitions import Workflow
from stepstone.core.engine import Execution, Runtime
from stepstone.core.failures import error_info
from stepstone.core.frozen import frozen
from stepstone.core.model import Claim, RunState, Wait
from stepstone.core.port import (
    Blocked,
    Cancelled,
    ClaimOutcome,
    Completed,
    Failed,
    Paused,
    Released,
    Suspended,
)
from stepstone.core.scope import active_caller
from stepstone.errors import (
    CancelRequested,
    CheckFrontier,
    CheckpointFailed,
    DeadlineExceeded,
    DeadlinePassed,
    HandBack,
    LeaseLost,
    MaxRecoveriesExceeded,
    NonDeterminismError,
    PauseRequested,
    StepstoneError,
    StoreError,
    Suspend,
    Unwind,
)

__all__ = [
    "CheckResult",
    "Ending",
    "ExecutionHooks",
    "check_run",
    "decode_input",
    "end_claim",
    "execute",
    "run_claim",
]


class ExecutionHooks:
    """What a runner wants to know about an execution while it runs (e.g. to cancel it on a
    heartbeat that finds the lease gone)."""

    def started(self, exe: Execution) -> None:  # pragma: no cover - default does nothing
        pass

    def finished(self, exe: Execution) -> None:  # pragma: no cover - default does nothing
        pass

    def store_back_off_s(self, run_id: str) -> float:
        """The store refused a write ``run_id`` needs (unavailable, full): how long the run
        waits before it may be claimed again. A runner grows it per consecutive failure."""
        return 0.0


_NO_HOOKS = ExecutionHooks()


@frozen
class Ending:
    """How an execution ends: the outcome to close its claim with, and the run's ``ctx.state``
    when it changed after the last checkpoint. Kept apart from closing, so that a close the
    store refused can be tried again as it is."""

    outcome: ClaimOutcome
    state_json: str | None = None


def decode_input(wf: Workflow[Any, Any], input_json: str) -> tuple[list[Any], dict[str, Any]]:
    """The run's stored input, decoded by the workflow's parameter annotations."""
    raw = json.loads(input_json)
    args, kwargs = list(raw.get("args", [])), dict(raw.get("kwargs", {}))
    sig = wf.signature
    positional = [p for p in sig.params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for i, value in enumerate(args):
        if i < len(positional):
            hint = sig.hints.get(positional[i].name, codec._NO_HINT)
            args[i] = codec.decode_value(
                value, hint, f"workflow {wf.name!r} input {positional[i].name}"
            )
    for key, value in kwargs.items():
        hint = sig.hints.get(key, codec._NO_HINT)
        kwargs[key] = codec.decode_value(value, hint, f"workflow {wf.name!r} input {key}")
    return args, kwargs


async def _invoke(exe: Execution, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Call the workflow function with the context (a sync workflow runs in a thread)."""
    wf = exe.wf
    if wf.is_async:
        return await wf.fn(WorkflowContext(exe), *args, **kwargs)
    ctx = contextvars.copy_context()
    return await exe.rt.workflow_pool.run(
        exe.loop, lambda: ctx.run(wf.fn, SyncWorkflowContext(exe), *args, **kwargs)
    )


def _early_outcome(rt: Runtime, claim: Claim, wf: Workflow[Any, Any]) -> ClaimOutcome | None:
    """Outcomes decided before any code runs: a pending cancel/pause, deadline, recoveries."""
    run = claim.run
    if run.control == "cancel":
        return Cancelled(run.control_reason)
    if run.control == "pause":
        return Paused()
    if run.deadline_at is not None and rt.clock.now() >= run.deadline_at:
        return Failed(error_info(DeadlineExceeded(run.run_id), with_traceback=False))
    limit = wf.max_recoveries if wf.max_recoveries is not None else rt.settings.max_recoveries
    if run.recoveries > limit:
        exc = MaxRecoveriesExceeded(run.run_id, run.recoveries, limit)
        return Failed(error_info(exc, with_traceback=False))
    return None


async def execute(
    rt: Runtime, claim: Claim, wf: Workflow[Any, Any], hooks: ExecutionHooks = _NO_HOOKS
) -> RunState | None:
    """Run ``claim`` until it completes, fails, waits or is stopped; close the claim.

    Returns the run's state afterwards, or ``None`` when the lease was lost (nothing was written).
    """
    ending = await run_claim(rt, claim, wf, hooks)
    return None if ending is None else await end_claim(rt, claim, ending)


async def run_claim(
    rt: Runtime, claim: Claim, wf: Workflow[Any, Any], hooks: ExecutionHooks = _NO_HOOKS
) -> Ending | None:
    """Run ``claim`` until it completes, fails, waits or is stopped; how its claim must end
    (``None``: the lease was lost, nothing may be written). A write the store refused because
    it is unavailable ends it :class:`Released` after the hooks' back-off."""
    early = _early_outcome(rt, claim, wf)
    if early is not None:
        return Ending(early)
    try:
        records = [] if claim.fresh else await rt.store.load_steps(claim.run_id)
    except StoreError as exc:  # nothing ran: whatever the store's trouble, try again later
        return Ending(_back_off(Released(reason=f"the store failed: {exc}"), claim, hooks))
    exe = Execution(rt, claim, wf, records)
    hooks.started(exe)
    try:
        outcome = await _run(exe)
    finally:
        hooks.finished(exe)
        await exe.cancel_in_flight()
    if outcome is None:
        return None
    try:
        return Ending(_back_off(outcome, claim, hooks), exe.values.take_state())
    except StepstoneError as exc:  # ctx.state changed since the last checkpoint to a bad value
        return Ending(Failed(error_info(exc)))


async def end_claim(rt: Runtime, claim: Claim, ending: Ending) -> RunState | None:
    """Close the claim as ``ending`` says; the run's state afterwards, or ``None`` when the
    lease was lost meanwhile (nothing written). A store error reaches the caller, who may try
    the same ending again."""
    try:
        return await rt.store.close_claim(
            claim, ending.outcome, now=rt.clock.now(), state_json=ending.state_json
        )
    except LeaseLost:
        return None


async def _run(exe: Execution) -> ClaimOutcome | None:
    """Run the workflow function and map how it ended to a claim outcome (None = lease lost)."""
    deadline_timer: asyncio.TimerHandle | None = None
    try:
        args, kwargs = decode_input(exe.wf, exe.run.input_json)
        token = active_caller.set(exe.steps)
        try:
            exe.task = asyncio.ensure_future(_invoke(exe, args, kwargs))
        finally:
            active_caller.reset(token)
        if exe.run.deadline_at is not None:
            remaining = (exe.run.deadline_at - exe.now()).total_seconds()
            deadline_timer = exe.loop.call_later(max(remaining, 0.0), exe.deadline_hit)
        result = await exe.task
    except asyncio.CancelledError:
        if exe.unwind is None:
            raise  # the runner itself is being cancelled
        return _unwound(exe, exe.unwind)
    except Suspend as suspend:
        return _unwound(exe, exe.unwind or suspend)
    except Unwind as unwind:
        return _unwound(exe, exe.set_unwind(unwind))
    except NonDeterminismError as exc:
        return _nondeterminism(exe, exc)
    except Exception as exc:
        if exe.unwind is not None:
            return _unwound(exe, exe.unwind)
        return Failed(error_info(exc))
    finally:
        if deadline_timer is not None:
            deadline_timer.cancel()
    if exe.unwind is not None or exe.parked:  # the code swallowed an unwind: it still applies
        return _unwound(exe, exe.unwind or Suspend("swallowed"))
    try:
        exe.journal.check_fully_consumed()
        output = codec.encode(result, f"workflow {exe.wf.name!r} result")
    except NonDeterminismError as exc:
        return _nondeterminism(exe, exc)
    except StepstoneError as exc:
        return Failed(error_info(exc))
    try:
        await exe.flush_background()
    except Unwind as unwind:  # a background write found the lease gone or the store refusing
        return _unwound(exe, exe.set_unwind(unwind))
    return Completed(output)


def _nondeterminism(exe: Execution, exc: NonDeterminismError) -> ClaimOutcome:
    if exe.run.version != exe.wf.version:
        return Blocked(
            f"{exc} (run started by version {exe.run.version}, code now is {exe.wf.version})"
        )
    return Failed(error_info(exc))


def _unwound(exe: Execution, unwind: BaseException) -> ClaimOutcome | None:
    if isinstance(unwind, LeaseLost):
        return None
    if isinstance(unwind, CancelRequested):
        return Cancelled(unwind.reason)
    if isinstance(unwind, PauseRequested):
        return Paused()
    if isinstance(unwind, DeadlinePassed):
        return Failed(error_info(DeadlineExceeded(exe.run.run_id), with_traceback=False))
    if isinstance(unwind, HandBack):
        return Released()
    if isinstance(unwind, CheckFrontier):
        return None
    if isinstance(unwind, CheckpointFailed):
        return _checkpoint_failed(unwind)
    waits = list(exe.parked)
    if exe.run.deadline_at is not None:
        waits.append(Wait("timer", -1, until=exe.run.deadline_at))
    return Suspended(tuple(waits))


def _back_off(outcome: ClaimOutcome, claim: Claim, hooks: ExecutionHooks) -> ClaimOutcome:
    """A run handed back because of the store waits the hooks' back-off before its next claim."""
    if isinstance(outcome, Released) and outcome.reason is not None:
        return replace(outcome, delay_s=hooks.store_back_off_s(claim.run_id))
    return outcome


def _checkpoint_failed(unwind: CheckpointFailed) -> ClaimOutcome:
    """An unavailable store is not the run's failure: hand it back (the caller adds the
    back-off); any other store error (a value the store refuses) fails the run with it."""
    if unwind.store_unavailable:
        return Released(reason=f"the store is unavailable: {unwind.error}")
    return Failed(error_info(unwind.error, with_traceback=False))


# --- stepstone check --------------------------------------------------------------------------


@frozen
class CheckResult:
    """Whether the code now deployed can continue a run: replayed without executing any step."""

    run_id: str
    workflow: str
    ok: bool
    replayed: int
    problem: str | None = None


async def check_run(rt: Runtime, claim: Claim, wf: Workflow[Any, Any]) -> CheckResult:
    """Replay the run's journal against ``wf`` without executing anything or writing anything.

    ``claim`` is a read-only stand-in (never written with); the replay stops at the first call that
    has no final recorded outcome.
    """
    records = await rt.store.load_steps(claim.run_id)
    exe = Execution(rt, claim, wf, records, check_only=True)
    replayed = 0
    problem: str | None = None
    try:
        args, kwargs = decode_input(wf, claim.run.input_json)
        token = active_caller.set(exe.steps)
        try:
            exe.task = asyncio.ensure_future(_invoke(exe, args, kwargs))
        finally:
            active_caller.reset(token)
        await exe.task
        exe.journal.check_fully_consumed()
    except CheckFrontier as frontier:
        replayed = frontier.seq
    except NonDeterminismError as exc:
        problem = str(exc)
    except CheckpointFailed as exc:  # a read the replay needs failed: the check cannot say
        raise exc.error from exc
    except Unwind:
        pass
    except Exception as exc:  # an error the recorded history raises again: the run fails the same
        replayed = len(records)
        problem = None if exc.__dict__.get("__stepstone_seqs__") else f"{type(exc).__name__}: {exc}"
    else:
        replayed = len(records)
    return CheckResult(claim.run_id, wf.name, problem is None, replayed, problem)
