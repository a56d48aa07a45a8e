"""Errors only the command line raises: usage mistakes, an unimportable app, failed checks.

They join the one tree of :mod:`stepstone.errors` (every one is a ``StepstoneError``) so that the
exit-code table in :mod:`stepstone.cli.main` maps them like any other error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stepstone.errors import StepstoneError, WaitTimeout

if TYPE_CHECKING:
    from stepstone.cli.output import Output

__all__ = ["AppNotFound", "ChecksFailed", "StillWaiting", "UsageError"]


class UsageError(StepstoneError):
    """The command line itself is wrong: an unknown flag, a missing argument, a bad combination."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


class AppNotFound(StepstoneError, LookupError):
    """``--app`` names a module that cannot be imported (missing, or it raised while importing)."""

    def __init__(self, app: str, problem: str) -> None:
        super().__init__(f"cannot import app {app!r}: {problem}")
        self.app, self.problem = app, problem


class ChecksFailed(StepstoneError):
    """``stepstone check`` found runs that the code now loaded cannot continue."""

    def __init__(self, failed: int, total: int, output: Output) -> None:
        super().__init__(
            f"{failed} of {total} unfinished run(s) cannot continue with the code now loaded "
            "(deploying it would block them)"
        )
        self.failed, self.total, self.output = failed, total, output


class StillWaiting(WaitTimeout):
    """``--timeout-s`` ran out before the run finished; says what the run is doing."""

    def __init__(self, run_id: str, state: str, doing: str, timeout_s: float | None) -> None:
        super().__init__(f"the result of run {run_id}", timeout_s)
        self.args = (f"{self.args[0]}; it is still {state} ({doing})",)
        self.run_id, self.state, self.doing = run_id, state, doing
