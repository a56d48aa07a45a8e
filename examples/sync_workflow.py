"""Plain ``def`` workflows and steps: the same durability without async.

    python examples/sync_workflow.py

In a sync workflow, calling a step blocks and returns its result; ``ctx.parallel`` takes
``(fn, *args)`` tuples or ``functools.partial`` objects because a direct call would run at once.
"""

from __future__ import annotations

import tempfile
import time
from functools import partial
from pathlib import Path

from stepstone import Client, SyncWorkflowContext, open_store, step, workflow


@step
def resize(image: str, width: int) -> str:
    time.sleep(0.05)  # blocking work is fine: sync steps run on threads
    return f"{image}@{width}w"


@workflow
def thumbnails(ctx: SyncWorkflowContext, image: str) -> list[str]:
    small = resize(image, 128)
    medium, large = ctx.parallel((resize, image, 512), partial(resize, image, 1024))
    ctx.sleep(0.5)  # a durable timer in a sync workflow too
    return [small, medium, large]


def main() -> None:
    db = Path(tempfile.mkdtemp()) / "sync.db"
    with Client(open_store(f"sqlite:///{db}", auto_migrate=True)) as client:
        print(client.run(thumbnails, "cat.png"))


if __name__ == "__main__":
    main()
