"""sayiir's README examples and sagewai's DurableWorkflow/ApprovalGate examples run on
stepstone.flow with only their imports changed.

Each example is kept as the text it is published as (their code, their style); ``adapt`` changes
only the import lines (and, for the PostgreSQL examples, the database URL to the test database).
Names an example uses without defining (``researcher``, ``improve``...) are given beside it.
"""

from __future__ import annotations

import asyncio
import textwrap
from typing import Any

import pytest

from stepstone import AsyncClient, open_store
from stepstone.core.model import RunState
from stepstone.core.port import Store


def adapt(source: str, *, url: str | None = None) -> str:
    """The example with its imports pointed at stepstone.flow (and its database URL at ours)."""
    lines = []
    for line in textwrap.dedent(source).splitlines():
        if line.startswith(("from sayiir import", "from sagewai import")):
            line = "from stepstone.flow import" + line.split(" import", 1)[1]
        elif line.startswith("from sagewai.core.stores.postgres import"):
            line = "from stepstone.flow import PostgresStore"
        lines.append(line)
    text = "\n".join(lines) + "\n"
    if url is not None:
        for theirs in ("postgresql://localhost/sayiir", "postgresql://localhost/sagewai"):
            text = text.replace(theirs, url)
    return text


def run_example(source: str, given: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "example", **(given or {})}
    exec(compile(adapt(source, **kw), "<example>", "exec"), namespace)
    return namespace


async def run_async_example(
    source: str, given: dict[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    """An example written with top-level ``await``, run as the body of a coroutine."""
    body = textwrap.indent(adapt(source, **kw), "    ")
    namespace: dict[str, Any] = {"__name__": "example", **(given or {})}
    code = f"async def __example__():\n{body}\n    return locals()\n"
    exec(compile(code, "<example>", "exec"), namespace)
    found: dict[str, Any] = await namespace["__example__"]()
    return {**namespace, **found}


# --- sayiir's README -------------------------------------------------------------------------


def test_sayiir_hello() -> None:
    ns = run_example(
        """
        from sayiir import task, Flow, run_workflow

        @task
        def fetch_user(user_id: int) -> dict:
            return {"id": user_id, "name": "Alice"}

        @task
        def send_email(user: dict) -> str:
            return f"Sent welcome to {user['name']}"

        workflow = Flow("welcome").then(fetch_user).then(send_email).build()
        result = run_workflow(workflow, 42)
        # "Sent welcome to Alice"
        """
    )
    assert ns["result"] == "Sent welcome to Alice"


def test_sayiir_inline_lambdas_and_sequence() -> None:
    ns = run_example(
        """
        from sayiir import Flow, run_workflow

        workflow = (
            Flow("pipeline")
            .then(lambda x: x * 2)
            .then(lambda x: x + 1)
            .then(lambda x: str(x))
            .build()
        )
        result = run_workflow(workflow, 5)
        # "11"  (5 * 2 = 10, 10 + 1 = 11, str(11))
        """
    )
    assert ns["result"] == "11"
    ns = run_example(
        """
        from sayiir import task, Flow, run_workflow

        @task
        def double(x: int) -> int:
            return x * 2

        @task
        def add_ten(x: int) -> int:
            return x + 10

        workflow = Flow("math").then(double).then(add_ten).build()
        result = run_workflow(workflow, 5)
        # 20  (5 * 2 = 10, 10 + 10 = 20)
        """
    )
    assert ns["result"] == 20


def test_sayiir_durable_workflow(capsys: pytest.CaptureFixture[str]) -> None:
    run_example(
        """
        from sayiir import task, Flow, run_durable_workflow

        @task(timeout="30s")
        def process_order(order_id: int) -> dict:
            return {"order_id": order_id, "status": "processed"}

        @task
        def send_confirmation(order: dict) -> str:
            return f"Confirmed order {order['order_id']}"

        workflow = Flow("order").then(process_order).then(send_confirmation).build()

        # Checkpoints after each task — resumes from last checkpoint on crash
        status = run_durable_workflow(workflow, "order-123", 42)
        print(status.output)           # "Confirmed order 42"
        print(status.is_completed())   # True
        """
    )
    assert capsys.readouterr().out == "Confirmed order 42\nTrue\n"


@pytest.mark.postgres
def test_sayiir_postgres_persistence(pg_url: str) -> None:
    ns = run_example(
        """
        from sayiir import task, Flow, PostgresBackend, run_durable_workflow

        @task
        def process(x: int) -> int:
            return x * 2

        workflow = Flow("persistent").then(process).build()

        # Auto-runs migrations on first connect
        backend = PostgresBackend("postgresql://localhost/sayiir")
        status = run_durable_workflow(workflow, "run-001", 21, backend=backend)
        """,
        url=pg_url,
    )
    assert ns["status"].output == 42
    ns["backend"].close()


def test_sayiir_retry_policy_and_task_metadata() -> None:
    ns = run_example(
        """
        from sayiir import task, RetryPolicy

        # Int shorthand (1s initial delay, 2x backoff)
        @task(retries=3)
        def flaky_call(url: str) -> dict:
            return requests.get(url).json()

        # Full control
        @task(retries=RetryPolicy(max_retries=3, initial_delay_secs=0.5, backoff_multiplier=2.0))
        def precise_retry(url: str) -> dict:
            return requests.get(url).json()
        """
    )
    from stepstone.flow.tasks import declared

    assert declared(ns["flaky_call"])[1].retries.max_attempts == 4  # type: ignore[union-attr]
    assert declared(ns["precise_retry"])[1].retries.initial_delay_s == 0.5  # type: ignore[union-attr]
    ns = run_example(
        """
        from sayiir import task

        @task(
            "Process Payment",
            timeout="60s",
            retries=3,
            tags=["payments", "critical"],
            description="Charges the customer's payment method",
        )
        def process_payment(order: dict) -> dict:
            ...
        """
    )
    ident, meta = declared(ns["process_payment"])
    assert ident == "Process Payment" and meta.timeout_secs == 60
    assert meta.tags == ("payments", "critical")


def test_sayiir_fork_join_and_multi_step_branches() -> None:
    ns = run_example(
        """
        from sayiir import task, Flow, run_workflow

        @task
        def validate_payment(order: dict) -> dict:
            return {"payment": "valid"}

        @task
        def check_inventory(order: dict) -> dict:
            return {"stock": "available"}

        @task
        def finalize(results: dict) -> str:
            return f"Order complete: {results}"

        workflow = (
            Flow("checkout")
            .fork()
                .branch(validate_payment)
                .branch(check_inventory)
            .join(finalize)
            .build()
        )
        result = run_workflow(workflow, {"order_id": 1})
        """
    )
    assert ns["result"] == (
        "Order complete: {'validate_payment': {'payment': 'valid'}, "
        "'check_inventory': {'stock': 'available'}}"
    )
    given = {
        "fetch_data": lambda x: [x, x + 1],
        "transform": lambda rows: [r * 10 for r in rows],
        "validate": lambda rows: {"rows": rows, "valid": True},
        "fetch_metadata": lambda x: {"source": f"id-{x}"},
        "merge_results": lambda outs: sorted(outs.values(), key=str),
    }
    given["fetch_data"].__name__ = "fetch_data"  # type: ignore[attr-defined]
    ns = run_example(
        """
        from sayiir import Flow, run_workflow

        workflow = (
            Flow("pipeline")
            .fork()
                .branch(fetch_data, transform, validate)  # 3-step branch
                .branch(fetch_metadata)                    # 1-step branch
            .join(merge_results)
            .build()
        )
        """,
        given,
    )
    from stepstone.flow import run_workflow

    assert run_workflow(ns["workflow"], 1) == [
        {"rows": [10, 20], "valid": True},
        {"source": "id-1"},
    ]


def test_sayiir_loops() -> None:
    given = {
        "improve": lambda draft: draft + "+",
        "is_good_enough": lambda text: text.count("+") >= 3,
        "initial_draft": lambda text: text.upper(),
        "publish": lambda text: f"published: {text}",
    }
    ns = run_example(
        """
        from sayiir import task, Flow, LoopResult, run_workflow

        @task
        def refine(draft: str) -> dict:
            improved = improve(draft)
            if is_good_enough(improved):
                return LoopResult.done(improved).to_dict()
            return LoopResult.again(improved).to_dict()

        workflow = (
            Flow("iterative")
            .then(initial_draft)
            .loop(refine, max_iterations=5)
            .then(publish)
            .build()
        )
        result = run_workflow(workflow, "rough draft")
        """,
        given,
    )
    assert ns["result"] == "published: ROUGH DRAFT+++"


def test_sayiir_task_context(capsys: pytest.CaptureFixture[str]) -> None:
    ns = run_example(
        """
        from sayiir import task, get_task_context

        @task(timeout="30s", tags=["io"])
        def fetch_data(url: str) -> dict:
            ctx = get_task_context()
            if ctx is not None:
                print(f"Running task {ctx.task_id} in workflow {ctx.workflow_id}")
                print(f"Instance: {ctx.instance_id}")
                print(f"Timeout: {ctx.metadata.timeout_secs}s")
                print(f"Tags: {ctx.metadata.tags}")
                print(f"Workflow metadata: {ctx.workflow_metadata}")
            return do_fetch(url)
        """,
        {"do_fetch": lambda url: {"url": url}},
    )
    from stepstone.flow import Flow, run_durable_workflow

    wf = Flow("fetcher", metadata={"owner": "data"}).then(ns["fetch_data"]).build()
    assert run_durable_workflow(wf, "fetch-1", "https://x").output == {"url": "https://x"}
    assert capsys.readouterr().out.splitlines() == [
        "Running task fetch_data in workflow fetcher",
        "Instance: fetch-1",
        "Timeout: 30.0s",
        "Tags: ('io',)",
        "Workflow metadata: {'owner': 'data'}",
    ]


def test_sayiir_pydantic() -> None:
    ns = run_example(
        """
        from pydantic import BaseModel
        from sayiir import task, Flow, run_workflow

        class OrderInput(BaseModel):
            order_id: int
            amount: float

        class OrderResult(BaseModel):
            status: str
            message: str

        @task
        def process(order: OrderInput) -> OrderResult:
            return OrderResult(status="ok", message=f"Processed ${order.amount}")

        workflow = Flow("typed").then(process).build()
        result = run_workflow(workflow, {"order_id": 1, "amount": 99.99})
        # Automatic validation on input, serialization on output
        """
    )
    assert ns["result"] == {"status": "ok", "message": "Processed $99.99"}


def test_sayiir_conditional_branching() -> None:
    ns = run_example(
        """
        from sayiir import task, Flow, run_workflow

        @task
        def classify(ticket: dict) -> str:
            return "billing" if ticket["type"] == "invoice" else "tech"

        @task
        def handle_billing(ticket: dict) -> str:
            return f"Billing handled: {ticket['id']}"

        @task
        def handle_tech(ticket: dict) -> str:
            return f"Tech resolved: {ticket['id']}"

        @task
        def fallback(ticket: dict) -> str:
            return f"Routed to general: {ticket['id']}"

        workflow = (
            Flow("support-router")
            .route(classify, keys=["billing", "tech"])
                .branch("billing", handle_billing)
                .branch("tech", handle_tech)
                .default_branch(fallback)
            .done()
            .build()
        )
        result = run_workflow(workflow, {"id": 1, "type": "invoice"})
        # {"branch": "billing", "result": "Billing handled: 1"}
        """
    )
    assert ns["result"] == {"branch": "billing", "result": "Billing handled: 1"}


# --- sagewai's workflows page ----------------------------------------------------------------


class Agent:
    """Stands in for sagewai's agents: ``await agent.chat(text)``."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.calls = 0

    async def chat(self, text: str) -> str:
        self.calls += 1
        return f"{self.role}({text})"


@pytest.fixture
async def postgres_store(store_url: str) -> Any:
    store = open_store(store_url)
    await store.migrate()
    yield store
    await store.close()


async def test_sagewai_durable_workflow(postgres_store: Store) -> None:
    researcher, writer = Agent("research"), Agent("write")
    ns = await run_async_example(
        """
        from sagewai import DurableWorkflow

        wf = DurableWorkflow(name="article-pipeline", store=postgres_store)

        @wf.step("research")
        async def research(topic: str) -> str:
            return await researcher.chat(topic)

        @wf.step("draft", retries=3)
        async def draft(research_output: str) -> str:
            return await writer.chat(research_output)

        result = await wf.run(topic="quantum computing")
        """,
        {"postgres_store": postgres_store, "researcher": researcher, "writer": writer},
    )
    assert ns["result"] == "write(research(quantum computing))"
    await ns["wf"].close()


@pytest.mark.postgres
async def test_sagewai_postgres_store_and_resume(pg_url: str) -> None:
    ns = await run_async_example(
        """
        from sagewai import DurableWorkflow
        from sagewai.core.stores.postgres import PostgresStore

        store = PostgresStore(database_url="postgresql://localhost/sagewai")
        await store.initialize()

        wf = DurableWorkflow(name="my-workflow", store=store)

        @wf.step("step1")
        async def step1(input: str) -> str:
            return "processed: " + input

        @wf.step("step2", retries=3)
        async def step2(prev: str) -> str:
            return "finalized: " + prev

        result = await wf.run(input_data="hello")
        """,
        url=pg_url,
    )
    assert ns["result"] == "finalized: processed: hello"
    wf = ns["wf"]
    await wf.run(run_id="again", input_data="x")
    assert await wf.resume("again") == "finalized: processed: x"  # recorded: nothing reruns
    await wf.close()
    await ns["store"].close()


async def test_sagewai_approval_gate(postgres_store: Store) -> None:
    writer = Agent("write")
    example = """
        from sagewai import ApprovalGate, DurableWorkflow

        wf = DurableWorkflow(name="review-pipeline", store=store)

        @wf.step("draft")
        async def draft(topic: str) -> str:
            return await writer.chat(topic)

        @wf.step("approve")
        async def approve(draft: str) -> str:
            gate = ApprovalGate(timeout_seconds=3600)
            return await gate.wait(wf, "approval_signal")

        # From another process:
        await wf.signal(run_id, "approval_signal", {"approved": True})
    """
    define, signal = textwrap.dedent(example).split("# From another process:\n")
    ns = await run_async_example(define, {"store": postgres_store, "writer": writer})
    wf = ns["wf"]
    running = asyncio.create_task(wf.run(run_id="review-1", topic="durability"))
    watcher = AsyncClient(postgres_store)
    try:
        for _ in range(500):
            run = await watcher.store.get_run("review-1")
            if run is not None and run.state is RunState.WAITING:
                break
            await asyncio.sleep(0.02)
        assert (await wf.status("review-1")).signal_name == "approval_signal"
        await run_async_example(signal, {"wf": wf, "run_id": "review-1"})
        assert await running == {"approved": True}
        assert writer.calls == 1
    finally:
        await watcher.close()
        await wf.close()
