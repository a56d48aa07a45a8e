"""YAML workflows under load and trouble: foreach concurrency, wait timeouts, api steps with the
SSRF guard, a SIGKILL of the process running a cli step (finished steps do not run again), and a
cli step cut off by the run's deadline (its processes die with it)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from stepstone import AsyncClient, RunFailed
from stepstone.spec import load_workflow
from tests.test_spec_run import write
from tests.test_spec_shell import ended, started_grandchild

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


async def test_foreach_runs_at_most_max_concurrency_items_at_once(tmp_path: Path, db: str) -> None:
    # each item marks itself running and waits (up to 5 s) until two items run: with
    # max_concurrency 2 every item sees exactly two, with 1 it would see one, with 4 up to four
    (tmp_path / "running").mkdir()
    wf = load_workflow(
        write(
            tmp_path,
            "fan.yaml",
            """
            schema_version: checkpointflow/v1
            workflow:
              id: fan
              steps:
                - id: each
                  kind: foreach
                  items: inputs.items
                  max_concurrency: 2
                  body:
                    - id: work
                      kind: cli
                      command: |-
                        D="${inputs.dir}"; touch "$D/${item}"; n=0
                        while [ "$(ls "$D" | wc -l)" -lt 2 ] && [ $n -lt 100 ]; do
                          sleep 0.05; n=$((n+1))
                        done
                        seen=$(ls "$D" | wc -l); sleep 0.2; rm "$D/${item}"; echo $seen
            """,
        )
    )
    async with AsyncClient(db, workflows=wf.registry()) as client:
        inputs = {"items": ["a", "b", "c", "d"], "dir": str(tmp_path / "running")}
        await client.run(wf, inputs, run_id="fan")
        steps = (await client.describe("fan")).steps
    assert [s.name for s in steps] == ["work[0]", "work[1]", "work[2]", "work[3]"]
    assert [json.loads(s.output_json or "")["outputs"] for s in steps] == [2, 2, 2, 2]


async def test_a_multi_step_foreach_body_runs_as_child_runs(tmp_path: Path, db: str) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            "body.yaml",
            """
            schema_version: stepstone/v1
            workflow:
              id: body
              steps:
                - id: prefix
                  kind: cli
                  command: echo '"item"'
                - id: each
                  kind: foreach
                  items: ${inputs.items}
                  max_concurrency: 2
                  body:
                    - id: first
                      kind: cli
                      argv: [echo, '{"n": ${item}}']
                    - id: second
                      kind: end
                      result: "${steps.prefix.outputs}-${item_index}-${steps.first.outputs.n * 10}"
                - id: all
                  kind: end
                  result: ${steps.each.outputs}
            """,
        )
    )
    async with AsyncClient(db, workflows=wf.registry()) as client:
        result = await client.run(wf, {"items": [1, 2, 3]}, run_id="b")
        desc = await client.describe("b")
        children = [await client.result(c.run_id) for c in desc.children]
    assert children == ["item-0-10", "item-1-20", "item-2-30"]
    assert result == children


async def test_an_await_event_timeout_jumps_to_on_timeout_or_fails(tmp_path: Path, db: str) -> None:
    text = """
    schema_version: stepstone/v1
    workflow:
      id: {id}
      steps:
        - id: ask
          kind: await_event
          audience: agent
          event_name: go
          input_schema: {{ type: object }}
          timeout_seconds: 0.2
          {on_timeout}
        - id: went
          kind: end
          result: went
        - id: late
          kind: end
          result: too late
    """
    wf = load_workflow(
        write(tmp_path, "t1.yaml", text.format(id="t1", on_timeout="on_timeout: { next: late }"))
    )
    async with AsyncClient(db, workflows=wf.registry()) as client:
        assert await client.run(wf, {}, run_id="t1") == "too late"
    bare = text.format(id="t2", on_timeout="").split("        - id: late")[0]
    wf2 = load_workflow(write(tmp_path, "t2.yaml", bare))
    async with AsyncClient(db, workflows=wf2.registry()) as client:
        with pytest.raises(RunFailed, match="WaitTimeout"):
            await client.run(wf2, {}, run_id="t2")


# --- api steps --------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(size) or b"null")
        reply = json.dumps({"got": body, "auth": self.headers.get("Authorization")}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def do_GET(self) -> None:
        reply = b"plain text"
        self.send_response(503 if "fail" in self.path else 200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


API = """
schema_version: {version}
workflow:
  id: api
  {defaults}
  steps:
    - id: post
      kind: api
      method: POST
      url: ${{inputs.base}}/items
      headers: {{ Authorization: "Bearer ${{inputs.token}}" }}
      body: {{ n: "${{inputs.n}}", tags: [a, "${{inputs.token}}"] }}
    - id: get
      kind: api
      method: GET
      url: ${{inputs.base}}/${{inputs.path}}
    - id: done
      kind: end
      result: {{ post: "${{steps.post.outputs}}", get: "${{steps.get.outputs}}" }}
"""


async def test_api_steps_send_json_and_capture_responses(
    tmp_path: Path, db: str, server: str
) -> None:
    text = API.format(version="stepstone/v1", defaults="defaults: { allow_hosts: [127.0.0.1] }")
    wf = load_workflow(write(tmp_path, "api.yaml", text))
    inputs = {"base": server, "token": "t0k", "n": 5, "path": "status"}
    async with AsyncClient(db, workflows=wf.registry()) as client:
        result = await client.run(wf, inputs, run_id="a")
        assert result == {
            "post": {"got": {"n": 5, "tags": ["a", "t0k"]}, "auth": "Bearer t0k"},
            "get": {"body": "plain text"},
        }
        with pytest.raises(
            RunFailed, match=r"step 'get': HTTP 503 \(success is \[200, 201, 204\]\)"
        ):
            await client.run(wf, {**inputs, "path": "fail"}, run_id="b")


async def test_api_steps_cannot_reach_private_addresses_unless_allowed(
    tmp_path: Path, db: str, server: str
) -> None:
    wf = load_workflow(
        write(tmp_path, "api.yaml", API.format(version="checkpointflow/v1", defaults=""))
    )
    async with AsyncClient(db, workflows=wf.registry()) as client:
        with pytest.raises(RunFailed, match="BlockedAddress"):
            await client.run(wf, {"base": server, "token": "x", "n": 1, "path": "s"}, run_id="c")


# --- a crash mid-step -------------------------------------------------------------------------

RUNNER = """
import sys
from stepstone import Client
from stepstone.spec import load_workflow

wf = load_workflow(sys.argv[1])
with Client(sys.argv[2], workflows=wf.registry()) as client:
    print(client.run(wf, {"dir": sys.argv[3]}, run_id="crash"), flush=True)
"""

CRASHY = """
schema_version: checkpointflow/v1
workflow:
  id: crashy
  steps:
    - id: one
      kind: cli
      command: echo one >> "${inputs.dir}/marks"
    - id: two
      kind: cli
      command: |-
        echo two >> "${inputs.dir}/marks"; touch "${inputs.dir}/two-started"
        n=0; while [ ! -e "${inputs.dir}/release" ] && [ $n -lt 600 ]; do
          sleep 0.05; n=$((n+1))
        done
    - id: three
      kind: cli
      command: echo three >> "${inputs.dir}/marks"
    - id: done
      kind: end
      result: finished
"""


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, f"the runner exited early: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@pytest.mark.crash
def test_sigkill_during_a_cli_step_then_resume_runs_finished_steps_once(tmp_path: Path) -> None:
    flow = write(tmp_path, "crashy.yaml", CRASHY)
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    work = tmp_path / "work"
    work.mkdir()
    script = write(tmp_path, "runner.py", RUNNER)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    args = [sys.executable, str(script), str(flow), db, str(work)]
    first = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(work / "two-started", first)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    (work / "release").touch()  # the orphaned command (and the next attempt) may finish now
    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "finished"
    marks = (work / "marks").read_text().split()
    assert marks.count("one") == 1, marks  # finished before the kill: not run again
    assert marks.count("two") == 2, marks  # in flight at the kill: at least once, here twice
    assert marks.count("three") == 1, marks


async def test_a_cli_step_cut_off_by_the_run_deadline_kills_its_process_group(
    tmp_path: Path, db: str
) -> None:
    # the step is cancelled on the loop at the deadline: its command and grandchild die then,
    # not 30 s later
    fifo = tmp_path / "pid"
    os.mkfifo(fifo)
    wf = load_workflow(
        write(
            tmp_path,
            "stuck.yaml",
            """
            schema_version: stepstone/v1
            workflow:
              id: stuck
              steps:
                - id: hang
                  kind: cli
                  command: sh -c 'sleep 30 & echo $! > "$1"; wait' sh "${inputs.fifo}"
            """,
        )
    )
    started = time.monotonic()
    async with AsyncClient(db, workflows=wf.registry()) as client:
        run = asyncio.ensure_future(
            client.run(wf, {"fifo": str(fifo)}, run_id="stuck", deadline_s=1.5)
        )
        grandchild = await started_grandchild(fifo, run)
        with pytest.raises(RunFailed, match="deadline"):
            await run
    assert await ended(grandchild), "the step's grandchild outlived the run's deadline"
    assert time.monotonic() - started < 10


async def test_the_stepstone_example_runs(db: str) -> None:
    wf = load_workflow(ROOT / "examples" / "yaml" / "pipeline.yaml")
    async with AsyncClient(db, workflows=wf.registry()) as client:
        result = await client.run(wf, {"words": ["durable", "yaml", "steps"]}, run_id="ex")
    assert result == {
        "lengths": [7, 4, 5],
        "total": 16,
        "report": "3 words, 16 letters",
    }
    await asyncio.sleep(0)


async def test_checkpointflow_parallel_branches_run_each_step_once(tmp_path: Path, db: str) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            "par.yaml",
            """
            schema_version: checkpointflow/v1
            workflow:
              id: checks
              steps:
                - id: par
                  kind: parallel
                  branches:
                    - start_at: lint
                    - start_at: test
                    - start_at: note
                - id: lint
                  kind: cli
                  command: echo lint >> "${inputs.log}"; echo '"clean"'
                - id: test
                  kind: cli
                  command: echo test >> "${inputs.log}"; echo 3
                - id: note
                  kind: end
                  result: { by: "${inputs.who}" }
                - id: after
                  kind: end
                  result: ${steps.par.outputs}
            """,
        )
    )
    log = tmp_path / "log"
    async with AsyncClient(db, workflows=wf.registry()) as client:
        result = await client.run(wf, {"log": str(log), "who": "ana"}, run_id="par")
    assert result == {"lint": "clean", "test": 3, "note": {"by": "ana"}}
    assert sorted(log.read_text().split()) == ["lint", "test"]
