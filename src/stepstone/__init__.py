"""stepstone: durable workflows for AI agents and operators.

Write plain Python; every step is checkpointed; a run survives crashes, waits hours for a human or
a timer without holding a worker, and resumes exactly where it stopped — on an embedded SQLite
file or on PostgreSQL.

>>> from stepstone import workflow, step, WorkflowContext, Client
>>> @step
... async def greet(name: str) -> str:
...     return f"hello {name}"
>>> @workflow
... async def hello(ctx: WorkflowContext, name: str) -> str:
...     return await greet(name)
>>> Client().run(hello, "world")
'hello world'

Every name is imported on first use (the errors excepted), so ``import stepstone`` stays fast
and imports no database driver: the SessionStart hook, which runs at every Claude Code session
start, imports none of the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from stepstone.errors import (
    DeadlineExceeded,
    DecodeError,
    DuplicateRun,
    EncodeError,
    InvalidArgument,
    LeaseHeld,
    MalformedOutput,
    MaxRecoveriesExceeded,
    MemoryConflict,
    ModelAuthError,
    ModelError,
    ModelInvalidRequest,
    ModelOverloaded,
    ModelRateLimited,
    ModelUnavailable,
    NonDeterminismError,
    OutcomeUnknown,
    RunFailed,
    RunNotFound,
    RunStateError,
    ScheduleNotFound,
    SchemaError,
    SignalPayloadError,
    StepError,
    StepFailed,
    StepstoneError,
    StepTimeout,
    StoreCorrupt,
    StoreError,
    StoreReadOnly,
    StoreUnavailable,
    UnknownSignal,
    WaitTimeout,
    WorkflowNotFound,
)

if TYPE_CHECKING:
    from stepstone.client import AsyncClient, AsyncRunHandle, Client, RunHandle
    from stepstone.client.views import RunDescription, TimelineEntry
    from stepstone.core.agentloop import AgentResult, AgentTurn, Tool, ToolRun
    from stepstone.core.asking import Answer
    from stepstone.core.context import ChildHandle, SyncWorkflowContext, WorkflowContext
    from stepstone.core.definitions import Registry, Step, Workflow, step, workflow
    from stepstone.core.executor import CheckResult
    from stepstone.core.ledger import Budget, CostLine
    from stepstone.core.llm import LLMResult, Models
    from stepstone.core.memory import Memory
    from stepstone.core.model import QueueStats, Run, RunState, StepRecord, WorkerInfo
    from stepstone.core.port import Store
    from stepstone.core.rerun import ReplayResult
    from stepstone.core.retry import RetryPolicy
    from stepstone.core.routing import Pool, Queue, StartOptions
    from stepstone.core.schedules import Schedule, ScheduleInfo
    from stepstone.core.scope import StepInfo, current_step, worker_credentials
    from stepstone.core.settings import Settings
    from stepstone.store import open_store
    from stepstone.worker import Worker

__version__ = "0.1.0"

_LAZY = {
    "Answer": "stepstone.core.asking",
    "Registry": "stepstone.core.definitions",
    "Step": "stepstone.core.definitions",
    "Workflow": "stepstone.core.definitions",
    "step": "stepstone.core.definitions",
    "workflow": "stepstone.core.definitions",
    "RetryPolicy": "stepstone.core.retry",
    "Pool": "stepstone.core.routing",
    "Queue": "stepstone.core.routing",
    "StartOptions": "stepstone.core.routing",
    "StepInfo": "stepstone.core.scope",
    "current_step": "stepstone.core.scope",
    "worker_credentials": "stepstone.core.scope",
    "AsyncClient": "stepstone.client",
    "AsyncRunHandle": "stepstone.client",
    "Client": "stepstone.client",
    "RunHandle": "stepstone.client",
    "AgentResult": "stepstone.core.agentloop",
    "AgentTurn": "stepstone.core.agentloop",
    "Tool": "stepstone.core.agentloop",
    "ToolRun": "stepstone.core.agentloop",
    "ChildHandle": "stepstone.core.context",
    "SyncWorkflowContext": "stepstone.core.context",
    "WorkflowContext": "stepstone.core.context",
    "CheckResult": "stepstone.core.executor",
    "ReplayResult": "stepstone.core.rerun",
    "Budget": "stepstone.core.ledger",
    "CostLine": "stepstone.core.ledger",
    "LLMResult": "stepstone.core.llm",
    "Models": "stepstone.core.llm",
    "Memory": "stepstone.core.memory",
    "QueueStats": "stepstone.core.model",
    "Run": "stepstone.core.model",
    "RunState": "stepstone.core.model",
    "StepRecord": "stepstone.core.model",
    "WorkerInfo": "stepstone.core.model",
    "Store": "stepstone.core.port",
    "Schedule": "stepstone.core.schedules",
    "ScheduleInfo": "stepstone.core.schedules",
    "Settings": "stepstone.core.settings",
    "RunDescription": "stepstone.client.views",
    "TimelineEntry": "stepstone.client.views",
    "open_store": "stepstone.store",
    "Worker": "stepstone.worker",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'stepstone' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AgentResult",
    "AgentTurn",
    "Answer",
    "AsyncClient",
    "AsyncRunHandle",
    "CheckResult",
    "ChildHandle",
    "Client",
    "DeadlineExceeded",
    "DecodeError",
    "DuplicateRun",
    "EncodeError",
    "Budget",
    "CostLine",
    "InvalidArgument",
    "LeaseHeld",
    "LLMResult",
    "MalformedOutput",
    "MaxRecoveriesExceeded",
    "Memory",
    "MemoryConflict",
    "ModelAuthError",
    "ModelError",
    "ModelInvalidRequest",
    "ModelOverloaded",
    "ModelRateLimited",
    "ModelUnavailable",
    "Models",
    "NonDeterminismError",
    "OutcomeUnknown",
    "Pool",
    "Queue",
    "QueueStats",
    "Registry",
    "ReplayResult",
    "RetryPolicy",
    "Run",
    "RunDescription",
    "RunFailed",
    "RunHandle",
    "RunNotFound",
    "RunState",
    "RunStateError",
    "Schedule",
    "ScheduleInfo",
    "ScheduleNotFound",
    "SchemaError",
    "Settings",
    "SignalPayloadError",
    "StartOptions",
    "Step",
    "StepError",
    "StepFailed",
    "StepInfo",
    "StepRecord",
    "StepTimeout",
    "StepstoneError",
    "Store",
    "StoreCorrupt",
    "StoreError",
    "StoreReadOnly",
    "StoreUnavailable",
    "SyncWorkflowContext",
    "TimelineEntry",
    "Tool",
    "ToolRun",
    "UnknownSignal",
    "WaitTimeout",
    "Workflow",
    "WorkflowContext",
    "WorkflowNotFound",
    "Worker",
    "WorkerInfo",
    "__version__",
    "current_step",
    "open_store",
    "step",
    "worker_credentials",
    "workflow",
]
