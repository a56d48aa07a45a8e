"""The command line's door to YAML workflows (``stepstone.spec``): loading a file or a folder,
listing the flows folders, and the output of cli steps. ``stepstone.spec`` is imported on use,
so other commands stay fast."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stepstone.core.definitions import Registry, Workflow
from stepstone.core.frozen import frozen
from stepstone.core.model import Run, StepRecord
from stepstone.errors import InvalidArgument

if TYPE_CHECKING:
    from stepstone.spec import SpecWorkflow, StepLog

__all__ = [
    "FlowFile",
    "find_flows",
    "is_spec_workflow",
    "load_folder",
    "load_workflow",
    "source_registry",
    "step_logs",
]


def load_workflow(path: str | Path) -> SpecWorkflow:
    """The workflow of one YAML file; a bad file raises SpecError (file:line:column)."""
    from stepstone.spec import load_workflow as load

    if not Path(path).is_file():
        raise InvalidArgument(f"-f {path}: no such file")
    return load(path)


def load_folder(path: str | Path) -> Registry:
    """Every YAML workflow in a folder (with their sub-workflows)."""
    from stepstone.spec import load_folder as load

    return load(path)


def is_spec_workflow(wf: Workflow[Any, Any]) -> bool:
    """Is ``wf`` compiled from YAML (its one argument is the ``inputs`` object)?"""
    from stepstone.spec import SpecWorkflow

    return isinstance(wf, SpecWorkflow)


def source_registry(run: Run, runs: Callable[[str], Run]) -> Registry | None:
    """The workflows of the YAML file a run (or the root run above it) recorded it runs, or
    None when it is not a YAML run. ``runs`` reads a run by id (to walk up to the root)."""
    from stepstone.spec import source_of

    while True:
        path = source_of(run.state_json)
        if path is not None:
            if not Path(path).is_file():
                raise InvalidArgument(
                    f"run {run.run_id} runs the YAML file {path}, which is gone: give -f FILE"
                )
            return load_workflow(path).registry()
        if run.parent_run_id is None:
            return None
        run = runs(run.parent_run_id)


def step_logs(steps: Sequence[StepRecord]) -> list[StepLog]:
    """The stdout, stderr and exit code of each YAML cli step among a run's recorded steps."""
    from stepstone.spec import step_logs as logs

    return logs(steps)


@frozen
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
                meta = wf.document.get("workflow", {})
                found[wf.name] = FlowFile(
                    wf.name,
                    _text(meta, "name"),
                    _text(meta, "version"),
                    _text(meta, "description"),
                    path.resolve(),
                )
    return [found[k] for k in sorted(found)]


def _text(meta: Mapping[str, Any], key: str) -> str | None:
    value = meta.get(key)
    return str(value) if value is not None else None
