"""A 20-turn ``ctx.agent`` loop (2 tools a turn) SIGKILLed at turn 10: time from the new worker
process's start to its next model call.

    .venv/bin/python bench/agent_bench.py [--reps 7]

Each rep: a fresh SQLite file; a worker process runs the loop against the offline scripted
provider until turn 10's first tool holds, and is SIGKILLed there. Then a second worker process
is started (the clock starts just before ``Popen``); its provider writes the time of its first
call to a file: that is the next model call, turn 11's (turn 10's reply was recorded before its
tools ran). In between: interpreter start, imports, opening the store, releasing the dead
worker's run, the claim, and replaying turns 1-10 from the journal (10 model replies, 20 tool
results, 11 note polls) without calling anything. Medians of ``reps``; also the time until the
worker's code began (interpreter + imports), to show what is stepstone's share.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T_MAIN = time.time()

from stepstone import WorkflowContext, workflow  # noqa: E402
from stepstone.core.llm import ModelReply, ModelRequest, ToolCall, Usage  # noqa: E402
from stepstone.models import Models, ScriptedProvider, ScriptedReply  # noqa: E402

TURNS, CRASH_TURN = 20, 10


def lookup(topic: str) -> str:
    """Look a topic up (the side file counts calls; the crash turn's call holds)."""
    side = Path(os.environ["AGENT_SIDE"])
    with side.open("a") as f:
        f.write("x\n")
    if len(side.read_text().splitlines()) == int(os.environ.get("CRASH_AT", "0")):
        Path(os.environ["AGENT_SIDE"] + ".held").write_text("held")
        time.sleep(60)
    return f"found {topic}"


def cite(source: str) -> str:
    """Cite a source."""
    return f"[{source}]"


@workflow(name="loop20")
async def loop20(ctx: WorkflowContext) -> int:
    done = await ctx.agent("research", tools=[lookup, cite], max_turns=TURNS)
    return done.turns


class MarkingProvider(ScriptedProvider):
    """Scripted replies; the wall-clock time of the first call goes to $AGENT_MARK."""

    async def complete(self, request: ModelRequest) -> ModelReply:
        mark = os.environ.get("AGENT_MARK")
        if mark and self.calls == 0:
            Path(mark).write_text(f"{time.time()} {T_MAIN}")
        return await super().complete(request)


def worker(db: str) -> None:
    from stepstone import Settings, Worker

    calls = (ToolCall("a", "lookup", {"topic": "x"}), ToolCall("b", "cite", {"source": "y"}))
    reply = ScriptedReply(tool_calls=calls, usage=Usage(100, 20), repeat=True)
    models = Models([MarkingProvider([reply])], default_model="m")
    settings = Settings(poll_s=0.01, lease_s=30.0)
    Worker(db, workflows=[loop20], settings=settings, models=models).run()


def one_rep(folder: Path) -> tuple[float, float]:
    from stepstone import Client

    db = f"sqlite:///{folder / 'agent.db'}"
    side, mark = folder / "side.txt", folder / "mark.txt"
    env = {**os.environ, "AGENT_SIDE": str(side), "PYTHONPATH": str(Path(__file__).parent)}
    with Client(db) as client:
        client._portal.call(client.store.migrate)
        handle = client.start(loop20, run_id="loop")
    argv = [sys.executable, __file__, "--worker", db]
    first = subprocess.Popen(argv, env={**env, "CRASH_AT": str(CRASH_TURN)})
    held = Path(str(side) + ".held")
    while not held.exists():  # the tool writes it, then holds: the event of this bench
        time.sleep(0.002)
    first.send_signal(signal.SIGKILL)
    first.wait()
    started = time.time()
    second = subprocess.Popen(argv, env={**env, "AGENT_MARK": str(mark)})
    try:
        with Client(db, workflows=[loop20]) as client:
            assert client.result(handle.run_id, timeout_s=60) == TURNS
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait()
    called, code_began = (float(x) for x in mark.read_text().split())
    return (called - started) * 1000, (code_began - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--worker", metavar="DB")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    to_call, to_code = [], []
    for _ in range(args.reps):
        with tempfile.TemporaryDirectory() as folder:
            a, b = one_rep(Path(folder))
            to_call.append(a)
            to_code.append(b)
    print(f"resume after SIGKILL at turn {CRASH_TURN} of {TURNS} (2 tools a turn), SQLite:")
    print(f"  process start -> next model call: {statistics.median(to_call):7.1f} ms median")
    print(f"  process start -> worker code:     {statistics.median(to_code):7.1f} ms median")
    print(f"  (reps {args.reps}: {', '.join(f'{x:.0f}' for x in sorted(to_call))} ms)")


if __name__ == "__main__":
    main()
