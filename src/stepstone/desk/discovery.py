"""Finding skills: the folders of the skills path, in order, first match wins.

The CLI builds the path (``./skills``, ``~/.stepstone/skills``, the folders of
``STEPSTONE_SKILLS_PATH``, ``~/.claude/skills``) and passes it here; nothing in this module reads
the environment. A skill is a folder ``NAME/`` holding ``skill.py`` (and optionally
``prompts/*.md`` and ``skill.toml``). sagaflow's skills (``workflow.py`` plus an ``__init__.py``
with ``register()``) are listed with a note and never run. In ``~/.claude/skills`` folders that
are neither (Claude Code's own skills) are skipped silently; elsewhere a folder without
``skill.py`` is listed as broken, with why.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from stepstone.core.frozen import frozen
from stepstone.errors import SkillError, SkillNotFound

__all__ = ["SkillInfo", "SkillRoot", "find_skill", "find_skills", "read_skill_toml"]

SkillKind = Literal["stepstone", "sagaflow", "broken"]

SAGAFLOW_NOTE = "a sagaflow skill (register()): listed, not run; port it to skill.py"


@frozen
class SkillRoot:
    """One folder of the skills path and how it got there (``origin``, e.g. ``./skills`` or
    ``STEPSTONE_SKILLS_PATH``). ``sagaflow_only``: only sagaflow skills are looked for (the
    folder holds other kinds of skills, like ``~/.claude/skills``)."""

    path: Path
    origin: str
    sagaflow_only: bool = False


@frozen
class SkillInfo:
    """A skill folder as found (nothing imported yet). ``note`` says why a ``broken`` or
    ``sagaflow`` skill cannot run; ``shadowed_by`` is the folder of the same name found first."""

    name: str
    folder: Path
    origin: str
    kind: SkillKind
    description: str | None = None
    queue: str | None = None
    budget_usd: float | None = None
    note: str | None = None
    shadowed_by: Path | None = None

    @property
    def runnable(self) -> bool:
        return self.kind == "stepstone" and self.shadowed_by is None


def find_skills(roots: Sequence[SkillRoot]) -> list[SkillInfo]:
    """Every skill of every root, in path order (later ones of a name marked shadowed)."""
    found: list[SkillInfo] = []
    first: dict[str, Path] = {}
    for root in roots:
        for info in _skills_in(root):
            if info.name in first:
                info = replace(info, shadowed_by=first[info.name])
            else:
                first[info.name] = info.folder
            found.append(info)
    return found


def find_skill(roots: Sequence[SkillRoot], name: str) -> SkillInfo:
    """The skill ``name`` (the first folder of that name on the path), ready to load; a sagaflow
    or broken one raises SkillError naming its folder, a missing one SkillNotFound."""
    skills = find_skills(roots)
    for info in skills:
        if info.name == name and info.shadowed_by is None:
            if info.kind != "stepstone":
                raise SkillError(f"skill {name!r} at {info.folder}: {info.note}")
            return info
    searched = tuple(str(r.path) for r in roots)
    raise SkillNotFound(name, searched, tuple(sorted({s.name for s in skills if s.runnable})))


def _skills_in(root: SkillRoot) -> Iterable[SkillInfo]:
    try:
        entries = sorted(p for p in root.path.iterdir() if p.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return
    for folder in entries:
        if folder.name.startswith((".", "_")):
            continue
        if _is_sagaflow(folder):
            yield SkillInfo(folder.name, folder, root.origin, "sagaflow", note=SAGAFLOW_NOTE)
        elif root.sagaflow_only:
            continue
        elif not (folder / "skill.py").is_file():
            note = f"no skill.py in {folder}"
            yield SkillInfo(folder.name, folder, root.origin, "broken", note=note)
        else:
            try:
                meta = read_skill_toml(folder)
            except SkillError as exc:
                yield SkillInfo(folder.name, folder, root.origin, "broken", note=str(exc))
                continue
            yield SkillInfo(
                folder.name,
                folder,
                root.origin,
                "stepstone",
                description=meta.get("description"),
                queue=meta.get("queue"),
                budget_usd=meta.get("budget_usd"),
            )


def _is_sagaflow(folder: Path) -> bool:
    init = folder / "__init__.py"
    if (folder / "skill.py").exists() or not init.is_file():
        return False
    try:
        text = init.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "def register(" in text


_TOML_KEYS: dict[str, tuple[type, ...]] = {
    "description": (str,),
    "queue": (str,),
    "budget_usd": (int, float),
}


def read_skill_toml(folder: Path) -> dict[str, Any]:
    """``skill.toml``'s values (description, queue, budget_usd); {} when there is none."""
    path = folder / "skill.toml"
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise SkillError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise SkillError(f"{path}: cannot read it: {exc}") from None
    for key, value in data.items():
        types = _TOML_KEYS.get(key)
        if types is None:
            known = ", ".join(_TOML_KEYS)
            raise SkillError(f"{path}: unknown key {key!r} (known: {known})")
        if not isinstance(value, types) or isinstance(value, bool):
            raise SkillError(f"{path}: {key} must be a {types[-1].__name__}, got {value!r}")
    budget = data.get("budget_usd")
    if budget is not None and budget < 0:
        raise SkillError(f"{path}: budget_usd must be >= 0, got {budget}")
    return dict(data)
