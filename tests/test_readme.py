"""The README's quick start is a module a worker can import without side effects."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def _quick_start() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## In 30 seconds", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


def test_importing_the_quick_start_starts_nothing(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(_quick_start())
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    probe = "import shop\nfrom stepstone import Client\nwith Client() as c: print(len(c.list()))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"  # importing the module (as a worker does) enqueued nothing
    started = subprocess.run(
        [sys.executable, "shop.py"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert started.returncode == 0, started.stderr
    assert len(started.stdout.strip()) == 26  # the run id (a ULID)


def test_the_readme_yaml_workflow_is_valid(tmp_path: Path) -> None:
    from stepstone.spec import load_workflow

    section = (ROOT / "README.md").read_text().split("## YAML workflows and the agent contract")[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match is not None
    (tmp_path / "publish.yaml").write_text(match.group(1))
    wf = load_workflow(tmp_path / "publish.yaml")
    assert wf.name == "publish"
    assert [s["id"] for s in wf.document["workflow"]["steps"]] == [
        "plan",
        "approval",
        "apply",
        "rejected",
    ]
