"""Execute a claimed run from the top and decide how the claim ends (complete, fail, wait, ...)."""

from __future__ import annotations

import asyncio
import contextvars
import json
from dataclasses import dataclass
from typing import Any

from stepstone.core import codec
from stepstone.core.context import SyncWorkflowContext, WorkflowContext
from stepstone.core.definitions import Workflow
from stepstone.core.engine import Execution, Runtime
from stepstone.core.failures import error_info
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
    DeadlineExceeded,
    DeadlinePassed,
    HandBack,
    LeaseLost,
    MaxRecoveriesExceeded,
    NonDeterminismError,
    PauseRequested,
    StepstoneError,
    Suspend,
    Unwind,
)

__all__ = ["CheckResult", "ExecutionHooks", "check_run", "decode_input", "execute"]


class ExecutionHooks:
    """What a runner wants to know about an execution while it runs (e.g. to cancel it on a
    heartbeat that finds the lease gone)."""

    def started(self, exe: Execution) -> None:  # pragma: no cover - default does nothing
        pass

    def finished(self, exe: Execution) -> None:  # pragma: no cover - default does nothing
        pass


_NO_HOOKS = ExecutionHooks()


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
    return await exe.loop.run_in_executor(
        exe.rt.workflow_pool, lambda: ctx.run(wf.fn, SyncWorkflowContext(exe), *args, **kwargs)
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
    early = _early_outcome(rt, claim, wf)
    if early is not None:
        return await _close(rt, claim, early, None)
    records = [] if claim.fresh else await rt.store.load_steps(claim.run_id)
    exe = Execution(rt, claim, wf, records)
    hooks.started(exe)
    try:
        outcome = await _run(exe)
    finally:
        hooks.finished(exe)
    if outcome is None:
        await exe.cancel_in_flight()
        return None
    await exe.cancel_in_flight()
    return await _close(rt, claim, outcome, exe)


async def _close(
    rt: Runtime, claim: Claim, outcome: ClaimOutcome, exe: Execution | None
) -> RunState | None:
    state_json = exe.values.take_state() if exe is not None else None
    try:
        return await rt.store.close_claim(claim, outcome, now=rt.clock.now(), state_json=state_json)
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
    await exe.flush_background()
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
    waits = list(exe.parked)
    if exe.run.deadline_at is not None:
        waits.append(Wait("timer", -1, until=exe.run.deadline_at))
    return Suspended(tuple(waits))


# --- stepstone check --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
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
    except Unwind:
        pass
    except Exception as exc:  # an error the recorded history raises again: the run fails the same
        replayed = len(records)
        problem = None if exc.__dict__.get("__stepstone_seqs__") else f"{type(exc).__name__}: {exc}"
    else:
        replayed = len(records)
    return CheckResult(claim.run_id, wf.name, problem is None, replayed, problem)
