"""A skill's resources at run time: its prompts, and the run's folder for ``ctx.artifact``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from stepstone.core.resources import Prompt
from stepstone.desk.prompts import fill_prompt
from stepstone.errors import SkillError

__all__ = ["SkillFolder", "write_atomically"]


class SkillFolder:
    """The :class:`~stepstone.core.resources.SkillResources` of a skill folder. ``runs_dir`` is
    where each run's files go (``runs_dir/RUN/...``; the CLI passes ``~/.stepstone/runs``);
    None: ``ctx.artifact`` is refused."""

    def __init__(self, folder: Path, runs_dir: Path | None) -> None:
        self.folder = folder
        self.runs_dir = runs_dir

    def fill_prompt(self, name: str, variables: Mapping[str, Any]) -> Prompt:
        return fill_prompt(self.folder, name, variables)

    def write_artifact(self, run_id: str, path: str, content: str | bytes) -> str:
        if self.runs_dir is None:
            raise SkillError(
                f"ctx.artifact({path!r}): no runs folder was given for skill {self.folder.name!r}"
            )
        target = self.runs_dir / _run_folder(run_id) / _relative(path)
        data = content.encode("utf-8") if isinstance(content, str) else content
        write_atomically(target, data)
        return str(target)

    def __repr__(self) -> str:
        return f"SkillFolder({str(self.folder)!r})"


def _run_folder(run_id: str) -> str:
    if not run_id or "/" in run_id or "\\" in run_id or run_id in (".", ".."):
        raise SkillError(f"run id {run_id!r} cannot name a folder")
    return run_id


def _relative(path: str) -> Path:
    """``path`` as a path inside the run's folder; absolute paths and '..' are refused."""
    if not isinstance(path, str) or not path.strip():
        raise SkillError("ctx.artifact(path): path must be a non-empty relative path")
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if path.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise SkillError(
            f"ctx.artifact({path!r}): the path must stay inside the run's folder "
            "(relative, without '..')"
        )
    return Path(*parts)


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target``: a temporary file in the same folder, flushed, then renamed
    over it, so a reader sees the old file or the new one, never a torn one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        folder = os.open(target.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
