"""Loading a skill: import its ``skill.py`` and find the workflow in it.

``skill.py`` is imported under a module name of its own (``stepstone_skill_<name>_<hash>``),
with its folder on ``sys.path`` so helper modules beside it import. The workflow is the one
``@skill`` function, else the only workflow (``@workflow`` function or built ``Flow``) the file
defines, else the one named like the folder; a ``Flow`` not yet built is built. The loaded
workflow gets the skill's :class:`~stepstone.desk.files.SkillFolder`, so ``ctx.prompt`` and
``ctx.artifact`` work in its runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import typing
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

from stepstone.core.definitions import Registry, Workflow
from stepstone.core.frozen import frozen
from stepstone.desk.decorator import SKILL_MARK
from stepstone.desk.discovery import SkillInfo, SkillRoot, find_skills
from stepstone.desk.files import SkillFolder
from stepstone.errors import SkillError

__all__ = ["LoadedSkill", "Param", "load_skill", "load_skills", "registry_of"]


@frozen
class Param:
    """A launch argument: a parameter of the skill's workflow after ``ctx``."""

    name: str
    type: Any
    required: bool
    default: Any = None

    @property
    def type_name(self) -> str:
        if self.type is inspect.Parameter.empty or self.type is None:
            return "any"
        name = getattr(self.type, "__name__", None)
        if name and not typing.get_args(self.type):
            return str(name)
        return str(self.type).replace("typing.", "")


@frozen
class LoadedSkill:
    """A skill ready to launch: where it was found, its workflow and its launch arguments."""

    info: SkillInfo
    workflow: Workflow[Any, Any]
    description: str | None
    params: tuple[Param, ...]

    @property
    def name(self) -> str:
        return self.info.name


def load_skill(info: SkillInfo, *, runs_dir: Path | None) -> LoadedSkill:
    """Import ``info``'s ``skill.py`` and return its workflow (SkillError naming the file when
    it fails to import or holds no single workflow)."""
    if info.kind != "stepstone":
        raise SkillError(f"skill {info.name!r} at {info.folder}: {info.note}")
    path = info.folder / "skill.py"
    module = _import(path)
    wf = _pick(module, info, path)
    wf.resources = SkillFolder(info.folder, runs_dir)
    if info.queue:  # skill.toml's queue is the runs' default, and what a skills worker serves
        wf.defaults = replace(wf.defaults, queue=info.queue)
    mark = wf.__dict__.get(SKILL_MARK)
    doc = (inspect.getdoc(wf.fn) or "").strip().splitlines()
    description = info.description or mark or (doc[0] if doc else None)
    return LoadedSkill(info, wf, description, _params(wf))


def load_skills(
    roots: Sequence[SkillRoot], *, runs_dir: Path | None
) -> tuple[list[LoadedSkill], list[tuple[SkillInfo, str]]]:
    """Every runnable skill of the path, loaded, and the ones that cannot be (with why);
    sagaflow's and shadowed folders are in neither list."""
    loaded: list[LoadedSkill] = []
    problems: list[tuple[SkillInfo, str]] = []
    for info in find_skills(roots):
        if info.shadowed_by is not None or info.kind == "sagaflow":
            continue
        if info.kind == "broken":
            problems.append((info, info.note or "broken"))
            continue
        try:
            loaded.append(load_skill(info, runs_dir=runs_dir))
        except SkillError as exc:
            problems.append((info, str(exc)))
    return loaded, problems


def registry_of(skills: Sequence[LoadedSkill]) -> Registry:
    """The workflows of these skills, for a worker (SkillError when two share a name)."""
    registry = Registry()
    for s in skills:
        existing = registry.workflows.get(s.workflow.name)
        if existing is not None and existing is not s.workflow:
            raise SkillError(
                f"two skills define the workflow {s.workflow.name!r}: {s.info.folder} and "
                f"{_folder_of(existing)}; rename one (@skill(name=...) or @workflow(name=...))"
            )
        registry.add(s.workflow)
    return registry


def _folder_of(wf: Workflow[Any, Any]) -> str:
    res = wf.resources
    return str(res.folder) if isinstance(res, SkillFolder) else "?"


def _import(path: Path) -> ModuleType:
    resolved = path.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
    safe = "".join(c if c.isalnum() else "_" for c in resolved.parent.name)
    name = f"stepstone_skill_{safe}_{digest}"
    module = sys.modules.get(name)
    if module is not None:
        return module
    folder = str(resolved.parent)
    if folder not in sys.path:
        sys.path.append(folder)
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise SkillError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise SkillError(f"{exc.filename or path}:{exc.lineno}: syntax error: {exc.msg}") from exc
    except Exception as exc:
        del sys.modules[name]
        raise SkillError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from exc
    return module


def _pick(module: ModuleType, info: SkillInfo, path: Path) -> Workflow[Any, Any]:
    found: dict[str, Workflow[Any, Any]] = {}
    flows: list[Any] = []
    for value in vars(module).values():
        if isinstance(value, Workflow):
            # defined here (a built Flow's function is the engine's: its class says it)
            mine = value.fn.__module__ == module.__name__ or type(value) is not Workflow
            if mine or SKILL_MARK in value.__dict__:
                found.setdefault(value.name, value)
        elif type(value).__name__ == "Flow" and callable(getattr(value, "build", None)):
            flows.append(value)
    for flow in flows:  # duck-typed: desk does not import stepstone.flow
        name = getattr(flow, "name", None)
        if name not in found:
            built = flow.build()
            if isinstance(built, Workflow):
                found.setdefault(built.name, built)
    marked = [wf for wf in found.values() if SKILL_MARK in wf.__dict__]
    if len(marked) == 1:
        return marked[0]
    candidates = marked or list(found.values())
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise SkillError(
            f"{path}: defines no workflow (an @skill or @workflow function, or a Flow)"
        )
    for wf in candidates:
        if wf.name in (info.name, info.name.replace("-", "_")):
            return wf
    names = ", ".join(sorted(wf.name for wf in candidates))
    raise SkillError(
        f"{path}: defines several workflows ({names}); mark the skill's one @skill or name it "
        f"{info.name!r}"
    )


def _params(wf: Workflow[Any, Any]) -> tuple[Param, ...]:
    sig = wf.signature
    params = []
    for p in sig.params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        hint = sig.hints.get(p.name, p.annotation)
        required = p.default is inspect.Parameter.empty
        params.append(Param(p.name, hint, required, None if required else p.default))
    return tuple(params)
