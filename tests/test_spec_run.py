"""YAML workflows run on the engine: the Quick Start unchanged, each step kind, retries, waits."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stepstone import AsyncClient, RunFailed, SignalPayloadError
from stepstone.core.model import RunState
from stepstone.errors import SpecError
from stepstone.spec import SpecWorkflow, load_workflow, step_logs

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "yaml"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


async def wait_state(client: AsyncClient, run_id: str, *states: RunState) -> None:
    """Wait (on store changes, not sleeps) until the run is in one of ``states``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        token = await client.store.change_token()
        run = await client.store.get_run(run_id)
        if run is not None and run.state in states:
            return
        assert loop.time() < deadline, f"run {run_id} never reached {states}"
        await client.store.wait_for_change(0.5, since=token)


async def run_yaml(db: str, wf: SpecWorkflow, inputs: Any = None, run_id: str = "r1") -> Any:
    async with AsyncClient(db, workflows=wf.registry()) as client:
        return await client.run(wf, inputs, run_id=run_id)


# --- the checkpointflow Quick Start -----------------------------------------------------------


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        ("approve", {"page_url": "https://wiki.example.com/pages/qs-approve"}),
        ("reject", {"status": "rejected"}),
    ],
)
async def test_the_quick_start_runs_unchanged(
    db: str, monkeypatch: pytest.MonkeyPatch, decision: str, expected: Any
) -> None:
    monkeypatch.chdir(EXAMPLES)
    wf = load_workflow(EXAMPLES / "quickstart.yaml")
    inputs = {"page_id": f"qs-{decision}", "source_file": "docs/architecture.md"}
    async with AsyncClient(db, workflows=wf.registry()) as client:
        task = asyncio.create_task(client.run(wf, inputs, run_id="qs"))
        await wait_state(client, "qs", RunState.WAITING)
        run = await client.get("qs")
        info = run.waits[0].info
        assert run.waits[0].name == "change_approval"
        assert info is not None and (info.step, info.audience) == ("approval", "user")
        assert info.prompt == "Review the proposed page update and approve or reject it."
        await client.signal("qs", "change_approval", {"decision": decision})
        assert await task == expected
        names = [s.name for s in (await client.describe("qs")).steps]
    if decision == "approve":
        assert names == ["plan", "change_approval", "apply"]
    else:
        assert names == ["plan", "change_approval"]


async def test_an_event_failing_its_input_schema_is_refused_and_the_wait_goes_on(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(EXAMPLES)
    wf = load_workflow(EXAMPLES / "quickstart.yaml")
    async with AsyncClient(db, workflows=wf.registry()) as client:
        inputs = {"page_id": "qs-bad-event", "source_file": "a.md"}
        task = asyncio.create_task(client.run(wf, inputs, run_id="ev"))
        await wait_state(client, "ev", RunState.WAITING)
        with pytest.raises(SignalPayloadError, match=r"\$\.decision: expected one of"):
            await client.signal("ev", "change_approval", {"decision": "maybe"})
        assert (await client.get("ev")).state is RunState.WAITING
        await client.signal("ev", "change_approval", {"decision": "reject", "comment": "no"})
        assert await task == {"status": "rejected"}


async def test_an_input_failing_the_schema_writes_nothing(db: str) -> None:
    wf = load_workflow(EXAMPLES / "quickstart.yaml")
    async with AsyncClient(db, workflows=wf.registry()) as client:
        with pytest.raises(SpecError) as info:
            await client.start(wf, {"page_id": 123456, "source_file": "a.md"})
        assert str(info.value).endswith(
            "quickstart.yaml: inputs.page_id: expected string, got integer (see workflow.inputs)"
        )
        with pytest.raises(SpecError, match="missing required property 'source_file'"):
            await client.run(wf, {"page_id": "1"})
        assert await client.list() == []


# --- expressions ------------------------------------------------------------------------------


async def test_expressions_keep_json_types_and_interpolate_text(tmp_path: Path, db: str) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            "types.yaml",
            """
            schema_version: checkpointflow/v1
            workflow:
              id: types
              steps:
                - id: done
                  kind: end
                  result:
                    n: ${inputs.n}
                    f: ${double(inputs.n) * 1.5}
                    flag: ${inputs.n > 2}
                    list: ${inputs.items}
                    map: ${inputs.meta}
                    none: ${inputs.meta.nothing}
                    text: "n=${inputs.n}, items=${inputs.items}, ${inputs.meta.who}!"
                    both: ${inputs.n > 2 and not (inputs.meta.who == "or")}
            """,
        )
    )
    inputs = {"n": 3, "items": [1, "two", None], "meta": {"who": "ana", "nothing": None}}
    result = await run_yaml(db, wf, inputs)
    assert result == {
        "n": 3,
        "f": 4.5,
        "flag": True,
        "list": [1, "two", None],
        "map": {"who": "ana", "nothing": None},
        "none": None,
        "text": 'n=3, items=[1,"two",null], ana!',
        "both": True,
    }


async def test_a_missing_key_fails_the_run_naming_step_and_expression(
    tmp_path: Path, db: str
) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            "missing.yaml",
            """
            schema_version: checkpointflow/v1
            workflow:
              id: missing
              steps:
                - id: done
                  kind: end
                  result: ${inputs.nope}
            """,
        )
    )
    with pytest.raises(RunFailed) as info:
        await run_yaml(db, wf, {})
    assert "step 'done': result: ${inputs.nope} cannot be evaluated" in str(info.value)
    assert 'Key not found in map : "nope"' in str(info.value)


async def test_switch_if_and_next(tmp_path: Path, db: str) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            "switch.yaml",
            """
            schema_version: checkpointflow/v1
            workflow:
              id: route
              steps:
                - id: skipped
                  kind: end
                  if: inputs.mode == "never" or inputs.mode == "nope"
                  result: wrong
                - id: decide
                  kind: switch
                  cases:
                    - when: 'inputs.mode == "fast"'
                      next: fast
                    - when: ${inputs.mode == "safe"}
                      next: safe
                  default: fallback
                - id: fast
                  kind: end
                  result: fast
                - id: safe
                  kind: end
                  result: { path: safe, skipped: "${steps.skipped.skipped}" }
                - id: fallback
                  kind: end
                  result: fallback
            """,
        )
    )
    assert await run_yaml(db, wf, {"mode": "fast"}, run_id="a") == "fast"
    assert await run_yaml(db, wf, {"mode": "safe"}, run_id="b") == {
        "path": "safe",
        "skipped": True,
    }
    assert await run_yaml(db, wf, {"mode": "other"}, run_id="c") == "fallback"


# --- cli steps --------------------------------------------------------------------------------


async def test_retry_is_enforced(tmp_path: Path, db: str) -> None:
    counter = tmp_path / "attempts"
    wf = load_workflow(
        write(
            tmp_path,
            "retry.yaml",
            """
            schema_version: checkpointflow/v1
            workflow:
              id: flaky
              steps:
                - id: flaky
                  kind: cli
                  command: echo x >> "${inputs.counter}"; test $(wc -l < "${inputs.counter}") -ge 3
                  retry: { max_attempts: 3, backoff_seconds: 0, strategy: fixed }
                - id: once
                  kind: cli
                  command: echo y >> "${inputs.counter}"; exit 4
                  retry: { max_attempts: 2, backoff_seconds: 0, strategy: exponential }
            """,
        )
    )
    with pytest.raises(RunFailed) as info:
        await run_yaml(db, wf, {"counter": str(counter)})
    assert counter.read_text().split() == ["x", "x", "x", "y", "y"]
    assert "step 'once': exited with code 4" in str(info.value)


async def test_a_failing_command_names_step_exit_code_and_stderr(tmp_path: Path, db: str) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            "fail.yaml",
            """
            schema_version: checkpointflow/v1
            workflow:
              id: fail
              steps:
                - id: ok_3
                  kind: cli
                  command: |-
                    echo '{"n": 1}'; exit 3
                  success: { exit_codes: [0, 3] }
                - id: boom
                  kind: cli
                  command: echo "disk full on ${inputs.where}" >&2; exit 2
            """,
        )
    )
    with pytest.raises(RunFailed) as info:
        await run_yaml(db, wf, {"where": "/var"})
    assert info.value.error_type.endswith("SpecStepError")
    assert str(info.value).endswith("step 'boom': exited with code 2: disk full on /var")


async def test_stdout_must_match_declared_outputs_and_logs_are_kept(
    tmp_path: Path, db: str
) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            "outputs.yaml",
            """
            schema_version: checkpointflow/v1
            workflow:
              id: outs
              steps:
                - id: good
                  kind: cli
                  command: |-
                    echo '{"count": 2}'; echo note >&2
                  outputs:
                    type: object
                    required: [count]
                    properties: { count: { type: integer } }
                - id: bad
                  kind: cli
                  command: |-
                    echo '{"count": "${steps.good.outputs.count}"}'
                  outputs: { type: object, properties: { count: { type: integer } } }
            """,
        )
    )
    async with AsyncClient(db, workflows=wf.registry()) as client:
        with pytest.raises(RunFailed) as info:
            await client.run(wf, {}, run_id="o")
        assert "step 'bad': outputs do not match the step's schema: $.count: expected integer" in (
            str(info.value)
        )
        logs = step_logs((await client.describe("o")).steps)
    assert [(log.step_id, log.stdout, log.stderr, log.exit_code) for log in logs] == [
        ("good", '{"count": 2}\n', "note\n", 0)
    ]


# --- sub-workflows, python, foreach, parallel -------------------------------------------------


async def test_a_sub_workflow_is_a_child_run(tmp_path: Path, db: str) -> None:
    (tmp_path / "parts").mkdir()
    write(
        tmp_path / "parts",
        "greet.yaml",
        """
        schema_version: checkpointflow/v1
        workflow:
          id: greet
          inputs: { type: object, required: [name], properties: { name: { type: string } } }
          steps:
            - id: say
              kind: cli
              command: |-
                printf '{"line": "hello %s"}' "${inputs.name}"
              outputs: { type: object }
          outputs:
            type: object
            properties:
              line: { from: steps.say.outputs.line }
        """,
    )
    wf = load_workflow(
        write(
            tmp_path,
            "main.yaml",
            """
            schema_version: checkpointflow/v1
            workflow:
              id: main
              steps:
                - id: call
                  kind: workflow
                  workflow_ref: parts/greet.yaml
                  inputs: { name: "${inputs.who}" }
                - id: each
                  kind: foreach
                  items: '["bo", inputs.who]'
                  workflow_ref: parts/greet.yaml
                  inputs: { name: "${item}" }
                - id: done
                  kind: end
                  result: ["${steps.call.outputs.line}", "${steps.each.outputs}"]
            """,
        )
    )
    assert [w.name for w in wf.family()] == ["main", "greet"]
    async with AsyncClient(db, workflows=wf.registry()) as client:
        assert await client.run(wf, {"who": "ana"}, run_id="m") == [
            "hello ana",
            [{"line": "hello bo"}, {"line": "hello ana"}],
        ]
        children = (await client.describe("m")).children
        assert [c.workflow for c in children] == ["greet", "greet", "greet"]
        with pytest.raises(RunFailed, match=r"inputs\.name: expected string"):
            await client.run(wf, {"who": 7}, run_id="m2")


async def test_python_steps_foreach_and_parallel(tmp_path: Path, db: str) -> None:
    write(
        tmp_path,
        "helpers.py",
        """
        import asyncio

        def square(x):
            return {"square": x * x}

        async def label(text, n):
            await asyncio.sleep(0)
            return f"{text}-{n}"
        """,
    )
    wf = load_workflow(
        write(
            tmp_path,
            "py.yaml",
            """
            schema_version: stepstone/v1
            workflow:
              id: py
              steps:
                - id: squares
                  kind: foreach
                  items: inputs.numbers
                  max_concurrency: 2
                  body:
                    - id: square
                      kind: python
                      function: helpers:square
                      inputs: { x: "${item}" }
                - id: labels
                  kind: foreach
                  items: ${steps.squares.outputs}
                  body:
                    - id: label
                      kind: python
                      function: helpers:label
                      inputs: { text: sq, n: "${item.square}" }
                    - id: shout
                      kind: cli
                      argv: [echo, '"${steps.label.outputs}!${item_index}"']
                - id: both
                  kind: parallel
                  branches:
                    - start_at: left
                    - steps:
                        - id: right1
                          kind: python
                          function: helpers:label
                          inputs: { text: right, n: 1 }
                        - id: right2
                          kind: python
                          function: helpers:label
                          inputs: { text: "${steps.right1.outputs}", n: 2 }
                - id: left
                  kind: python
                  function: helpers:label
                  inputs: { text: left, n: 0 }
                - id: done
                  kind: end
                  result:
                    squares: ${steps.squares.outputs}
                    labels: ${steps.labels.outputs}
                    both: ${steps.both.outputs}
                    right: ${steps.right2.outputs}
            """,
        )
    )
    async with AsyncClient(db, workflows=wf.registry()) as client:
        result = await client.run(wf, {"numbers": [1, 2, 3]}, run_id="p")
        desc = await client.describe("p")
    assert result["squares"] == [{"square": 1}, {"square": 4}, {"square": 9}]
    assert result["labels"] == ["sq-1!0", "sq-4!1", "sq-9!2"]
    assert result["both"] == {"left": "left-0", "right1": "right-1", "right2": "right-1-2"}
    assert result["right"] == "right-1-2"
    names = [s.name for s in desc.steps]
    assert names.count("left") == 1, names  # a branch step is not run again in the sequence
    assert names[:3] == ["square[0]", "square[1]", "square[2]"]


async def test_the_result_built_from_workflow_outputs_is_checked(tmp_path: Path, db: str) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            "out.yaml",
            """
            schema_version: checkpointflow/v1
            workflow:
              id: out
              steps:
                - id: count
                  kind: cli
                  command: 'echo ''{"n": "three"}'''
              outputs:
                type: object
                required: [n]
                properties:
                  n: { type: integer, from: steps.count.outputs.n }
            """,
        )
    )
    with pytest.raises(
        RunFailed, match=r"does not match workflow.outputs: \$\.n: expected integer"
    ):
        await run_yaml(db, wf)
