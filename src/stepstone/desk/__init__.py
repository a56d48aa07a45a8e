"""The operator's desk: skills (a folder with ``skill.py``, ``prompts/*.md``, ``skill.toml``),
launching them, and the inbox of their outcomes.

>>> from stepstone.desk import skill
>>> @skill
... async def greeter(ctx: WorkflowContext, name: str) -> str:
...     return ctx.prompt("greeter.user", name=name)

Nothing here reads the environment: the CLI builds the skills path and the runs folder and
passes them in.
"""

from stepstone.desk.arguments import launch_arguments
from stepstone.desk.decorator import skill
from stepstone.desk.discovery import SkillInfo, SkillRoot, find_skill, find_skills
from stepstone.desk.files import SkillFolder
from stepstone.desk.inbox_file import render_inbox, write_inbox_file
from stepstone.desk.loading import LoadedSkill, Param, load_skill, load_skills, registry_of
from stepstone.desk.prompts import fill_prompt
from stepstone.desk.scaffold import new_skill

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
