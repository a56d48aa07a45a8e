"""Checked by mypy in tests/test_typed_api.py: lines ending in `# E` must be errors, others not."""

from stepstone import AsyncClient, Client, StartOptions, WorkflowContext, workflow


@workflow
async def pay(ctx: WorkflowContext, amount: int, currency: str = "EUR") -> str:
    return f"{amount} {currency}"


def sync_use(client: Client) -> str:
    handle = client.start(pay, 5, currency="USD")
    client.start(pay, "five")  # E
    client.run(pay, 5, colour="red")  # E
    client.with_options(StartOptions(queue="q", priority=3)).start(pay, 5)
    client.with_options(StartOptions(queue="q")).start(pay, "x")  # E
    paid: str = client.run(pay, 5)
    wrong: int = client.run(pay, 5)  # E
    return handle.run_id + paid + str(wrong)


async def async_use(client: AsyncClient) -> str:
    handle = await client.start(pay, 5)
    await client.start(pay)  # E
    result: str = await client.with_options(StartOptions(run_id="r")).run(pay, 7)
    await client.with_options(StartOptions(queue="q")).run(pay, 1, "EUR", "extra")  # E
    return handle.run_id + result
