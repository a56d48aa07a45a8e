"""Step failures: how an exception is stored, and how a stored one is raised again on replay.

A replay raises a recorded failure again so that ``except PaymentDeclined:`` in the workflow takes
the same path it took the first time. The class is found by its recorded module and qualified
name, but only among the types stepstone trusts — the database is data, and naming a module in it
must never make a worker import (and so run) that module:

- Python's builtin exceptions (``ValueError``, ``KeyError``, ``TimeoutError``, ...);
- stepstone's own errors (:mod:`stepstone.errors`);
- the app's types, as its :class:`~stepstone.core.definitions.Registry` knows them (see
  :class:`~stepstone.core.errortypes.AppErrors`).

Anything else, or a class that cannot be rebuilt from its recorded arguments, comes back as
:class:`~stepstone.errors.StepFailed` carrying the original type name and message.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import traceback
from typing import Protocol

from stepstone import errors
from stepstone.core.errortypes import find_exception
from stepstone.core.model import ErrorInfo
from stepstone.errors import StepFailed

__all__ = ["ErrorTypes", "error_info", "mark_steps", "rebuild_error"]


class ErrorTypes(Protocol):
    """Where the app's own exception types are found (a Registry)."""

    def error_type(self, module: str, qualname: str) -> type[Exception] | None: ...


def error_info(exc: BaseException, *, with_traceback: bool = True) -> ErrorInfo:
    """How a failure is stored: type, module, message, traceback, JSON args, causing steps."""
    try:
        args_json: str | None = json.dumps(list(exc.args))
    except (TypeError, ValueError):
        args_json = None
    tb = "".join(traceback.format_exception(exc)) if with_traceback else None
    return ErrorInfo(
        type=type(exc).__qualname__,
        message=str(exc),
        traceback=tb,
        module=type(exc).__module__,
        args_json=args_json,
        step_seqs=tuple(getattr(exc, "__stepstone_seqs__", ())),
    )


def mark_steps(exc: BaseException, seqs: tuple[int, ...]) -> None:
    """Note which steps failed with ``exc`` (stored with it, so a retry re-runs just those)."""
    # exceptions with __slots__ cannot carry it: a retry then re-runs no failed step
    with contextlib.suppress(AttributeError):
        exc.__stepstone_seqs__ = seqs  # type: ignore[attr-defined]


def _trusted_type(error: ErrorInfo, known: ErrorTypes) -> type[Exception] | None:
    module = error.module
    if not module:
        return None
    if module == "builtins":
        return find_exception(builtins, module, error.type)
    if module == errors.__name__:
        return find_exception(errors, module, error.type)
    return known.error_type(module, error.type)


def rebuild_error(error: ErrorInfo, known: ErrorTypes) -> Exception:
    """The exception a recorded step failure raises again on replay.

    A trusted class (see the module's docstring) is built from its recorded JSON args, so an
    ``except ValueError`` in the workflow takes the same path on replay. Otherwise a
    :class:`StepFailed` carrying the type name and message is raised instead.
    """
    cls = _trusted_type(error, known)
    if cls is not None:
        try:
            args = json.loads(error.args_json) if error.args_json else [error.message]
            return cls(*args)
        except Exception:
            pass
    return StepFailed(error.type, error.message)
