"""Every example in examples/ runs to completion and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    "approval.py": "ordered espresso machine for 42.00 (approved by operator)",
    "worker_queue.py": "failed: ValueError: order id -4 is negative",
    "fan_out.py": "'final': {'url_length': 19, 'score': 1.9}",
    "sync_workflow.py": "['cat.png@128w', 'cat.png@512w', 'cat.png@1024w']",
    "crash_resume.py": "step 5 ran in pid",
    "versioning.py": "order-1 finished on v1: order-1 -> charged 10",
    "fleet.py": "reports running at once, at most: 2 (limit 2, one per user)",
    "flow_pipeline.py": "doc-7 is completed: {'approved': True, 'by': 'ana'}",
    "start_options.py": "charged ana 42.00 with key ...4242",
    "llm_scripted.py": "'score': 0.92} (after 2 model turns)",
    "agent_research.py": "completed: published 'Durable agent loops' (2 points)",
    "schedules.py": "again: ['existing', 'existing', 'existing']",
    "approval_gates.py": "Q4 report published on the blog (legal: ana, channel: bo)",
    "serve_webhook.py": "is completed: reserved 2 x espresso-beans",
    "memory.py": "visits: 14 (version 14); ann: ['durability', 'schedules']",
    "tracing.py": " spans, 1 trace",
    "dashboard.py": "run refund-ord-7: refunded 12.50 EUR on ord-7",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str, tmp_path: Path) -> None:
    args = [sys.executable, str(EXAMPLES / name)]
    if name == "approval.py":
        args += ["--db", f"sqlite:///{tmp_path / 'approval.db'}"]
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=120, cwd=tmp_path, env={**os.environ}
    )
    assert result.returncode == 0, result.stderr
    assert EXPECTED[name] in result.stdout, result.stdout


def test_every_example_is_covered() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(EXPECTED)


@pytest.mark.slow
def test_the_example_skill_launches_offline(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "STEPSTONE_SKILLS_PATH": str(EXAMPLES / "skills")}
    env = {k: v for k, v in env.items() if k not in ("STEPSTONE_DB", "STEPSTONE_APP")}
    launch = [sys.executable, "-m", "stepstone", "launch", "greeter", "ann", "--arg", "times=2"]
    result = subprocess.run(
        [*launch, "--await"], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, ann! Hello, ann!\n"
    inbox = (tmp_path / ".stepstone" / "INBOX.md").read_text()
    assert "greeted ann:\nHello, ann! Hello, ann!" in inbox
    [run_folder] = (tmp_path / ".stepstone" / "runs").iterdir()
    assert (run_folder / "prompt.txt").read_text().endswith("---\nHello, ann!\n")
