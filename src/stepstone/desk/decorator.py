"""``@skill``: a workflow whose typed parameters are a skill's launch arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, overload

from stepstone.core.definitions import Workflow, workflow
from stepstone.errors import SkillError

__all__ = ["SKILL_MARK", "skill"]

SKILL_MARK = "_stepstone_skill"
"""Set in a workflow's ``__dict__`` by ``@skill``: its description (or "")."""


@overload
def skill(fn: Callable[..., Any], /) -> Workflow[Any, Any]: ...


@overload
def skill(
    *, name: str | None = None, description: str | None = None, queue: str | None = None
) -> Callable[[Callable[..., Any]], Workflow[Any, Any]]: ...


def skill(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    queue: str | None = None,
) -> Any:
    """Declare a skill's workflow. Its parameters after ``ctx`` are the launch arguments, each
    annotated (``stepstone launch`` converts the command line's text by the annotation); its
    name defaults to the skill's folder (the folder of the file it is defined in).

    >>> @skill
    ... async def greeter(ctx: WorkflowContext, name: str, times: int = 1) -> str:
    ...     return ctx.prompt("greeter.user", name=name) * times
    """

    def decorate(f: Callable[..., Any]) -> Workflow[Any, Any]:
        if not callable(f):
            raise SkillError(f"@skill needs a function, got {type(f).__name__}")
        where = _where(f)
        for param in list(inspect.signature(f).parameters.values())[1:]:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise SkillError(
                    f"{where}: @skill {f.__name__}: *{param.name} cannot be a launch argument; "
                    "name each parameter"
                )
            if param.annotation is inspect.Parameter.empty:
                raise SkillError(
                    f"{where}: @skill {f.__name__}: parameter {param.name!r} needs a type "
                    f"annotation (e.g. {param.name}: str), which launch converts arguments by"
                )
        folder = Path(inspect.getfile(f)).resolve().parent.name
        wf: Workflow[Any, Any] = workflow(name=name or folder, queue=queue)(f)
        doc = (inspect.getdoc(f) or "").strip().splitlines()
        wf.__dict__[SKILL_MARK] = description or (doc[0] if doc else "")
        return wf

    return decorate(fn) if fn is not None else decorate


def _where(f: Callable[..., Any]) -> str:
    try:
        return f"{inspect.getfile(f)}:{inspect.getsourcelines(f)[1]}"
    except (OSError, TypeError):
        return getattr(f, "__qualname__", "?")
