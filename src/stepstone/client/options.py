"""Start options given as keywords beside a workflow's own arguments: which is which.

The typed way to pass options is ``client.with_options(StartOptions(...))``; for convenience
``start``/``run`` also take them as keywords. A keyword that names a parameter of the workflow
is the workflow's argument (the workflow wins); any other option name is an option.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from stepstone.core.definitions import Workflow
from stepstone.core.routing import StartOptions
from stepstone.errors import InvalidArgument

__all__ = ["NO_OPTIONS", "OPTION_NAMES", "check_run_options", "split_options"]

OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(StartOptions))
_RUN_OPTIONS = frozenset({"run_id", "queue", "deadline_s"})
NO_OPTIONS = StartOptions()
"""No option given (shared: a call without options allocates nothing)."""


def split_options(
    wf: Workflow[Any, Any], kwargs: dict[str, Any]
) -> tuple[StartOptions, dict[str, Any]]:
    """(the start options, the workflow's own keyword arguments) from one ``**kwargs``."""
    if not kwargs:
        return NO_OPTIONS, kwargs
    params = {p.name for p in wf.signature.params}
    base = kwargs.get("options") if "options" not in params else None
    if base is not None and not isinstance(base, StartOptions):
        raise InvalidArgument(f"options must be a StartOptions, got {type(base).__name__}")
    given: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key == "options" and "options" not in params:
            continue
        if key in OPTION_NAMES and key not in params:
            if value is not None and not (key == "on_conflict" and value == "return"):
                given[key] = value
        else:
            rest[key] = value
    opts = base or NO_OPTIONS
    return (dataclasses.replace(opts, **given) if given else opts), rest


def check_run_options(opts: StartOptions) -> None:
    """``run`` executes here and now: routing and timing options do not apply to it."""
    if opts is NO_OPTIONS:
        return
    defaults = NO_OPTIONS
    extra = sorted(
        name
        for name in OPTION_NAMES - _RUN_OPTIONS
        if getattr(opts, name) != getattr(defaults, name)
    )
    if extra:
        raise InvalidArgument(
            f"run() executes here: only run_id, queue and deadline_s apply, not {', '.join(extra)}"
            " (use start() for a worker)"
        )
