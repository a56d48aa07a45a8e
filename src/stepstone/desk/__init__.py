"""The operator's desk: skills (a folder with ``skill.py``, ``prompts/*.md``, ``skill.toml``),
launching them, and the inbox of their outcomes.

>>> from stepstone.desk import skill
>>> @skill
... async def greeter(ctx: WorkflowContext, name: str) -> str:
...     return ctx.prompt("greeter.user", name=name)

Nothing here reads the environment: the CLI builds the skills path and the runs folder and
passes them in. Names load on first use, so the session hook (``stepstone.desk.hook``) stays
fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stepstone.desk.arguments import launch_arguments
    from stepstone.desk.decorator import skill
    from stepstone.desk.discovery import SkillInfo, SkillRoot, find_skill, find_skills
    from stepstone.desk.files import SkillFolder
    from stepstone.desk.inbox_file import render_inbox, write_inbox_file
    from stepstone.desk.loading import LoadedSkill, Param, load_skill, load_skills, registry_of
    from stepstone.desk.prompts import fill_prompt
    from stepstone.desk.scaffold import new_skill

_LAZY = {
    "launch_arguments": "stepstone.desk.arguments",
    "skill": "stepstone.desk.decorator",
    "SkillInfo": "stepstone.desk.discovery",
    "SkillRoot": "stepstone.desk.discovery",
    "find_skill": "stepstone.desk.discovery",
    "find_skills": "stepstone.desk.discovery",
    "SkillFolder": "stepstone.desk.files",
    "render_inbox": "stepstone.desk.inbox_file",
    "write_inbox_file": "stepstone.desk.inbox_file",
    "LoadedSkill": "stepstone.desk.loading",
    "Param": "stepstone.desk.loading",
    "load_skill": "stepstone.desk.loading",
    "load_skills": "stepstone.desk.loading",
    "registry_of": "stepstone.desk.loading",
    "fill_prompt": "stepstone.desk.prompts",
    "new_skill": "stepstone.desk.scaffold",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'stepstone.desk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "LoadedSkill",
    "Param",
    "SkillFolder",
    "SkillInfo",
    "SkillRoot",
    "fill_prompt",
    "find_skill",
    "find_skills",
    "launch_arguments",
    "load_skill",
    "load_skills",
    "new_skill",
    "registry_of",
    "render_inbox",
    "skill",
    "write_inbox_file",
]
