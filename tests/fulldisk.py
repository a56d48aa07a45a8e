"""A real full disk for tests: a small tmpfs mounted in tmp_path (needs root; skipped without).

``fill(leave=N)`` writes a filler file until only N bytes are free; ``free_up()`` deletes it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["Disk", "small_disk"]


class Disk:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, *, leave: int) -> None:
        """Take all but ``leave`` bytes (rounded to pages by tmpfs)."""
        size = max(self.free_bytes() - leave, 0)
        with self.filler.open("ab") as f:
            f.write(b"\0" * size)

    def free_up(self) -> None:
        self.filler.unlink(missing_ok=True)


def small_disk(tmp_path: Path, size: str = "2m") -> Iterator[Disk]:
    """Mount a tmpfs of ``size`` at tmp_path/disk for one test."""
    mount_at = tmp_path / "disk"
    mount_at.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_at)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield Disk(mount_at)
    finally:
        subprocess.run(["umount", "-l", str(mount_at)], check=False)
