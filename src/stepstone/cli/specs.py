"""The command line's door to YAML workflows (``stepstone.spec``): loading a file or a folder,
listing the flows folders, and a cli step's output, imported on use so other commands stay fast.

Until ``stepstone.spec`` provides ``load_workflow``/``load_folder``/``step_logs`` every YAML
command fails with one clear line (exit 4) instead of a traceback.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepstone.core.definitions import Registry, Workflow
from stepstone.core.model import StepRecord
from stepstone.errors import InvalidArgument

__all__ = [
    "FlowFile",
    "StepOutput",
    "find_flows",
    "is_spec_workflow",
    "load_folder",
    "load_workflow",
    "step_logs",
]


def _spec(name: str) -> Callable[..., Any]:
    try:
        module = importlib.import_module("stepstone.spec")
    except ImportError as exc:
        raise InvalidArgument(f"YAML workflows are not available: {exc}") from exc
    function = getattr(module, name, None)
    if function is None:
        raise InvalidArgument(
            f"YAML workflows are not available in this build (stepstone.spec has no {name})"
        )
    loaded: Callable[..., Any] = function
    return loaded


def load_workflow(path: str | Path) -> Workflow[Any, Any]:
    """The workflow of one YAML file; a bad file raises the spec's error (file:line:column)."""
    if not Path(path).is_file():
        raise InvalidArgument(f"-f {path}: no such file")
    wf: Workflow[Any, Any] = _spec("load_workflow")(Path(path))
    return wf


def load_folder(path: str | Path) -> Registry:
    """Every YAML workflow in a folder."""
    registry: Registry = _spec("load_folder")(Path(path))
    return registry


def is_spec_workflow(wf: Workflow[Any, Any]) -> bool:
    """Is ``wf`` compiled from YAML (its one argument is the ``inputs`` object)?"""
    try:
        module = importlib.import_module("stepstone.spec")
    except ImportError:
        return False
    cls = getattr(module, "SpecWorkflow", None)
    return cls is not None and isinstance(wf, cls)


@dataclass(frozen=True, slots=True)
class StepOutput:
    """What a YAML cli step printed, and how it exited."""

    step_id: str
    stdout: str
    stderr: str
    exit_code: int | None


def step_logs(steps: Sequence[StepRecord]) -> list[StepOutput]:
    """The output of each YAML cli step among a run's recorded steps."""
    return [
        StepOutput(log.step_id, log.stdout, log.stderr, log.exit_code)
        for log in _spec("step_logs")(list(steps))
    ]


@dataclass(frozen=True, slots=True)
class FlowFile:
    """A YAML workflow found in a flows folder."""

    id: str
    name: str | None
    version: str | None
    description: str | None
    path: Path


def find_flows(cwd: Path, env: Mapping[str, str]) -> list[FlowFile]:
    """The YAML workflows in ``./.stepstone/flows`` and ``$HOME/.stepstone/flows`` (the first
    of an id wins), sorted by id. Files that do not load are skipped."""
    folders = [cwd / ".stepstone" / "flows"]
    if env.get("HOME"):
        folders.append(Path(env["HOME"]) / ".stepstone" / "flows")
    found: dict[str, FlowFile] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            try:
                wf = load_workflow(path)
            except Exception:  # a broken file is `validate`'s business, not the listing's
                continue
            if wf.name not in found:
                found[wf.name] = FlowFile(
                    wf.name,
                    _text(wf, "title"),
                    wf.version,
                    _text(wf, "description"),
                    path.resolve(),
                )
    return [found[k] for k in sorted(found)]


def _text(wf: Workflow[Any, Any], attribute: str) -> str | None:
    value = getattr(wf, attribute, None)
    return value if isinstance(value, str) else None
