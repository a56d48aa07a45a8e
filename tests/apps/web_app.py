"""Workflows the HTTP API and webhook tests start, signal, fork and retry."""

from __future__ import annotations

from typing import Any

from stepstone import RetryPolicy, WorkflowContext, step, workflow


@step
def shout(name: str) -> str:
    return name.upper()


@workflow
def greet(ctx: WorkflowContext, name: str) -> str:
    ctx.emit("progress", {"at": "start"})
    loud = shout(name)
    ctx.emit("progress", {"at": "shouted"})
    ctx.emit("progress", {"at": "done"})
    return f"hello {loud}"


@workflow
async def approve(ctx: WorkflowContext, item: str) -> str:
    answer = await ctx.wait_for_signal("approval")
    return f"{item}: {answer}"


@step(retry=RetryPolicy(max_attempts=1))
def explode() -> None:
    raise ValueError("boom")


@workflow
def broken(ctx: WorkflowContext) -> None:
    explode()


@workflow(webhook="github")
def on_push(ctx: WorkflowContext, payload: dict[str, Any]) -> str:
    return str(payload.get("ref"))


@workflow(webhook="stripe")
def on_charge(ctx: WorkflowContext, payload: dict[str, Any]) -> str:
    return str(payload.get("type"))


@workflow(webhook="plain")
def on_plain(ctx: WorkflowContext, payload: dict[str, Any]) -> Any:
    return payload
