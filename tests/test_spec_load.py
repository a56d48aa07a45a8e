"""YAML workflows are checked whole at load: each problem is one line naming file:line:column."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stepstone.errors import InvalidArgument, SpecError
from stepstone.spec import SpecWorkflow, load_folder, load_workflow
from tests.test_spec_run import write

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "yaml"


def load_error(tmp_path: Path, text: str, name: str = "flow.yaml") -> SpecError:
    path = write(tmp_path, name, text)
    with pytest.raises(SpecError) as info:
        load_workflow(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}:"), message
    return info.value


THREE = """
schema_version: checkpointflow/v1
workflow:
  id: three
  steps:
    - id: one
      kind: cli
      command: echo one
    - id: two
      kind: cli
      command: echo two
    - id: three
      kind: end
      result: { done: true }
"""


def test_a_good_document_loads_as_a_workflow(tmp_path: Path) -> None:
    wf = load_workflow(write(tmp_path, "flow.yaml", THREE))
    assert isinstance(wf, SpecWorkflow)
    assert wf.name == "three" and wf.input_schema is None
    assert wf.document["workflow"]["id"] == "three"
    assert wf.path == tmp_path / "flow.yaml"
    assert issubclass(SpecError, InvalidArgument)


def test_the_version_is_a_digest_of_the_document(tmp_path: Path) -> None:
    first = load_workflow(write(tmp_path, "flow.yaml", THREE)).version
    assert load_workflow(write(tmp_path, "again.yaml", "# a comment\n" + THREE)).version == first
    edited = load_workflow(write(tmp_path, "edited.yaml", THREE.replace("echo two", "echo 2")))
    assert edited.version != first


def test_malformed_yaml(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        schema_version: checkpointflow/v1
        workflow:
          id: x
          steps: [ {id: a, kind: cli
        """,
    )
    assert "malformed YAML" in str(error) and error.line >= 4


def test_a_duplicate_key_is_refused(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        THREE.replace("      command: echo one", "      command: echo one\n      command: echo 1"),
    )
    assert (error.line, error.column) == (8, 7)
    assert "duplicate key 'command'" in str(error)


def test_unsupported_schema_version(tmp_path: Path) -> None:
    error = load_error(tmp_path, THREE.replace("checkpointflow/v1", "checkpointflow/v9"))
    assert str(error).endswith(
        "flow.yaml:1:17: $.schema_version: schema_version 'checkpointflow/v9' is not supported"
        " (use checkpointflow/v1 or stepstone/v1)"
    )


def test_unknown_step_kind(tmp_path: Path) -> None:
    error = load_error(tmp_path, THREE.replace("kind: end", "kind: ned"))
    assert str(error).endswith(
        "flow.yaml:12:13: $.workflow.steps[2].kind: unknown step kind 'ned' (did you mean 'end'?)"
    )


def test_unknown_step_field_gets_a_did_you_mean(tmp_path: Path) -> None:
    error = load_error(tmp_path, THREE.replace("command: echo two", "comand: echo two"))
    assert "$.workflow.steps[1].comand: unknown key 'comand' (did you mean 'command'?)" in str(
        error
    )
    assert (error.line, error.column) == (10, 7)


def test_bad_cel_points_at_the_expression(tmp_path: Path) -> None:
    error = load_error(tmp_path, THREE.replace("command: echo two", "command: echo ${inputs.x ==}"))
    assert error.line == 10 and error.column > 22
    assert error.path == "$.workflow.steps[1].command"
    assert "bad expression 'inputs.x =='" in str(error)


def test_an_undeclared_name_in_an_expression(tmp_path: Path) -> None:
    error = load_error(tmp_path, THREE.replace("command: echo one", "command: echo ${input.x}"))
    assert "undeclared reference to 'input.x'" in str(error) and error.line == 7


def test_next_to_nowhere(tmp_path: Path) -> None:
    text = THREE.replace("      command: echo one", "      command: echo one\n      next: thre")
    error = load_error(tmp_path, text)
    assert str(error).endswith(
        "flow.yaml:8:13: $.workflow.steps[0].next: no step 'thre' (did you mean 'three'?)"
    )


def test_duplicate_step_ids(tmp_path: Path) -> None:
    error = load_error(tmp_path, THREE.replace("id: two", "id: one"))
    assert str(error).endswith(
        "flow.yaml:8:11: $.workflow.steps[1].id: duplicate step id 'one' (also step 0)"
    )


def test_an_unreachable_step(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        schema_version: checkpointflow/v1
        workflow:
          id: gap
          steps:
            - id: a
              kind: end
            - id: b
              kind: cli
              command: echo never
        """,
    )
    assert error.path == "$.workflow.steps[1]" and error.line == 7
    assert "step 'b' is unreachable" in str(error)


def test_transition_rules_are_checked(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        schema_version: checkpointflow/v1
        workflow:
          id: t
          steps:
            - id: ask
              kind: await_event
              audience: user
              event_name: go
              input_schema: { type: object }
              transitions:
                - when: ${event.ok}
                  next: dun
            - id: done
              kind: end
        """,
    )
    assert error.path == "$.workflow.steps[0].transitions[0].next"
    assert "no step 'dun' (did you mean 'done'?)" in str(error)


def test_a_bad_json_schema(tmp_path: Path) -> None:
    error = load_error(tmp_path, THREE.replace("  steps:", "  inputs: { type: objekt }\n  steps:"))
    assert error.path == "$.workflow.inputs" and "not a valid JSON Schema" in str(error)


def test_stepstone_extras_need_stepstone_v1(tmp_path: Path) -> None:
    error = load_error(tmp_path, THREE.replace("command: echo one", "argv: [echo, one]"))
    assert "'argv' needs schema_version: stepstone/v1" in str(error)
    error = load_error(
        tmp_path,
        THREE.replace("kind: cli\n      command: echo one", "kind: python\n      function: m:f"),
    )
    assert "kind 'python' needs schema_version: stepstone/v1" in str(error)


def test_and_is_not_cel_in_stepstone_v1(tmp_path: Path) -> None:
    text = THREE.replace("checkpointflow/v1", "stepstone/v1").replace(
        "command: echo two", "command: echo two\n      if: inputs.a and inputs.b"
    )
    error = load_error(tmp_path, text)
    assert error.path == "$.workflow.steps[1].if"


def test_an_unsafe_placement_in_shell_text(tmp_path: Path) -> None:
    error = load_error(tmp_path, THREE.replace("command: echo two", "command: echo $'${inputs.x}'"))
    assert error.path == "$.workflow.steps[1].command" and error.line == 10


def test_workflow_ref_must_exist_and_not_loop(tmp_path: Path) -> None:
    ref = """
    schema_version: checkpointflow/v1
    workflow:
      id: {id}
      steps:
        - id: call
          kind: workflow
          workflow_ref: {ref}
    """
    error = load_error(tmp_path, ref.format(id="a", ref="missing.yaml"), name="a.yaml")
    assert error.path == "$.workflow.steps[0].workflow_ref" and "cannot read" in str(error)
    write(tmp_path, "b.yaml", ref.format(id="b", ref="a.yaml"))
    write(tmp_path, "a.yaml", ref.format(id="a", ref="b.yaml"))
    with pytest.raises(SpecError) as info:
        load_workflow(tmp_path / "a.yaml")
    assert str(info.value).startswith(f"{tmp_path / 'b.yaml'}:7:21: ")
    assert "workflow_ref cycle: a.yaml -> b.yaml -> a.yaml" in str(info.value)


def test_a_python_function_that_does_not_import(tmp_path: Path) -> None:
    write(tmp_path, "helpers.py", "def ok(**kw):\n    return kw\n")
    text = """
    schema_version: stepstone/v1
    workflow:
      id: py
      steps:
        - id: call
          kind: python
          function: {fn}
    """
    error = load_error(tmp_path, text.format(fn="helpers:missing"))
    assert "module 'helpers' has no 'missing'" in str(error) and error.line == 7
    error = load_error(tmp_path, text.format(fn="nosuchmodule_xyz:f"))
    assert "cannot import 'nosuchmodule_xyz'" in str(error)
    assert load_workflow(write(tmp_path, "ok.yaml", text.format(fn="helpers:ok"))).name == "py"


def test_load_folder_registers_every_file_and_sub_workflows(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    (flows / "sub").mkdir(parents=True)
    write(
        flows,
        "main.yaml",
        """
    schema_version: checkpointflow/v1
    workflow:
      id: main
      steps:
        - id: call
          kind: workflow
          workflow_ref: sub/child.yaml
    """,
    )
    write(flows / "sub", "child.yaml", THREE.replace("id: three\n", "id: child\n", 1))
    write(flows, "other.yml", THREE)
    registry = load_folder(flows)
    assert registry.names() == ("child", "main", "three")
    with pytest.raises(SpecError, match="not a folder"):
        load_folder(tmp_path / "nope")


def test_the_mermaid_graph(tmp_path: Path) -> None:
    chart = load_workflow(EXAMPLES / "quickstart.yaml").to_mermaid()
    assert chart.startswith("flowchart TD")
    assert "s_approval -->|\"event.decision == 'approve'\"| s_apply" in chart


def test_importing_the_package_loads_neither_yaml_nor_cel() -> None:
    code = (
        "import sys, stepstone.spec; "
        "print(sorted(m for m in ('yaml', 'cel_expr_python', 'jsonschema') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_loading_a_three_step_file_imports_nothing_heavy(tmp_path: Path) -> None:
    """Loading is cheap by construction: none of the heavy libraries a document with no schema
    and no python step has no use for (a wall-clock bound here failed on a loaded machine)."""
    path = write(tmp_path, "flow.yaml", THREE)
    heavy = ["jsonschema", "jsonschema_rs", "pydantic", "psycopg", "rich", "uuid", "decimal"]
    code = (
        "import sys; from stepstone.spec import load_workflow; "
        f"load_workflow({str(path)!r}); "
        f"print(*[m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def test_a_bare_true_command_says_how_to_quote_it(tmp_path: Path) -> None:
    # checkpointflow 1.10 answers this document with an internal error (exit 90)
    error = load_error(
        tmp_path,
        """
        schema_version: checkpointflow/v1
        workflow:
          id: bare
          steps:
            - id: ok
              kind: cli
              command: true
        """,
    )
    assert (error.line, error.column) == (7, 16)
    assert error.path == "$.workflow.steps[0].command"
    assert 'got a boolean (YAML reads it unquoted: write "true" for the text)' in str(error)


def test_a_timeout_on_a_composite_step_is_refused_not_ignored(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        schema_version: checkpointflow/v1
        workflow:
          id: loop
          steps:
            - id: each
              kind: foreach
              items: '[1, 2]'
              timeout_seconds: 5
              body:
                - id: show
                  kind: cli
                  command: echo ${item}
        """,
    )
    assert error.path == "$.workflow.steps[0].timeout_seconds"
    assert "put timeout_seconds on the steps of its body" in str(error)


def test_the_fast_non_printable_pattern_matches_pyyamls_exactly() -> None:
    """stepstone swaps PyYAML's slow-to-compile NON_PRINTABLE class for its complement while
    importing yaml: the two must refuse exactly the same characters, all 1,114,112 of them."""
    import re

    from stepstone.spec.source import NON_PRINTABLE, YAML_NON_PRINTABLE

    every = "".join(map(chr, range(0x110000)))
    pyyaml = [m.start() for m in re.compile(YAML_NON_PRINTABLE).finditer(every)]
    ours = [m.start() for m in re.compile(NON_PRINTABLE).finditer(every)]
    assert ours == pyyaml
    # C0 controls but tab/LF/CR (29), DEL and C1 controls but NEL (32), surrogates, FFFE and FFFF
    assert len(ours) == 29 + 32 + 2048 + 2


def test_pyyamls_own_reader_keeps_its_pattern_meaning(tmp_path: Path) -> None:
    """The pure-Python reader (used where libyaml is missing) still refuses a control character."""
    from stepstone.spec.source import import_yaml

    yaml = import_yaml()
    assert yaml.reader.Reader.NON_PRINTABLE.search("ok\x07") is not None
    assert yaml.reader.Reader.NON_PRINTABLE.search("ok \u00e9 \U0001f600") is None


def test_the_resolvers_shortcuts_never_refuse_a_scalar_its_pattern_matches() -> None:
    """stepstone skips PyYAML's bool/null/int/float/timestamp patterns for scalars that fail a
    necessary condition (spec/source.py); on every scalar of length <= 4 over the characters
    those patterns read, on random longer ones and on the YAML 1.1 examples, the shortcut
    answers exactly as the compiled pattern does, and each shortcut is in use."""
    import itertools
    import random
    import re

    from stepstone.spec.source import _CANNOT_MATCH, import_yaml

    yaml = import_yaml()
    patterns = {}
    for resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.values():
        for tag, lazy in resolvers:
            if getattr(lazy, "_cannot", None) is not None:
                patterns[tag] = lazy
    short = {t.rsplit(":", 1)[1] for t in patterns}
    assert short == {"bool", "null", "int", "float", "timestamp"}
    assert len(_CANNOT_MATCH) == 5
    alphabet = "0123456789.-+:_ eE xobTtZ infINFaAN yYnNsSlLuUrR~\n"
    scalars = [
        "".join(c) for n in range(5) for c in itertools.product("019.-+:_eExbI nN~\n", repeat=n)
    ]
    chooser = random.Random(7)
    scalars += ["".join(chooser.choices(alphabet, k=chooser.randint(5, 30))) for _ in range(20000)]
    scalars += [
        "yes", "No", "TRUE", "off\n", "On", "~", "", "null", "NULL\n", "0b1010_0111", "0x_0A_74_AE",
        "02472256", "685_230", "+685_230", "190:20:30", "6.8523015e+5", "685.230_15e+03",
        "685_230.15", "190:20:30.15", "-.inf", ".NaN", ".5", "1.", "-0",
        "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2001-12-15 2:59:43.10",
        "2002-12-14", "2001-1-1 1:00:00",
        "1.0.0", "3 python steps", "1.5\n", "12\n", "2002-12-14\n",
    ]  # fmt: skip
    for tag, lazy in patterns.items():
        compiled = re.compile(*lazy._args)
        for scalar in scalars:
            assert bool(lazy.match(scalar)) == bool(compiled.match(scalar)), (tag, scalar)
