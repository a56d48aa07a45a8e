"""The Flow builder (stepstone.flow): the graph compiles onto the engine, one step per task."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from stepstone import (
    AsyncClient,
    DuplicateRun,
    InvalidArgument,
    RunFailed,
    StepTimeout,
    Worker,
)
from stepstone import RetryPolicy as CoreRetryPolicy
from stepstone.cli.main import main as cli_main
from stepstone.core.model import RunState, StepKind
from stepstone.flow import (
    Flow,
    FlowError,
    InMemoryBackend,
    LoopResult,
    OnMax,
    RetryPolicy,
    TaskExecutionContext,
    WorkflowClient,
    cancel_workflow,
    get_task_context,
    parse_duration,
    pause_workflow,
    resume_workflow,
    run_durable_workflow,
    run_workflow,
    send_signal,
    task,
    unpause_workflow,
)

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


@task
def double(x: int) -> int:
    calls["double"] += 1
    return x * 2


@task("add-ten", retries=2)
def add_ten(x: int) -> int:
    calls["add-ten"] += 1
    return x + 10


async def negate(x: int) -> int:
    calls["negate"] += 1
    return -x


def step_names(records: list[Any]) -> list[str]:
    return [r.name for r in records if r.kind is StepKind.STEP]


# --- sequences, ids, steps ------------------------------------------------------------------


def test_then_chains_tasks_plain_functions_and_lambdas() -> None:
    wf = Flow("math").then(double).then(add_ten).then(negate).then(lambda x: x + 1).build()
    assert run_workflow(wf, 5) == -19
    assert calls == Counter({"double": 1, "add-ten": 1, "negate": 1})
    ids = [t.task_id for t in wf.graph.tasks()]
    assert ids[:3] == ["double", "add-ten", "negate"]
    assert ids[3].startswith("lambda_")


async def test_each_task_is_a_checkpointed_step_named_by_its_id(client: AsyncClient) -> None:
    wf = Flow("named").then(double).then(add_ten, name="plus").build()
    assert await client.run(wf, 4, run_id="n1") == 18
    assert step_names(await client.store.load_steps("n1")) == ["double", "plus"]
    assert await client.run(wf, 4, run_id="n1") == 18  # replayed, not executed again
    assert calls == Counter({"double": 1, "add-ten": 1})


def test_lambda_ids_come_from_their_code_not_their_position() -> None:
    first = Flow("a").then(lambda x: x + 1).then(lambda x: x * 3).build()
    second = Flow("b").then(lambda x: x - 7).then(lambda x: x + 1).then(lambda x: x * 3).build()
    ids_a = [t.task_id for t in first.graph.tasks()]
    ids_b = [t.task_id for t in second.graph.tasks()]
    assert ids_b[1:] == ids_a  # the inserted lambda did not take another lambda's id
    assert len(set(ids_b)) == 3
    offsets = [Flow("c").then(lambda x, k=k: x + k).graph() for k in (1, 2)]
    assert offsets[0].nodes[0].task_id != offsets[1].nodes[0].task_id  # type: ignore[union-attr]


def test_one_id_for_two_functions_is_refused() -> None:
    def other(x: int) -> int:
        return x

    with pytest.raises(InvalidArgument, match="names two different functions"):
        Flow("clash").then(double).then(other, name="double").build()
    assert run_workflow(Flow("twice").then(double).then(double).build(), 1) == 4


def test_version_follows_the_shape_and_the_code() -> None:
    def build(*fns: Any) -> str:
        flow = Flow("v")
        for fn in fns:
            flow = flow.then(fn)
        return flow.build().version

    assert build(double, add_ten) == build(double, add_ten)
    assert build(double, add_ten) != build(add_ten, double)  # reordered
    assert build(double, add_ten) != build(double, negate, add_ten)  # inserted
    assert build(lambda x: x + 1) != build(lambda x: x + 2)  # a task's code


async def test_check_reports_a_run_of_the_old_shape_as_not_continuable(
    client: AsyncClient,
) -> None:
    old = Flow("ship").then(double).wait_for_signal("go").then(add_ten).build()
    status = await _drive(client, old, "s1", 3)
    assert status.status == "awaiting_signal"
    new = Flow("ship").then(add_ten).then(double).wait_for_signal("go").build()
    assert new.version != old.version
    checker = AsyncClient(client.store, workflows=[new])
    try:
        [result] = await checker.check()
        assert not result.ok and "'double'" in str(result.problem)
        assert "'add-ten'" in str(result.problem)
        await checker.signal("s1", "go", 1)
        with pytest.raises(RunFailed):
            await checker.run(new, run_id="s1")
        assert (await checker.get("s1")).state is RunState.BLOCKED
    finally:
        await checker.close()
    assert calls == Counter({"double": 1})  # nothing ran under the new shape


async def _drive(client: AsyncClient, wf: Any, run_id: str, value: Any) -> Any:
    from stepstone.flow.runners import drive

    return await drive(client, wf, run_id, (value,))


# --- fork / join ----------------------------------------------------------------------------


def slow_a(x: int) -> str:
    time.sleep(0.4)
    return f"a{x}"


async def slow_b(x: int) -> str:
    await asyncio.sleep(0.4)
    return f"b{x}"


def shout(text: str) -> str:
    calls["shout"] += 1
    return text.upper()


async def test_fork_branches_run_concurrently_and_join_gets_their_outputs(
    client: AsyncClient,
) -> None:
    wf = (
        Flow("fan")
        .fork()
        .branch(slow_a)
        .branch(slow_b, shout)
        .branch(lambda x: x, name="same")
        .join(lambda outs: outs, name="merge")
        .build()
    )
    started = time.monotonic()
    result = await client.run(wf, 1, run_id="f1")
    assert time.monotonic() - started < 1.5  # both 0.4 s branches at once
    assert result == {"slow_a": "a1", "slow_b": "B1", "same": 1}
    steps = await client.store.load_steps("f1")
    assert step_names(steps) == ["slow_a", "same", "merge"]
    [child] = [r for r in steps if r.kind is StepKind.CHILD]
    child_id = (await client.list(parent_run_id="f1"))[0].run_id
    assert step_names(await client.store.load_steps(child_id)) == ["slow_b", "shout"]
    assert child.name == "fan"
    assert await client.run(wf, 1, run_id="f1") == result
    assert calls == Counter(shout=1)


def test_fork_branch_names_must_differ() -> None:
    with pytest.raises(InvalidArgument, match="two fork branches"):
        Flow("x").fork().branch(double).branch(double)
    assert Flow("y").fork().branch(double).branch(double, name="again").join(dict).build()


# --- route ----------------------------------------------------------------------------------


def classify(ticket: dict[str, Any]) -> str:
    return str(ticket["type"])


def routed(default: bool) -> Any:
    flow = (
        Flow("router")
        .route(classify, keys=["billing", "tech"])
        .branch("billing", lambda t: f"billing {t['id']}", name="bill")
        .branch("tech", lambda t: t["id"], lambda i: f"tech {i}", name="tech")
    )
    if default:
        flow = flow.default_branch(lambda t: "general", name="general")
    return flow.done().then(lambda env: env, name="after").build()


def test_route_picks_a_branch_and_wraps_its_output() -> None:
    wf = routed(default=True)
    assert run_workflow(wf, {"type": "billing", "id": 7}) == {
        "branch": "billing",
        "result": "billing 7",
    }
    assert run_workflow(wf, {"type": "tech", "id": 8}) == {"branch": "tech", "result": "tech 8"}
    assert run_workflow(wf, {"type": "other", "id": 9}) == {"branch": "other", "result": "general"}


def test_route_without_a_default_fails_on_an_unknown_key() -> None:
    with pytest.raises(RunFailed, match="no branch for key 'other'") as caught:
        run_workflow(routed(default=False), {"type": "other", "id": 1})
    assert caught.value.error_type == FlowError.__name__


def test_route_mistakes_are_build_time_errors() -> None:
    route = Flow("r").route(classify, keys=["a", "b"])
    with pytest.raises(InvalidArgument, match="not one of the declared keys"):
        route.branch("c", double)
    with pytest.raises(InvalidArgument, match=r"no branch for keys \['b'\]"):
        route.branch("a", double).done()


# --- loop -----------------------------------------------------------------------------------


def refine(draft: str) -> Any:
    calls["refine"] += 1
    better = draft + "!"
    if len(better) >= 5:
        return LoopResult.done(better).to_dict()
    return LoopResult.again(better)


async def test_loop_runs_until_done_each_iteration_a_step(client: AsyncClient) -> None:
    wf = Flow("iterate").then(lambda s: s, name="start").loop(refine, max_iterations=5).build()
    assert await client.run(wf, "ab", run_id="l1") == "ab!!!"
    assert step_names(await client.store.load_steps("l1")) == ["start"] + ["refine"] * 3


def test_loop_max_iterations() -> None:
    grow = Flow("grow").loop(lambda x: LoopResult.again(x + 1), max_iterations=3, name="grow")
    with pytest.raises(RunFailed, match=r"exceeded max iterations \(3\)"):
        run_workflow(grow.build(), 0)
    last = Flow("last").loop(
        lambda x: LoopResult.again(x + 1), max_iterations=3, on_max=OnMax.EXIT_WITH_LAST
    )
    assert run_workflow(last.build(), 0) == 3
    with pytest.raises(RunFailed, match="return LoopResult"):
        run_workflow(Flow("bad").loop(lambda x: x).build(), 0)
    with pytest.raises(InvalidArgument, match="on_max"):
        Flow("x").loop(double, on_max="forever")


# --- delays and signals ---------------------------------------------------------------------


def test_delay_parks_the_run_and_resume_goes_on(tmp_path: Path) -> None:
    wf = Flow("later").then(double).delay("cool-off", 0.3).then(add_ten).build()
    url = f"sqlite:///{tmp_path / 'later.db'}"
    status = run_durable_workflow(wf, "d1", 1, store=url)
    assert status.status == "waiting" and status.is_waiting() and status.wake_at
    time.sleep(0.35)
    status = resume_workflow(wf, "d1", url)
    assert status.is_completed() and status.output == 12
    assert parse_duration("1h") == 3600 and parse_duration("250ms") == 0.25
    started = time.monotonic()
    assert run_workflow(wf, 1) == 12  # in memory the delay is waited through
    assert time.monotonic() - started >= 0.3


def test_signal_wait_parks_until_the_signal() -> None:
    wf = Flow("approve").then(double).wait_for_signal("decision", timeout="1h").build()
    with InMemoryBackend() as backend:
        status = run_durable_workflow(wf, "g1", 2, backend=backend)
        assert status.is_awaiting_signal() and status.signal_name == "decision"
        send_signal("g1", "decision", {"ok": True}, backend)
        status = resume_workflow(wf, "g1", backend)
        assert status.is_completed() and status.output == {"ok": True}


def test_signal_timeout_calls_on_timeout_or_fails_the_run(tmp_path: Path) -> None:
    def fallback(value: int) -> str:
        return f"timed out with {value}"

    url = f"sqlite:///{tmp_path / 'sig.db'}"
    wf = Flow("patient").then(double).wait_for_signal("x", timeout=0.1, on_timeout=fallback)
    assert run_workflow(wf.build(), 3, store=url) == "timed out with 6"
    strict = Flow("strict").then(double).wait_for_signal("x", timeout=0.1).then(add_ten)
    with pytest.raises(RunFailed, match="WaitTimeout") as caught:
        run_workflow(strict.build(), 3, store=url)
    assert caught.value.error_type == "WaitTimeout"


# --- composition, options, context, pydantic ------------------------------------------------


def test_then_flow_runs_another_flow_inline() -> None:
    inner = Flow("inner").then(double).then(add_ten)
    outer = Flow("outer").then(negate).then_flow(inner).then_flow(inner.build()).build()
    assert run_workflow(outer, 1) == ((-2 + 10) * 2) + 10


def test_task_options_become_step_options() -> None:
    @task(timeout="100ms")
    def too_slow(x: int) -> int:
        time.sleep(0.5)
        return x

    with pytest.raises(RunFailed, match="StepTimeout") as caught:
        run_workflow(Flow("slow").then(too_slow).build(), 1)
    assert caught.value.error_type == StepTimeout.__name__

    attempts: Counter[str] = Counter()

    @task(retries=RetryPolicy(max_retries=2, initial_delay_secs=0.01, backoff_multiplier=1.0))
    def flaky(x: int) -> int:
        attempts["flaky"] += 1
        if attempts["flaky"] < 3:
            raise ConnectionError("try again")
        return x

    assert run_workflow(Flow("flaky").then(flaky).build(), 5) == 5
    assert attempts["flaky"] == 3
    policy = RetryPolicy(max_retries=3, initial_delay_secs=0.5, backoff_multiplier=2.0)
    assert isinstance(policy, CoreRetryPolicy) and policy.max_attempts == 4
    assert (policy.max_retries, policy.initial_delay_secs, policy.backoff_multiplier) == (3, 0.5, 2)


seen: list[TaskExecutionContext | None] = []


@task("Inspect", timeout="30s", tags=["io"], description="looks around")
def inspect_context(x: Any) -> Any:
    seen.append(get_task_context())
    return x


def test_get_task_context_inside_and_outside_tasks(tmp_path: Path) -> None:
    seen.clear()
    assert get_task_context() is None
    wf = (
        Flow("ctx", metadata={"team": "ops"})
        .then(inspect_context)
        .fork()
        .branch(lambda x: x, inspect_context, name="pair")
        .branch(lambda x: x, name="one")
        .join(lambda outs: outs)
        .build()
    )
    status = run_durable_workflow(wf, "c1", 1, store=f"sqlite:///{tmp_path / 'ctx.db'}")
    assert status.is_completed()
    assert len(seen) == 2 and all(c is not None for c in seen)
    for ctx in seen:
        assert ctx is not None
        assert (ctx.workflow_id, ctx.instance_id, ctx.task_id) == ("ctx", "c1", "Inspect")
        assert ctx.metadata.timeout_secs == 30 and ctx.metadata.tags == ("io",)
        assert ctx.metadata.description == "looks around"
        assert ctx.workflow_metadata == {"team": "ops"}


class Order(BaseModel):
    order_id: int
    amount: float


class Receipt(BaseModel):
    status: str
    total: float


def charge(order: Order) -> Receipt:
    assert isinstance(order, Order)
    return Receipt(status="ok", total=order.amount * 2)


def test_pydantic_inputs_are_validated_and_outputs_dumped() -> None:
    wf = Flow("typed").then(charge).build()
    assert run_workflow(wf, {"order_id": 1, "amount": 2.5}) == {"status": "ok", "total": 5.0}
    with pytest.raises(RunFailed, match="ValidationError"):
        run_workflow(wf, {"order_id": "x"})


# --- runners, control, workers --------------------------------------------------------------


def test_durable_runs_on_both_stores(store_url: str) -> None:
    wf = Flow("durable").then(double).then(add_ten).build()
    status = run_durable_workflow(wf, "r1", 4, store=store_url)
    assert status.is_completed() and status.output == 18 and status.status == "completed"
    with pytest.raises(DuplicateRun):
        run_durable_workflow(wf, "r1", 4, store=store_url)
    again = run_durable_workflow(wf, "r1", 4, store=store_url, conflict_policy="use_existing")
    assert again.output == 18 and calls == Counter({"double": 1, "add-ten": 1})
    assert run_workflow(wf, 1, instance_id="r2", store=store_url) == 12


def test_failed_run_reports_its_error_and_retry_keeps_completed_tasks(tmp_path: Path) -> None:
    state = {"broken": True}

    def fragile(x: int) -> int:
        if state["broken"]:
            raise ValueError("boom")
        return x + 1

    url = f"sqlite:///{tmp_path / 'retry.db'}"
    wf = Flow("fragile").then(double).then(fragile).build()
    status = run_durable_workflow(wf, "x1", 1, store=url)
    assert status.is_failed() and status.error == "ValueError: boom"
    state["broken"] = False
    from stepstone import Client

    with Client(url, workflows=[wf]) as client:
        client.retry("x1")
        assert client.run(wf, run_id="x1") == 3
    assert calls == Counter(double=1)


def test_cancel_pause_and_unpause(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ctl.db'}"
    wf = Flow("held").then(double).wait_for_signal("go").then(add_ten).build()
    assert run_durable_workflow(wf, "p1", 1, store=url).is_awaiting_signal()
    pause_workflow("p1", url, reason="maintenance", paused_by="ops")
    send_signal("p1", "go", 5, url)
    assert resume_workflow(wf, "p1", url).is_paused()
    unpause_workflow("p1", url)
    assert resume_workflow(wf, "p1", url).output == 15
    assert run_durable_workflow(wf, "p2", 1, store=url).is_awaiting_signal()
    cancel_workflow("p2", url, reason="not needed", cancelled_by="ana")
    status = resume_workflow(wf, "p2", url)
    assert status.is_cancelled() and status.reason == "not needed"
    assert status.cancelled_by == "ana"


def test_workflow_client_submits_for_a_worker(store_url: str) -> None:
    wf = (
        Flow("served")
        .then(double)
        .fork()
        .branch(slow_b, shout)
        .branch(negate)
        .join(lambda outs: outs, name="merge")
        .wait_for_signal("finish")
        .build()
    )
    client = WorkflowClient(store_url)
    worker = Worker(store_url, workflows=[wf], concurrency=4)
    serving = threading.Thread(target=worker.run, daemon=True)
    try:
        assert client.submit(wf, "w1", 3).status == "in_progress"
        with pytest.raises(DuplicateRun):
            client.submit(wf, "w1", 3)
        serving.start()
        deadline = time.monotonic() + 30
        while not client.status("w1").is_awaiting_signal():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        client.send_signal("w1", "finish", "done")
        while not client.status("w1").is_completed():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert client.status("w1").output == "done"
        assert calls == Counter({"double": 1, "shout": 1, "negate": 1})
    finally:
        worker.stop()
        serving.join(timeout=30)
        client.close()


def test_mermaid_and_the_graph_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = tmp_path / "flow_app.py"
    app.write_text(
        "from stepstone import workflow\n"
        "from stepstone.flow import Flow\n"
        "def a(x): return x\n"
        "def b(x): return x\n"
        "def key(x): return 'left'\n"
        "pipeline = (Flow('pipeline').then(a).fork().branch(a, b, name='ab').branch(b)\n"
        "    .join(a, name='j').route(key, keys=['left']).branch('left', b).done()\n"
        "    .loop(a, name='again').delay('pause', '5m').wait_for_signal('go').build())\n"
        "@workflow\n"
        "async def coded(ctx, x):\n"
        "    return x\n"
    )
    assert cli_main(["graph", "--app", str(app), "pipeline"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flowchart TD")
    for text in ('"ab"', '"j"', '-->|"left"|', "delay pause (300s)", "signal go", '"again"'):
        assert text in out
    assert cli_main(["graph", "--app", str(app), "coded"]) == 0
    assert "known only as it runs" in capsys.readouterr().out
    assert cli_main(["graph", "--app", str(app), "nope"]) == 3


def test_a_built_flow_works_with_the_cli_and_fork(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "flow_cli_app.py"
    app.write_text(
        "from stepstone.flow import Flow\n"
        "def double(x): return x * 2\n"
        "def inc(x): return x + 1\n"
        "pipeline = Flow('pipeline').then(double).then(inc).build()\n"
    )
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert cli_main(["migrate", "--db", db]) == 0
    capsys.readouterr()
    argv = ["run", "pipeline", "--app", str(app), "--db", db, "--input", "[5]", "--run-id", "c1"]
    assert cli_main([*argv, "--json"]) == 0
    envelope = json.loads(capsys.readouterr().out)
    assert envelope["ok"] and envelope["data"]["result"] == 11
    from stepstone import Client
    from stepstone.cli.app import load_app

    with Client(db, workflows=load_app(str(app))) as client:
        forked = client.fork("c1", 1, patch={0: 100})
        assert client.run("pipeline", run_id=forked.run_id) == 101


def test_run_workflow_leaves_no_store_behind(tmp_path: Path) -> None:
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("stepstone-flow-*"))
    assert run_workflow(Flow("gone").then(double).build(), 2) == 4
    assert set(Path(tempfile.gettempdir()).glob("stepstone-flow-*")) <= before


def test_a_kept_backend_takes_a_flow_built_again() -> None:
    with InMemoryBackend() as backend:
        first = Flow("rebuilt").then(double).build()
        assert run_durable_workflow(first, "k1", 1, backend=backend).output == 2
        again = Flow("rebuilt").then(double).then(add_ten).build()
        assert run_durable_workflow(again, "k2", 1, backend=backend).output == 12


async def test_approval_gate_timeout_raises_inside_the_step() -> None:
    from stepstone import WaitTimeout
    from stepstone.flow import ApprovalGate, DurableWorkflow

    wf = DurableWorkflow(name="gated")  # no store: a temporary one
    outcomes: list[str] = []

    @wf.step("ask")
    async def ask(topic: str) -> str:
        try:
            return str(await ApprovalGate(timeout_seconds=0.1).wait(wf, "ok"))
        except WaitTimeout:
            outcomes.append("timed out")
            return f"no answer on {topic}"

    try:
        assert await wf.run(topic="x") == "no answer on x"
        assert outcomes == ["timed out"]
        with pytest.raises(InvalidArgument, match="inside a step"):
            await ApprovalGate().wait(wf, "ok")
    finally:
        await wf.close()


@pytest.mark.crash
@pytest.mark.slow
def test_a_flow_survives_a_killed_worker_each_task_once(store_url: str, tmp_path: Path) -> None:
    from collections import defaultdict

    from stepstone import Client
    from tests.apps import flow_app
    from tests.workers import WorkerProcess, wait_for_file_line

    side = tmp_path / "side.txt"
    with Client(store_url, workflows=[flow_app.crashy]) as client:
        client._portal.call(client.store.migrate)
        handle = client.start(flow_app.crashy, str(side), run_id="flow-crash")
        with WorkerProcess(store_url, env={"CRASH_HOLD": "t4"}, module=flow_app.__name__) as first:
            wait_for_file_line(side, r"^start t4 ")
            first.kill()
        with WorkerProcess(store_url, module=flow_app.__name__) as second:
            assert handle.result(timeout_s=60) == str(side)
            second.stop()
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for line in side.read_text().splitlines():
        kind, task_id, _ = line.split()
        counts[kind, task_id] += 1
    for task_id in flow_app.TASKS:
        assert counts["end", task_id] == 1, f"task {task_id} completed {counts['end', task_id]}x"
        assert counts["start", task_id] == (2 if task_id == "t4" else 1), task_id


# --- in memory: no store, the same task semantics ----------------------------------------------


def test_fork_branches_overlap_in_memory() -> None:
    # each branch's first task waits for the other branch's: only concurrent branches pass
    meet = threading.Barrier(2, timeout=5)

    def arrive(x: int) -> int:
        meet.wait()
        return x

    wf = (
        Flow("overlap")
        .fork()
        .branch(arrive, double, name="a")  # a two-task branch
        .branch(arrive, add_ten, name="b")
        .join(lambda outs: outs["a"] + outs["b"])
        .build()
    )
    assert run_workflow(wf, 1) == 2 + 11
    meet.reset()
    one_task = Flow("overlap1").fork().branch(arrive, name="x").branch(arrive, name="y").join(len)
    assert run_workflow(one_task.build(), 1) == 2


def test_a_signal_wait_in_memory_is_refused_or_times_out() -> None:
    wf = Flow("asks").then(double).wait_for_signal("ok").build()
    with pytest.raises(RunFailed, match="cannot receive signals"):
        run_workflow(wf, 1)
    timed = Flow("asks2").wait_for_signal("ok", timeout=0.01, on_timeout=add_ten).build()
    assert run_workflow(timed, 1) == 11


async def test_run_workflow_from_async_code() -> None:
    assert run_workflow(Flow("in_loop").then(double).build(), 4) == 8
