"""`stepstone cost` and the CLI's models: a run executed by the CLI calls the scripted provider
configured by the environment, and the ledger answers by run, workflow, model and day."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from stepstone.cli.session import MODEL_VARIABLES, models_configured
from stepstone.models import config
from tests.test_cli import Cli

APP = textwrap.dedent(
    """
    from stepstone import WorkflowContext, workflow


    @workflow
    async def brief(ctx: WorkflowContext, topic: str) -> str:
        first = await ctx.llm(f"Outline {topic}", tier="fast")
        second = await ctx.llm(f"Write {topic}", model="scripted/writer")
        return first.text + " / " + second.text
    """
)

REPLIES = textwrap.dedent(
    """
    replies:
      - match: Outline
        text: an outline
        usage: {input_tokens: 100, output_tokens: 10}
      - match: Write
        text: a text
        usage: {input_tokens: 200, output_tokens: 40, cache_read_tokens: 50}
    """
)

CONFIG = textwrap.dedent(
    """
    [llm.tiers]
    fast = "outliner"
    [llm.prices.outliner]
    input = 1.0
    output = 10.0
    [llm.prices.writer]
    input = 2.0
    output = 20.0
    cache_read = 0.2
    """
)


@pytest.fixture
def llm_cli(tmp_path: Path) -> Cli:
    (tmp_path / "llmapp.py").write_text(APP)
    (tmp_path / "replies.yaml").write_text(REPLIES)
    (tmp_path / ".stepstone").mkdir()
    (tmp_path / ".stepstone" / "config.toml").write_text(CONFIG)
    cli = Cli(tmp_path)
    cli.env["STEPSTONE_LLM_SCRIPT"] = str(tmp_path / "replies.yaml")
    return cli


def test_cost_by_run_model_and_day(llm_cli: Cli) -> None:
    out = llm_cli.value("run", "brief", "--app", "llmapp", "--arg", "topic=ducks", "--run-id", "b1")
    assert out == "an outline / a text"
    [total] = llm_cli.data("cost", "b1")
    assert total["key"] is None and total["calls"] == 2
    assert (total["input_tokens"], total["output_tokens"], total["cache_read_tokens"]) == (
        300,
        50,
        50,
    )
    # outliner 100*1 + 10*10 = 200; writer 200*2 + 40*20 + 50*0.2 = 1210 (µUSD)
    assert total["cost_usd"] == pytest.approx(0.00141)
    by_model = llm_cli.data("cost", "--workflow", "brief", "--by", "model")
    assert [(m["key"], m["calls"]) for m in by_model] == [
        ("scripted/writer", 1),
        ("scripted/outliner", 1),
    ]
    [day] = llm_cli.data("cost", "--since", "24h", "--by", "day")
    assert day["calls"] == 2
    assert llm_cli.data("cost", "--queue", "elsewhere") == []
    human = llm_cli("cost", "--by", "model").stdout
    assert "scripted/writer" in human and "total" in human and "0.001410" in human


def test_cost_bad_input_exits_with_the_documented_codes(llm_cli: Cli) -> None:
    llm_cli("migrate")
    proc = llm_cli("cost", "--since", "yesterday", code=4)
    assert "--since" in proc.stderr and "24h" in proc.stderr
    llm_cli("cost", "--by", "colour", code=2)


def test_a_bad_model_config_is_refused_naming_the_key(llm_cli: Cli) -> None:
    (llm_cli.cwd / ".stepstone" / "config.toml").write_text("[llm]\nprovider = 'gpt'\n")
    proc = llm_cli("run", "brief", "--app", "llmapp", "--arg", "topic=x", code=4)
    assert "provider 'gpt'" in proc.stderr and "scripted, openai, anthropic" in proc.stderr


def test_db_copy_takes_the_ledger_along(
    llm_cli: Cli, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from tests.conftest import postgres_problem

    llm_cli.value("run", "brief", "--app", "llmapp", "--arg", "topic=ducks", "--run-id", "b1")
    if postgres_problem() is None:
        middle = request.getfixturevalue("pg_url")
    else:
        middle = f"sqlite:///{tmp_path / 'middle.db'}"
        llm_cli("migrate", "--db", middle, db=False)
    report = llm_cli.data("db", "copy", llm_cli.db, middle, db=False)
    assert report["runs_added"] == 1 and report["ledger"] == 2
    back = f"sqlite:///{tmp_path / 'back.db'}"
    llm_cli("migrate", "--db", back, db=False)
    assert llm_cli.data("db", "copy", middle, back, db=False)["ledger"] == 2
    [total] = llm_cli.data("cost", "b1", "--db", back, db=False)
    assert total["calls"] == 2 and total["cost_usd"] == pytest.approx(0.00141)


def test_budget_set_list_and_clear(llm_cli: Cli) -> None:
    llm_cli("migrate")
    llm_cli("budget", "set", "--workflow", "brief", "--usd", "0.005", "--alert", "0.5")
    [spec] = llm_cli.data("budget", "list")
    assert spec == {
        "scope": "workflow",
        "name": "brief",
        "usd": 0.005,
        "tokens": None,
        "alerts": [0.5],
        "downgrade_at": 0.8,
        "period_s": None,
        "on_limit": "pause",
    }
    llm_cli("start", "brief", "--app", "llmapp", "--arg", "topic=x", "--run-id", "p1")
    [use] = llm_cli.data("budget", "list", "--run", "p1")
    assert (use["name"], use["spent_usd"], use["used"]) == ("brief", 0, 0)
    llm_cli("budget", "set", "--workflow", "brief", "--tokens", "100", "--period", "1m", "--wait")
    [spec] = llm_cli.data("budget", "list")
    assert (spec["usd"], spec["tokens"], spec["period_s"], spec["on_limit"]) == (
        None,
        100,
        60,
        "wait",
    )
    assert (
        "needs period_s"
        in llm_cli("budget", "set", "--queue", "q", "--usd", "1", "--wait", code=4).stderr
    )
    assert "workflow brief" in llm_cli("budget", "list").stdout
    llm_cli("budget", "clear", "--workflow", "brief")
    assert llm_cli.data("budget", "list") == []
    proc = llm_cli("budget", "set", "--queue", "q", "--usd", "1", "--alert", "2", code=4)
    assert "--alert '2'" in proc.stderr
    assert "usd= or tokens=" in llm_cli("budget", "set", "--queue", "q", code=4).stderr
    llm_cli("budget", "set", "--usd", "1", code=2)  # no --run, --workflow or --queue


def test_run_stops_at_a_budget_pause_with_exit_7_and_goes_on_once_raised(llm_cli: Cli) -> None:
    llm_cli("migrate")
    # the outline call's worst case is (3 + 1024) tokens at 10 USD/Mtok out: over 0.005 USD
    llm_cli("budget", "set", "--workflow", "brief", "--usd", "0.005")
    args = ("run", "brief", "--app", "llmapp", "--arg", "topic=x", "--run-id", "p1")
    proc = llm_cli(*args, code=7)
    assert "paused: BudgetExhausted: workflow 'brief' budget: $0.000000 of $0.005" in proc.stderr
    llm_cli("budget", "set", "--workflow", "brief", "--usd", "1")
    llm_cli("unpause", "p1")
    assert llm_cli.value("run", "brief", "--app", "llmapp", "--run-id", "p1") == (
        "an outline / a text"
    )


def test_without_any_model_setting_the_default_models_are_built_at_the_first_call(
    tmp_path: Path,
) -> None:
    # no config.toml and no variable: the CLI defers loading stepstone.models to ctx.llm
    app = "from stepstone import workflow\n\n@workflow\nasync def ask(ctx):\n"
    app += "    await ctx.llm('hi')\n"
    (tmp_path / "askapp.py").write_text(app)
    cli = Cli(tmp_path)
    assert not any(name.startswith(MODEL_VARIABLES) for name in cli.env)
    assert not models_configured(cli.env)
    failed = cli.json("run", "ask", "--app", "askapp", code=7)["error"]
    # the call reached the default models' scripted provider, which has no script
    assert "STEPSTONE_LLM_SCRIPT" in failed["error_message"], failed
    (tmp_path / ".stepstone").mkdir(exist_ok=True)
    (tmp_path / ".stepstone" / "config.toml").write_text("[llm]\nprovider = 'gpt'\n")
    assert models_configured(cli.env)


def test_the_cli_knows_every_variable_the_model_config_reads() -> None:
    source = Path(config.__file__).read_text()
    read = set(re.findall(r'env(?:\.get\(|\[)f?"([A-Z_]+?)(?:\{[^}]*\}[A-Z_]*)?"', source))
    assert {"STEPSTONE_LLM_PROVIDER", "ANTHROPIC_API_KEY", "STEPSTONE_LLM_TIER_"} <= read
    assert "OPENAI_API_KEY" in source  # the default api_key_env
    missing = sorted(n for n in read - {"HOME"} if not n.startswith(MODEL_VARIABLES))
    assert missing == []
