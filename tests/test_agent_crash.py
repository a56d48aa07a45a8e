"""A 20-turn ctx.agent loop in a real worker, SIGKILLed at turn 10: the next worker rebuilds the
conversation from the journal and calls the model (a real local HTTP server, counting requests)
only for turns 11-20; every tool call recorded before the kill ran once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from stepstone import Client
from tests.apps import llm_app
from tests.llm_server import Answer, chat_reply, llm_server
from tests.workers import WorkerProcess, wait_for_file_line

pytestmark = [pytest.mark.crash, pytest.mark.slow]


def _tool_calls() -> list[dict[str, object]]:
    return [
        {
            "id": f"call_{name}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        }
        for name, args in (("lookup", {"topic": "durability"}), ("cite", {"source": "docs"}))
    ]


def test_a_loop_killed_at_turn_10_resumes_there_without_calling_the_model_again(
    store_url: str, tmp_path: Path
) -> None:
    side = tmp_path / "side.txt"
    with llm_server() as server, Client(store_url, workflows=llm_app) as client:
        client._portal.call(client.store.migrate)
        server.default = Answer(body=chat_reply("", model="m1", tool_calls=_tool_calls()))
        env = {
            "STEPSTONE_OPENAI_BASE_URL": f"{server.url}/v1",
            "STEPSTONE_LLM_MODEL": "m1",
            "HOME": str(tmp_path),
            "AGENT_SIDE": str(side),
        }
        handle = client.start(llm_app.looping, run_id="loop-crash")
        # turn 10's lookup (the 10th line of the side file) holds until the worker is killed
        with WorkerProcess(store_url, env={**env, "CRASH_AT": "10"}, module=llm_app.__name__) as w:
            wait_for_file_line(side, r"^tool 38 ")
            w.kill()
        assert server.calls == 10, "turn 10's reply was recorded before its tools ran"
        with WorkerProcess(store_url, env=env, module=llm_app.__name__) as second:
            assert handle.result(timeout_s=60) == [20, "max_turns", 40, 20 * 11]
            second.stop()
        assert server.calls == 20, "turns 1-10 were replayed from the journal"
        # the history sent at turn 11 was rebuilt from the journal, deltas only: it is turn
        # 10's history plus turn 10's assistant message and its two tool results
        turn10, turn11 = (server.requests[i]["body"]["messages"] for i in (9, 10))
        assert len(turn11) == 1 + 10 * 3 and turn11[: len(turn10)] == turn10
        assert [m["role"] for m in turn11[-3:]] == ["assistant", "tool", "tool"]
        assert turn11[-2]["content"] == "found durability"
        # every tool step recorded before the kill ran once; only the one killed ran twice
        lines = side.read_text().splitlines()
        seqs = Counter(int(line.split()[1]) for line in lines)
        assert seqs[38] == 2 and all(n == 1 for s, n in seqs.items() if s != 38)
        assert len(seqs) == 20  # one lookup a turn (cite writes nothing)
        [line] = client.cost("loop-crash")
        assert (line.calls, line.input_tokens) == (20, 20 * 11)
