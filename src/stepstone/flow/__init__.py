"""The Flow builder: sayiir's and sagewai's ways of writing workflows, on stepstone's engine.

>>> from stepstone.flow import Flow, task, run_workflow
>>> @task
... def double(x: int) -> int:
...     return x * 2
>>> run_workflow(Flow("math").then(double).then(lambda x: x + 10).build(), 5)
20

``Flow.build()`` returns an ordinary :class:`stepstone.Workflow` whose every task is a
checkpointed step named by its task id: a client, ``stepstone worker --app``, ``check``,
``fork`` and ``retry`` treat it like any ``@workflow``.
"""

from stepstone.errors import FlowError
from stepstone.flow.builder import BranchBuilder, Flow, ForkBuilder
from stepstone.flow.compile import FlowWorkflow
from stepstone.flow.graph import LoopResult, OnMax
from stepstone.flow.runners import (
    WorkflowClient,
    cancel_workflow,
    pause_workflow,
    resume_workflow,
    run_durable_workflow,
    run_workflow,
    send_signal,
    unpause_workflow,
)
from stepstone.flow.sagewai import ApprovalGate, DurableWorkflow, PostgresStore
from stepstone.flow.session import Backend, InMemoryBackend, PostgresBackend
from stepstone.flow.status import WorkflowStatus
from stepstone.flow.tasks import (
    RetryPolicy,
    TaskExecutionContext,
    TaskMetadata,
    get_task_context,
    parse_duration,
    task,
)

Workflow = FlowWorkflow  # sayiir's name for what Flow.build() returns

__all__ = [
    "ApprovalGate",
    "Backend",
    "BranchBuilder",
    "DurableWorkflow",
    "Flow",
    "FlowError",
    "FlowWorkflow",
    "ForkBuilder",
    "InMemoryBackend",
    "LoopResult",
    "OnMax",
    "PostgresBackend",
    "PostgresStore",
    "RetryPolicy",
    "TaskExecutionContext",
    "TaskMetadata",
    "Workflow",
    "WorkflowClient",
    "WorkflowStatus",
    "cancel_workflow",
    "get_task_context",
    "parse_duration",
    "pause_workflow",
    "resume_workflow",
    "run_durable_workflow",
    "run_workflow",
    "send_signal",
    "task",
    "unpause_workflow",
]
