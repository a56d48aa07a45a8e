"""How a claim ends when something goes wrong: a defect inside stepstone fails the run naming it,
an unavailable store hands the run back with a growing back-off, and a close the store refuses is
tried again (by a worker) until the store takes it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from stepstone.core.definitions import Workflow
from stepstone.core.engine import Runtime
from stepstone.core.executor import Ending, ExecutionHooks, end_claim, run_claim
from stepstone.core.failures import error_info
from stepstone.core.model import Claim, ErrorInfo, RunState
from stepstone.core.port import Failed, Released
from stepstone.errors import StoreError, StoreReadOnly, StoreUnavailable
from stepstone.runtime.logs import QuietLog

__all__ = ["StoreBackOff", "close_retrying", "internal_error", "run_safely"]

log = logging.getLogger("stepstone.runner")

_CLOSE_RETRY_FIRST_S = 0.1
_CLOSE_RETRY_MAX_S = 5.0


class StoreBackOff:
    """How long a run handed back because the store refused a write waits before its next
    claim: ``first_s``, doubled per consecutive failure of that run, up to ``max_s``."""

    def __init__(self, *, first_s: float = 0.5, max_s: float = 30.0, remember: int = 4096) -> None:
        self.first_s, self.max_s, self._remember = first_s, max_s, remember
        self._failures: dict[str, int] = {}

    def next_s(self, run_id: str) -> float:
        """Count one more failure of ``run_id``; its back-off."""
        failures = self._failures.get(run_id, 0) + 1
        if len(self._failures) >= self._remember:  # runs that went on elsewhere: forget them
            self._failures.clear()
        self._failures[run_id] = failures
        return float(min(self.first_s * 2.0 ** (failures - 1), self.max_s))

    def reset(self, run_id: str) -> None:
        """The store took the writes of an execution of ``run_id``."""
        self._failures.pop(run_id, None)


async def run_safely(
    rt: Runtime,
    claim: Claim,
    wf: Workflow[Any, Any],
    hooks: ExecutionHooks,
    back_off: StoreBackOff,
    extra: dict[str, Any],
) -> Ending | None:
    """How the claim must end (``None``: lease lost); never an exception, so no run is left
    running by one: a store error hands the run back, anything else fails it naming it."""
    try:
        return await run_claim(rt, claim, wf, hooks)
    except StoreError as exc:
        reason = f"the store failed: {exc}"
        return Ending(Released(reason, back_off.next_s(claim.run_id)))
    except Exception as exc:
        log.exception(
            "run %s (%s): stepstone itself failed while executing it; the run fails",
            claim.run_id,
            wf.name,
            extra=extra,
        )
        return Ending(Failed(internal_error(exc)))


async def close_retrying(
    rt: Runtime,
    claim: Claim,
    ending: Ending,
    *,
    retry: bool,
    stopped: asyncio.Event,
    quiet: QuietLog,
) -> RunState | None:
    """Close the claim (``None``: the lease was lost). With ``retry``, a close the store refuses
    because it is unavailable is tried again with a back-off until it is written or ``stopped``
    is set; then (or without ``retry``) the store's error is raised."""
    delay = 0.0
    while True:
        try:
            state = await end_claim(rt, claim, ending)
        except (StoreUnavailable, StoreReadOnly) as exc:
            if not retry or stopped.is_set():
                raise
            delay = min(max(delay * 2, _CLOSE_RETRY_FIRST_S), _CLOSE_RETRY_MAX_S)
            quiet.warning(
                "close",
                "run %s: the store refused to close its claim (%s); trying again",
                claim.run_id,
                exc,
            )
            waiter = asyncio.ensure_future(stopped.wait())
            try:  # asyncio.wait, not wait_for: 3.11's wait_for can swallow a cancel
                await asyncio.wait([waiter], timeout=delay)
            finally:
                waiter.cancel()
            continue
        if delay:
            quiet.recovered("close", "run %s: its claim is closed", claim.run_id)
        return state


def internal_error(exc: Exception) -> ErrorInfo:
    """The run's error for an exception raised inside stepstone itself (not by the workflow)."""
    try:
        info = error_info(exc)
    except Exception:  # its message or arguments cannot even be read
        info = ErrorInfo(type(exc).__qualname__, "<str() failed>", module=type(exc).__module__)
    suffix = "raised inside stepstone while it executed the run; a defect, please report it"
    message = f"{info.message} ({suffix})" if info.message else suffix
    return replace(info, message=message)
