"""The Flow builder: a review pipeline written the sayiir way, run on stepstone's engine.

    python examples/flow_pipeline.py

Each task is a checkpointed step named by its task id. The fork runs its branches at once (the
two-task branch is a child run), the route picks a branch by the key a task returns, the loop
repeats a task until it says done, and the signal wait parks the run without holding anything:
``run_durable_workflow`` returns ``awaiting_signal``, a reviewer sends the signal, and
``resume_workflow`` finishes the run from its checkpoints.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from stepstone.flow import (
    Flow,
    LoopResult,
    get_task_context,
    resume_workflow,
    run_durable_workflow,
    run_workflow,
    send_signal,
    task,
)


@task
def fetch(doc_id: int) -> dict[str, object]:
    return {"id": doc_id, "text": "durable workflows survive crashes", "lang": "en"}


@task("count-words")
def count_words(doc: dict[str, object]) -> int:
    return len(str(doc["text"]).split())


def keywords(doc: dict[str, object]) -> list[str]:
    return [w for w in str(doc["text"]).split() if len(w) > 7]


def rank(words: list[str]) -> list[str]:
    return sorted(words, key=len, reverse=True)


@task(timeout="10s", retries=2)
def polish(draft: str) -> LoopResult:
    ctx = get_task_context()
    assert ctx is not None  # inside a task: which run, which task, the flow's metadata
    better = draft + "."
    return LoopResult.done(better) if better.endswith("...") else LoopResult.again(better)


def no_reviewer(draft: str) -> str:
    return f"auto-approved: {draft}"


review = (
    Flow("review", metadata={"team": "docs"})
    .then(fetch)
    .fork()
    .branch(count_words)
    .branch(keywords, rank)
    .join(lambda parts: f"{parts['count-words']} words, top: {parts['keywords'][0]}", name="brief")
    .route(
        lambda brief: "long" if int(brief.split()[0]) > 3 else "short",
        keys=["long", "short"],
        name="length",
    )
    .branch("long", lambda brief: f"summary of {brief}", name="summarize")
    .branch("short", lambda brief: brief, name="as-is")
    .done()
    .then(lambda routed: routed["result"], name="unwrap")
    .loop(polish, max_iterations=5)
    .wait_for_signal("approval", timeout="1h", on_timeout=no_reviewer)
    .build()
)


def main() -> None:
    print(review.to_mermaid())
    store = f"sqlite:///{Path(tempfile.mkdtemp()) / 'review.db'}"
    status = run_durable_workflow(review, "doc-7", 7, store=store)
    print(f"doc-7 is {status.status} ({status.signal_name})")
    send_signal("doc-7", "approval", {"approved": True, "by": "ana"}, store)
    status = resume_workflow(review, "doc-7", store)
    print(f"doc-7 is {status.status}: {status.output}")
    no_wait = Flow("quick").then(fetch).then(count_words).build()
    print(f"in memory: {run_workflow(no_wait, 1)} words")


if __name__ == "__main__":
    main()
