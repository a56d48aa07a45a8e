"""A worker SIGKILLed after a model call was recorded: the resumed run does not call the
provider again (the calls are counted at a real HTTP server), and the ledger counts it once."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepstone import Budget, Client
from stepstone.core.model import RunState
from tests.apps import llm_app
from tests.llm_server import Answer, chat_reply, llm_server
from tests.workers import WorkerProcess, wait_for_file_line

pytestmark = [pytest.mark.crash, pytest.mark.slow]


def test_sigkill_after_a_recorded_llm_call_does_not_call_the_provider_again(
    store_url: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    with llm_server() as server, Client(store_url, workflows=llm_app) as client:
        client._portal.call(client.store.migrate)
        server.default = Answer(body=chat_reply("stepstone is durable", model="m1"))
        env = {
            "STEPSTONE_OPENAI_BASE_URL": f"{server.url}/v1",
            "STEPSTONE_LLM_MODEL": "m1",
            "HOME": str(tmp_path),
        }
        handle = client.start(llm_app.researcher, str(side), run_id="llm-crash")
        with WorkerProcess(store_url, env={**env, "CRASH_HOLD": "1"}, module=llm_app.__name__) as w:
            wait_for_file_line(side, r"^start publish ")
            w.kill()
        assert server.calls == 1
        with WorkerProcess(store_url, env=env, module=llm_app.__name__) as second:
            assert handle.result(timeout_s=30) == "published: stepstone is durable"
            second.stop()
        assert server.calls == 1, "the recorded model call was replayed, not made again"
        [line] = client.cost("llm-crash")
        assert (line.calls, line.input_tokens, line.output_tokens) == (1, 11, 7)
        assert [s.name for s in client.describe("llm-crash").steps] == ["research", "publish"]


def test_a_budget_pause_survives_a_worker_restart(store_url: str, tmp_path: Path) -> None:
    (tmp_path / ".stepstone").mkdir()
    # 1,000 USD per million tokens: a call of 11 + 7 tokens costs 0.018; a second one's worst
    # case (its prompt and 10 tokens out) would pass the workflow's 0.025 budget
    (tmp_path / ".stepstone" / "config.toml").write_text(
        "[llm.prices.m1]\ninput = 1000\noutput = 1000\n"
    )
    with llm_server() as server, Client(store_url, workflows=llm_app) as client:
        client._portal.call(client.store.migrate)
        server.default = Answer(body=chat_reply("part", model="m1"))
        env = {
            "STEPSTONE_OPENAI_BASE_URL": f"{server.url}/v1",
            "STEPSTONE_LLM_MODEL": "m1",
            "HOME": str(tmp_path),
        }
        handle = client.start(llm_app.budgeted, run_id="budget-1")
        with WorkerProcess(store_url, env=env, module=llm_app.__name__) as first:
            first.wait_for_line(r"budget-1.*paused|paused.*budget-1")
            first.kill()
        run = client.get("budget-1")
        assert run.state is RunState.PAUSED and run.error is not None
        assert "run 'budget-1' budget: $0.018000 of $0.025" in run.error.message
        assert server.calls == 1
        [use] = client.budget_use("budget-1")
        client.set_budget(Budget(usd=1.0), run_id=use.spec.name)
        client.unpause("budget-1")
        with WorkerProcess(store_url, env=env, module=llm_app.__name__) as second:
            assert handle.result(timeout_s=30) == ["part", "part"]
            second.stop()
        assert server.calls == 2
        [line] = client.cost("budget-1")
        assert line.calls == 2 and line.cost_usd == pytest.approx(0.036)
