"""Workflows the dashboard's browser test and screenshot script run: a refund that asks for a
form, a publication that waits for an approval, and a step that always fails."""

from __future__ import annotations

import time

from stepstone import RetryPolicy, WorkflowContext, step, workflow

REFUND_FORM = {
    "type": "object",
    "properties": {
        "amount": {"type": "number", "minimum": 0, "maximum": 500, "description": "in EUR"},
        "reason": {"enum": ["damaged", "late", "other"]},
        "note": {"type": "string"},
        "restock": {"type": "boolean"},
    },
    "required": ["amount", "reason"],
    "additionalProperties": False,
}


@step
def load_order(order_id: str) -> dict[str, object]:
    time.sleep(0.05)  # a visible bar on the timeline
    return {"order_id": order_id, "total": 120.0, "customer": "ana@example.com"}


@step
def score_risk(order: dict[str, object]) -> float:
    time.sleep(0.02)
    return 0.12


@step
def pay_refund(order_id: str, amount: float) -> str:
    return f"refunded {amount:.2f} on {order_id}"


@workflow
async def refund(ctx: WorkflowContext, order_id: str) -> str:
    order = await load_order(order_id)
    ctx.emit("progress", {"risk": await score_risk(order)})
    answer = await ctx.ask(
        f"Refund order {order_id}? How much, and why?",
        kind="form",
        gate="refund",
        schema=REFUND_FORM,
        summary=f"order total {order['total']} EUR",
    )
    return await pay_refund(order_id, float(answer.value["amount"]))


@step
def render(title: str) -> str:
    return f"<h1>{title}</h1>"


@workflow
async def publish(ctx: WorkflowContext, title: str) -> str:
    html = await render(title)
    ok = await ctx.ask(f"Publish {title!r}?", gate="publish", approvers=["ana", "bo"])
    return f"published {len(html)} bytes" if ok.approved else "kept as draft"


@step(retry=RetryPolicy(max_attempts=2, initial_delay_s=0.01))
def charge_card(order_id: str) -> None:
    raise RuntimeError(f"card declined for {order_id}")


@workflow
def checkout(ctx: WorkflowContext, order_id: str) -> None:
    load_order(order_id)
    charge_card(order_id)


@workflow
def nightly_report(ctx: WorkflowContext) -> str:
    return render("nightly")
