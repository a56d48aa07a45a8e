"""YAML workflows on the command line: init, validate, run/resume -f FILE, --app DIR, logs of cli
steps, flows (./.stepstone/flows and ~/.stepstone/flows), --format cpf for validate.

In-process through ``main(argv, env=...)``, real SQLite files in tmp_path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from stepstone.cli.main import main
from stepstone.cli.scaffold import TEMPLATE

SCHEMA_FILE = Path(__file__).parent / "data" / "checkpointflow-run-envelope.schema.json"


class Yaml:
    def __init__(self, cwd: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.cwd, self.capsys = cwd, capsys
        self.db = f"sqlite:///{cwd / 't.db'}"
        self.env = {"HOME": str(home)}

    def __call__(self, *argv: str, code: int = 0) -> tuple[str, str]:
        got = main([*argv, "--db", self.db], env=self.env)
        out, err = self.capsys.readouterr()
        assert got == code, f"`stepstone {' '.join(argv)}` exited {got}, not {code}\n{out}\n{err}"
        return out, err

    def cpf(self, *argv: str, code: int) -> dict[str, Any]:
        out, _ = self(*argv, "--format", "cpf", code=code)
        envelope: dict[str, Any] = json.loads(out)
        jsonschema.validate(envelope, json.loads(SCHEMA_FILE.read_text()))
        return envelope


@pytest.fixture
def yaml_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Yaml:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    monkeypatch.chdir(work)
    return Yaml(work, home, capsys)


def test_init_validate_run_resume_and_logs_of_a_yaml_file(yaml_cli: Yaml) -> None:
    yaml_cli("init")
    out, _ = yaml_cli("validate", "-f", "workflow.yaml")
    assert "ok" in out and "hello" in out
    args = ("run", "-f", "workflow.yaml", "--input", '{"name": "Ada"}', "--run-id", "y1")
    out, _ = yaml_cli(*args, "--json", code=40)
    data = json.loads(out)["data"]
    assert (data["event"], data["step"], data["audience"]) == ("go_ahead", "approval", "user")
    # the run records its file: the resume command needs no -f (checkpointflow's shape)
    assert data["resume_command"].startswith(
        "stepstone resume y1 --event go_ahead --input @response.json"
    )
    assert "-f" not in data["resume_command"].split()
    (yaml_cli.cwd / "response.json").write_text('{"ok": true}')
    out, _ = yaml_cli(
        "resume", "--run-id", "y1", "--event", "go_ahead", "--input", "@response.json"
    )
    assert json.loads(out) == {"greeted": "Ada"}
    out, _ = yaml_cli("logs", "y1")
    assert "== greet (exit 0)" in out and "Hello, Ada!" in out
    logs = json.loads(yaml_cli("logs", "--run-id", "y1", "--json")[0])["data"]["steps"]
    assert logs == [{"step_id": "greet", "stdout": "Hello, Ada!\n", "stderr": "", "exit_code": 0}]


def test_bad_files_and_inputs_are_exit_4_naming_the_place(yaml_cli: Yaml) -> None:
    bad = yaml_cli.cwd / "bad.yaml"
    bad.write_text(TEMPLATE.replace("kind: end", "kind: nope"))
    _, err = yaml_cli("validate", "-f", str(bad), code=4)
    assert f"{bad}:" in err and "kind" in err
    envelope = yaml_cli.cpf("validate", "-f", str(bad), code=10)
    assert envelope["error"]["code"] == "ERR_VALIDATION_WORKFLOW"
    good = yaml_cli.cwd / "good.yaml"
    good.write_text(TEMPLATE)
    ok = yaml_cli.cpf("validate", "-f", str(good), code=0)
    assert ok["ok"] is True and ok["workflow_id"] == "hello"
    _, err = yaml_cli("run", "-f", str(good), "--input", '{"name": 1}', code=4)
    assert "inputs" in err and "name" in err
    yaml_cli("run", "hello", "-f", str(good), code=2)  # WORKFLOW and -f: one or the other
    yaml_cli("validate", "-f", "missing.yaml", code=4)


def test_app_folder_loads_every_yaml_workflow(yaml_cli: Yaml) -> None:
    folder = yaml_cli.cwd / "flows"
    folder.mkdir()
    (folder / "hello.yaml").write_text(TEMPLATE)
    out, _ = yaml_cli("run", "hello", "--app", str(folder), "--input", '{"name": "Bo"}', code=40)
    assert "waiting for event 'go_ahead'" in out and f"--app {folder}" in out


def test_flows_lists_local_and_home_folders(yaml_cli: Yaml) -> None:
    local = yaml_cli.cwd / ".stepstone" / "flows"
    home = Path(yaml_cli.env["HOME"]) / ".stepstone" / "flows"
    local.mkdir(parents=True)
    home.mkdir(parents=True)
    (local / "hello.yaml").write_text(TEMPLATE)
    (home / "bye.yaml").write_text(
        TEMPLATE.replace("id: hello", "id: bye").replace("name: Hello", "name: Bye")
    )
    (home / "broken.yaml").write_text("not: [valid")
    out, _ = yaml_cli("flows")
    assert out.splitlines() == ["bye", "hello"]
    out, _ = yaml_cli("flows", "--detail", "bye")
    assert "id: bye" in out and "name: Bye" in out and "version: 1.0.0" in out
    assert f"path: {(home / 'bye.yaml').resolve()}" in out
    detail = json.loads(yaml_cli("flows", "--detail", "Hello", "--json")[0])["data"]
    assert detail["id"] == "hello" and detail["description"].startswith("Greets")
    yaml_cli("flows", "--detail", "nope", code=3)


QUICKSTART = Path(__file__).resolve().parent.parent / "examples" / "yaml"


@pytest.mark.parametrize(("decision", "expected"), [("approve", 0), ("reject", 0)])
def test_the_checkpointflow_quick_start_with_only_the_command_name_changed(
    yaml_cli: Yaml, decision: str, expected: int
) -> None:
    """checkpointflow's README Quick Start, its command lines with `stepstone` for `cpf`."""
    import shutil

    for name in ("quickstart.yaml", "confpub.py"):
        shutil.copy(QUICKSTART / name, yaml_cli.cwd / name)
    (yaml_cli.cwd / "workflow.yaml").write_text((yaml_cli.cwd / "quickstart.yaml").read_text())
    (yaml_cli.cwd / "input.json").write_text(
        '{"page_id": "123456", "source_file": "docs/architecture.md"}'
    )
    out, _ = yaml_cli("validate", "-f", "workflow.yaml")
    assert "publish_confluence_change" in out
    waiting = yaml_cli.cpf("run", "-f", "workflow.yaml", "--input", "@input.json", code=40)
    assert waiting["status"] == "waiting" and waiting["current_step_id"] == "approval"
    assert waiting["wait"]["event_name"] == "change_approval"
    run_id = waiting["run_id"]
    assert waiting["wait"]["resume"]["command"] == (  # the --db this test gives is kept
        f"stepstone resume --run-id {run_id} --event change_approval --input @response.json"
        f" --db {yaml_cli.db}"
    )
    (yaml_cli.cwd / "response.json").write_text(json.dumps({"decision": decision}))
    done = yaml_cli.cpf(
        "resume",
        "--run-id",
        run_id,
        "--event",
        "change_approval",
        "--input",
        "@response.json",
        code=expected,
    )
    assert done["status"] == "completed"
    if decision == "approve":
        assert done["result"] == {"page_url": "https://wiki.example.com/pages/123456"}
    else:
        assert done["result"] == {"status": "rejected"}
    status = yaml_cli.cpf("status", "--run-id", run_id, code=0)
    assert status["status"] == "completed"
