"""``stepstone skill new NAME``: a skill folder that runs offline at once."""

from __future__ import annotations

import re
from pathlib import Path

from stepstone.errors import InvalidArgument

__all__ = ["new_skill"]

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")

SKILL_PY = '''\
"""The {name} skill: greets someone, writes the greeting to the run's folder, and says so in the
inbox. Launch it with `stepstone launch {name} ann --await`."""

from stepstone import WorkflowContext, step
from stepstone.desk import skill


@step
def shout(text: str) -> str:
    return text.upper()  # a checkpointed step: replace with real work (a model call, a tool)


@skill
async def {func}(ctx: WorkflowContext, name: str, excited: bool = False) -> str:
    """Greet NAME (and shout it when excited)."""
    greeting = ctx.prompt("greeter.user", name=name).strip()
    if excited:
        greeting = await shout(greeting)
    ctx.artifact("greeting.txt", greeting + "\\n")
    ctx.notify(f"greeted {{name}}: {{greeting}}")
    return greeting
'''

PROMPT = """\
---
tier: haiku
max_tokens: 64
---
Hello, $name!
"""

TOML = """\
description = "Greets someone; a starting point for a skill of your own"
queue = "default"
# budget_usd = 0.50   # each launch's model-call budget (stored; the run pauses at it)
"""


def new_skill(folder: Path, name: str) -> list[Path]:
    """Create ``folder/NAME`` with ``skill.py``, ``skill.toml`` and ``prompts/greeter.user.md``;
    an existing folder is refused (nothing is overwritten). Returns the files written."""
    if not _NAME.match(name):
        raise InvalidArgument(
            f"skill name {name!r}: expected lower-case letters, digits, '-' and '_', starting "
            "with a letter"
        )
    target = folder / name
    if target.exists():
        raise InvalidArgument(f"{target} already exists; nothing was written")
    func = name.replace("-", "_")
    files = {
        target / "skill.py": SKILL_PY.format(name=name, func=func),
        target / "skill.toml": TOML,
        target / "prompts" / "greeter.user.md": PROMPT,
    }
    (target / "prompts").mkdir(parents=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)
