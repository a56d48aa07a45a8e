"""Load the user's app: ``--app module``, ``--app path/to/file.py``, ``--app module:attribute``,
``--app DIR`` (every YAML workflow in the folder) or ``-f FILE`` (one YAML workflow).

The current directory is put first on ``sys.path`` (as ``python -m`` does), so an ``app.py`` next
to where the command runs is found; ``PYTHONPATH`` works as usual. ``:attribute`` names a
``Registry``, a list of workflows or one workflow inside the module; without it every workflow
defined at the module's top level is served.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from stepstone.cli import specs
from stepstone.core.definitions import Registry, Workflow, as_registry
from stepstone.core.frozen import frozen
from stepstone.core.routing import Pool, Queue
from stepstone.errors import AppNotFound, UsageError


@frozen
class Target:
    """The workflows a command loaded, the one it acts on, and the flags that load them again
    (for the resume command it prints)."""

    registry: Registry
    workflow: Workflow[Any, Any]
    flags: tuple[str, ...]


def load_target(app: str | None, file: str | None, workflow: str | None, command: str) -> Target:
    """``WORKFLOW`` of ``--app``, or the workflow of ``-f FILE`` (not both)."""
    if file is not None:
        if workflow is not None:
            raise UsageError(
                f"give WORKFLOW with --app or -f FILE, not both (see `stepstone {command} --help`)"
            )
        wf = specs.load_workflow(file)
        return Target(wf.registry(), wf, ())  # a YAML run records its file: resume finds it
    if app is None:
        raise UsageError(f"--app MODULE or -f FILE is required (see `stepstone {command} --help`)")
    if workflow is None:
        raise UsageError(f"WORKFLOW is required with --app (see `stepstone {command} --help`)")
    registry = load_app(app)
    return Target(registry, registry.get(workflow), ("--app", app))


def load_registry(app: str | None, file: str | None) -> Registry | None:
    """The workflows of ``-f FILE`` or ``--app`` (None without either)."""
    if file is not None:
        return specs.load_workflow(file).registry()
    return load_app(app) if app else None


__all__ = ["Target", "app_declarations", "load_app", "load_registry", "load_target"]


def load_app(spec: str) -> Registry:
    """Import the app named by ``spec`` and return the workflows it defines (a folder: every
    YAML workflow in it)."""
    if os.path.isdir(spec):
        return specs.load_folder(spec)
    module_name, _, attribute = spec.partition(":")
    if not module_name:
        raise AppNotFound(spec, "no module named (use --app module, file.py or module:attribute)")
    module = _import(spec, module_name)
    target: Any = module
    if attribute:
        try:
            for part in attribute.split("."):
                target = getattr(target, part)
        except AttributeError:
            raise AppNotFound(spec, f"module {module.__name__!r} has no {attribute!r}") from None
    try:
        registry = as_registry(target)
    except Exception as exc:
        raise AppNotFound(
            spec, f"{attribute or module_name} is not a set of workflows ({exc})"
        ) from exc
    if not len(registry):
        raise AppNotFound(spec, "it defines no @workflow")
    return registry


def _import(spec: str, name: str) -> ModuleType:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    if name.endswith(".py") or os.sep in name:
        path = Path(name)
        if not path.is_file():
            raise AppNotFound(spec, f"no such file: {path}")
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        name = path.stem
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise AppNotFound(
                spec, f"no module named {exc.name!r} (looked in {cwd} and PYTHONPATH)"
            ) from exc
        raise AppNotFound(spec, f"importing it failed: {type(exc).__name__}: {exc}") from exc
    except SyntaxError as exc:
        where = f"{exc.filename}:{exc.lineno}" if exc.filename else "?"
        raise AppNotFound(spec, f"syntax error at {where}: {exc.msg}") from exc
    except Exception as exc:
        raise AppNotFound(spec, f"importing it failed: {type(exc).__name__}: {exc}") from exc


def app_declarations(spec: str) -> tuple[dict[str, Queue], dict[str, Pool]]:
    """The :class:`Queue` and :class:`Pool` objects the app module defines, by name (the module
    is already imported by :func:`load_app`)."""
    module_name = spec.partition(":")[0]
    if module_name.endswith(".py") or os.sep in module_name:
        module_name = Path(module_name).stem
    module = sys.modules.get(module_name)
    values = vars(module).values() if module is not None else ()
    queues = {v.name: v for v in values if isinstance(v, Queue)}
    pools = {v.name: v for v in values if isinstance(v, Pool)}
    return queues, pools
