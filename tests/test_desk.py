"""Skills without the CLI: prompts, discovery, loading, launch arguments, and ctx.prompt /
ctx.artifact / ctx.notify in real runs (SQLite and PostgreSQL)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from stepstone import AsyncClient, WorkflowContext, workflow
from stepstone.core.model import Launch, StepKind
from stepstone.desk import (
    SkillRoot,
    fill_prompt,
    find_skill,
    find_skills,
    launch_arguments,
    load_skill,
    new_skill,
    render_inbox,
    write_inbox_file,
)
from stepstone.errors import (
    InvalidArgument,
    NonDeterminismError,
    PromptError,
    RunFailed,
    SkillError,
    SkillNotFound,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# --- prompts ---------------------------------------------------------------------------------


def test_a_prompt_is_filled_and_keeps_its_front_matter(tmp_path: Path) -> None:
    write(
        tmp_path / "prompts/greeter.user.md",
        "---\ntier: haiku\nmax_tokens: 64\n---\nHi $name, ${name}s cost $$5\n",
    )
    prompt = fill_prompt(tmp_path, "greeter.user", {"name": "ann"})
    assert prompt == "Hi ann, anns cost $5\n"
    assert (prompt.tier, prompt.max_tokens, prompt.name) == ("haiku", 64, "greeter.user")


def test_a_missing_variable_names_itself_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "prompts/p.md", "---\ntier: x\n---\nfirst\nHello $who and $name\n")
    with pytest.raises(PromptError) as caught:
        fill_prompt(tmp_path, "p", {"name": "ann"})
    assert str(caught.value) == (
        f"{path}:5: prompt 'p' uses $who, which the call does not give (given: name)"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("---\ncolour: red\n---\nx", ":2: front matter line 'colour: red'"),
        ("---\nmax_tokens: many\n---\nx", ":2: max_tokens must be a whole number"),
        ("---\ntier: x\n", ":1: front matter opened with '---' is never closed"),
        ("cost: $5", ":1: a '$' that starts no variable"),
    ],
)
def test_bad_prompt_files_are_refused_naming_where(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path / "prompts/p.md", text)
    with pytest.raises(PromptError, match=str(path)) as caught:
        fill_prompt(tmp_path, "p", {})
    assert problem in str(caught.value)


def test_an_unknown_prompt_lists_the_ones_there(tmp_path: Path) -> None:
    write(tmp_path / "prompts/greeter.user.md", "x")
    with pytest.raises(PromptError, match=r"no such prompt file \(prompts there: greeter.user\)"):
        fill_prompt(tmp_path, "greeter.usr", {})
    with pytest.raises(PromptError, match="prompt name"):
        fill_prompt(tmp_path, "../secret", {})


# --- discovery and loading -------------------------------------------------------------------

SKILL = """
from stepstone import WorkflowContext
from stepstone.desk import skill

@skill
async def main(
    ctx: WorkflowContext, name: str, times: int = 1, tags: list[str] | None = None
) -> str:
    \"\"\"Say hello.\"\"\"
    return ctx.prompt("hi", name=name) * times
"""


def make_skill(root: Path, name: str, source: str = SKILL, prompt: str = "hi $name") -> Path:
    folder = root / name
    write(folder / "skill.py", source)
    write(folder / "prompts/hi.md", prompt)
    return folder


def test_first_match_wins_and_later_ones_are_listed_shadowed(tmp_path: Path) -> None:
    a, b, claude = tmp_path / "a", tmp_path / "b", tmp_path / "claude"
    make_skill(a, "hello")
    make_skill(b, "hello")
    make_skill(b, "other")
    (b / "notes").mkdir()
    write(claude / "hello-world/__init__.py", "def register(registry):\n    pass\n")
    write(claude / "code-review/SKILL.md", "a Claude Code skill, not ours")
    roots = [
        SkillRoot(a, "./skills"),
        SkillRoot(b, "B"),
        SkillRoot(claude, "~/.claude/skills", True),
    ]
    found = {(s.name, s.origin): s for s in find_skills(roots)}
    assert sorted(found) == [
        ("hello", "./skills"),
        ("hello", "B"),
        ("hello-world", "~/.claude/skills"),
        ("notes", "B"),
        ("other", "B"),
    ]
    assert found["hello", "B"].shadowed_by == a / "hello"
    assert found["notes", "B"].kind == "broken" and "no skill.py" in (
        found["notes", "B"].note or ""
    )
    assert found["hello-world", "~/.claude/skills"].kind == "sagaflow"
    assert find_skill(roots, "hello").folder == a / "hello"
    with pytest.raises(SkillError, match="sagaflow skill"):
        find_skill(roots, "hello-world")
    with pytest.raises(SkillNotFound, match="found: hello, other"):
        find_skill(roots, "nope")


def test_a_skill_loads_with_its_parameters_and_description(tmp_path: Path) -> None:
    folder = make_skill(tmp_path, "hello")
    write(folder / "skill.toml", 'queue = "fast"\nbudget_usd = 0.5\n')
    info = find_skill([SkillRoot(tmp_path, "t")], "hello")
    assert (info.queue, info.budget_usd) == ("fast", 0.5)
    skill = load_skill(info, runs_dir=None)
    assert skill.workflow.name == "hello"  # @skill is named after its folder
    assert skill.workflow.defaults.queue == "fast"  # where its runs go, and a worker looks
    assert skill.description == "Say hello."
    assert [(p.name, p.type_name, p.required) for p in skill.params] == [
        ("name", "str", True),
        ("times", "int", False),
        ("tags", "list[str] | None", False),
    ]


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("import nothing_here\n", "importing it failed: ModuleNotFoundError"),
        ("def broken(:\n", "syntax error"),
        ("x = 1\n", "defines no workflow"),
        (
            "from stepstone import workflow\n@workflow\nasync def a(ctx): ...\n"
            "@workflow\nasync def b(ctx): ...\n",
            "defines several workflows (a, b)",
        ),
    ],
)
def test_a_skill_that_cannot_load_names_its_file(tmp_path: Path, source: str, problem: str) -> None:
    make_skill(tmp_path, "bad", source)
    info = find_skill([SkillRoot(tmp_path, "t")], "bad")
    with pytest.raises(SkillError, match=str(tmp_path / "bad")) as caught:
        load_skill(info, runs_dir=None)
    assert problem in str(caught.value)


def test_a_bad_skill_toml_is_a_broken_skill_naming_the_file(tmp_path: Path) -> None:
    folder = make_skill(tmp_path, "hello")
    write(folder / "skill.toml", "colour = 'red'\n")
    with pytest.raises(SkillError, match=f"{folder / 'skill.toml'}: unknown key 'colour'"):
        find_skill([SkillRoot(tmp_path, "t")], "hello")


def test_a_skill_parameter_without_a_type_is_refused_at_definition(tmp_path: Path) -> None:
    source = "from stepstone.desk import skill\n@skill\nasync def s(ctx, name):\n    return name\n"
    make_skill(tmp_path, "untyped", source)
    with pytest.raises(SkillError, match="parameter 'name' needs a type annotation"):
        load_skill(find_skill([SkillRoot(tmp_path, "t")], "untyped"), runs_dir=None)


def test_a_flow_is_a_skill(tmp_path: Path) -> None:
    source = "from stepstone.flow import Flow\nflow = Flow('shout').then(str.upper)\n"
    make_skill(tmp_path, "shout", source)
    skill = load_skill(find_skill([SkillRoot(tmp_path, "t")], "shout"), runs_dir=None)
    assert skill.workflow.name == "shout"


# --- launch arguments ------------------------------------------------------------------------


@pytest.fixture
def hello(tmp_path: Path) -> Any:
    make_skill(tmp_path, "hello")
    return load_skill(find_skill([SkillRoot(tmp_path, "t")], "hello"), runs_dir=None)


def test_arguments_are_converted_by_the_parameter_types(hello: Any) -> None:
    args = launch_arguments(hello, ["007"], ["times=3", 'tags=["a", "b"]'])
    assert args == {"name": "007", "times": 3, "tags": ["a", "b"]}


@pytest.mark.parametrize(
    ("positional", "pairs", "problem"),
    [
        ([], ["times=three", "name=x"], "--arg times: 'three' is not a int"),
        ([], ["nme=x"], "has no parameter 'nme'; did you mean 'name'?"),
        ([], ["times=2"], "needs name: give --arg name=VALUE (or the value alone"),
        (["a", "b"], [], "takes one value without a name"),
        (["a"], ["name=b"], "--arg name: given twice"),
        ([], ["name"], "expected NAME=VALUE"),
        ([], ["name=x", "tags=[1]"], "--arg tags: '[1]' is not a list[str] | None"),
    ],
)
def test_bad_arguments_name_the_parameter(
    hello: Any, positional: list[str], pairs: list[str], problem: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        launch_arguments(hello, positional, pairs)
    assert problem in str(caught.value)


# --- in runs ---------------------------------------------------------------------------------

ASKING = """
from stepstone import WorkflowContext
from stepstone.desk import skill

@skill
async def ask(ctx: WorkflowContext, name: str) -> str:
    text = ctx.prompt("hi", name=name)
    path = ctx.artifact("notes/hello.txt", text)
    ctx.notify(f"asked {name}\\nsecond line", level="warning")
    answer = await ctx.wait_for_signal("answer", prompt="Say something")
    return f"{text} / {answer} / {path.read_text()}"
"""


async def test_prompt_and_artifact_are_recorded_and_not_redone_on_replay(
    store_url: str, tmp_path: Path
) -> None:
    make_skill(tmp_path / "skills", "ask", ASKING, prompt="hello $name")
    runs = tmp_path / "runs"
    skill = load_skill(find_skill([SkillRoot(tmp_path / "skills", "t")], "ask"), runs_dir=runs)
    async with AsyncClient(store_url, workflows=[skill.workflow], auto_migrate=True) as client:
        await client.record_launch(Launch("r1", "ask"))
        run = await client.run_until_wait(skill.workflow, "ann", run_id="r1")
        artifact = runs / "r1" / "notes" / "hello.txt"
        assert artifact.read_text() == "hello ann"
        [item] = await client.inbox()
        assert (item.outcome, item.level, item.summary) == (
            "waiting",
            "warning",
            "asked ann\nsecond line",
        )
        # the prompt file changes and the artifact is edited: the replay sees neither
        (tmp_path / "skills/ask/prompts/hi.md").write_text("CHANGED $name")
        artifact.write_text("edited by hand")
        await client.signal("r1", "answer", "yes")
        result = await client.run(skill.workflow, run_id="r1")
        assert result == "hello ann / yes / edited by hand"
        kinds = [s.kind for s in (await client.describe("r1")).steps]
        assert StepKind.PROMPT in kinds and StepKind.ARTIFACT in kinds
        items = await client.inbox()
        assert [(i.outcome, i.summary) for i in items] == [
            ("waiting", "asked ann\nsecond line"),
            ("done", "hello ann / yes / edited by hand"),
        ]
        assert run.state.value == "waiting"


async def test_a_missing_prompt_variable_fails_the_run_naming_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    make_skill(tmp_path, "hello", prompt="hi $name from $place")
    skill = load_skill(find_skill([SkillRoot(tmp_path, "t")], "hello"), runs_dir=None)
    async with AsyncClient(sqlite_url, workflows=[skill.workflow], auto_migrate=True) as client:
        await client.record_launch(Launch("r1", "hello"))
        with pytest.raises(RunFailed, match=r"uses \$place, which the call does not give"):
            await client.run(skill.workflow, "ann", run_id="r1")
        [item] = await client.inbox()
        assert item.outcome == "failed" and "PromptError" in item.summary


async def test_prompts_outside_a_skill_say_how_to_load_one(sqlite_url: str) -> None:
    @workflow
    async def loose(ctx: WorkflowContext) -> str:
        return ctx.prompt("hi")

    async with AsyncClient(sqlite_url, workflows=[loose], auto_migrate=True) as client:
        with pytest.raises(RunFailed, match="was not loaded as a skill"):
            await client.run(loose)


async def test_a_prompt_name_changed_in_the_code_is_non_determinism(
    sqlite_url: str, tmp_path: Path
) -> None:
    source = ASKING.replace('ctx.prompt("hi"', "ctx.prompt(PROMPT").replace(
        "@skill", "import os\nPROMPT = os.environ.get('PROMPT_NAME', 'hi')\n@skill"
    )
    make_skill(tmp_path, "ask", source)
    write(tmp_path / "ask/prompts/bye.md", "bye $name")
    skill = load_skill(find_skill([SkillRoot(tmp_path, "t")], "ask"), runs_dir=tmp_path / "runs")
    module = __import__(skill.workflow.fn.__module__)
    async with AsyncClient(sqlite_url, workflows=[skill.workflow], auto_migrate=True) as client:
        await client.run_until_wait(skill.workflow, "ann", run_id="r1")
        module.PROMPT = "bye"
        await client.signal("r1", "answer", "yes")
        with pytest.raises(RunFailed, match=r"ctx.prompt\('hi'\)") as caught:
            await client.run(skill.workflow, run_id="r1")
        assert caught.value.error_type in (NonDeterminismError.__name__, "NonDeterminismError")


def test_artifact_paths_stay_inside_the_run_folder(tmp_path: Path) -> None:
    from stepstone.desk import SkillFolder

    files = SkillFolder(tmp_path, tmp_path / "runs")
    for bad in ("/etc/passwd", "../x", "a/../../x", ""):
        with pytest.raises(SkillError):
            files.write_artifact("r1", bad, "x")
    assert files.write_artifact("r1", "a/b.txt", b"\x00") == str(tmp_path / "runs/r1/a/b.txt")


# --- scaffold and inbox file ---------------------------------------------------------------


def test_skill_new_refuses_an_existing_folder_and_bad_names(tmp_path: Path) -> None:
    files = new_skill(tmp_path, "greet")
    assert {f.name for f in files} == {"skill.py", "skill.toml", "greeter.user.md"}
    before = (tmp_path / "greet/skill.py").read_text()
    with pytest.raises(InvalidArgument, match="already exists"):
        new_skill(tmp_path, "greet")
    assert (tmp_path / "greet/skill.py").read_text() == before
    with pytest.raises(InvalidArgument, match="skill name"):
        new_skill(tmp_path, "Bad Name")


def test_the_inbox_file_is_refused_when_it_is_not_ours(tmp_path: Path) -> None:
    path = tmp_path / "INBOX.md"
    write_inbox_file(path, [])
    assert path.read_text() == render_inbox([])
    path.write_bytes(b"\xff\xfegarbage")
    with pytest.raises(InvalidArgument, match=f"{path}: not an inbox file stepstone wrote"):
        write_inbox_file(path, [])
    assert path.read_bytes() == b"\xff\xfegarbage"


def test_two_skills_with_one_workflow_name_are_refused_naming_both(tmp_path: Path) -> None:
    from stepstone.desk import load_skills, registry_of

    source = (
        "from stepstone import workflow\n@workflow\nasync def same(ctx) -> int:\n    return 1\n"
    )
    make_skill(tmp_path, "one", source)
    make_skill(tmp_path, "two", source.replace("1", "2"))
    loaded, problems = load_skills([SkillRoot(tmp_path, "t")], runs_dir=None)
    assert problems == [] and len(loaded) == 2
    with pytest.raises(SkillError) as caught:
        registry_of(loaded)
    assert str(tmp_path / "one") in str(caught.value) and str(tmp_path / "two") in str(caught.value)
