"""Two gates, one approval and one choice, answered by the people allowed to (ctx.ask).

    python examples/approval_gates.py

The run stops at each gate without holding a worker. Here the answers are sent from the same
process with ``client.resume`` (answer, then continue here). In real life you would use
``stepstone approve RUN --gate legal --as ana`` or ``stepstone answer RUN --gate to --input
'"blog"'`` from a terminal, or the HTTP API. An answer from someone who is not an approver is
refused before it reaches the run.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from stepstone import Client, SignalPayloadError, WorkflowContext, workflow


@workflow
async def publish(ctx: WorkflowContext, title: str) -> str:
    legal = await ctx.ask(f"Legal review of {title!r} passed?", gate="legal", approvers=["ana"])
    if not legal.approved:
        return f"stopped by {legal.by}: {legal.comment}"
    channel = await ctx.ask("Where to?", kind="choice", options=["blog", "newsletter"], gate="to")
    return f"{title} published on the {channel.value} (legal: {legal.by}, channel: {channel.by})"


def main() -> None:
    db = Path(tempfile.mkdtemp()) / "gates.db"
    with Client(f"sqlite:///{db}", workflows=[publish]) as client:
        run = client.run_until_wait(publish, "Q4 report")
        print(f"waiting at {run.waits[0].name!r}: {run.waits[0].info.prompt}")  # type: ignore[union-attr]
        try:
            client.resume(run.run_id, "legal", {"answer": True, "by": "mallory"})
        except SignalPayloadError as exc:
            print(f"refused: {exc}")
        run = client.resume(run.run_id, "legal", {"answer": True, "by": "ana", "comment": "ok"})
        print(f"waiting at {run.waits[0].name!r}")
        run = client.resume(run.run_id, "to", {"answer": "blog", "by": "bo"})
        print(json.loads(run.output_json or "null"))


if __name__ == "__main__":
    main()
